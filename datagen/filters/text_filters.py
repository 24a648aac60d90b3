"""Text-quality filters for any text a stage makes, each returning `(keep, reason)`.

Each filter is a small pure function of one text and its config; the reason is "" when
the text is kept and reads `kind: detail` when it is rejected, e.g.
`dup_line_fraction: 0.500 > 0.300`, the kind being what the run summary counts. Bind the
config (and, for token length, the tokenizer) with `functools.partial` and hand the list
to `apply_filters`, which runs them in order, lets the first failure win and returns the
rejects with their reason, as `datagen.filters.answer_filters.filter_answers` does:

    filters = [
        not_empty,
        partial(within_token_bounds, config=TokenBoundsConfig(), tokenize=tokenizer.encode),
        partial(not_repetitive, config=RepetitionConfig()),
        partial(no_refusal_phrase, config=RefusalConfig()),
        partial(in_expected_language, config=LanguageConfig(expected=["en"])),
    ]
    kept, rejected = apply_filters(examples, filters)

Gopher's repetition filter lives in `datagen.filters.gopher_repetition`; it is re-exported here.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Iterable, Sequence, TypeVar

from py3langid.langid import MODEL_FILE, LanguageIdentifier
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.filters.gopher_repetition import RepetitionConfig, not_repetitive
from datagen.foundation.records import Example
from datagen.foundation.task import Verdict

__all__ = [
    "LanguageConfig",
    "RefusalConfig",
    "RepetitionConfig",
    "TokenBoundsConfig",
    "apply_filters",
    "in_expected_language",
    "no_refusal_phrase",
    "not_empty",
    "not_repetitive",
    "within_token_bounds",
]

T = TypeVar("T", str, Example)


def not_empty(text: str) -> Verdict:
    if text == "":
        return False, "empty: no characters"
    if not text.strip():
        return False, "empty: whitespace only"
    return True, ""


class TokenBoundsConfig(BaseModel):
    """How long a text may be, in the student's own tokens (the unit its context is in)."""

    model_config = ConfigDict(extra="forbid")

    min_tokens: int = Field(
        1, ge=0, description="at least one token; raise it where answers have a known floor"
    )
    max_tokens: int = Field(
        1024,
        gt=0,
        description="TRL 1.16's SFTConfig.max_length default: training cuts a longer row, "
        "teaching half an answer (that limit counts prompt and answer together)",
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> TokenBoundsConfig:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens {self.min_tokens} > max_tokens {self.max_tokens}")
        return self


def within_token_bounds(
    text: str, config: TokenBoundsConfig, tokenize: Callable[[str], Sequence[int]]
) -> Verdict:
    """`tokenize` is e.g. the student tokenizer's `encode`; note that for some tokenizers
    `encode` adds special tokens (a BOS) unless given `add_special_tokens=False`."""
    count = len(tokenize(text))
    if count < config.min_tokens:
        return False, f"too_few_tokens: {count} < {config.min_tokens}"
    if count > config.max_tokens:
        return False, f"too_many_tokens: {count} > {config.max_tokens}"
    return True, ""


# Refusals and hedges that teachers emit instead of an answer. The list follows the
# phrases used to clean instruction data sets of them (the ShareGPT/WizardLM
# "unfiltered" clean-up scripts, airoboros's refusal filters) and the refusal prefixes
# of Zou et al. 2023 ("Universal and Transferable Adversarial Attacks", GCG); it is
# deliberately short, since every phrase also matches some honest answer.
DEFAULT_REFUSAL_PHRASES = (
    "I'm sorry, but",
    "I am sorry, but",
    "I apologize, but",
    "As an AI",
    "as a language model",
    "I cannot",
    "I can't help",
    "I can't assist",
    "I'm not able to",
    "I am not able to",
    "I'm unable to",
    "I am unable to",
    "I don't have access to",
    "it depends",
)


class RefusalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSAL_PHRASES),
        min_length=1,
        description="matched case-insensitively as whole words; the first listed that "
        "occurs is reported (default: DEFAULT_REFUSAL_PHRASES, see its comment)",
    )


def _fold(text: str) -> str:
    # Teachers write typographic apostrophes as often as straight ones: "I’m sorry".
    return text.replace("\u2019", "'").replace("\u2018", "'").casefold()


def no_refusal_phrase(text: str, config: RefusalConfig) -> Verdict:
    folded = _fold(text)
    for phrase in config.phrases:
        # Whole words only, so that "I cannot" does not match "I cannotate" and
        # "As an AI" does not match "As an AIM user".
        if re.search(rf"(?<!\w){re.escape(_fold(phrase))}(?!\w)", folded):
            return False, f"refusal_phrase: {phrase}"
    return True, ""


class LanguageConfig(BaseModel):
    """Which language(s) a text must be in, as py3langid 0.4.0 identifies them.

    py3langid (a maintained fork of langid.py, Lui & Baldwin 2012: a naive Bayes model
    over byte n-grams, 97 languages, shipped inside the wheel) gives a confidence in
    [0, 1]. A text is rejected only when the identified language is not expected *and*
    the identification is confident: a weak guess about the wrong language is not
    evidence, and code, JSON or lists of names often get one. Text without linguistic
    content (digits, symbols) is labelled `zxx`; list it in `expected` to keep such texts.
    """

    model_config = ConfigDict(extra="forbid")

    expected: list[str] = Field(
        default_factory=lambda: ["en"], min_length=1, description="ISO 639-1 codes, e.g. en, fr"
    )
    min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="0.5 as in CCNet (Wenzek et al. 2020), which drops documents whose "
        "fastText language score is below it; measured here, py3langid gives 0.8-1.0 to "
        "40-character sentences in their own language",
    )
    min_chars: int = Field(
        40,
        ge=0,
        description="shorter texts are not checked: identification on a few words is "
        "unreliable; measured here, 'Login fails' came out Hausa (0.15) and 20-character "
        "Spanish got 0.30, while from 40 characters en/fr/de/es were right at 0.81 or more",
    )


@functools.cache
def _language_identifier() -> LanguageIdentifier:
    # Loads py3langid's bundled model once per process (about 0.6-1 s here).
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def in_expected_language(text: str, config: LanguageConfig) -> Verdict:
    identifier = _language_identifier()
    unknown = set(config.expected) - set(identifier.labels)
    if unknown:
        raise ValueError(f"py3langid does not know the language code(s) {sorted(unknown)}")
    if len(text.strip()) < config.min_chars:
        return True, ""
    language, confidence = identifier.classify(text)
    if language in config.expected or confidence < config.min_confidence:
        return True, ""
    expected = ", ".join(config.expected)
    return False, f"wrong_language: {language} ({confidence:.3f}) not in {expected}"


def _text_of(item: str | Example) -> str:
    if isinstance(item, str):
        return item
    if item.response is None:
        raise ValueError(f"example {item.id} has no response to filter")
    return item.response


def apply_filters(
    items: Iterable[T], filters: Sequence[Callable[[str], Verdict]]
) -> tuple[list[T], list[tuple[T, str]]]:
    """Split texts, or examples by their response, into kept ones and (reject, reason) pairs.

    The filters run in the order given and the first failure wins, so put the cheap and
    decisive ones (empty, token bounds) first.
    """
    return split_by_filters(items, [lambda item, check=check: check(_text_of(item)) for check in filters])


def split_by_filters(
    items: Iterable[T], checks: Sequence[Callable[[T], Verdict]]
) -> tuple[list[T], list[tuple[T, str]]]:
    """(kept, [(rejected, reason)]): each item meets the checks in order, the first
    failure is its reason, and nothing is dropped without one."""
    kept, rejected = [], []
    for item in items:
        reason = next((r for keep, r in (check(item) for check in checks) if not keep), None)
        if reason is None:
            kept.append(item)
        else:
            rejected.append((item, reason))
    return kept, rejected
