"""Exact dedupe on normalized text.

Normalization: Unicode NFKC (folds full-width and compatibility forms), case folding,
and every run of whitespace collapsed to one space, trimmed. Two texts that differ only
in those ways are the same text. Punctuation and typos are kept: those are near
duplicates, MinHash's job.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from datagen.foundation.hashing import normalized_hash

R = TypeVar("R")

def exact_dedupe(
    records: list[R], text_of: Callable[[R], str], id_of: Callable[[R], str]
) -> tuple[list[R], list[tuple[R, str]]]:
    """Keep the first record of each normalized text; return (kept, [(removed, duplicate_of)])."""
    first_seen: dict[str, str] = {}
    kept, removed = [], []
    for record in records:
        key = normalized_hash(text_of(record))
        if key in first_seen:
            removed.append((record, first_seen[key]))
        else:
            first_seen[key] = id_of(record)
            kept.append(record)
    return kept, removed
