"""Near-duplicate removal with MinHash and LSH.

Each text becomes a set of shingles (word n-grams by default, or character n-grams, of
the text normalized as `exact_dedup.normalize_text` states), summarized by a MinHash
signature of `num_perm` slots (`minhash_signatures.py`: vectorized over a batch, both
cores). LSH splits a signature into `b` bands of `r` rows; two texts whose true Jaccard
similarity is `s` share at least one band, and so become candidates, with probability
`1 - (1 - s**r) ** b`. Like datasketch, we choose `(b, r)` for the threshold by
minimizing a weighted sum of the false-positive area (below the threshold) and
false-negative area (above it). Because every candidate is then checked against its
estimated Jaccard, a false positive costs only one comparison while a false negative
leaves a duplicate in the data, so we weight false negatives 0.9 to 0.1. For threshold
0.8 and 128 permutations that gives b=14, r=9: a pair at s=0.8 becomes a candidate with
probability 0.87, at s=0.85 with 0.97, at s=0.9 with 0.999, at s=0.5 with 0.03 (equal
weights would give b=9, r=13 and only 0.40 at s=0.8). A candidate counts as a duplicate
only if its estimated Jaccard (the fraction of equal signature slots, standard error
sqrt(s(1-s)/num_perm)) reaches the threshold, which removes LSH's false positives.

Verified pairs join texts into clusters (connected components). Each cluster keeps one
text, chosen by `keep`: `first` (earliest in the input), `longest` (most characters),
or `quality` (highest score, from the caller); ties go to the earliest. Every other
member is removed with `duplicate_of` = the kept text and its estimated Jaccard to it.
A cluster can chain (a~b, b~c with a, c further apart), so a removed text's similarity
to its kept text can be below the threshold; it is reported as estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from datagen.dedupe.minhash_signatures import (
    band_keys,
    candidate_pairs,
    connected_components,
    estimated_jaccard,
    lsh_bands,
    pair_similarity,
    signatures,
)
from datagen.foundation.hashing import normalize_text

R = TypeVar("R")

# (false positive, false negative) weights for the choice of bands and rows.
LSH_WEIGHTS = (0.1, 0.9)


class MinhashDedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(
        3, ge=1, le=64, description="3 word-grams suit short texts such as tickets; 5 suits documents"
    )
    num_perm: int = Field(128, ge=16, description="signature length; error of the Jaccard "
                          "estimate is about 1/sqrt(num_perm), ~0.09 at 128")
    threshold: float = Field(0.8, gt=0, lt=1, description="estimated Jaccard at or above "
                             "which two texts are near duplicates")
    keep: Literal["first", "longest", "quality"] = Field(
        "first", description="which member of a cluster stays: the earliest, the longest, or the "
        "highest quality score (ties: the earliest)"
    )
    seed: int = 1

    def bands(self) -> tuple[int, int]:
        """(bands, rows) of the LSH for this threshold and signature length."""
        return lsh_bands(self.threshold, self.num_perm, LSH_WEIGHTS)


def shingles(text: str, shingle: str, ngram: int) -> set[str]:
    """The shingle set as strings; `minhash_signatures` hashes exactly these sets without building them."""
    normalized = normalize_text(text)
    if shingle == "word":
        units = normalized.split(" ")
        joined = [" ".join(units[i : i + ngram]) for i in range(max(1, len(units) - ngram + 1))]
        return set(joined)
    return {normalized[i : i + ngram] for i in range(max(1, len(normalized) - ngram + 1))}


@dataclass(frozen=True)
class NearDuplicates:
    """Per text, in input order: the index of its cluster's kept text (itself when kept),
    the estimated Jaccard to it (1.0 when kept), and its cluster's size (1 when alone)."""

    representative: np.ndarray
    similarity: np.ndarray
    cluster_size: np.ndarray

    @property
    def removed(self) -> np.ndarray:
        return np.flatnonzero(self.representative != np.arange(len(self.representative)))


def cluster_near_duplicates(
    sigs: np.ndarray,
    config: MinhashDedupConfig,
    priority: np.ndarray | None = None,
    extra_pairs: np.ndarray | None = None,
) -> NearDuplicates:
    """Cluster texts by their signatures; keep the highest `priority` of each cluster
    (ties and `priority=None`: the earliest). `extra_pairs` (m, 2) are joined unverified:
    exact duplicates found by another key."""
    n = len(sigs)
    pairs = candidate_pairs(band_keys(sigs, *config.bands()))
    pairs = pairs[pair_similarity(sigs, pairs) >= config.threshold]
    if extra_pairs is not None and len(extra_pairs):
        pairs = np.concatenate([pairs, extra_pairs])
    labels = connected_components(n, pairs)
    priority = np.zeros(n) if priority is None else np.asarray(priority, np.float64)
    # Sorted by cluster, then priority high to low, then index: each cluster's first row is its keeper.
    order = np.lexsort((np.arange(n), -priority, labels))
    opens = np.ones(n, bool)
    opens[1:] = labels[order][1:] != labels[order][:-1]
    representative = np.empty(n, np.int64)
    representative[order] = order[np.maximum.accumulate(np.where(opens, np.arange(n), 0))]
    similarity = np.ones(n)
    removed = np.flatnonzero(representative != np.arange(n))
    similarity[removed] = pair_similarity(sigs, np.stack([removed, representative[removed]], axis=1))
    return NearDuplicates(representative, similarity, np.bincount(labels, minlength=n)[labels])


def keep_priority(
    records: Sequence[R], text_of: Callable[[R], str], config: MinhashDedupConfig,
    score_of: Callable[[R], float] | None,
) -> np.ndarray | None:
    if config.keep == "longest":
        return np.array([len(text_of(r)) for r in records], np.float64)
    if config.keep == "quality":
        if score_of is None:
            raise ValueError("keep='quality' needs score_of, the quality score of a record")
        return np.array([score_of(r) for r in records], np.float64)
    return None


class NearDuplicateIndex:
    """Texts seen so far, queried one new text at a time: self-generation checks each new
    input against everything kept. Same signatures and bands as the batch dedupe."""

    def __init__(self, config: MinhashDedupConfig):
        self.config = config
        self._bands, self._rows = config.bands()
        self._buckets: list[dict[int, list[str]]] = [{} for _ in range(self._bands)]
        self._signatures: dict[str, np.ndarray] = {}

    def _signature(self, text: str) -> tuple[np.ndarray, list[int]]:
        signature = signatures([text], self.config)
        return signature[0], band_keys(signature, self._bands, self._rows)[0].tolist()

    def closest(self, text: str) -> tuple[str, float] | None:
        """(key, estimated Jaccard) of the most similar indexed text at or above the threshold."""
        signature, keys = self._signature(text)
        candidates = {key for bucket, k in zip(self._buckets, keys) for key in bucket.get(k, ())}
        matches = [(estimated_jaccard(signature, self._signatures[key]), key) for key in candidates]
        matches = [(similarity, key) for similarity, key in matches if similarity >= self.config.threshold]
        if not matches:
            return None
        similarity, key = max(matches)
        return key, similarity

    def add(self, key: str, text: str) -> None:
        if key in self._signatures:
            return
        signature, keys = self._signature(text)
        for bucket, k in zip(self._buckets, keys):
            bucket.setdefault(k, []).append(key)
        self._signatures[key] = signature


def minhash_dedupe(
    records: list[R],
    text_of: Callable[[R], str],
    id_of: Callable[[R], str],
    config: MinhashDedupConfig,
    score_of: Callable[[R], float] | None = None,
) -> tuple[list[R], list[tuple[R, str, float]]]:
    """Return (kept, [(removed, duplicate_of_id, estimated_jaccard)]), both in input order.
    `score_of` is the quality score that `keep='quality'` keeps the highest of."""
    priority = keep_priority(records, text_of, config, score_of)
    found = cluster_near_duplicates(signatures([text_of(r) for r in records], config), config, priority)
    kept, removed = [], []
    for index, record in enumerate(records):
        keeper = int(found.representative[index])
        if keeper == index:
            kept.append(record)
        else:
            removed.append((record, id_of(records[keeper]), float(found.similarity[index])))
    return kept, removed
