"""The two record types every stage passes along: an Example and a PreferencePair.

Each row carries its own provenance so that a reviewer can ask any training row "where
did you come from?" and get the answer from the row itself: which generator (and its
version) made it, from which template and seed, which teacher endpoint, model and
sampling parameters answered it, which rows it was derived from, and in which run.

`id` is the sha256 of the row's *content* only (task, prompt, response / chosen,
rejected, and the earlier turns of a conversation), not of its provenance: the same
content produced twice gets the same id, which is what exact dedupe and contamination
checks want.

A record is a conversation: `prompt` is the latest user turn, the one to answer, and
`context` holds the turns before it (user, assistant, user, ..., assistant), empty for a
single-turn row. The context enters the id only when it is not empty, so every
single-turn row keeps the id it had before records had turns (runs, caches and locked
sets made then still match). Each earlier turn says who wrote it (`Turn.written_by`):
a teacher that answered it, a model that played the user, or nobody but the row's own
source. Consumers read a conversation through `chat()` / `Task.messages(context=...)`,
`user_turns()` and `conversation_text()`, never by joining fields themselves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

import polars as pl

from datagen.foundation.hashing import canonical_json, content_id


@dataclass(frozen=True)
class Teacher:
    """Which endpoint answered, and how. Never holds the API key, only its variable's name."""

    base_url: str
    model: str
    sampling: str  # canonical JSON of the sampling parameters sent with the request
    sample_index: int  # which of the n samples for one prompt this is


@dataclass(frozen=True)
class Turn:
    """One earlier turn of a conversation."""

    role: str  # "user" or "assistant"
    content: str
    # Who wrote it, when a model did: "<model> at <endpoint>" (`distill.usage_key`'s form),
    # e.g. the teacher that answered it or the model that played the user. None: the row's
    # own `source` (a generator, an imported file).
    written_by: str | None = None


def check_context(context: tuple[Turn, ...]) -> None:
    """The turns before a user prompt alternate user, assistant, ..., from a user turn to an
    assistant turn; the system turn is the task's, never the row's."""
    roles = [turn.role for turn in context]
    expected = ["user", "assistant"] * (len(roles) // 2)
    if roles != expected or len(roles) % 2:
        raise ValueError(f"a conversation's earlier turns must alternate user, assistant from a user turn to an "
                         f"assistant turn; got {', '.join(roles)}")


def _context_part(context: tuple[Turn, ...]) -> tuple[str, ...]:
    # Only what was said counts: who wrote a turn is provenance, like `source`.
    return (canonical_json([[turn.role, turn.content] for turn in context]),) if context else ()


def context_messages(context: tuple[Turn, ...]) -> list[dict[str, str]]:
    return [{"role": turn.role, "content": turn.content} for turn in context]


@dataclass(frozen=True)
class Example:
    """One prompt, optionally answered.

    `reference` is the known-correct answer (canonical JSON) when the generator knows it,
    as the template generators do; `response` is a teacher's answer text. Both answer
    `prompt`, the latest user turn, given the earlier turns in `context`.
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
    context: tuple[Turn, ...] = ()  # the turns before `prompt`; empty for a single-turn row
    id: str = field(default="")

    def __post_init__(self) -> None:
        check_context(self.context)
        object.__setattr__(self, "id", content_id(self.task, self.prompt, self.response, *_context_part(self.context)))

    def chat(self) -> list[dict[str, str]]:
        """Every turn without a system turn: the context, the prompt and the response, if any."""
        answer = [{"role": "assistant", "content": self.response}] if self.response is not None else []
        return context_messages(self.context) + [{"role": "user", "content": self.prompt}] + answer

    def user_turns(self) -> tuple[str, ...]:
        return user_turns(self.context, self.prompt)

    def conversation_text(self) -> str:
        """Every turn before the answer, as one text (the prompt alone for a single-turn row):
        what dedupe compares and what must fit a model's context."""
        return conversation_text(self.context, self.prompt)

    def assistant_turns(self) -> tuple[str, ...]:
        """Every answer a training row teaches: the context's and the response."""
        earlier = tuple(turn.content for turn in self.context if turn.role == "assistant")
        return earlier + ((self.response,) if self.response is not None else ())


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
    context: tuple[Turn, ...] = ()  # the shared history before `prompt`; empty for a single-turn pair
    id: str = field(default="")

    def __post_init__(self) -> None:
        check_context(self.context)
        object.__setattr__(
            self, "id", content_id(self.task, self.prompt, self.chosen, self.rejected, *_context_part(self.context))
        )

    def user_turns(self) -> tuple[str, ...]:
        return user_turns(self.context, self.prompt)


def user_turns(context: tuple[Turn, ...], prompt: str) -> tuple[str, ...]:
    return tuple(turn.content for turn in context if turn.role == "user") + (prompt,)


def conversation_text(context: tuple[Turn, ...], prompt: str) -> str:
    return "\n\n".join([turn.content for turn in context] + [prompt])


TEACHER_SCHEMA = pl.Struct(
    {"base_url": pl.String, "model": pl.String, "sampling": pl.String, "sample_index": pl.Int64}
)
CONTEXT_SCHEMA = pl.List(pl.Struct({"role": pl.String, "content": pl.String, "written_by": pl.String}))

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
        "context": CONTEXT_SCHEMA,
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
        "context": CONTEXT_SCHEMA,
    }
)


def _row(record: Example | PreferencePair) -> dict[str, Any]:
    row = dataclasses.asdict(record)
    row["parent_ids"] = list(record.parent_ids)
    row["context"] = [dataclasses.asdict(turn) for turn in record.context]
    return row


def examples_to_frame(examples: Iterable[Example]) -> pl.DataFrame:
    return pl.DataFrame([_row(e) for e in examples], schema=EXAMPLE_SCHEMA)


def pairs_to_frame(pairs: Iterable[PreferencePair]) -> pl.DataFrame:
    return pl.DataFrame([_row(p) for p in pairs], schema=PAIR_SCHEMA)


def _teacher(value: dict | None) -> Teacher | None:
    return None if value is None else Teacher(**value)


def _records_from_frame(frame, schema, record_type, teacher_fields):
    if "context" not in frame.columns:
        # A table written before records had turns: every row of it is single-turn.
        frame = frame.with_columns(context=pl.lit([], dtype=CONTEXT_SCHEMA))
    if frame.schema != schema:
        raise ValueError(f"not a {record_type.__name__} table: columns {frame.schema} != {schema}")
    records = []
    for row in frame.iter_rows(named=True):
        stored_id = row.pop("id")
        for name in teacher_fields:
            row[name] = _teacher(row[name])
        row["parent_ids"] = tuple(row["parent_ids"])
        row["context"] = tuple(Turn(**turn) for turn in row["context"])
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
