"""Import existing data: a user's own prompts, SFT rows or preference rows.

Input: one `.jsonl` file (one JSON object per line) or `.parquet` file in a layout of
`datagen/generation/import_layouts.py` (TRL, Alpaca, ShareGPT or plain). Output: Examples (prompts,
or prompts with a `response`) or PreferencePairs, ready for the same filters and dedupe
as generated data, and the rows that did not fit, each with its reason. A multi-turn chat
(TRL `messages`, ShareGPT `conversations`, a TRL preference row's `prompt` messages) is
one record: its last user turn the prompt, the turns before it the `context`.

Every imported row says where it came from: `source = "import:<file name>@<sha256 of the
file, first 12 hex>"`, so a row leads back to the exact file it was read from and an
edited file gives new sources; `task` and `run_id` are the build's, `template_id`,
`seed`, `teacher` and `finish_reason` are None (nothing here was generated). Pairs get `strategy="import"` and `evidence="imported from <file name>"`:
the file's author, not crucible, decided which answer is better.

`kind="prompts"` reads only the prompt (and the reference): answers a row may carry are
not read, since the teacher will answer. A `reference_field` names the field that holds
a known-correct answer, so imported prompts are verified like generated ones.

Nothing is lost: a broken line (invalid JSON, not an object, wrong types, missing or
empty fields, turns out of order) is returned as an `ImportReject` with its line number,
its text as written and the reason, and the rest of the file is imported. A blank line
holds no data and is skipped. A file that cannot be read at all (missing, empty, not
parquet, of no known layout) raises `RowFileError` naming the file; `check_importable`
finds these before any work, reading a file only up to its first JSON object.

JSONL is read line by line; parquet is read whole with polars (a 100k-row file of short
chats is tens of megabytes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.row_files import RowFileError, read_rows, where
from datagen.foundation.task import Task
from datagen.generation.import_layouts import (
    Kind,
    Layout,
    RowRejected,
    SystemTurn,
    UnknownLayout,
    check_not_empty,
    check_system_turn,
    detect_layout,
    read_conversation,
    read_preference,
    read_reference,
)


class ImportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="a .jsonl (or .ndjson) or .parquet file")
    kind: Kind = Field(
        description="prompts: the teacher answers them; sft: prompt and answer rows; "
        "preference: prompt, chosen and rejected rows"
    )
    layout: Literal["auto"] | Layout = Field(
        "auto", description="auto: chosen from the keys of the first row that is a JSON object; "
        "the result says which"
    )
    reference_field: str | None = Field(
        None, description="a field holding the known-correct answer (a JSON object, or JSON "
        "text of one), checked against the task's answer schema; every row must have it. "
        "Unset, the plain layout still reads an optional `reference`"
    )
    system_turn: SystemTurn = Field(
        "match_task", description="match_task: a row's system turn must be the task's system "
        "prompt, which every exported row is trained under; drop: accept any and train "
        "under the task's"
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> ImportConfig:
        if self.kind == "preference" and self.layout not in ("auto", "trl"):
            raise ValueError(f"preference rows are read in the trl layout only, not {self.layout}")
        if self.kind == "preference" and self.reference_field is not None:
            raise ValueError("reference_field is for prompts and sft rows; a pair's answers are already ranked")
        return self


@dataclass(frozen=True)
class ImportReject:
    line: int  # JSONL: 1-based line number; parquet: 0-based row index
    raw: str  # the line as written, or the parquet row as JSON
    reason: str  # `kind: detail`, e.g. `missing_field: prompt`


@dataclass
class ImportResult:
    layout: Layout  # the one given, or the one auto-detection chose
    source: str
    examples: list[Example] = field(default_factory=list)  # kinds prompts and sft
    pairs: list[PreferencePair] = field(default_factory=list)  # kind preference
    rejects: list[ImportReject] = field(default_factory=list)

    def prompts_and_answers(self) -> list[Example]:
        """Each imported row as a prompt (which joins the generated ones before dedupe)
        and, for an SFT row, its answer too, whose parent is that prompt (it joins the
        teacher answers at the filters, so the teacher is not asked again)."""
        records = []
        for row in self.examples:
            prompt = Example(task=row.task, prompt=row.prompt, source=row.source, run_id=row.run_id,
                             reference=row.reference, context=row.context)
            records.append(prompt)
            if row.response is not None:
                records.append(dataclasses.replace(row, parent_ids=(prompt.id,)))
        return records


SOURCE_PREFIX = "import:"  # how every imported row's `source` begins


def import_source(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise RowFileError(f"{path}: cannot read: {error.strerror}") from None
    return f"{SOURCE_PREFIX}{path.name}@{digest[:12]}"


def _example(row: dict, layout: Layout, config: ImportConfig, task: Task, source: str, run_id: str) -> Example:
    needs_answer = config.kind == "sft"
    system, context, prompt, response = read_conversation(row, layout, task.system_prompts, needs_answer=needs_answer)
    check_system_turn(system, task.system_prompts, config.system_turn)
    check_not_empty(prompt=prompt)
    if response is not None:
        check_not_empty(response=response)
    reference = None
    if config.reference_field is not None:
        reference = read_reference(row, config.reference_field, task.answer_schema)
    elif layout == "plain" and row.get("reference") is not None:
        reference = read_reference(row, "reference", task.answer_schema)
    return Example(
        task=task.name, prompt=prompt, response=response, reference=reference, source=source, run_id=run_id,
        context=context,
    )


def _pair(row: dict, config: ImportConfig, task: Task, source: str, run_id: str) -> PreferencePair:
    system, context, prompt, chosen, rejected = read_preference(row)
    check_system_turn(system, task.system_prompts, config.system_turn)
    check_not_empty(prompt=prompt, chosen=chosen, rejected=rejected)
    if chosen == rejected:
        raise RowRejected("same_answers: chosen and rejected are equal; the pair teaches nothing")
    return PreferencePair(
        task=task.name, prompt=prompt, chosen=chosen, rejected=rejected, strategy="import",
        evidence=f"imported from {config.path.name}", source=source, run_id=run_id, context=context,
    )


def _detect_layout(path: Path, number: int, row: dict, kind: Kind) -> Layout:
    try:
        return detect_layout(row, kind)
    except UnknownLayout as error:
        raise RowFileError(f"{path}: {where(path)} {number}: {error}") from None


def _no_layout(path: Path, first_problem: tuple[int, str] | None) -> RowFileError:
    if first_problem is None:
        return RowFileError(f"{path}: the file is empty: no row to import")
    number, reason = first_problem
    return RowFileError(f"{path}: no row is a JSON object to detect the layout from; "
                           f"{where(path)} {number}: {reason}")


def check_importable(config: ImportConfig) -> None:
    """Raise `RowFileError` if `import_file` could not import `config.path` at all."""
    path = config.path
    if not path.is_file():
        raise RowFileError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    first_problem = None
    try:
        for number, _, row, reason in read_rows(path):
            if row is not None:
                if config.layout == "auto":
                    _detect_layout(path, number, row, config.kind)
                return
            first_problem = first_problem or (number, reason)
    except OSError as error:
        raise RowFileError(f"{path}: cannot read: {error.strerror}") from None
    raise _no_layout(path, first_problem)


def import_file(config: ImportConfig, task: Task, run_id: str) -> ImportResult:
    """The rows of `config.path` as `task`'s Examples or PreferencePairs, and the rejects."""
    path = config.path
    source = import_source(path)
    layout: Layout | None = None if config.layout == "auto" else config.layout
    examples, pairs, rejects = [], [], []
    for number, raw, row, reason in read_rows(path):
        try:
            if row is None:
                raise RowRejected(reason)
            if layout is None:
                layout = _detect_layout(path, number, row, config.kind)
            if config.kind == "preference":
                pairs.append(_pair(row, config, task, source, run_id))
            else:
                examples.append(_example(row, layout, config, task, source, run_id))
        except RowRejected as rejected:
            text = raw if raw is not None else json.dumps(row, ensure_ascii=False, default=str)
            rejects.append(ImportReject(line=number, raw=text, reason=str(rejected)))
    if layout is None:
        raise _no_layout(path, (rejects[0].line, rejects[0].reason) if rejects else None)
    return ImportResult(layout=layout, source=source, examples=examples, pairs=pairs, rejects=rejects)
