"""The models a preflight compares, how each is asked, and its outputs.

A candidate is the base model, or the base plus a LoRA adapter, or an OpenAI-compatible
endpoint, asked with one of three chats:

- `few_shot`: the task's full system prompt and its few-shot turns (the cheap baseline:
  what a prompt alone buys);
- `task`: the full system prompt without shots;
- `trained`: the chat the fine-tune was trained on (`Task.trained_system_prompt`).

`constrained`: decode under the answer schema's grammar (`evals/constrained_decoding.py`).

Regression rows are asked the same way for every candidate: a bare user turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.serving.embedded_model import cache_dir
from datagen.serving.endpoint import EndpointConfig, resolve_endpoint
from datagen.serving.in_process import generate_in_process
from datagen.serving.request_batch import complete_chats
from datagen.serving.response_cache import ResponseCache
from evals.constrained_decoding import schema_logits_processor

PromptStyle = Literal["few_shot", "task", "trained"]


class GenerationConfig(BaseModel):
    """How every candidate generates: greedy, so outputs are a function of model and prompt."""

    model_config = ConfigDict(extra="forbid")

    target_max_new_tokens: int = Field(128, gt=0, description="demo gold answers are 66 tokens on average, 90 at most")
    regression_max_new_tokens: int = Field(48, gt=0, description="regression answers are a word to a sentence")
    batch_size: int = Field(64, gt=0, description="rows per generate call; larger is faster on CPU, until memory")
    seed: int = Field(0, description="the API's sampling seed and the bootstrap's")


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


def target_chats(task, candidate: Candidate, prompts: list[str]) -> list[list[dict]]:
    return [task.messages(prompt, few_shot=candidate.prompt == "few_shot", trained=candidate.prompt == "trained")
            for prompt in prompts]


def candidate_outputs(candidate: Candidate, model_dir: Path, chats: list[list[dict]], *, max_new_tokens: int,
                      config: GenerationConfig, schema: type[BaseModel] | None = None) -> list[str]:
    """`schema`: the grammar to hold a constrained candidate to (target rows only)."""
    if candidate.endpoint is not None:
        return answers_over_api(candidate.endpoint, chats, max_new_tokens=max_new_tokens, seed=config.seed)
    processor = schema_logits_processor(model_dir, schema) if candidate.constrained and schema else None
    return generate_in_process(model_dir, chats, adapter=candidate.adapter, max_new_tokens=max_new_tokens,
                               batch_size=config.batch_size, logits_processor=processor)


def answers_over_api(config: EndpointConfig, chats: list[list[dict]], *, max_new_tokens: int, seed: int) -> list[str]:
    """Greedy answers from a server, through the client every stage uses (concurrent,
    retried, cached: an interrupted eval resumes without asking again)."""
    endpoint = resolve_endpoint(config, config.base_url, config.model, config.base_url)
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": max_new_tokens, "seed": seed}
    cache = ResponseCache(cache_dir() / "responses.sqlite")
    try:
        return [answer.content.strip() for answer in asyncio.run(complete_chats(endpoint, config, chats, sampling, cache))]
    finally:
        cache.close()
