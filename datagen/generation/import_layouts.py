"""How one row of an imported file becomes a prompt (with its earlier turns) and its answers.

The layouts (keys of one row; `[...]` is optional):

- `trl`, for prompts and SFT: TRL's conversational language-modeling type,
  `messages: [{role, content}]` with roles `system`, `user`, `assistant`.
  For preference: TRL's explicit-prompt preference type, `prompt`, `chosen`, `rejected`,
  each either a string or a list of messages (`prompt`: [system,] user[, assistant, user
  ...], the shared history; `chosen` and `rejected`: one assistant message each), which
  is what `datagen/exports/formats.py` writes.
- `alpaca`: `instruction`, [`input`], [`output`], [`history`: LLaMA-Factory's earlier
  exchanges, `[[user, assistant], ...]`, the conversation's context]. The prompt is the
  instruction, then a blank line, then the input, the way Alpaca's own template puts the
  input below the instruction; an empty part is left out. One exception makes crucible's own export read
  back: an instruction equal to the task's system prompt *is* the system prompt (the
  export writes it there), so it is treated as the row's system turn and the prompt is
  the input alone.
- `sharegpt`: `conversations: [{from, value}]` with `from` one of `system`, `human`, `gpt`.
- `plain`: `prompt`, [`response`], [`reference`], all strings (`reference`: JSON text).

A conversation is an optional leading system turn, then user and assistant turns in
turn from a user turn: `[system,] user[, assistant, user ...][, assistant]`. Its last user
turn is the Example's prompt, the turns before it its `context`, and for SFT the last
assistant turn its response (a prompts row's final answer, if it has one, is not read:
the teacher answers). Every assistant turn of an SFT row is trained on, so a chat is
taken whole or not at all: two user turns in a row, a system turn later on, or an SFT
chat that does not end with an answer is rejected with reason `turn_order` or
`missing_turn`, naming the order it found, rather than cut down to a part its author
did not write it as.

A row's system turn is checked against the task's system prompt (`system_turn:
match_task`), because every exported row is trained under the task's prompt and a row
written under other instructions would silently teach the wrong thing; `drop` accepts it
anyway, for data written under a generic "You are a helpful assistant".

A row that does not fit raises `RowRejected` whose message is the reason, `kind: detail`
like the answer filters' reasons, e.g. `missing_field: messages[1].content`.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Turn
from datagen.foundation.row_files import json_type
from datagen.foundation.task import schema_errors
from datagen.foundation.tool_calls import message_text

Kind = Literal["prompts", "sft", "preference"]
Layout = Literal["trl", "alpaca", "sharegpt", "plain"]
SystemTurn = Literal["match_task", "drop"]

_TRL_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
_SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
# The key that marks each layout of prompts and SFT rows (preference rows have one layout).
_MARKERS: tuple[tuple[str, Layout], ...] = (
    ("messages", "trl"),
    ("instruction", "alpaca"),
    ("conversations", "sharegpt"),
    ("prompt", "plain"),
)
_PAIR_KEYS = ("prompt", "chosen", "rejected")


class RowRejected(ValueError):
    """A row that does not fit its layout; the message is the reason."""


class UnknownLayout(ValueError):
    """No layout, or more than one, fits a row's keys."""


def detect_layout(row: dict, kind: Kind) -> Layout:
    keys = ", ".join(sorted(row)) or "none"
    if kind == "preference":
        if all(key in row for key in _PAIR_KEYS):
            return "trl"
        raise UnknownLayout(
            f"no preference layout fits keys {keys}: the trl layout needs prompt, chosen and rejected"
        )
    found = [layout for marker, layout in _MARKERS if marker in row]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UnknownLayout(
            f"no layout fits keys {keys}: expected messages (trl), instruction (alpaca), "
            "conversations (sharegpt) or prompt (plain)"
        )
    raise UnknownLayout(f"keys {keys} fit several layouts ({', '.join(found)}): set `layout`")


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if value is None:
        raise RowRejected(f"missing_field: {where}")
    if not isinstance(value, str):
        raise RowRejected(f"wrong_type: {where} is {json_type(value)}, expected string")
    return value


def _optional_text(row: dict, key: str) -> str | None:
    return None if row.get(key) is None else _text(row, key, key)


def read_turns(
    items: object, where: str, role_key: str, content_key: str, roles: dict[str, str]
) -> list[tuple[str, str]]:
    """(role, text) pairs with roles renamed to system/user/assistant."""
    if items is None:
        raise RowRejected(f"missing_field: {where}")
    if not isinstance(items, list):
        raise RowRejected(f"wrong_type: {where} is {json_type(items)}, expected array")
    turns = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise RowRejected(f"wrong_type: {at} is {json_type(item)}, expected object")
        role = _text(item, role_key, f"{at}.{role_key}")
        if role not in roles:
            raise RowRejected(f"unknown_role: {at}.{role_key} is {role!r}, expected one of {', '.join(roles)}")
        if item.get("tool_calls"):  # an assistant's call (TRL's layout): the call's text, as the model writes it
            turns.append((roles[role], _call_text(item, at)))
            continue
        turns.append((roles[role], _text(item, content_key, f"{at}.{content_key}")))
    return turns


def _call_text(message: dict, at: str) -> str:
    try:
        return message_text(message)
    except (KeyError, TypeError, AttributeError):
        raise RowRejected(f"wrong_type: {at}.tool_calls is not a list of {{function: {{name, arguments}}}}") from None


Conversation = tuple[str | None, tuple[Turn, ...], str, str | None]  # (system, context, prompt, answer)


def _split_conversation(turns: list[tuple[str, str]], where: str) -> Conversation:
    """(system, earlier turns, last user turn, answer or None) of a
    [system,] user[, assistant, user ...][, assistant] conversation."""
    system = turns[0][1] if turns and turns[0][0] == "system" else None
    rest = list(turns[1:] if system is not None else turns)
    roles = [role for role, _ in rest]
    if "user" not in roles:
        raise RowRejected(f"missing_turn: {where} has no user turn")
    if roles != ["user", "assistant"] * (len(roles) // 2) + ["user"] * (len(roles) % 2):
        order = ", ".join(role for role, _ in turns)
        raise RowRejected(f"turn_order: {where} is {order}; expected [system,] user[, assistant, user ...]"
                          "[, assistant]")
    answer = rest.pop()[1] if roles[-1] == "assistant" else None
    first = 1 if system is not None else 0
    # The prompt and the answer are checked by name (`check_not_empty`), the earlier turns here.
    for index, (_, text) in enumerate(rest[:-1], first):
        if not text.strip():
            raise RowRejected(f"empty_field: {where}[{index}]")
    context = tuple(Turn(role, text) for role, text in rest[:-1])
    return system, context, rest[-1][1], answer


def _answer(row: dict, key: str, needed: bool) -> str | None:
    # Prompts are answered by the teacher: an answer the row carries is not even read.
    return _text(row, key, key) if needed else None


def _alpaca(row: dict, system_prompts: tuple[str, ...], needed: bool) -> tuple[str | None, str, str | None]:
    instruction = _text(row, "instruction", "instruction")
    given = _optional_text(row, "input") or ""
    answer = _answer(row, "output", needed)
    if instruction.strip() in {prompt.strip() for prompt in system_prompts}:
        return instruction, given, answer
    return None, "\n\n".join(part for part in (instruction, given) if part.strip()), answer


def read_alpaca_history(row: dict) -> tuple[Turn, ...]:
    """LLaMA-Factory's `history`: the earlier exchanges, `[[user, assistant], ...]`."""
    history = row.get("history")
    if history is None:
        return ()
    if not isinstance(history, list):
        raise RowRejected(f"wrong_type: history is {json_type(history)}, expected array")
    context = []
    for index, exchange in enumerate(history):
        if not (isinstance(exchange, list) and len(exchange) == 2 and all(isinstance(t, str) for t in exchange)):
            raise RowRejected(f"wrong_type: history[{index}] is not a [user, assistant] pair of strings")
        if not all(text.strip() for text in exchange):
            raise RowRejected(f"empty_field: history[{index}]")
        context += [Turn("user", exchange[0]), Turn("assistant", exchange[1])]
    return tuple(context)


# The chat layouts: (field, role key, content key, role names).
_CHATS = {
    "trl": ("messages", "role", "content", _TRL_ROLES),
    "sharegpt": ("conversations", "from", "value", _SHAREGPT_ROLES),
}


def read_conversation(
    row: dict, layout: Layout, system_prompts: tuple[str, ...], *, needs_answer: bool
) -> Conversation:
    """(system turn, earlier turns, prompt, answer) of a prompts or SFT row; the answer only
    if needed. The chat layouts and Alpaca's `history` hold earlier turns."""
    if layout in _CHATS:
        where, role_key, content_key, roles = _CHATS[layout]
        turns = read_turns(row.get(where), where, role_key, content_key, roles)
        system, context, prompt, answer = _split_conversation(turns, where)
        if needs_answer and answer is None:
            raise RowRejected(f"missing_turn: {where} has no assistant turn after its last user turn")
        return system, context, prompt, answer if needs_answer else None
    if layout == "alpaca":
        system, prompt, answer = _alpaca(row, system_prompts, needs_answer)
        return system, read_alpaca_history(row), prompt, answer
    return None, (), _text(row, "prompt", "prompt"), _answer(row, "response", needs_answer)


def _one_answer(row: dict, key: str) -> str:
    value = row.get(key)
    if not isinstance(value, list):
        return _text(row, key, key)
    turns = read_turns(value, key, "role", "content", _TRL_ROLES)
    if [role for role, _ in turns] != ["assistant"]:
        kind = "multi_turn" if len(turns) > 1 else "turn_order"
        order = ", ".join(role for role, _ in turns) or "empty"
        raise RowRejected(f"{kind}: {key} is {order}; expected one assistant message")
    return turns[0][1]


def read_preference(row: dict) -> tuple[str | None, tuple[Turn, ...], str, str, str]:
    """(system turn, shared earlier turns, prompt, chosen, rejected) of a TRL preference row."""
    prompt = row.get("prompt")
    if isinstance(prompt, list):
        turns = read_turns(prompt, "prompt", "role", "content", _TRL_ROLES)
        if turns and turns[-1][0] == "assistant":
            raise RowRejected(
                "turn_order: prompt ends with an assistant turn; the answers belong in chosen and rejected"
            )
        system, context, text, _ = _split_conversation(turns, "prompt")
    else:
        system, context, text = None, (), _text(row, "prompt", "prompt")
    return system, context, text, _one_answer(row, "chosen"), _one_answer(row, "rejected")


def check_system_turn(system: str | None, system_prompts: tuple[str, ...], policy: SystemTurn) -> None:
    if system is None or policy == "drop" or system.strip() in {prompt.strip() for prompt in system_prompts}:
        return
    shown = system if len(system) <= 60 else system[:57] + "..."
    raise RowRejected(f"system_mismatch: {shown!r} is not the task's system prompt")


def check_not_empty(**texts: str) -> None:
    for name, text in texts.items():
        if not text.strip():
            raise RowRejected(f"empty_field: {name}")


def read_reference(row: dict, key: str, schema: type[BaseModel]) -> str:
    """The known-correct answer as canonical JSON, checked against the task's answer schema.

    The field may hold the object itself or JSON text of it (parquet files often store
    JSON as a string column)."""
    value = row.get(key)
    if value is None:
        raise RowRejected(f"missing_field: {key}")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise RowRejected(f"reference_invalid: {key} is not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise RowRejected(f"reference_invalid: {key} is {json_type(value)}, expected an object")
    errors = schema_errors(schema, value)
    if errors:
        raise RowRejected("reference_invalid: " + "; ".join(errors))
    return canonical_json(value)
