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
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from datagen.foundation.export_layout import ALPACA_FILE, DPO_FILE, DPO_PARQUET, SFT_FILE, SFT_PARQUET, SHAREGPT_FILE
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.task import Task


def _write(frame: pl.DataFrame, jsonl: Path, parquet: Path | None) -> None:
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ndjson(jsonl)
    if parquet is not None:
        parquet.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(parquet)


MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
TURN = pl.Struct({"from": pl.String, "value": pl.String})


def sft_messages(rows: list[Example], task: Task) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "id": row.id,
                "messages": task.messages(row.prompt, few_shot=False, trained=True, context=row.context)
                + [{"role": "assistant", "content": row.response}],
            }
            for row in rows
        ],
        schema={"id": pl.String, "messages": pl.List(MESSAGE)},
    )


def dpo_conversations(pairs: list[PreferencePair], task: Task) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "id": pair.id,
                "prompt": task.messages(pair.prompt, few_shot=False, trained=True, context=pair.context),
                "chosen": [{"role": "assistant", "content": pair.chosen}],
                "rejected": [{"role": "assistant", "content": pair.rejected}],
            }
            for pair in pairs
        ],
        schema={
            "id": pl.String,
            "prompt": pl.List(MESSAGE),
            "chosen": pl.List(MESSAGE),
            "rejected": pl.List(MESSAGE),
        },
    )


def alpaca_rows(rows: list[Example], task: Task) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            {"id": r.id, "instruction": task.training_system_prompt, "input": r.prompt, "output": r.response}
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
                    for message in [{"role": "system", "content": task.training_system_prompt}, *r.chat()]
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
