"""Contamination audit: is any gold row, or a near copy of it, in a training set?

The gold sets measure the trained model; a gold row that is also a training row turns the
measurement into a memory test. Four methods, each for a kind of leak the others miss:

- `exact`: the normalized prompts are equal (`datagen/dedupe/exact_dedup.py`: NFKC, case, spaces),
  the test `refuse_gold` applies before the judge sees a row.
- `ngram`: the longest run of words a gold text shares with a training row, on the gold
  prompt and on the gold answer separately (`evals/contamination/ngram_overlap.py`). A run of 13 words
  flags the row, as in GPT-3's decontamination (Brown et al. 2020, appendix C) and
  lm-eval's `Janitor`; runs of 8 to 12 words are reported, 8 being GPT-3's smallest n.
  GPT-3 also counts an example shorter than n as dirty when the whole of it is found: a
  gold prompt of 8 to 12 words found whole is flagged. Not so a short answer: answers are
  often a label or a small JSON object that many rows share by design.
- `minhash`: the estimated Jaccard similarity of the prompts' word 3-gram sets, with the
  signatures and LSH bands of `datagen/dedupe/minhash_dedup.py`: a copy with a few words changed,
  which breaks every 13-gram of a short prompt.
- `embedding`: cosine similarity of the prompts' sentence embeddings
  (`evals/contamination/prompt_embeddings.py`): a paraphrase shares few n-grams, and Yang et al. 2023
  ("Rethinking benchmark and contamination for language models with rephrased samples",
  arXiv:2311.04850) show that training on paraphrased test rows lifts scores as much as
  training on the rows themselves.

A conversation is audited turn by turn as well as whole: `exact`, `minhash` and `embedding`
compare each of its user turns with a gold prompt (the closest turn counts), since a gold
prompt hidden in the second turn of a chat resembles the chat's joined text far less than
it resembles itself; `ngram` scans the joined turns, where a shared run is found wherever
it stands.

Input: gold rows and training rows (`evals/contamination/audit_inputs.py`'s `AuditRow`: id, where,
prompt, answer, and a conversation's user turns); training rows are streamed in chunks, so
a set larger than memory can be
audited. Output: per gold row its `top_k` closest training rows with every score, the
shared spans and the methods that flagged it; a `risk` to sort by, the largest of each
score divided by its threshold, so a risk of 1 or more means flagged.
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.dedupe.minhash_dedup import MinhashDedupConfig
from datagen.dedupe.minhash_signatures import band_keys, estimated_jaccard, signatures
from datagen.foundation.hashing import normalized_hash
from evals.contamination.audit_inputs import AuditRow
from evals.contamination.audit_words import words
from evals.contamination.ngram_overlap import GoldNgramIndex, SharedSpan

Method = Literal["exact", "ngram", "minhash", "embedding"]
Embed = Callable[[Sequence[str]], np.ndarray]


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    methods: list[Method] = Field(
        ["exact", "ngram", "minhash", "embedding"],
        description="embedding is the slow one (a sentence model on CPU, about 150 short texts/s); "
        "leave it out for a fast verbatim-only audit",
    )
    flag_ngram: int = Field(13, ge=1, description="a shared run of this many words flags a row "
                            "(GPT-3 appendix C; lm-eval's Janitor uses 13-grams)")
    report_ngram: int = Field(8, ge=1, description="shorter shared runs are not looked for; "
                              "8 is the smallest n GPT-3 used")
    template_rows: int = Field(5, ge=1, description="an n-gram in more gold rows than this is "
                               "template text and seeds no match (evals/contamination/ngram_overlap.py)")
    minhash: MinhashDedupConfig = Field(
        default_factory=lambda: MinhashDedupConfig(threshold=0.5),
        description="word 3-gram MinHash of the prompts. Dedupe's 0.8 keeps near copies out of "
        "one training set; a gold row deserves a look earlier. Measured on the tickets of "
        "tests/test_contamination_audit.py: copies with two or three words changed score "
        "0.51-0.76, paraphrases at most 0.22, other tickets on the same topics at most 0.03",
    )
    cosine_threshold: float = Field(
        0.85, gt=0, le=1,
        description="cosine of all-MiniLM-L6-v2 prompt embeddings that flags a paraphrase. Measured "
        "on the tickets of tests/test_contamination_audit.py: light paraphrases of the six gold "
        "tickets score 0.897-0.965, twelve other tickets on the same topics at most 0.533. "
        "Among support_triage's generated tickets (100 vs 900), a gold ticket's closest score "
        "is 0.83 at the median and 0.85 or more for 48%: template siblings that repeat its "
        "core sentence with another greeting or aside, which a model would learn it from",
    )
    top_k: int = Field(5, ge=1, description="closest training rows listed per gold row")
    chunk_rows: int = Field(1024, ge=1, description="training rows compared at once, at most")
    chunk_bytes: int = Field(4_000_000, ge=1, description="training text compared at once, at most (UTF-8 "
                             "bytes; a row longer than this is a chunk of its own). The n-gram scan holds "
                             "about 40 bytes of numpy arrays per byte of text")

    @model_validator(mode="after")
    def _ngram_sizes(self) -> AuditConfig:
        if self.report_ngram > self.flag_ngram:
            raise ValueError(f"report_ngram {self.report_ngram} is above flag_ngram {self.flag_ngram}")
        return self


@dataclass(frozen=True)
class Match:
    """One training row close to a gold row. A score is None when its method is off."""

    train: AuditRow
    exact: bool | None
    prompt_span: int | None  # longest run of the gold prompt's words in the training row
    answer_span: int | None  # the same for the gold answer
    jaccard: float | None
    cosine: float | None
    spans: tuple[SharedSpan, ...]  # every shared run of report_ngram words or more, longest first
    flagged_by: tuple[Method, ...]
    risk: float


@dataclass(frozen=True)
class GoldAudit:
    gold: AuditRow
    matches: tuple[Match, ...]  # highest risk first

    @property
    def flagged_by(self) -> tuple[Method, ...]:
        found = {method for match in self.matches for method in match.flagged_by}
        return tuple(method for method in ("exact", "ngram", "minhash", "embedding") if method in found)

    @property
    def risk(self) -> float:
        return self.matches[0].risk if self.matches else 0.0


@dataclass
class AuditResult:
    config: AuditConfig
    gold: list[GoldAudit]
    train_rows: int
    train_bytes: int  # UTF-8 bytes of the training prompts and answers scanned
    seconds: float
    # Every flagged training row (its `where`) and the gold ids it matches, top_k or not:
    # the list to remove.
    flagged_train: dict[str, list[str]] = field(default_factory=dict)

    @property
    def flagged(self) -> list[GoldAudit]:
        return [row for row in self.gold if row.flagged_by]


def _prompt_span_flags(span: int, gold_prompt_words: int, config: AuditConfig) -> bool:
    whole = span == gold_prompt_words and span >= config.report_ngram
    return span >= config.flag_ngram or whole


class _Gold:
    """What the audit precomputes once of the gold set."""

    def __init__(self, rows: list[AuditRow], config: AuditConfig, embed: Embed | None):
        self.rows = rows
        self.exact: dict[str, list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            self.exact[normalized_hash(row.prompt)].append(index)
        if "ngram" in config.methods:
            self.prompt_words = [len(words(row.prompt)) for row in rows]
            self.ngrams = GoldNgramIndex([(r.prompt, r.answer) for r in rows], config.report_ngram,
                                         config.template_rows)
        if "minhash" in config.methods:
            # One process: chunks are small, and a worker pool per chunk would cost its start-up each time.
            self.signatures = signatures([row.prompt for row in rows], config.minhash, processes=1)
            self.bands = config.minhash.bands()
            keys = band_keys(self.signatures, *self.bands)
            self.band_order = np.argsort(keys, axis=0, kind="stable")
            self.band_keys = np.take_along_axis(keys, self.band_order, axis=0)
        if "embedding" in config.methods:
            self.embeddings = embed([row.prompt for row in rows])

    def lsh_candidates(self, chunk_signatures: np.ndarray) -> Iterable[tuple[int, int]]:
        """(chunk row, gold row) pairs that share a band: the LSH of `datagen/dedupe/minhash_dedup.py`."""
        keys = band_keys(chunk_signatures, *self.bands)
        for band in range(keys.shape[1]):
            column = self.band_keys[:, band]
            first = np.searchsorted(column, keys[:, band])
            last = np.searchsorted(column, keys[:, band], side="right")
            for t in np.flatnonzero(last > first).tolist():
                yield from ((t, g) for g in self.band_order[first[t] : last[t], band].tolist())


class _Turns:
    """A chunk's prompt texts, one per user turn, flat: row t's are `texts[starts[t]:starts[t + 1]]`."""

    def __init__(self, chunk: list[AuditRow]):
        self.texts = [text for row in chunk for text in row.prompt_texts]
        self.row_of = np.repeat(np.arange(len(chunk)), [len(row.prompt_texts) for row in chunk])
        self.starts = np.concatenate(([0], np.cumsum([len(row.prompt_texts) for row in chunk])))

    def of(self, t: int) -> range:
        return range(self.starts[t], self.starts[t + 1])


def _candidates(gold: _Gold, chunk: list[AuditRow], config: AuditConfig, embed: Embed | None):
    """(pairs (chunk row, gold row) worth scoring, their spans, the turns' signatures, the
    rows' similarities: each the closest of its turns')."""
    pairs: set[tuple[int, int]] = set()
    turns = _Turns(chunk)
    if "exact" in config.methods:
        for t, row in enumerate(chunk):
            for text in row.prompt_texts:
                pairs.update((t, g) for g in gold.exact.get(normalized_hash(text), ()))
    spans = {}
    if "ngram" in config.methods:
        spans = gold.ngrams.shared_spans([(row.prompt, row.answer) for row in chunk])
        pairs.update(spans)
    turn_signatures = similarities = None
    if "minhash" in config.methods:
        turn_signatures = signatures(turns.texts, config.minhash, processes=1)
        pairs.update((int(turns.row_of[i]), g) for i, g in gold.lsh_candidates(turn_signatures))
    if "embedding" in config.methods:
        similarities = np.maximum.reduceat(embed(turns.texts) @ gold.embeddings.T, turns.starts[:-1], axis=0)
        k = min(config.top_k, len(chunk))
        closest = np.argpartition(-similarities, k - 1, axis=0)[:k]
        pairs.update(zip(closest.ravel().tolist(), np.tile(np.arange(len(gold.rows)), k).tolist()))
    return sorted(pairs), spans, (turns, turn_signatures), similarities


def _match(gold: _Gold, t: int, g: int, row: AuditRow, spans, turn_signatures, similarities, config) -> Match:
    methods = config.methods
    flags: list[Method] = []
    ratios = [0.0]
    exact = None
    if "exact" in methods:
        exact = any(g in gold.exact.get(normalized_hash(text), ()) for text in row.prompt_texts)
        if exact:
            flags.append("exact")
            ratios.append(1.0)
    pair_spans = tuple(spans.get((t, g), ()))
    prompt_span = answer_span = None
    if "ngram" in methods:
        prompt_span = max((s.words for s in pair_spans if s.gold_field == "prompt"), default=0)
        answer_span = max((s.words for s in pair_spans if s.gold_field == "answer"), default=0)
        ratios.append(max(prompt_span, answer_span) / config.flag_ngram)
        if _prompt_span_flags(prompt_span, gold.prompt_words[g], config) or answer_span >= config.flag_ngram:
            flags.append("ngram")
            ratios.append(1.0)
    jaccard = cosine = None
    if "minhash" in methods:
        turns, chunk_signatures = turn_signatures
        jaccard = max(estimated_jaccard(chunk_signatures[i], gold.signatures[g]) for i in turns.of(t))
        ratios.append(jaccard / config.minhash.threshold)
        if jaccard >= config.minhash.threshold:
            flags.append("minhash")
    if "embedding" in methods:
        cosine = float(similarities[t, g])
        ratios.append(cosine / config.cosine_threshold)
        if cosine >= config.cosine_threshold:
            flags.append("embedding")
    return Match(row, exact, prompt_span, answer_span, jaccard, cosine, pair_spans, tuple(flags), max(ratios))


def _chunks(rows: Iterable[AuditRow], most_rows: int, most_bytes: int) -> Iterator[tuple[list[AuditRow], int]]:
    """The rows in lists of at most `most_rows` rows and `most_bytes` bytes, with their size."""
    chunk, size = [], 0
    for row in rows:
        row_bytes = len(row.prompt.encode()) + len(row.answer.encode())
        if chunk and (len(chunk) == most_rows or size + row_bytes > most_bytes):
            yield chunk, size
            chunk, size = [], 0
        chunk.append(row)
        size += row_bytes
    if chunk:
        yield chunk, size


def audit(
    gold_rows: Sequence[AuditRow], train_rows: Iterable[AuditRow], config: AuditConfig, embed: Embed | None = None
) -> AuditResult:
    """Compare every training row with every gold row by the configured methods.

    `embed` maps texts to unit-length vectors; None uses all-MiniLM-L6-v2 (loaded once per
    process). Tests pass a small fake to get exact numbers."""
    started = time.perf_counter()
    if not gold_rows:
        raise ValueError("no gold rows: an audit against nothing proves nothing")
    if "embedding" in config.methods and embed is None:
        from evals.contamination.prompt_embeddings import embed_texts as embed
    gold = _Gold(list(gold_rows), config, embed)
    best: list[list[tuple[float, int, Match]]] = [[] for _ in gold.rows]  # min-heaps of (risk, -row, match)
    flagged_train: dict[str, list[str]] = {}
    seen = scanned_bytes = 0
    for chunk, size in _chunks(train_rows, config.chunk_rows, config.chunk_bytes):
        scanned_bytes += size
        pairs, spans, turn_signatures, similarities = _candidates(gold, chunk, config, embed)
        for t, g in pairs:
            match = _match(gold, t, g, chunk[t], spans, turn_signatures, similarities, config)
            if match.flagged_by:
                flagged_train.setdefault(chunk[t].where, []).append(gold.rows[g].id)
            entry = (match.risk, -(seen + t), match)
            if len(best[g]) < config.top_k:
                heapq.heappush(best[g], entry)
            elif entry[:2] > best[g][0][:2]:
                heapq.heapreplace(best[g], entry)
        seen += len(chunk)
    audits = [
        GoldAudit(row, tuple(match for *_, match in sorted(heap, key=lambda e: e[:2], reverse=True)))
        for row, heap in zip(gold.rows, best)
    ]
    return AuditResult(config, audits, seen, scanned_bytes, time.perf_counter() - started, flagged_train)


def merge_results(results: Sequence[AuditResult], config: AuditConfig) -> AuditResult:
    """One result from audits of disjoint shards of the training rows against the same
    gold rows (`flows/audit_flow.py`): each gold row keeps its `top_k` highest-risk
    matches over all shards, and every flagged training row is kept. `seconds` is the
    sum over shards, i.e. compute time, not wall time."""
    if not results:
        raise ValueError("no shard results to merge")
    audits = []
    for rows in zip(*(r.gold for r in results), strict=True):
        matches = sorted((m for row in rows for m in row.matches), key=lambda m: m.risk, reverse=True)
        audits.append(GoldAudit(rows[0].gold, tuple(matches[: config.top_k])))
    flagged: dict[str, list[str]] = {}
    for result in results:
        for where, gold_ids in result.flagged_train.items():
            flagged.setdefault(where, []).extend(gold_ids)
    return AuditResult(config, audits, sum(r.train_rows for r in results), sum(r.train_bytes for r in results),
                       sum(r.seconds for r in results), flagged)
