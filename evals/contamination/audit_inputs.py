"""The two sides of a contamination audit, read from disk: gold rows and training rows.

Gold: a locked, signed gold set version, `gold/sets/<set>/v<N>/` (or its
`records.jsonl`), opened and verified by `gold/gold_root.py` with the rest of its set.
An unlocked folder, one whose manifest was deleted, or one that does not verify stops the
audit: an audit against rows nobody approved proves nothing about the approved ones.

Training: any `.jsonl` or `.parquet` file in a layout `datagen/generation/imports.py` reads (TRL
messages or preference rows, Alpaca, ShareGPT, plain `prompt`/`response`), or a crucible
export folder (`datagen/exports/formats.py`), of which `trl_sft/train.jsonl` and
`trl_dpo/train.jsonl` are read: the other formats there hold the same rows again.

A training row becomes one prompt text and one answer text, because that is all the
audit compares. Unlike the importer, which builds single-turn Examples, the audit keeps
every turn: a multi-turn chat is still trained on, so its user turns are joined into the
prompt and its assistant turns into the answer. A preference row's answer is its chosen
and its rejected answer, joined: a gold answer shown as either is in the training data.
System turns are left out; they are the task's instructions, the same on every row. An
Alpaca row's prompt is its instruction and input joined, the way Alpaca's template shows
them. A row that cannot be read is returned with its reason, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datagen.foundation.export_layout import TRAINING_FILES
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.row_files import RowFileError, json_type, read_rows
from datagen.generation.import_layouts import RowRejected, UnknownLayout, detect_layout, read_turns
from datagen.generation.imports import ImportReject
from gold.gold_root import GoldSetError, LockedGoldSet, open_version
from gold.gold_sets import RECORDS

_CHATS = {  # layout: (field, role key, content key, role names as system/user/assistant)
    "trl": ("messages", "role", "content", {"system": "system", "user": "user", "assistant": "assistant"}),
    "sharegpt": ("conversations", "from", "value", {"system": "system", "human": "user", "gpt": "assistant"}),
}
_PAIR_KEYS = ("prompt", "chosen", "rejected")


class AuditInputError(ValueError):
    """A gold or training file that cannot be audited at all; the message names the file."""


@dataclass(frozen=True)
class AuditRow:
    """One row to compare: its id, where it was read (`file:line`), its prompt and answer."""

    id: str
    where: str
    prompt: str
    answer: str  # "" when the row has none


def _gold_answer(row: dict) -> str:
    value = row["reference"]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def read_gold(path: Path) -> tuple[LockedGoldSet, list[AuditRow]]:
    """A locked gold version (its folder or `records.jsonl`), verified and signed, and its rows."""
    try:
        locked = open_version(path)
    except GoldSetError as error:
        raise AuditInputError(str(error)) from None
    return locked, locked_gold_rows(locked)


def locked_gold_rows(locked: LockedGoldSet) -> list[AuditRow]:
    records = locked.path / RECORDS
    return [AuditRow(row["id"], f"{records}:{number}", row["prompt"], _gold_answer(row))
            for number, row in enumerate(locked.rows, 1)]


def train_files(path: Path) -> list[Path]:
    """The files of a training set: the file itself, or the SFT and DPO files of an export folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = [path / name for name in TRAINING_FILES if (path / name).is_file()]
        if found:
            return found
        raise AuditInputError(f"{path}: not a crucible export folder (no {' or '.join(TRAINING_FILES)}); "
                              "pass a .jsonl or .parquet file")
    raise AuditInputError(f"{path}: no such file or folder")


def _chat_texts(row: dict, layout: str) -> tuple[str, str]:
    where, role_key, content_key, roles = _CHATS[layout]
    turns = read_turns(row.get(where), where, role_key, content_key, roles)
    prompt = "\n\n".join(text for role, text in turns if role == "user")
    if not prompt.strip():
        raise RowRejected(f"missing_turn: {where} has no user turn")
    return prompt, "\n\n".join(text for role, text in turns if role == "assistant")


def _side(row: dict, key: str, role: str) -> str:
    """A preference field: a string, or a TRL message list of which the `role` turns count."""
    value = row.get(key)
    if isinstance(value, str):
        return value
    turns = read_turns(value, key, "role", "content", _CHATS["trl"][3])
    return "\n\n".join(text for turn_role, text in turns if turn_role == role)


def _text(row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowRejected(f"wrong_type: {key} is {json_type(value)}, expected string")
    return value


def row_texts(row: dict) -> tuple[str, str]:
    """(prompt, answer) of a training row in any layout the importer knows."""
    if all(key in row for key in _PAIR_KEYS):
        return _side(row, "prompt", "user"), _side(row, "chosen", "assistant") + "\n\n" + _side(
            row, "rejected", "assistant"
        )
    layout = detect_layout(row, "sft")
    if layout in _CHATS:
        return _chat_texts(row, layout)
    if layout == "alpaca":
        prompt = "\n\n".join(part for part in (_text(row, "instruction"), _text(row, "input")) if part.strip())
        return prompt, _text(row, "output")
    return _text(row, "prompt"), _text(row, "response")


def record_texts(record: Example | PreferencePair) -> tuple[str, str, str]:
    """(id, prompt, answer) of a build's record: an SFT row's response, a pair's chosen side
    (its rejected side is a wrong answer, not a gold one)."""
    if isinstance(record, PreferencePair):
        return record.id, record.prompt, record.chosen
    return record.id, record.prompt, record.response or ""


def read_train(path: Path, rejects: list[ImportReject]) -> Iterator[AuditRow]:
    """The rows of one training file, streamed; unreadable rows are appended to `rejects`."""
    path = Path(path)
    try:
        for number, raw, row, reason in read_rows(path):
            try:
                if row is None:
                    raise RowRejected(reason)
                prompt, answer = row_texts(row)
            except RowRejected as rejected:
                rejects.append(ImportReject(number, raw if raw is not None else json.dumps(row, default=str),
                                            f"{path}: {rejected}"))
                continue
            except UnknownLayout as error:
                rejects.append(ImportReject(number, raw or "", f"{path}: unknown_layout: {error}"))
                continue
            where = f"{path}:{number}"
            yield AuditRow(row["id"] if isinstance(row.get("id"), str) else where, where, prompt, answer)
    except RowFileError as error:
        raise AuditInputError(str(error)) from None
    except OSError as error:
        raise AuditInputError(f"{path}: cannot read: {error.strerror}") from None
