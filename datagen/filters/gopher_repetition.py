"""Gopher's repetition filter: reject texts that repeat their own lines, paragraphs or n-grams.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training
Gopher", Appendix A.1.1 and Table A1, found that text repeating itself is a strong sign
of low quality (and teaches a model to loop). They reject a document when any of these
exceeds its threshold; the thresholds below are Table A1's:

    duplicate line fraction                   0.30
    duplicate paragraph fraction              0.30
    duplicate line character fraction         0.20
    duplicate paragraph character fraction    0.20
    top 2-, 3-, 4-gram character fraction     0.20, 0.18, 0.16
    duplicate 5- ... 10-gram char fraction    0.15, 0.14, 0.13, 0.12, 0.11, 0.10

The paper gives the measures in words; the exact definitions here are ours:

- Lines are split on newlines, paragraphs on blank lines; both are stripped and blank ones
  dropped. A duplicate is a line (paragraph) equal to an *earlier* one, so the first copy
  is not counted. Character fractions are over the characters of all the lines
  (paragraphs), so every fraction lies in [0, 1].
- Words are runs of `\\w` characters, punctuation dropped, case kept. N-gram character
  fractions count the characters of the words an n-gram covers, over the characters of
  all words, each word counted once however many n-grams overlap it (the paper's
  "taking care not to count characters in overlapping n-grams more than once").
- Top n-gram (n = 2..4): the words covered by every occurrence of the most frequent
  n-gram; zero when no n-gram occurs twice, since a text without a repeated n-gram has
  nothing repeated (otherwise every two-word text would be "100% its top 2-gram").
- Duplicate n-grams (n = 5..10): the words covered by occurrences of an n-gram that
  already occurred earlier.

A text exactly at a threshold is kept; only a fraction above it rejects.
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datagen.foundation.task import Verdict

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\w+")


class RepetitionConfig(BaseModel):
    """Largest allowed fraction for each measure; defaults are Gopher's Table A1."""

    model_config = ConfigDict(extra="forbid")

    min_words: int = Field(
        50, ge=0, description="shorter texts are kept unchecked: Gopher applies these to "
        "documents of at least 50 words, and in a short answer one repeated product name "
        "is already 'a top 2-gram of 20%' (measured: 42 of 300 correct triage answers)",
    )
    max_dup_line_fraction: float = Field(0.30, ge=0, le=1, description="Gopher Table A1")
    max_dup_paragraph_fraction: float = Field(0.30, ge=0, le=1, description="Gopher Table A1")
    max_dup_line_char_fraction: float = Field(0.20, ge=0, le=1, description="Gopher Table A1")
    max_dup_paragraph_char_fraction: float = Field(
        0.20, ge=0, le=1, description="Gopher Table A1"
    )
    max_top_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
        description="n -> limit; Gopher Table A1 (n = 2, 3, 4)",
    )
    max_dup_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n -> limit; Gopher Table A1 (n = 5 ... 10)",
    )

    @field_validator("max_top_ngram_char_fraction", "max_dup_ngram_char_fraction")
    @classmethod
    def _ngram_limits_are_fractions(cls, limits: dict[int, float]) -> dict[int, float]:
        for n, limit in limits.items():
            if n < 1 or not 0 <= limit <= 1:
                raise ValueError(f"{n}: {limit}: n must be >= 1 and the limit within [0, 1]")
        return limits


def _duplicates(parts: list[str]) -> tuple[float, float]:
    """(fraction of parts that repeat an earlier part, fraction of characters they hold)."""
    if not parts:
        return 0.0, 0.0
    seen: set[str] = set()
    count = chars = 0
    for part in parts:
        if part in seen:
            count += 1
            chars += len(part)
        seen.add(part)
    return count / len(parts), chars / sum(len(part) for part in parts)


def _char_fraction(words: list[str], covered: set[int]) -> float:
    return sum(len(words[i]) for i in covered) / sum(len(word) for word in words)


def _top_ngram_char_fraction(words: list[str], n: int) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    top, count = Counter(grams).most_common(1)[0]
    if count < 2:
        return 0.0
    covered = {i + k for i, gram in enumerate(grams) if gram == top for k in range(n)}
    return _char_fraction(words, covered)


def _dup_ngram_char_fraction(words: list[str], n: int) -> float:
    seen: set[tuple[str, ...]] = set()
    covered: set[int] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            covered.update(range(i, i + n))
        seen.add(gram)
    return _char_fraction(words, covered) if covered else 0.0


def not_repetitive(text: str, config: RepetitionConfig) -> Verdict:
    """Reject on the first measure, in Table A1's order, above its limit."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    words = _WORD.findall(text)
    if len(words) < config.min_words:
        return True, ""
    line_fraction, line_char_fraction = _duplicates(lines)
    paragraph_fraction, paragraph_char_fraction = _duplicates(paragraphs)
    checks = [
        ("dup_line_fraction", line_fraction, config.max_dup_line_fraction),
        ("dup_paragraph_fraction", paragraph_fraction, config.max_dup_paragraph_fraction),
        ("dup_line_char_fraction", line_char_fraction, config.max_dup_line_char_fraction),
        (
            "dup_paragraph_char_fraction",
            paragraph_char_fraction,
            config.max_dup_paragraph_char_fraction,
        ),
    ]
    for n, limit in sorted(config.max_top_ngram_char_fraction.items()):
        checks.append((f"top_{n}gram_char_fraction", _top_ngram_char_fraction(words, n), limit))
    for n, limit in sorted(config.max_dup_ngram_char_fraction.items()):
        checks.append((f"dup_{n}gram_char_fraction", _dup_ngram_char_fraction(words, n), limit))
    for kind, value, limit in checks:
        if value > limit:
            return False, f"{kind}: {value:.3f} > {limit:.3f}"
    return True, ""
