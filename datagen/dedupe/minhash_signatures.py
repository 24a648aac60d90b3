"""MinHash signatures of many texts at once with numpy, and the LSH that pairs them.

Shingles are the sets `minhash_dedup.shingles` defines (word or character n-grams of
the text normalized as `exact_dedup.normalize_text` states; a text shorter than n is one
shingle), but no shingle string is ever built:

- every unit (word or character) is hashed once to 64 bits: a word by xxh3-64 of its
  UTF-8 bytes, a character by splitmix64 of its code point;
- a shingle of m <= n units at positions i..i+m-1 is `splitmix64(m*L + sum_j u[i+j]*W_j)`
  mod 2^64 (W_j fixed odd constants), computed for every window of a batch with n
  vectorized passes; its top 32 bits are the shingle's key x.

Signature slot k of a text is `min over its shingles x of h_k(x)`, with
`h_k(x) = (a_k*x + b_k) mod 2^64` for a random odd a_k and random b_k (seeded). The top
32 bits of h_k are Dietzfelbinger's multiply-add-shift hash, strongly universal on 32-bit
keys (Dietzfelbinger 1996, "Universal hashing and k-wise independent random variables via
integer multiplication"): the pairwise independence that `(a*x + b) mod p` gives for a
prime p, as datasketch uses, for one multiply and one add per shingle and slot instead
of a modulo. Ordering by the full 64 bits refines ordering by the top 32, and since a_k
is odd, h_k is a bijection: two slots are equal exactly when the same shingle is the
minimum, so the fraction of equal slots estimates Jaccard with standard error
sqrt(J(1-J)/num_perm), about 0.035 at J=0.8 and 128 slots. The slots of a block are
computed over all shingles of a batch at once and reduced per text with
`np.minimum.reduceat`.

Texts are processed in batches of `batch_size` so the working memory stays bounded, and
batches go to worker processes, one per core: the work is numpy and pure-Python
shingling, which a single process does on one core (the shingling holds the GIL).

LSH: a signature's first b*r slots are cut into b bands of r rows and each band hashed
to one 64-bit key; texts sharing any band key are candidates. A pair with Jaccard s
shares a band with probability 1 - (1 - s^r)^b. `lsh_bands` picks (b, r) as datasketch
does, minimizing w_fp * (area under that curve below the threshold) + w_fn * (area above
it, of 1 minus the curve). In a bucket every member is paired with its first (lowest
index) member, so a bucket of k texts costs k-1 pairs, not k(k-1)/2; members similar to
each other but not to the first are still joined through another band or through the
first. Candidates are verified by estimated Jaccard >= threshold and joined into
clusters by union-find.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import xxhash

if TYPE_CHECKING:
    from datagen.dedupe.minhash_dedup import MinhashDedupConfig

T = TypeVar("T")
U = TypeVar("U")

# 1 MB of uint64 per block of slots x shingles: a block stays in the L2 cache (1 MB a core here)
# between its multiply, its add and its reduction.
BLOCK_ELEMENTS = 1 << 17

_FIXED = np.random.default_rng(20261122)
# Weights of the units in a shingle, of its length, and of the rows in a band: fixed
# odd constants, part of the hash function (not of the seed).
_UNIT_WEIGHTS = _FIXED.integers(0, 2**63, 64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_LENGTH_WEIGHT = _FIXED.integers(0, 2**63, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_ROW_WEIGHTS = _FIXED.integers(0, 2**63, 1024, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer (Steele et al. 2014): every input bit flips about half the output bits."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def normalized_words(text: str) -> list[str]:
    """`normalize_text(text).split(" ")` without its regex, about 4x faster: `str.split()`
    splits on exactly the whitespace re's \\s matches (both use Py_UNICODE_ISSPACE), so
    joining these words with one space is `normalize_text(text)`. A blank text is one empty word."""
    return unicodedata.normalize("NFKC", text).casefold().split() or [""]


def shingle_keys(texts: Sequence[str], shingle: str, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit keys of every shingle of every text, concatenated, and the index where each
    text's run starts. A repeated shingle appears once per occurrence: the minimum does not mind."""
    if ngram > len(_UNIT_WEIGHTS):
        raise ValueError(f"ngram {ngram} is above the supported {len(_UNIT_WEIGHTS)}")
    words = [normalized_words(text) for text in texts]
    if shingle == "word":
        # One join and one split give every text's words as bytes ("" stays one empty word).
        flat = " ".join(" ".join(w) for w in words).encode().split(b" ")
        units = np.fromiter(map(xxhash.xxh3_64_intdigest, flat), np.uint64, len(flat))
        counts = np.array([len(w) for w in words], np.int64)
    else:
        normalized = [" ".join(w) for w in words]
        code_points = np.frombuffer("".join(normalized).encode("utf-32-le"), np.uint32)
        units = splitmix64(code_points)
        counts = np.array([len(text) for text in normalized], np.int64)
    per_text = np.maximum(1, counts - ngram + 1)
    run_starts = np.cumsum(per_text) - per_text
    unit_starts = np.cumsum(counts) - counts
    text_of = np.repeat(np.arange(len(counts)), per_text)
    first_unit = unit_starts[text_of] + np.arange(len(text_of)) - run_starts[text_of]
    length = np.minimum(counts, ngram)[text_of]
    # A zero sentinel: windows of texts shorter than n read past their units, masked off.
    units = np.append(units, np.uint64(0))
    total = length.astype(np.uint64) * _LENGTH_WEIGHT
    for j in range(ngram):
        index = np.minimum(first_unit + j, len(units) - 1)
        total += np.where(j < length, units[index] * _UNIT_WEIGHTS[j], np.uint64(0))
    return splitmix64(total) >> np.uint64(32), run_starts


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the num_perm hash functions h_k(x) = (a_k*x + b_k) mod 2^64, a_k odd."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 2**64, num_perm, dtype=np.uint64, endpoint=False)
    return a, b


def batch_signatures(texts: Sequence[str], config: MinhashDedupConfig) -> np.ndarray:
    """Signatures (len(texts), num_perm) uint64 of one batch, in this process."""
    result = np.empty((len(texts), config.num_perm), np.uint64)
    if not len(texts):
        return result
    keys, run_starts = shingle_keys(texts, config.shingle, config.ngram)
    a, b = permutations(config.num_perm, config.seed)
    block = max(1, min(config.num_perm, BLOCK_ELEMENTS // len(keys)))
    hashed = np.empty((block, len(keys)), np.uint64)
    for low in range(0, config.num_perm, block):
        high = min(config.num_perm, low + block)
        rows = hashed[: high - low]
        np.multiply(a[low:high, None], keys[None, :], out=rows)
        rows += b[low:high, None]
        result[:, low:high] = np.minimum.reduceat(rows, run_starts, axis=1).T
    return result


def default_processes() -> int:
    return len(os.sched_getaffinity(0))


def map_in_processes(
    function: Callable[[T], U], items: Iterable[T], processes: int | None = None
) -> Iterator[U]:
    """function(item) for every item, in order, over `processes` worker processes.

    At most 2 items per process are in flight, so a long stream of batches is never all
    in memory (`Pool.imap` and `Executor.map` read the whole input ahead). Workers are
    forked when the pool opens, before `items` is first read: a fork starts in
    milliseconds where a spawned worker re-imports numpy for ~0.5 s, and a caller's
    script needs no `if __name__ == "__main__"` guard. Forking a process whose polars
    thread pool holds a lock is only unsafe for a child that calls polars; the workers
    here run numpy, xxhash and json only. `function` and `items` must be picklable.
    """
    processes = processes or default_processes()
    if processes == 1:
        yield from map(function, items)
        return
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.apply_async(function, (item,)))
            if len(pending) >= 2 * processes:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


class _Shared:
    """What a forked signature worker inherits: the texts, the config and the shared output."""

    texts: Sequence[str]
    config: MinhashDedupConfig
    output: np.ndarray


def _adopt(texts: Sequence[str], config: MinhashDedupConfig, output: mmap.mmap) -> None:
    _Shared.texts, _Shared.config = texts, config
    _Shared.output = np.frombuffer(output, np.uint64).reshape(len(texts), config.num_perm)


def _fill(span: tuple[int, int]) -> None:
    start, stop = span
    _Shared.output[start:stop] = batch_signatures(_Shared.texts[start:stop], _Shared.config)


def signatures(
    texts: Sequence[str], config: MinhashDedupConfig, *, processes: int | None = None, batch_size: int = 2000
) -> np.ndarray:
    """MinHash signatures, shape (len(texts), config.num_perm), dtype uint64.

    Deterministic for (config.shingle, config.ngram, config.num_perm, config.seed):
    the same text gets the same signature in any batch, process or run. Batches of
    `batch_size` texts go to `processes` forked workers (default: one per core) that
    inherit the texts and write into one shared anonymous mapping, so neither texts nor
    signatures are pickled through a pipe. Measured on 2 cores, 100k paragraphs of ~45
    words: 2.4-2.7 s in one process, 1.3-1.7 s in two (two independent processes with no
    exchange at all: 1.5-1.6 s); pickling batches through `map_in_processes` gave 1.8-2.3 s.
    """
    processes = processes or default_processes()
    spans = [(start, min(len(texts), start + batch_size)) for start in range(0, len(texts), batch_size)]
    if len(spans) <= 1 or processes == 1:
        parts = [batch_signatures(texts[start:stop], config) for start, stop in spans]
        return np.concatenate(parts) if parts else np.empty((0, config.num_perm), np.uint64)
    output = mmap.mmap(-1, len(texts) * config.num_perm * 8)
    with multiprocessing.get_context("fork").Pool(processes, _adopt, (texts, config, output)) as pool:
        pool.map(_fill, spans, chunksize=1)
    return np.frombuffer(output, np.uint64).reshape(len(texts), config.num_perm)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of equal slots: an unbiased estimate of the Jaccard similarity of the two shingle sets."""
    return float(np.mean(sig_a == sig_b))


@lru_cache
def lsh_bands(threshold: float, num_perm: int, weights: tuple[float, float]) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimizing the weighted false-positive and
    false-negative areas of the candidate curve 1 - (1 - s^r)^b (datasketch's criterion)."""
    below = np.linspace(0.0, threshold, 1001)
    above = np.linspace(threshold, 1.0, 1001)
    best = (np.inf, 0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive = np.trapezoid(1 - (1 - below**rows) ** bands, below)
            false_negative = np.trapezoid((1 - above**rows) ** bands, above)
            error = weights[0] * false_positive + weights[1] * false_negative
            if error < best[0]:
                best = (error, bands, rows)
    return best[1], best[2]


def band_keys(sigs: np.ndarray, bands: int, rows: int, chunk: int = 8192) -> np.ndarray:
    """One uint64 key per band, shape (len(sigs), bands): equal bands give equal keys; unequal
    ones collide with probability about 2^-64. In chunks of rows, so temporaries stay small."""
    if bands * rows > sigs.shape[1]:
        raise ValueError(f"{bands} bands of {rows} rows need {bands * rows} slots, signatures have {sigs.shape[1]}")
    keys = np.empty((len(sigs), bands), np.uint64)
    for start in range(0, len(sigs), chunk):
        cut = sigs[start : start + chunk, : bands * rows].astype(np.uint64).reshape(-1, bands, rows)
        keys[start : start + chunk] = splitmix64((cut * _ROW_WEIGHTS[:rows]).sum(axis=2, dtype=np.uint64))
    return keys


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """Unique pairs (i, j), i < j, shape (m, 2) int64, of rows sharing a key in any column of
    `keys` (n, bands); each bucket pairs its members with its lowest index."""
    n = len(keys)
    found = []
    for column in keys.T:
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        opens = np.ones(n, bool)
        opens[1:] = ordered[1:] != ordered[:-1]
        first = order[np.maximum.accumulate(np.where(opens, np.arange(n), 0))]
        found.append(first[~opens] * n + order[~opens])
    codes = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
    return np.stack([codes // max(n, 1), codes % max(n, 1)], axis=1).astype(np.int64)


def pair_similarity(sigs: np.ndarray, pairs: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Estimated Jaccard of each pair of rows of `sigs`."""
    result = np.empty(len(pairs), np.float64)
    for start in range(0, len(pairs), chunk):
        i, j = pairs[start : start + chunk].T
        result[start : start + chunk] = (sigs[i] == sigs[j]).mean(axis=1)
    return result


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over the pairs: each row's label is the lowest index in its component."""
    parent: dict[int, int] = {}  # only rows in some pair: the rest are their own component

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]  # path halving keeps later finds short
            i = parent[i]
        return i

    for i, j in pairs.tolist():
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    labels = np.arange(n, dtype=np.int64)
    joined = list(parent)
    labels[joined] = [root(i) for i in joined]
    return labels
