"""Shared word spans between gold texts and training texts, found through a hash index of
the gold set's word n-grams.

Words are `evals/contamination/audit_words.py`'s: case, spacing and punctuation do not count.

The index holds every word n-gram of every gold text, n being the smallest span the audit
reports (8 words), as 64-bit hashes: an n-gram's is a polynomial in its words' hashes,
computed for a whole chunk of training texts at once with numpy. Any span of n or more
shared words contains a shared n-gram, so looking up the training texts' n-grams finds
every reported span. Each hit seeds a span that is then checked and grown word by word,
left and right, so a hash collision cannot make a span and a span is measured in full. Prompts and answers share one index and every training text is
looked up in it, so a gold prompt quoted in a training answer is found too; each span says
which field of each side it lies in.

An n-gram found in more than `template_rows` gold rows seeds nothing: text that many gold
rows repeat (a template's instructions, a licence line) is no evidence against any one of
them, and training rows built from the same template would otherwise all match every gold
row. A real copy is still found and measured in full, through its other n-grams.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evals.contamination.audit_words import word_hashes, word_offsets

FIELDS = ("prompt", "answer")
# An odd 64-bit multiplier (the golden ratio's, as in Fibonacci hashing) for the polynomial.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """The hash of every run of n consecutive words, one per start position."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    result = word_hashes[:count].copy()
    for k in range(1, n):
        result *= _MULTIPLIER
        result += word_hashes[k : k + count]
    return result


class _Words:
    """The words of a batch of texts, hashed, and where they stand in their texts."""

    def __init__(self, texts: Sequence[str]):
        self.texts = texts
        self.hashes, self.counts, self._starts, self._ends = word_hashes(texts)
        self.first = np.cumsum(self.counts) - self.counts
        self._offsets: dict[int, list[tuple[int, int]]] = {}  # of non-ASCII texts, as needed

    def of(self, text: int) -> list[int]:
        return self.hashes[self.first[text] : self.first[text] + self.counts[text]].tolist()

    def chars(self, text: int, span: tuple[int, int]) -> tuple[int, int]:
        """The characters of the text that words [start, end) cover."""
        if self.texts[text].isascii():
            first = self.first[text]
            return int(self._starts[first + span[0]]), int(self._ends[first + span[1] - 1])
        if text not in self._offsets:
            self._offsets[text] = word_offsets(self.texts[text])[1]
        return self._offsets[text][span[0]][0], self._offsets[text][span[1] - 1][1]

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n-gram hashes, their text, their word position) for every n-gram inside one text."""
        grams = ngram_hashes(self.hashes, n)
        text = np.repeat(np.arange(len(self.texts)), self.counts)[: len(grams)]
        position = np.arange(len(grams)) - self.first[text]
        inside = position <= self.counts[text] - n  # an n-gram that runs into the next text is none
        return grams[inside], text[inside], position[inside]


def _template_ngrams(grams: np.ndarray, rows: np.ndarray, template_rows: int) -> np.ndarray:
    """The n-grams found in more than `template_rows` distinct rows."""
    order = np.lexsort((rows, grams))
    grams, rows = grams[order], rows[order]
    first_in_row = np.ones(len(grams), dtype=bool)
    first_in_row[1:] = (grams[1:] != grams[:-1]) | (rows[1:] != rows[:-1])
    values, counts = np.unique(grams[first_in_row], return_counts=True)
    return values[counts > template_rows]


@dataclass(frozen=True)
class SharedSpan:
    """A run of words that a gold text and a training text share, in characters of each."""

    gold_field: str  # "prompt" or "answer"
    train_field: str
    words: int
    gold_chars: tuple[int, int]
    train_chars: tuple[int, int]


class GoldNgramIndex:
    """The word n-grams of gold rows' prompts and answers, looked up from training texts."""

    def __init__(self, gold: Sequence[tuple[str, str]], n: int, template_rows: int):
        self.n = n
        self.gold = _Words([text for row in gold for text in row])
        grams, text, position = self.gold.ngrams(n)
        template = _template_ngrams(grams, text // len(FIELDS), template_rows)
        keep = ~np.isin(grams, template)
        order = np.argsort(grams[keep], kind="stable")
        self._grams = grams[keep][order]
        self._text = text[keep][order]
        self._position = position[keep][order]
        self.template_ngrams = len(template)

    def shared_spans(self, train: Sequence[tuple[str, str]]) -> dict[tuple[int, int], list[SharedSpan]]:
        """{(train row, gold row): spans of at least n words, longest first} for a chunk of
        training rows given as (prompt, answer)."""
        if not len(self._grams):
            return {}
        chunk = _Words([text for row in train for text in row])
        grams, text, position = chunk.ngrams(self.n)
        first = np.searchsorted(self._grams, grams)
        hits = np.flatnonzero(self._grams[np.minimum(first, len(self._grams) - 1)] == grams)
        last = np.searchsorted(self._grams, grams[hits], side="right")
        seeds = defaultdict(list)  # (train text, gold text) -> [(gold position, train position)]
        for index, end in zip(hits.tolist(), last.tolist()):
            for entry in range(int(first[index]), end):
                key = (int(text[index]), int(self._text[entry]))
                seeds[key].append((int(self._position[entry]), int(position[index])))
        spans = defaultdict(list)
        for (train_text, gold_text), pairs in seeds.items():
            for gold_span, train_span in _grow(self.gold.of(gold_text), chunk.of(train_text), pairs, self.n):
                spans[train_text // len(FIELDS), gold_text // len(FIELDS)].append(SharedSpan(
                    FIELDS[gold_text % len(FIELDS)], FIELDS[train_text % len(FIELDS)], gold_span[1] - gold_span[0],
                    self.gold.chars(gold_text, gold_span), chunk.chars(train_text, train_span),
                ))
        return {key: sorted(found, key=lambda s: -s.words) for key, found in spans.items()}


def _grow(gold: list[int], train: list[int], seeds: list[tuple[int, int]], n: int):
    """Maximal runs of equal word hashes through the seed positions, as ((gold start, end),
    (train start, end)). Two 64-bit word hashes are equal by chance with odds of 2^-64."""
    covered: dict[int, list[tuple[int, int]]] = defaultdict(list)  # diagonal -> gold spans
    for g, t in sorted(seeds):
        diagonal = t - g
        if any(start <= g < end for start, end in covered[diagonal]):
            continue
        if gold[g : g + n] != train[t : t + n]:
            continue  # two n-grams with one hash: no span
        start, end = g, g + n
        while start > 0 and start + diagonal > 0 and gold[start - 1] == train[start - 1 + diagonal]:
            start -= 1
        while end < len(gold) and end + diagonal < len(train) and gold[end] == train[end + diagonal]:
            end += 1
        covered[diagonal].append((start, end))
        yield (start, end), (start + diagonal, end + diagonal)
