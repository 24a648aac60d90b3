"""Distill: ask one or more teacher models to answer prompts, over the OpenAI-compatible API.

The same code path serves OpenAI, a vLLM or llama.cpp server, and the embedded SmolLM2
served by `transformers serve`: the `openai` client at a base URL. Each prompt goes to
one teacher, picked by weight from a hash of the prompt's id (so the choice is the same
on every run and cached answers stay valid), and is sent `samples_per_prompt` times as
separate requests (many servers ignore `n`), each with its own seed.

Structured output is chosen per teacher: `json_schema` sends the task's answer schema as
`response_format` for endpoints that enforce it (OpenAI, vLLM); `prompt` relies on the
system prompt and few-shot turns and parses the answer, for endpoints that do not
(`transformers serve` rejects `response_format`).

Input: Examples with a `prompt` (and usually a `reference`). Output: one Example per
answered (prompt, sample) with `response`, `finish_reason`, and `teacher` (endpoint,
model, sampling, sample index); `parent_ids` = (prompt id,). Requests that still fail
after retries come back as `FailedRequest`s with their reason; the build goes on. A stop
(Ctrl-C, SIGTERM, or the budget) sends nothing new and ends the batch with
`TeacherStopped` once the requests in flight are answered or abandoned after their
endpoint's `stop_grace_s` (`teacher_client.py`): every response received is in the
cache, so the next run resumes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Coroutine, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.records import Example, Teacher, canonical_json
from datagen.response_cache import CachedResponse, ResponseCache
from datagen.task import Task
from datagen.teacher_client import (
    REMOTE_STOP_GRACE_S,
    ClientLimits,
    Endpoint,
    NotSent,
    RequestFailed,
    TeacherClient,
    TeacherError,
    TeacherUsage,
)

SOURCE = "datagen.teacher.answer_prompts@2"
# A remote teacher's context window when the recipe does not give it: 8192 tokens is the
# smallest window among the instruct models commonly served today (Llama 3 8B, Mistral 7B
# v0.1, SmolLM2), so a prompt that fits it fits them all. Raise it for a larger model.
DEFAULT_CONTEXT_TOKENS = 8192
# How often a batch looks for a stop: a signal handler cannot wake the event loop.
STOP_POLL_S = 0.2

__all__ = ["DistillConfig", "TeacherConfig", "TeacherError", "TeacherStopped", "answer_prompts"]


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.8, ge=0, description="0 is greedy; >0 samples")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(
        160, gt=0, description="a triage answer is ~60-80 tokens; longer ones are cut and rejected"
    )
    seed: int = Field(0, description="base seed; each request gets a seed derived from it")


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_usd_per_million: float = Field(0.0, ge=0)
    output_usd_per_million: float = Field(0.0, ge=0)


class TeacherConfig(BaseModel):
    """One teacher endpoint and how hard we may push it.

    `base_url: null` serves the embedded SmolLM2-135M-Instruct on loopback for the length
    of the run. Otherwise give `base_url` and `model`, and, if the endpoint needs a key,
    `api_key_env`: the *name* of the environment variable that holds it.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    weight: float = Field(1.0, gt=0, description="share of prompts sent to this teacher")
    structured_output: Literal["prompt", "json_schema"] = "prompt"
    sampling: SamplingParams = SamplingParams()
    price: Price = Price()
    concurrency: int = Field(8, ge=1, description="requests in flight at once")
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    timeout_s: float = Field(300, gt=0, description="per request; CPU servers queue requests")
    max_retries: int = Field(4, ge=0, description="on 429, 5xx, timeouts, dropped connections, malformed bodies")
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_cap_s: float = Field(30.0, ge=0)
    stop_grace_s: float | None = Field(
        None, ge=0, description="after a stop, how long requests in flight may still finish and be cached; "
        f"unset: 0 for a server on loopback (nothing is paid), {REMOTE_STOP_GRACE_S:.0f} s elsewhere",
    )
    context_tokens: int | None = Field(
        None, gt=0, description="the model's context window, which the prompt, its system and few-shot "
        "turns and max_tokens must fit; unset: the embedded model's own, else "
        f"{DEFAULT_CONTEXT_TOKENS} (see datagen/prompt_length.py)",
    )

    @model_validator(mode="after")
    def _model_named_with_url(self) -> "TeacherConfig":
        if self.base_url is not None and not self.model:
            raise ValueError("a teacher with a base_url must also name its model")
        if self.base_url is None and (self.model or self.api_key_env):
            raise ValueError("model and api_key_env apply only with a base_url")
        context = self.context_tokens or (DEFAULT_CONTEXT_TOKENS if self.base_url is not None else None)
        if context is not None and self.sampling.max_tokens >= context:
            raise ValueError(f"sampling.max_tokens {self.sampling.max_tokens} leaves no room for a prompt in a "
                             f"context of {context} tokens; set context_tokens to the model's context window")
        return self

    def limits(self) -> ClientLimits:
        return ClientLimits(
            concurrency=self.concurrency,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
            input_usd_per_million=self.price.input_usd_per_million,
            output_usd_per_million=self.price.output_usd_per_million,
            stop_grace_s=self.stop_grace_s,
        )


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teachers: list[TeacherConfig] = Field(default_factory=lambda: [TeacherConfig()], min_length=1)
    samples_per_prompt: int = Field(2, ge=1)
    budget_usd: float | None = Field(None, gt=0, description="stop gracefully once spent")
    max_failed_fraction: float = Field(
        0.2, ge=0, le=1, description="above this share of failed requests the stage fails "
        "instead of writing a set with holes: an unreachable or broken teacher, not bad luck",
    )
    cache_path: Path | None = Field(
        None, description="the response cache; default <CRUCIBLE_CACHE>/responses.sqlite, shared by runs"
    )
    max_prompt_tokens: int | None = Field(
        None, gt=0, description="longer prompts are rejected as too_long before any request; unset: what fits "
        "each teacher's context with its system and few-shot turns and max_tokens (datagen/prompt_length.py)",
    )

    @model_validator(mode="after")
    def _one_embedded_teacher(self) -> "DistillConfig":
        if sum(t.base_url is None for t in self.teachers) > 1:
            raise ValueError("at most one teacher can be the embedded model (base_url: null)")
        return self


@dataclass(frozen=True)
class FailedRequest:
    prompt_id: str
    sample_index: int
    model: str
    base_url: str
    reason: str
    attempts: int


class TeacherStopped(TeacherError):
    """The batch was stopped on purpose; what was answered is cached for the next run."""


@dataclass
class DistillResult:
    answers: list[Example]
    failures: list[FailedRequest]
    usage: dict[str, TeacherUsage] = field(default_factory=dict)  # by `usage_key`


def resolve_endpoint(config: TeacherConfig, base_url: str, model: str, identity: str = "") -> Endpoint:
    if config.api_key_env is None:
        # Local servers accept any key; the client insists on one being set.
        return Endpoint(base_url, model, "no-key", identity)
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


def pick_teacher(prompt_id: str, weights: list[float]) -> int:
    """Index of the teacher for a prompt, by weight, from a hash of the prompt id."""
    point = int(hashlib.sha256(prompt_id.encode()).hexdigest()[:12], 16) / 16**12 * sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return len(weights) - 1


def response_format_for(task: Task, config: TeacherConfig) -> dict | None:
    if config.structured_output == "prompt":
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": task.name, "schema": task.answer_schema.model_json_schema(), "strict": True},
    }


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    cached: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @classmethod
    def of(cls, clients: list[TeacherClient], done: int, total: int, failed: int) -> "Progress":
        return cls(
            done=done,
            total=total,
            cached=sum(c.usage.cache_hits for c in clients),
            failed=failed,
            prompt_tokens=sum(c.usage.prompt_tokens for c in clients),
            completion_tokens=sum(c.usage.completion_tokens for c in clients),
            cost_usd=sum(c.usage.cost_usd for c in clients),
        )


class StopRule:
    """Whether to send more requests: once a stop is asked for (a signal, via
    `should_stop`) or the budget is spent, the answer stays yes and `reason` says why.
    While a batch runs, `abandon_in_flight_once_stopped` watches for it."""

    def __init__(self, clients: list[TeacherClient], budget_usd: float | None,
                 should_stop: Callable[[], str | None]):
        self.clients = clients
        self.budget_usd = budget_usd
        self.should_stop = should_stop
        self.reason: str | None = None

    def __call__(self) -> bool:
        if self.reason is None:
            reason = self.should_stop()
            spent = sum(c.usage.cost_usd for c in self.clients)
            if reason is None and self.budget_usd is not None and spent >= self.budget_usd:
                reason = f"budget of ${self.budget_usd:.2f} spent (${spent:.4f})"
            self.reason = reason
        return self.reason is not None

    async def abandon_in_flight_once_stopped(self) -> None:
        while not self():
            await asyncio.sleep(STOP_POLL_S)
        for client in self.clients:
            client.abandon_in_flight()


async def answer_prompts(
    prompts: list[Example],
    task: Task,
    config: DistillConfig,
    endpoints: list[Endpoint],
    cache: ResponseCache,
    run_id: str,
    *,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    should_stop: Callable[[], str | None] = lambda: None,
    few_shot: bool = True,
    source: str = SOURCE,
) -> DistillResult:
    """Answer every prompt `samples_per_prompt` times with the teachers in `config`.

    `endpoints[i]` is where `config.teachers[i]` is reached. `should_stop` returns a
    reason (e.g. "SIGINT") to stop; the budget is checked here. A student is asked as it
    will be after training, without the few-shot turns (`few_shot=False`).
    """
    clients = [
        TeacherClient(endpoint, teacher.limits(), cache)
        for endpoint, teacher in zip(endpoints, config.teachers, strict=True)
    ]
    response_formats = [response_format_for(task, teacher) for teacher in config.teachers]
    weights = [t.weight for t in config.teachers]
    jobs = [(p, i) for p in prompts for i in range(config.samples_per_prompt)]
    answers: list[Example | None] = [None] * len(jobs)
    failures: list[FailedRequest] = []
    stop = StopRule(clients, config.budget_usd, should_stop)
    answered = [0]  # a running count: summing `answers` on every report is quadratic

    def report() -> None:
        on_progress(Progress.of(clients, answered[0], len(jobs), len(failures)))

    async def answer(slot: int, prompt: Example, sample_index: int) -> None:
        index = pick_teacher(prompt.id, weights)
        teacher, client = config.teachers[index], clients[index]
        sampling = teacher.sampling.model_dump()
        sampling["seed"] = request_seed(teacher.sampling.seed, prompt.id, sample_index)
        messages = task.messages(prompt.prompt, few_shot=few_shot)
        try:
            response = await client.ask(messages, sampling, sample_index, response_formats[index],
                                        may_send=lambda: not stop())
        except NotSent:
            return
        except RequestFailed as failure:
            failures.append(FailedRequest(prompt.id, sample_index, client.endpoint.model,
                                          client.endpoint.identity, failure.reason, failure.attempts))
            report()
            return
        answers[slot] = make_answer(prompt, sample_index, response, sampling, client.endpoint, run_id, task, source)
        answered[0] += 1
        report()

    await run_requests([answer(slot, prompt, index) for slot, (prompt, index) in enumerate(jobs)], clients, stop)
    if stop.reason:
        raise TeacherStopped(
            f"stopped: {stop.reason}; {answered[0]} of {len(jobs)} answers are cached, "
            "run the same command again to resume"
        )
    return DistillResult(
        answers=[a for a in answers if a is not None],
        failures=failures,
        usage={usage_key(c.endpoint): c.usage for c in clients},
    )


def usage_key(endpoint: Endpoint) -> str:
    """Usage is per endpoint: one model served at two places is two teachers."""
    return f"{endpoint.model} at {endpoint.identity}"


async def run_requests(requests: list[Coroutine], clients: list[TeacherClient], stop: StopRule) -> None:
    """Run request coroutines concurrently (each client bounds its own concurrency), then
    close the clients. A refusal from any endpoint ends them all and is raised as itself,
    not inside an exception group."""
    try:
        await run_until_stopped(requests, stop)
    except* TeacherError as refused:
        raise refused.exceptions[0] from None
    finally:
        for client in clients:
            await client.close()


async def run_until_stopped(requests: list[Coroutine], stop: StopRule) -> list[asyncio.Task]:
    """Run request coroutines concurrently; once `stop` says so, the clients abandon what
    they have in flight. The tasks come back in request order; an abandoned one is cancelled."""
    watcher = asyncio.create_task(stop.abandon_in_flight_once_stopped())
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(request) for request in requests]
    finally:
        watcher.cancel()
    return tasks


def check_failures(result: DistillResult, config: DistillConfig, failed_log: Path) -> None:
    """Fail the stage when too many requests failed; a few are recorded and tolerated."""
    attempted = len(result.answers) + len(result.failures)
    if not result.failures or len(result.failures) <= config.max_failed_fraction * attempted:
        return
    first = result.failures[0]
    raise TeacherError(
        f"{len(result.failures)} of {attempted} requests failed after retries "
        f"(more than {config.max_failed_fraction:.0%}); first: teacher {first.model} at "
        f"{first.base_url}: {first.reason} after {first.attempts} attempts; all are listed in {failed_log}"
    )


def make_answer(prompt: Example, sample_index: int, response: CachedResponse, sampling: dict,
                endpoint: Endpoint, run_id: str, task: Task, source: str = SOURCE) -> Example:
    return Example(
        task=task.name,
        prompt=prompt.prompt,
        response=response.content,
        reference=prompt.reference,
        source=source,
        template_id=prompt.template_id,
        seed=sampling["seed"],
        teacher=Teacher(
            base_url=endpoint.identity,
            model=endpoint.model,
            sampling=canonical_json(sampling),
            sample_index=sample_index,
        ),
        finish_reason=response.finish_reason,
        parent_ids=(prompt.id,),
        run_id=run_id,
    )
