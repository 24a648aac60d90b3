"""The models a preflight compares, how each is asked, and its outputs.

A candidate is the base model, or the base plus a LoRA adapter, or an OpenAI-compatible
endpoint, asked with one of three chats:

- `few_shot`: the task's full system prompt and its few-shot turns (the cheap baseline:
  what a prompt alone buys);
- `task`: the full system prompt without shots;
- `trained`: the chat the fine-tune was trained on (`Task.trained_system_prompt`).

`constrained`: decode under the answer schema's grammar: the engine's JSON-schema
structured output (xgrammar inside vLLM), or in process `evals/constrained_decoding.py`'s
logits processor (the same xgrammar).

Every model is asked through a serving engine (`datagen/serving/adapter_servers.py`, vLLM by default)
with the client every stage uses; `engine: in_process` generates with transformers here
instead, for tiny test models whose generation costs less than a server's start.

Regression rows are asked the same way for every candidate: a bare user turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.serving.adapter_servers import AdapterServers
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.greedy_answers import over_api
from datagen.serving.in_process import generate_in_process
from evals.constrained_decoding import MAX_STRING_CHARS, bounded_strings, schema_logits_processor
from evals.target_eval import gold_context

PromptStyle = Literal["few_shot", "task", "trained"]


class GenerationConfig(BaseModel):
    """How every candidate generates: greedy, so outputs are a function of model and prompt."""

    model_config = ConfigDict(extra="forbid")

    target_max_new_tokens: int = Field(128, gt=0, description="demo gold answers are 66 tokens on average, 90 at most")
    regression_max_new_tokens: int = Field(48, gt=0, description="regression answers are a word to a sentence")
    engine: Literal["vllm", "transformers", "in_process"] = Field(
        "vllm", description="what serves the base model and the adapters: vLLM (datagen/serving/adapter_servers.py), "
        "`transformers serve`, or transformers in this process (no server: for tiny models in tests, where a "
        "server's start costs more than the generation)")
    adapters: Literal["merged", "lora", "in_process"] = Field(
        "merged", description="merged: each adapter merged into the base and served alone; "
        "lora: all adapters by name on one vLLM server (the normal path on a GPU); in_process: base plus adapter "
        "through peft in this process, the baselines still on the engine (on a 2-core CPU, in bf16, a 135M model "
        "with an adapter answered the 130 demo gold rows in process in 95 s, merged on vLLM in 90 s with the "
        "merge and the server's start: tests/benchmarks/eval_generation.py)")
    concurrency: int = Field(64, gt=0, description="requests in flight to the engine, which batches them")
    batch_size: int = Field(64, gt=0, description="in_process: rows per generate call; larger is faster on CPU")
    seed: int = Field(0, description="the API's sampling seed and the bootstrap's")

    @model_validator(mode="after")
    def _lora_needs_vllm(self) -> "GenerationConfig":
        if self.adapters == "lora" and self.engine != "vllm":
            raise ValueError("adapters: lora serves adapters by name, which only the vllm engine does")
        return self


@dataclass(frozen=True)
class Candidate:
    name: str
    role: Literal["baseline", "fine-tune"]
    prompt: PromptStyle
    description: str
    adapter: Path | None = None
    constrained: bool = False
    endpoint: EndpointConfig | None = None  # with a base_url: a server to evaluate

    @property
    def folder(self) -> str:
        """Its evals' folder name under the preflight's `evals/`."""
        return self.name.replace(" ", "-")


def target_chats(task, candidate: Candidate, rows: list[dict]) -> list[list[dict]]:
    """The chat of each gold row; a conversation's with its earlier turns, so that the
    candidate answers its last turn given the history."""
    return [task.messages(row["prompt"], few_shot=candidate.prompt == "few_shot",
                          trained=candidate.prompt == "trained", context=gold_context(row))
            for row in rows]


def json_schema_format(schema: type[BaseModel]) -> dict:
    """The answer schema as an OpenAI `response_format`, its free-text strings bounded
    (`constrained_decoding.bounded_strings`): the engine's structured output (xgrammar in
    vLLM) holds a constrained candidate to it."""
    return {"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True, "schema": bounded_strings(schema.model_json_schema(), MAX_STRING_CHARS)}}


def candidate_outputs(candidate: Candidate, model_dir: Path, chats: list[list[dict]], *, max_new_tokens: int,
                      config: GenerationConfig, schema: type[BaseModel] | None = None,
                      servers: AdapterServers | None = None) -> list[str]:
    """`schema`: the grammar to hold a constrained candidate to (target rows only);
    `servers`: where the engine serves the base model and adapters (None: in process)."""
    constrained = schema if candidate.constrained and schema else None
    if candidate.endpoint is not None:
        return over_api(candidate.endpoint, chats, max_new_tokens=max_new_tokens, seed=config.seed)
    if config.engine == "in_process" or (candidate.adapter is not None and config.adapters == "in_process"):
        if servers is not None:
            servers.stop()
        processor = schema_logits_processor(model_dir, constrained) if constrained else None
        return generate_in_process(model_dir, chats, adapter=candidate.adapter, max_new_tokens=max_new_tokens,
                                   batch_size=config.batch_size, logits_processor=processor)
    base_url, model, identity = servers.endpoint(candidate.adapter)
    served = EndpointConfig(base_url=base_url, model=model, concurrency=config.concurrency)
    return over_api(served, chats, max_new_tokens=max_new_tokens, seed=config.seed, identity=identity,
                    response_format=json_schema_format(constrained) if constrained else None)
