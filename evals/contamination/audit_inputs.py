"""The two sides of a contamination audit, read from disk: gold rows and training rows.

Gold: a locked, signed gold set version, `gold/sets/<set>/v<N>/` (or its
`records.jsonl`), opened and verified by `gold/gold_root.py` with the rest of its set.
An unlocked folder, one whose manifest was deleted, or one that does not verify stops the
audit: an audit against rows nobody approved proves nothing about the approved ones.

Training: any `.jsonl` or `.parquet` file in a layout `datagen/generation/imports.py` reads (TRL
messages or preference rows, Alpaca, ShareGPT, plain `prompt`/`response`), or a crucible
export folder (`datagen/exports/formats.py`), of which `trl_sft/train.jsonl` and
`trl_dpo/train.jsonl` are read: the other formats there hold the same rows again.

A training row becomes one prompt text and one answer text, and, for a conversation, each
of its user turns on its own, because that is what the audit compares. Every turn counts:
a conversation is trained on whole, so its user turns are joined into the prompt and its
assistant turns into the answer, and each user turn is compared with the gold prompts by
itself too (`audit.py`). A preference row's answer is its chosen and its rejected answer
and the assistant turns of its shared history, joined: a gold answer shown as any of
them is in the training data.
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
from datagen.generation.import_layouts import (
    RowRejected,
    UnknownLayout,
    detect_layout,
    read_alpaca_history,
    read_turns,
)
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
    prompt: str  # a conversation's user turns, joined
    answer: str  # "" when the row has none
    user_turns: tuple[str, ...] = ()  # a conversation's user turns one by one; empty for one turn

    @property
    def prompt_texts(self) -> tuple[str, ...]:
        """What is compared with a gold prompt as a whole: each user turn."""
        return self.user_turns or (self.prompt,)


def _turn_texts(users: tuple[str, ...], answers: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    """(prompt, answer, user turns) of a conversation's turns; the turns only when there are several."""
    return "\n\n".join(users), "\n\n".join(answers), users if len(users) > 1 else ()


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


def _chat_texts(row: dict, layout: str) -> tuple[str, str, tuple[str, ...]]:
    where, role_key, content_key, roles = _CHATS[layout]
    turns = read_turns(row.get(where), where, role_key, content_key, roles)
    prompt, answer, users = _turn_texts(_of_role(turns, "user"), _of_role(turns, "assistant"))
    if not prompt.strip():
        raise RowRejected(f"missing_turn: {where} has no user turn")
    return prompt, answer, users


def _of_role(turns: list[tuple[str, str]], role: str) -> tuple[str, ...]:
    return tuple(text for turn_role, text in turns if turn_role == role)


def _side(row: dict, key: str) -> list[tuple[str, str]]:
    """A preference field's turns: a string is one turn, of the role the field holds."""
    value = row.get(key)
    if isinstance(value, str):
        return [("user" if key == "prompt" else "assistant", value)]
    return read_turns(value, key, "role", "content", _CHATS["trl"][3])


def _text(row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowRejected(f"wrong_type: {key} is {json_type(value)}, expected string")
    return value


def row_texts(row: dict) -> tuple[str, str, tuple[str, ...]]:
    """(prompt, answer, user turns) of a training row in any layout the importer knows."""
    if all(key in row for key in _PAIR_KEYS):
        prompt = _side(row, "prompt")
        answers = _of_role(prompt, "assistant") + _of_role(_side(row, "chosen"), "assistant") + _of_role(
            _side(row, "rejected"), "assistant")
        return _turn_texts(_of_role(prompt, "user"), answers)
    layout = detect_layout(row, "sft")
    if layout in _CHATS:
        return _chat_texts(row, layout)
    if layout == "alpaca":
        prompt = "\n\n".join(part for part in (_text(row, "instruction"), _text(row, "input")) if part.strip())
        history = [(turn.role, turn.content) for turn in read_alpaca_history(row)]
        answers = _of_role(history, "assistant") + (_text(row, "output"),)
        return _turn_texts(_of_role(history, "user") + (prompt,), answers)
    return _text(row, "prompt"), _text(row, "response"), ()


def record_texts(record: Example | PreferencePair) -> tuple[str, str, str, tuple[str, ...]]:
    """(id, prompt, answer, user turns) of a build's record: an SFT row's answers, a pair's
    chosen side (its rejected side is a wrong answer, not a gold one), and the assistant
    turns of either's history."""
    if isinstance(record, PreferencePair):
        earlier = tuple(turn.content for turn in record.context if turn.role == "assistant")
        return record.id, *_turn_texts(record.user_turns(), earlier + (record.chosen,))
    if not record.context:
        return record.id, record.prompt, record.response or "", ()
    return record.id, *_turn_texts(record.user_turns(), record.assistant_turns())


def read_train(path: Path, rejects: list[ImportReject]) -> Iterator[AuditRow]:
    """The rows of one training file, streamed; unreadable rows are appended to `rejects`."""
    path = Path(path)
    try:
        for number, raw, row, reason in read_rows(path):
            try:
                if row is None:
                    raise RowRejected(reason)
                prompt, answer, user_turns = row_texts(row)
            except RowRejected as rejected:
                rejects.append(ImportReject(number, raw if raw is not None else json.dumps(row, default=str),
                                            f"{path}: {rejected}"))
                continue
            except UnknownLayout as error:
                rejects.append(ImportReject(number, raw or "", f"{path}: unknown_layout: {error}"))
                continue
            where = f"{path}:{number}"
            yield AuditRow(row["id"] if isinstance(row.get("id"), str) else where, where, prompt, answer, user_turns)
    except RowFileError as error:
        raise AuditInputError(str(error)) from None
    except OSError as error:
        raise AuditInputError(f"{path}: cannot read: {error.strerror}") from None
