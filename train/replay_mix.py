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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.records import content_id
from datagen.run_store import file_sha256


class ReplayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["file", "base_answers"] = Field(
        description="file: chats in `file`; base_answers: the base model answers the prompts in `file`")
    file: Path
    share: float = Field(0.1, gt=0, lt=1)
    max_new_tokens: int = Field(128, ge=1, description="for base_answers")


def replay_count(config: ReplayConfig, task_rows: int) -> int:
    return round(task_rows * config.share / (1 - config.share))


def read_jsonl_rows(path: Path, key: str) -> list[dict]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} line {number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict) or key not in row:
            raise ValueError(f"{path} line {number}: a replay row is a JSON object with `{key}`")
        rows.append(row)
    return rows


def replay_rows(config: ReplayConfig, task_rows: int, model_dir: Path) -> tuple[list[dict], dict]:
    """(chats to add, what to record in the manifest)."""
    wanted = replay_count(config, task_rows)
    if config.source == "file":
        chats = [{"id": row.get("id") or content_id(json.dumps(row["messages"], sort_keys=True)),
                  "messages": row["messages"]} for row in read_jsonl_rows(config.file, "messages")[:wanted]]
    else:
        prompts = [row["prompt"] for row in read_jsonl_rows(config.file, "prompt")[:wanted]]
        chats = [{"id": content_id("replay", prompt), "messages": [{"role": "user", "content": prompt},
                                                                   {"role": "assistant", "content": answer}]}
                 for prompt, answer in zip(prompts, base_answers(model_dir, prompts, config.max_new_tokens))]
    record = {"source": config.source, "file": str(config.file), "file_sha256": file_sha256(config.file),
              "share": config.share, "rows": len(chats), "wanted": wanted}
    return chats, record


def base_answers(model_dir: Path, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The base model's greedy answers, batched, left-padded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    answers = []
    for start in range(0, len(prompts), 8):
        chats = [[{"role": "user", "content": prompt}] for prompt in prompts[start:start + 8]]
        batch = tokenizer.apply_chat_template(chats, add_generation_prompt=True, return_tensors="pt", padding=True,
                                              return_dict=True)
        with torch.no_grad():
            output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        answers += tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return [answer.strip() for answer in answers]
