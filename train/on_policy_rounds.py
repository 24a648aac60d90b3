"""One round of on-policy preference data for DPO: sample the policy, pair its mistakes.

The policy (the SFT adapter in round 1, the previous round's DPO adapter after) answers
every training prompt whose label a verifier can check, `samples_per_prompt` times at a
temperature, through the serving engine (`datagen/teacher/on_policy.py`); its plausible
wrong answers are paired against a right sample or the label
(`datagen/pairs/on_policy_pairs.py`). Written to `<folder>/`: `samples.jsonl` (every
sample with its provenance), `pairs.jsonl` (the DPO rows, TRL's conversational
preference format), `dropped.jsonl` (prompts with nothing to teach, and why) and
`manifest.json` last; a folder with a manifest is a finished round and is read back.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from datagen.exports.formats import dpo_conversations
from datagen.foundation.hashing import file_sha256
from datagen.foundation.run_store import write_text_atomic
from datagen.foundation.task import Task
from datagen.pairs.on_policy_pairs import on_policy_pairs
from datagen.serving.embedded_model import cache_dir
from datagen.serving.response_cache import ResponseCache
from datagen.teacher.on_policy import PolicySamplingConfig, prompts_from_sft_rows, sample_policy


class OnPolicyConfig(BaseModel):
    """How the policy is sampled and how many rounds of DPO follow each other."""

    model_config = ConfigDict(extra="forbid")

    sampling: PolicySamplingConfig = PolicySamplingConfig()
    rounds: int = Field(1, ge=1, le=5, description="DPO, sample the new policy, DPO again: iterative DPO")
    keep_export_pairs: bool = Field(False, description="train on the build's pairs too, not only the policy's")


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def on_policy_round(task: Task, config: OnPolicyConfig, model_dir: Path, policy: Path, chats: list[dict],
                    round_: int, folder: Path) -> tuple[list[dict], dict]:
    """(DPO rows, summary) of one round; a finished round is read back, not sampled again."""
    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        rows = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
        return rows, json.loads((folder / "manifest.json").read_text())["summary"]
    prompts = prompts_from_sft_rows(chats, task, run_id=f"on-policy-round-{round_}")
    cache = ResponseCache(cache_dir() / "responses.sqlite")
    try:
        result = sample_policy(prompts, task, config.sampling, model_dir, policy, cache,
                               f"on-policy-round-{round_}", folder / "logs")
    finally:
        cache.close()
    pairs, dropped = on_policy_pairs(prompts, result.answers, task, round_=round_)
    rows = dpo_conversations(pairs, task).to_dicts()
    summary = {
        "round": round_, "policy": str(policy), "policy_sha256": file_sha256(policy / "adapter_model.safetensors"),
        "prompts": len(prompts), "samples": len(result.answers), "failed_requests": len(result.failures),
        "pairs": len(pairs), "one_wrong_field": sum(pair.axis == "one_wrong_field" for pair in pairs),
        "dropped_by_reason": dict(Counter(reason.split(":", 1)[0] for _, reason in dropped)),
    }
    write_text_atomic(folder / "samples.jsonl", _jsonl([dataclasses.asdict(sample) for sample in result.answers]))
    write_text_atomic(folder / "pairs.jsonl", _jsonl(rows))
    write_text_atomic(folder / "dropped.jsonl", _jsonl([{"prompt_id": p, "reason": r} for p, r in dropped]))
    write_text_atomic(folder / "manifest.json", json.dumps({"summary": summary, "config": config.model_dump(
        mode="json")}, indent=1))
    return rows, summary
