"""Dedupe the build's prompts before any teacher is asked: exact, then near duplicates.

Input: prompts as Examples, in priority order (generated, then imported, then
self-generated: the first of a cluster stays). A conversation is compared whole, every
turn before its answer (`Example.conversation_text`): the same last message after
another history is another prompt. MinHash compares a conversation only with those of as
many turns: one that goes on from another (a simulated user's follow-up,
`teacher/simulate_users.py`) shares almost all its text with it (Jaccard 0.83 and 0.91 in
the conversation build test), yet its last turn asks something new. Output: the kept prompts, and each removed
one with the id it duplicates, the similarity (1.0 for exact) and the method
(`exact` or `minhash`), as the `unique_prompts/removed` table shows them.
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict

from datagen.dedupe.exact_dedup import exact_dedupe
from datagen.dedupe.minhash_dedup import MinhashDedupConfig, minhash_dedupe
from datagen.foundation.records import Example, examples_to_frame

Removed = tuple[Example, str, float, str]  # (row, duplicate_of, similarity, method)


class PromptDedupeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exact: bool = True
    minhash: MinhashDedupConfig | None = MinhashDedupConfig()


def dedupe_prompts(prompts: list[Example], config: PromptDedupeConfig) -> tuple[list[Example], list[Removed]]:
    kept, removed = prompts, []
    if config.exact:
        kept, exact = exact_dedupe(kept, Example.conversation_text, lambda e: e.id)
        removed += [(e, dup, 1.0, "exact") for e, dup in exact]
    if config.minhash is not None:
        by_turns: dict[int, list[Example]] = {}
        for example in kept:
            by_turns.setdefault(len(example.context), []).append(example)
        near = [found for group in by_turns.values()
                for found in minhash_dedupe(group, Example.conversation_text, lambda e: e.id, config.minhash)[1]]
        gone = {id(e) for e, _, _ in near}  # by identity: with exact dedupe off, two rows may share an id
        kept = [e for e in kept if id(e) not in gone]
        removed += [(e, dup, sim, "minhash") for e, dup, sim in near]
    return kept, removed


def removed_frame(removed: list[Removed]) -> pl.DataFrame:
    return examples_to_frame([r[0] for r in removed]).with_columns(
        duplicate_of=pl.Series([r[1] for r in removed], dtype=pl.String),
        similarity=pl.Series([r[2] for r in removed], dtype=pl.Float64),
        method=pl.Series([r[3] for r in removed], dtype=pl.String),
    )
