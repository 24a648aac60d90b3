"""Write the final SFT and preference sets in the formats trainers read.

- `trl_sft/train.jsonl` and `trl_sft_parquet/train.parquet`: TRL's conversational
  language-modeling format, one `messages` list (system, user, assistant; a conversation's
  every turn in order) per row.
- `trl_dpo/train.jsonl` and `trl_dpo_parquet/train.parquet`: TRL's conversational
  preference format, `prompt` (system, the shared history, the last user turn) with
  `chosen` and `rejected` (one assistant turn each).
- `alpaca/train.jsonl` (`instruction`, `input`, `output`) and `sharegpt/train.jsonl`
  (`conversations` of `from`/`value`, every turn) for users of other trainers. Alpaca has
  one exchange a row; a set with conversations gets LLaMA-Factory's `history` column, the
  earlier (user, assistant) exchanges of each row, `[]` for a single-turn one. A set with
  none has no such column, as before conversations existed.

Where each file goes is `datagen/foundation/export_layout.py`'s. Every row keeps its record `id`,
which leads back to the full provenance in the run store. Training rows carry no
few-shot turns: the fine-tuned model must produce the format from the system prompt.

A task with tools (`datagen/foundation/tool_calls.py`) is exported the way TRL trains tool
calling: TRL rows get a `tools` column (the tools' JSON, as a string, which TRL's trainers
parse), and an answer that is a call becomes an assistant message with `tool_calls` (a
rejected side that is not one, a preamble or broken JSON, stays text). The chat template
renders both; crucible's (`train/chat_template.py`) renders exactly the system turn and
answer text that `Task.messages` gives every other model. Alpaca and ShareGPT have no
place for tools: their system turn lists them, and the answer is the call's text.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from datagen.foundation.export_layout import ALPACA_FILE, DPO_FILE, DPO_PARQUET, SFT_FILE, SFT_PARQUET, SHAREGPT_FILE
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.task import Task, parse_json_answer
from datagen.foundation.tool_calls import is_call, tool_call_message


def _write(frame: pl.DataFrame, jsonl: Path, parquet: Path | None) -> None:
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ndjson(jsonl)
    if parquet is not None:
        parquet.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(parquet)


MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
CALL = pl.Struct({"type": pl.String, "function": pl.Struct({"name": pl.String, "arguments": pl.String})})
MESSAGE_WITH_CALLS = pl.Struct({"role": pl.String, "content": pl.String, "tool_calls": pl.List(CALL)})
TURN = pl.Struct({"from": pl.String, "value": pl.String})


def _prompt(text: str, task: Task, context=()) -> list[dict]:
    return task.messages(text, few_shot=False, trained=True, context=context, tools_in_system=False)


def _answer(text: str, task: Task) -> dict:
    if task.tools and is_call(answer := parse_json_answer(text)):
        return tool_call_message(answer)
    return {"role": "assistant", "content": text}


def _with_tools(columns: dict, task: Task) -> dict:
    # Only a task with tools has the column and the `tool_calls` field: other exports stay as they were.
    if not task.tools:
        return columns
    return {name: pl.List(MESSAGE_WITH_CALLS) if kind == pl.List(MESSAGE) else kind
            for name, kind in columns.items()} | {"tools": pl.String}


def _tools_column(row: dict, task: Task) -> dict:
    return row | {"tools": json.dumps(list(task.tools))} if task.tools else row


def sft_messages(rows: list[Example], task: Task) -> pl.DataFrame:
    return pl.DataFrame(
        [
            _tools_column({"id": row.id, "messages": _prompt(row.prompt, task, row.context)
                           + [_answer(row.response, task)]}, task)
            for row in rows
        ],
        schema=_with_tools({"id": pl.String, "messages": pl.List(MESSAGE)}, task),
    )


def dpo_conversations(pairs: list[PreferencePair], task: Task) -> pl.DataFrame:
    return pl.DataFrame(
        [
            _tools_column({
                "id": pair.id,
                "prompt": _prompt(pair.prompt, task, pair.context),
                "chosen": [_answer(pair.chosen, task)],
                "rejected": [_answer(pair.rejected, task)],
            }, task)
            for pair in pairs
        ],
        schema=_with_tools({
            "id": pl.String,
            "prompt": pl.List(MESSAGE),
            "chosen": pl.List(MESSAGE),
            "rejected": pl.List(MESSAGE),
        }, task),
    )


def alpaca_rows(rows: list[Example], task: Task) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            {"id": r.id, "instruction": task.system_turn(trained=True), "input": r.prompt, "output": r.response}
            for r in rows
        ],
        schema={"id": pl.String, "instruction": pl.String, "input": pl.String, "output": pl.String},
    )
    if not any(r.context for r in rows):
        return frame
    history = [[[user.content, answer.content] for user, answer in zip(r.context[::2], r.context[1::2])] for r in rows]
    return frame.with_columns(history=pl.Series(history, dtype=pl.List(pl.List(pl.String))))


SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def sharegpt_rows(rows: list[Example], task: Task) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "id": r.id,
                "conversations": [
                    {"from": SHAREGPT_ROLES[message["role"]], "value": message["content"]}
                    for message in [{"role": "system", "content": task.system_turn(trained=True)}, *r.chat()]
                ],
            }
            for r in rows
        ],
        schema={"id": pl.String, "conversations": pl.List(TURN)},
    )


def write_exports(folder: Path, sft: list[Example], pairs: list[PreferencePair], task: Task) -> None:
    _write(sft_messages(sft, task), folder / SFT_FILE, folder / SFT_PARQUET)
    _write(dpo_conversations(pairs, task), folder / DPO_FILE, folder / DPO_PARQUET)
    _write(alpaca_rows(sft, task), folder / ALPACA_FILE, None)
    _write(sharegpt_rows(sft, task), folder / SHAREGPT_FILE, None)
