"""A replay mix against forgetting: general instruction rows mixed into SFT.

Fine-tuning a small model on one narrow task erodes what it could already do; mixing in
a share of general instruction data is the usual guard (the "replay" of continual
learning; Scialom et al. 2022 found ~1% already helps, instruction-tuning recipes use
5-20%). The rows come from a JSONL file the user supplies, in TRL's `messages` layout
(`{"messages": [...]}`), or are the base model's own greedy answers to a file of
general prompts (`{"prompt": "..."}` per line), so the mix teaches nothing new and only
holds on to what the base did. Either way the rows, their source and hash are recorded
in the training manifest.

`share` is the replay rows' share of the final SFT set: share 0.2 with 80 task rows adds
20 replay rows (all there are, if fewer).

The rows are kept in the training run's `replay/` folder (`rows.jsonl`, then
`manifest.json`, written last) and read back while what made them holds (the config, the
file's hash, the count, the base model's hash): a re-run asks no model again. The train
flow gates them like every row, against the regression set too (`also_against`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.hashing import content_id, file_sha256
from datagen.foundation.row_files import read_objects
from datagen.foundation.run_store import write_text_atomic
from datagen.serving.greedy_answers import Engine, from_model
from train.base_model import model_hash


class ReplayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["file", "base_answers"] = Field(
        description="file: chats in `file`; base_answers: the base model answers the prompts in `file`")
    file: Path
    share: float = Field(0.1, gt=0, lt=1)
    max_new_tokens: int = Field(128, ge=1, description="for base_answers")
    engine: Engine = Field("vllm", description="for base_answers: what serves the base model for its answers "
                           "(datagen/serving/greedy_answers.py)")


def replay_count(config: ReplayConfig, task_rows: int) -> int:
    return round(task_rows * config.share / (1 - config.share))


def replay_rows(config: ReplayConfig, task_rows: int, model_dir: Path, folder: Path) -> tuple[list[dict], dict]:
    """(chats to add, what to record in the manifest), kept in `folder` with the engine's log."""
    wanted = replay_count(config, task_rows)
    intent = {"config": config.model_dump(mode="json"), "file_sha256": file_sha256(config.file), "wanted": wanted,
              "model_sha256": model_hash(model_dir) if config.source == "base_answers" else None}
    rows_path, manifest_path = Path(folder) / "rows.jsonl", Path(folder) / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text())["intent"] == intent:
        chats = [json.loads(line) for line in rows_path.read_text().splitlines()]
        return chats, json.loads(manifest_path.read_text())["record"] | {"kept_from_earlier_run": True}
    if config.source == "file":
        rows = read_objects(config.file, ("messages",), "a replay row")[:wanted]
        chats = [{"id": row.get("id") or content_id(json.dumps(row["messages"], sort_keys=True)),
                  "messages": row["messages"]} for row in rows]
    else:
        prompts = [row["prompt"] for row in read_objects(config.file, ("prompt",), "a replay row")[:wanted]]
        # The base model's own greedy answers: replay keeps what it already does.
        asked = [[{"role": "user", "content": prompt}] for prompt in prompts]
        answers = from_model(model_dir, asked, engine=config.engine, max_new_tokens=config.max_new_tokens,
                             log_path=Path(folder) / f"replay-{config.engine}.log")
        chats = [{"id": content_id("replay", prompt), "messages": chat + [{"role": "assistant", "content": answer}]}
                 for prompt, chat, answer in zip(prompts, asked, answers)]
    record = {"source": config.source, "file": str(config.file), "file_sha256": file_sha256(config.file),
              "share": config.share, "rows": len(chats), "wanted": wanted,
              "engine": config.engine if config.source == "base_answers" else None}
    write_text_atomic(rows_path, "".join(json.dumps(chat, ensure_ascii=False) + "\n" for chat in chats))
    write_text_atomic(manifest_path, json.dumps({"intent": intent, "record": record}, indent=1))
    return chats, record
