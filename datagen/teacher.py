"""Ask a teacher model to answer prompts, over any OpenAI-compatible endpoint.

The same code path serves OpenAI, a vLLM or llama.cpp server, and the embedded
SmolLM2 served by `transformers serve`: the `openai` client at a base URL. Each prompt
is sent `samples_per_prompt` times as separate requests (many servers ignore `n`), each
with its own seed, and every answer becomes an Example whose `teacher` field records the
endpoint, model, sampling parameters and sample index. The API key is read from the
environment variable the recipe names and never stored.

Input: Examples with a `prompt` (and usually a `reference`). Output: one Example per
(prompt, sample) with `response` and `finish_reason` set, `parent_ids` = (prompt id,).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import openai
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.records import Example, Teacher, canonical_json
from datagen.task import Task

SOURCE = "datagen.teacher.answer_prompts@1"


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.8, ge=0, description="0 is greedy; >0 samples")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(
        160, gt=0, description="a triage answer is ~60-80 tokens; longer ones are cut and rejected"
    )
    seed: int = Field(0, description="base seed; each request gets a seed derived from it")


class TeacherConfig(BaseModel):
    """Which teacher answers, and how hard we may push it.

    `base_url: null` (the default) serves the embedded SmolLM2-135M-Instruct on loopback
    for the length of the run. Otherwise give `base_url` and `model`, and, if the
    endpoint needs a key, `api_key_env`: the *name* of the environment variable holding it.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    samples_per_prompt: int = Field(2, ge=1)
    sampling: SamplingParams = SamplingParams()
    concurrency: int = Field(8, ge=1, description="requests in flight at once")
    timeout_s: float = Field(300, gt=0, description="per request; CPU servers queue requests")
    max_retries: int = Field(
        3, ge=0, description="the openai client's own retries: exponential backoff with "
        "jitter, honouring Retry-After, on connection errors, 408, 409, 429 and 5xx",
    )

    @model_validator(mode="after")
    def _model_named_with_url(self) -> "TeacherConfig":
        if self.base_url is not None and not self.model:
            raise ValueError("a teacher with a base_url must also name its model")
        if self.base_url is None and (self.model or self.api_key_env):
            raise ValueError("model and api_key_env apply only with a base_url")
        return self


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str


class TeacherError(RuntimeError):
    pass


def resolve_endpoint(config: TeacherConfig, base_url: str, model: str) -> Endpoint:
    if config.api_key_env is None:
        # Local servers accept any key; the client insists on one being set.
        return Endpoint(base_url, model, "no-key")
    key = os.environ.get(config.api_key_env)
    if not key:
        raise TeacherError(
            f"teacher {model} at {base_url}: environment variable {config.api_key_env} is not set"
        )
    return Endpoint(base_url, model, key)


def request_seed(base_seed: int, prompt_id: str, sample_index: int) -> int:
    """A seed per (prompt, sample), stable across runs and independent of request order."""
    digest = hashlib.sha256(f"{base_seed}:{prompt_id}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


async def answer_prompts(
    prompts: list[Example],
    task: Task,
    config: TeacherConfig,
    endpoint: Endpoint,
    run_id: str,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Example]:
    """Answer every prompt `samples_per_prompt` times; raise TeacherError on any failure.

    A failure stops the whole batch (the other requests are cancelled) so that the
    stage never writes a partial table that looks complete.
    """
    client = openai.AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
    )
    limit = asyncio.Semaphore(config.concurrency)
    jobs = [(p, i) for p in prompts for i in range(config.samples_per_prompt)]
    done = 0

    async def answer(prompt: Example, sample_index: int) -> Example:
        nonlocal done
        sampling = config.sampling.model_dump()
        sampling["seed"] = request_seed(config.sampling.seed, prompt.id, sample_index)
        async with limit:
            try:
                completion = await client.chat.completions.create(
                    model=endpoint.model,
                    messages=task.messages(prompt.prompt, few_shot=True),
                    **sampling,
                )
            except openai.APIConnectionError as error:
                raise TeacherError(
                    f"teacher {endpoint.model} at {endpoint.base_url} could not be reached after "
                    f"{config.max_retries} retries: {error}"
                ) from error
            except openai.APIStatusError as error:
                raise TeacherError(
                    f"teacher {endpoint.model} at {endpoint.base_url} answered "
                    f"HTTP {error.status_code}: {error.message}"
                ) from error
        choice = completion.choices[0]
        done += 1
        on_progress(done, len(jobs))
        return Example(
            task=task.name,
            prompt=prompt.prompt,
            response=choice.message.content or "",
            reference=prompt.reference,
            source=SOURCE,
            template_id=prompt.template_id,
            seed=sampling["seed"],
            teacher=Teacher(
                base_url=endpoint.base_url,
                model=endpoint.model,
                sampling=canonical_json(sampling),
                sample_index=sample_index,
            ),
            finish_reason=choice.finish_reason,
            parent_ids=(prompt.id,),
            run_id=run_id,
        )

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(answer(p, i)) for p, i in jobs]
    except* TeacherError as failures:
        raise failures.exceptions[0] from None
    finally:
        await client.close()
    return [t.result() for t in tasks]
