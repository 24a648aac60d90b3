"""On-policy samples: k answers per prompt from the model being trained (the base, or base
plus an adapter), at a temperature and a seed, through the serving engine.

What a policy writes itself is what preference pairs built on-policy need (RLHFlow's
online iterative DPO, SimPO's on-policy data): its plausible wrong answers, not a
teacher's. The samples are asked like teacher answers (`distill.answer_prompts`): cached
by request, so an interrupted run resumes and a re-run pays nothing, with a seed per
(prompt, sample). The model is asked with the chat it was trained on (the task's trained
system prompt, no few-shot turns).

Provenance: every row's `teacher.base_url` names the policy by its weights, never by the
port it was served on: `merged:<adapter weights sha256>:<engine>` (or `lora:...` when the
engine serves the adapter by name), `model:<weights sha256>:<engine>` for the base. Rows
get `source` `datagen.teacher.on_policy@1` and `parent_ids` (the prompt's id).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Turn
from datagen.foundation.task import Task, parse_json_answer, schema_errors
from datagen.foundation.tool_calls import message_text
from datagen.serving.adapter_servers import AdapterServers
from datagen.serving.client import Endpoint
from datagen.serving.endpoint import EndpointConfig, SamplingParams
from datagen.serving.request_batch import Progress
from datagen.serving.response_cache import ResponseCache
from datagen.teacher.distill import DistillConfig, DistillResult, answer_prompts

SOURCE = "datagen.teacher.on_policy@1"


class PolicySamplingConfig(BaseModel):
    """How many answers per prompt, and how they are sampled. Temperature 1.0 and top-p
    0.95 by default: on-policy pairs need the policy's own spread of answers, right and
    wrong, which greedy decoding hides."""

    model_config = ConfigDict(extra="forbid")

    samples_per_prompt: int = Field(4, ge=1, description="k answers per prompt")
    sampling: SamplingParams = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=160, seed=0)
    engine: Literal["vllm", "transformers"] = "vllm"
    adapters: Literal["merged", "lora"] = Field("merged", description="as the evals serve adapters "
                                                 "(datagen/serving/adapter_servers.py)")
    concurrency: int = Field(32, ge=1, description="requests in flight to the engine, which batches them")
    structured_output: Literal["prompt", "json_schema"] = Field(
        "prompt", description="json_schema: sample under the answer schema (the engine's structured output), as a "
        "fine-tune served with constrained decoding answers: every sample is schema-valid, so the wrong ones are "
        "the plausible wrong values pairs need, not broken JSON no deployment would emit")


def sample_policy(prompts: list[Example], task: Task, config: PolicySamplingConfig, base_model: Path,
                  adapter: Path | None, cache: ResponseCache, run_id: str, log_dir: Path, *,
                  on_progress: Callable[[Progress], None] = lambda progress: None,
                  should_stop: Callable[[], str | None] = lambda: None) -> DistillResult:
    """`samples_per_prompt` answers to every prompt from base (or base plus `adapter`)."""
    adapters = {"policy": Path(adapter)} if adapter is not None else {}
    with AdapterServers(config.engine, base_model, log_dir, config.adapters, adapters) as servers:
        base_url, model, identity = servers.endpoint(adapter)
        asked = EndpointConfig(base_url=base_url, model=model, sampling=config.sampling,
                               concurrency=config.concurrency, structured_output=config.structured_output)
        distill = DistillConfig(teachers=[asked], samples_per_prompt=config.samples_per_prompt,
                                cache_path=cache.path)
        return asyncio.run(answer_prompts(prompts, task, distill, [Endpoint(base_url, model, "no-key", identity)],
                                          cache, run_id, on_progress=on_progress, should_stop=should_stop,
                                          few_shot=False, trained=True, source=SOURCE))


def prompts_from_sft_rows(rows: list[dict], task: Task, run_id: str) -> list[Example]:
    """The training prompts with their labels, from TRL `messages` rows: the last user turn
    is the prompt, the turns before it its context, the last assistant turn the label. Rows
    whose answer is not the task's JSON (replay rows of general instructions) are left out:
    no verifier can judge them."""
    prompts = []
    for row in rows:
        turns = [turn for turn in row["messages"] if turn["role"] != "system"]
        if len(turns) < 2 or [turn["role"] for turn in turns[-2:]] != ["user", "assistant"]:
            continue
        answer = parse_json_answer(message_text(turns[-1]))  # a call's text, for a tool task
        if answer is None or schema_errors(task.answer_schema, answer):
            continue
        prompts.append(Example(task=task.name, prompt=turns[-2]["content"], source=row.get("source") or "export",
                               run_id=run_id, reference=canonical_json(answer),
                               context=tuple(Turn(turn["role"], message_text(turn)) for turn in turns[:-2])))
    return prompts
