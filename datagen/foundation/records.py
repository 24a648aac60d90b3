"""The two record types every stage passes along: an Example and a PreferencePair.

Each row carries its own provenance so that a reviewer can ask any training row "where
did you come from?" and get the answer from the row itself: which generator (and its
version) made it, from which template and seed, which teacher endpoint, model and
sampling parameters answered it, which rows it was derived from, and in which run.

`id` is the sha256 of the row's *content* only (task, prompt, response / chosen,
rejected), not of its provenance: the same content produced twice gets the same id,
which is what exact dedupe and contamination checks want.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import polars as pl

from datagen.foundation.hashing import content_id


@dataclass(frozen=True)
class Teacher:
    """Which endpoint answered, and how. Never holds the API key, only its variable's name."""

    base_url: str
    model: str
    sampling: str  # canonical JSON of the sampling parameters sent with the request
    sample_index: int  # which of the n samples for one prompt this is


@dataclass(frozen=True)
class Example:
    """One prompt, optionally answered.

    `reference` is the known-correct answer (canonical JSON) when the generator knows it,
    as the template generators do; `response` is a teacher's answer text.
    """

    task: str
    prompt: str
    source: str  # "<module>.<function>@<version>" of the generator or stage that made it
    run_id: str
    response: str | None = None
    reference: str | None = None
    template_id: str | None = None
    seed: int | None = None
    teacher: Teacher | None = None
    finish_reason: str | None = None
    parent_ids: tuple[str, ...] = ()
    id: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", content_id(self.task, self.prompt, self.response))


@dataclass(frozen=True)
class PreferencePair:
    """A prompt with a chosen and a rejected answer, and the evidence for which is which."""

    task: str
    prompt: str
    chosen: str
    rejected: str
    strategy: str  # how the pair was made, e.g. "verifier_ranked"
    evidence: str  # why chosen beats rejected, e.g. "rejected differs on: category"
    source: str
    run_id: str
    chosen_teacher: Teacher | None = None
    rejected_teacher: Teacher | None = None
    parent_ids: tuple[str, ...] = ()  # (chosen example id, rejected example id)
    axis: str | None = None  # what the two sides differ on, e.g. "one_wrong_field"
    margin: float | None = None  # how far apart: wrong fields, or the judge's score gap
    id: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "id", content_id(self.task, self.prompt, self.chosen, self.rejected)
        )


TEACHER_SCHEMA = pl.Struct(
    {"base_url": pl.String, "model": pl.String, "sampling": pl.String, "sample_index": pl.Int64}
)

EXAMPLE_SCHEMA = pl.Schema(
    {
        "id": pl.String,
        "task": pl.String,
        "prompt": pl.String,
        "response": pl.String,
        "reference": pl.String,
        "source": pl.String,
        "template_id": pl.String,
        "seed": pl.Int64,
        "teacher": TEACHER_SCHEMA,
        "finish_reason": pl.String,
        "parent_ids": pl.List(pl.String),
        "run_id": pl.String,
    }
)

PAIR_SCHEMA = pl.Schema(
    {
        "id": pl.String,
        "task": pl.String,
        "prompt": pl.String,
        "chosen": pl.String,
        "rejected": pl.String,
        "strategy": pl.String,
        "evidence": pl.String,
        "source": pl.String,
        "chosen_teacher": TEACHER_SCHEMA,
        "rejected_teacher": TEACHER_SCHEMA,
        "parent_ids": pl.List(pl.String),
        "run_id": pl.String,
        "axis": pl.String,
        "margin": pl.Float64,
    }
)


def _row(record: Example | PreferencePair) -> dict[str, Any]:
    row = dataclasses.asdict(record)
    row["parent_ids"] = list(record.parent_ids)
    return row


def examples_to_frame(examples: Iterable[Example]) -> pl.DataFrame:
    return pl.DataFrame([_row(e) for e in examples], schema=EXAMPLE_SCHEMA)


def pairs_to_frame(pairs: Iterable[PreferencePair]) -> pl.DataFrame:
    return pl.DataFrame([_row(p) for p in pairs], schema=PAIR_SCHEMA)


def _teacher(value: dict | None) -> Teacher | None:
    return None if value is None else Teacher(**value)


def _records_from_frame(frame, schema, record_type, teacher_fields):
    if frame.schema != schema:
        raise ValueError(f"not a {record_type.__name__} table: columns {frame.schema} != {schema}")
    records = []
    for row in frame.iter_rows(named=True):
        stored_id = row.pop("id")
        for name in teacher_fields:
            row[name] = _teacher(row[name])
        row["parent_ids"] = tuple(row["parent_ids"])
        record = record_type(**row)
        # A row edited after it was written no longer hashes to its id: refuse it.
        if record.id != stored_id:
            raise ValueError(f"{record_type.__name__} {stored_id} does not hash to its id (got {record.id})")
        records.append(record)
    return records


def examples_from_frame(frame: pl.DataFrame) -> list[Example]:
    return _records_from_frame(frame, EXAMPLE_SCHEMA, Example, ("teacher",))


def pairs_from_frame(frame: pl.DataFrame) -> list[PreferencePair]:
    return _records_from_frame(frame, PAIR_SCHEMA, PreferencePair, ("chosen_teacher", "rejected_teacher"))
