"""The words a contamination audit compares, and their hashes for many texts at once.

A word is a run of word characters (`\\w+`) of the text, each after Unicode NFKC and case
folding (`datagen/dedupe/exact_dedup.py`'s normalization), so a copy with other case, spacing or
punctuation is still a copy; lm-eval's `Janitor` likewise lowercases and deletes
punctuation before it builds its 13-grams. `word_offsets` says where in the original text
each word stands, for highlighting.

`word_hashes` hashes every word of a batch of texts with a few numpy passes instead of a
Python string per word, which is most of the cost of scanning a training set: a word's
hash is the polynomial sum(b_i * BASE^(len-1-i)) mod 2^64 over its lowercased UTF-8
bytes. With prefix sums T[k] = sum over j < k of b_j * BASE^-j (BASE is odd, hence
invertible mod 2^64), the word at bytes [s, e) hashes to (T[e] - T[s]) * BASE^(e-1). An
ASCII text is hashed as it is (its word characters are [A-Za-z0-9_], the bytes marked
below); any other text is first turned into its normalized words joined by spaces, whose
non-ASCII bytes all belong to words.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_BASE = 0x100000001B3  # the 64-bit FNV prime: odd, with bits spread over the word
_WORD_BYTES = np.zeros(256, dtype=bool)
_WORD_BYTES[[*b"0123456789_", *range(65, 91), *range(97, 123), *range(128, 256)]] = True
_LOWERCASE = np.arange(256, dtype=np.uint64)
_LOWERCASE[65:91] += 32
_powers_cache = (np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64))


def _normalized_words(match: str) -> list[str]:
    if match.isascii():
        return [match.lower()]
    # NFKC can split one match (the fraction "½" becomes "1⁄2"): keep every word it yields.
    return _WORD.findall(unicodedata.normalize("NFKC", match).casefold()) or [match.casefold()]


def words(text: str) -> list[str]:
    if text.isascii():
        return _WORD.findall(text.lower())
    return [word for match in _WORD.findall(text) for word in _normalized_words(match)]


def word_offsets(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """`words(text)` and, for each, the (start, end) characters of the text it came from."""
    if text.isascii():
        return _WORD.findall(text.lower()), [match.span() for match in _WORD.finditer(text)]
    found, offsets = [], []
    for match in _WORD.finditer(text):
        for word in _normalized_words(match.group()):
            found.append(word)
            offsets.append(match.span())
    return found, offsets


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE^k and BASE^-k mod 2^64 for k < length (kept and grown, as every batch needs them)."""
    global _powers_cache
    if len(_powers_cache[0]) < length:
        size = max(length, 2 * len(_powers_cache[0]))
        ones = np.ones(1, dtype=np.uint64)
        forward = np.concatenate([ones, np.cumprod(np.full(size - 1, _BASE, dtype=np.uint64))])
        inverse = np.concatenate([ones, np.cumprod(np.full(size - 1, pow(_BASE, -1, 2**64), dtype=np.uint64))])
        _powers_cache = (forward, inverse)
    return _powers_cache


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hash of every word of every text, end to end (uint64); each text's word count;
    and where each word starts and ends in its text, in characters for an ASCII text (for
    any other, in its normalized words: use `word_offsets`)."""
    encoded = [(text if text.isascii() else " ".join(words(text))).encode() for text in texts]
    data = np.frombuffer(b"\0".join(encoded), dtype=np.uint8)  # "\0" is no word byte: texts stay apart
    edges = np.flatnonzero(np.diff(_WORD_BYTES[data].astype(np.int8), prepend=0, append=0))
    starts, ends = edges[0::2], edges[1::2]
    forward, inverse = _powers(len(data) + 1)
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum(_LOWERCASE[data] * inverse[: len(data)], out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * forward[ends - 1]
    text_ends = np.cumsum([len(e) + 1 for e in encoded], dtype=np.int64)  # where the next text starts
    counts = np.diff(np.searchsorted(starts, text_ends), prepend=0)
    text_starts = np.repeat(text_ends - [len(e) + 1 for e in encoded], counts)
    return hashes, counts, starts - text_starts, ends - text_starts
