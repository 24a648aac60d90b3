"""Distill: ask one or more teacher models to answer prompts, over the OpenAI-compatible API.

The same code path serves OpenAI, a vLLM or llama.cpp server, and the embedded SmolLM2
served by `transformers serve`: the `openai` client at a base URL. Each prompt goes to
one teacher, picked by weight from a hash of the prompt's id (so the choice is the same
on every run and cached answers stay valid), and is sent `samples_per_prompt` times as
separate requests (many servers ignore `n`), each with its own seed.

Structured output is chosen per teacher: `json_schema` sends the task's answer schema as
`response_format` for endpoints that enforce it (OpenAI, vLLM); `prompt` relies on the
system prompt and few-shot turns and parses the answer, for endpoints that do not
(`transformers serve` rejects `response_format`). A task with tools is asked the same way
per teacher (`tool_calling`): `prompt` lists the tools in the system turn; `api` sends them
as the request's `tools`, which then join the sampling parameters, so the cache key and
every answer's `teacher.sampling` say which way the teacher was asked.

Input: Examples with a `prompt` (and usually a `reference`); a conversation's prompt is
its latest user turn, answered with its earlier turns (`context`) in the chat. Output:
one Example per answered (prompt, sample) with `response`, `finish_reason`, and `teacher`
(endpoint, model, sampling, sample index), and the prompt's context; `parent_ids` =
(prompt id,). Requests that still fail
after retries come back as `FailedRequest`s with their reason; the build goes on. A stop
(Ctrl-C, SIGTERM, or the budget) sends nothing new and ends the batch with
`TeacherStopped` once the requests in flight are answered or abandoned after their
endpoint's `stop_grace_s` (`teacher_client.py`): every response received is in the
cache, so the next run resumes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Teacher
from datagen.foundation.task import Task
from datagen.serving.client import Endpoint, NotSent, RequestFailed, TeacherClient, TeacherError, TeacherUsage
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.request_batch import Progress, StopRule, TeacherStopped, run_requests
from datagen.serving.response_cache import CachedResponse, ResponseCache

SOURCE = "datagen.teacher.answer_prompts@2"

class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teachers: list[EndpointConfig] = Field(default_factory=lambda: [EndpointConfig()], min_length=1)
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
        "each teacher's context with its system and few-shot turns and max_tokens (datagen/filters/prompt_length.py)",
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


@dataclass
class DistillResult:
    answers: list[Example]
    failures: list[FailedRequest]
    usage: dict[str, TeacherUsage] = field(default_factory=dict)  # by `usage_key`


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


def response_format_for(task: Task, config: EndpointConfig) -> dict | None:
    # A text task's reply is prose: its answer schema is its label's, not the reply's.
    if config.structured_output == "prompt" or task.answer_format == "text":
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": task.name, "schema": task.answer_schema.model_json_schema(), "strict": True},
    }


def tool_request_for(task: Task, config: EndpointConfig) -> dict:
    """What a request to this teacher adds for a task with tools: nothing when they are in
    the system turn (`tool_calling: prompt`), else the tools and `tool_choice: required`."""
    if config.tool_calling == "prompt":
        return {}
    if not task.tools:
        raise ValueError(f"a teacher has tool_calling: api, but task {task.name} declares no tools")
    return {"tools": [dict(tool) for tool in task.tools], "tool_choice": "required"}


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
    trained: bool = False,
    source: str = SOURCE,
) -> DistillResult:
    """Answer every prompt `samples_per_prompt` times with the teachers in `config`.

    `endpoints[i]` is where `config.teachers[i]` is reached. `should_stop` returns a
    reason (e.g. "SIGINT") to stop; the budget is checked here. A student is asked as it
    will be after training, without the few-shot turns (`few_shot=False`); a trained
    model with the chat it was trained on (`trained=True`).
    """
    clients = [
        TeacherClient(endpoint, teacher.limits(), cache)
        for endpoint, teacher in zip(endpoints, config.teachers, strict=True)
    ]
    response_formats = [response_format_for(task, teacher) for teacher in config.teachers]
    tool_requests = [tool_request_for(task, teacher) for teacher in config.teachers]
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
        sampling = teacher.sampling.model_dump() | tool_requests[index]
        sampling["seed"] = request_seed(teacher.sampling.seed, prompt.id, sample_index)
        messages = task.messages(prompt.prompt, few_shot=few_shot, trained=trained, context=prompt.context,
                                 tools_in_system=not tool_requests[index])
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
        context=prompt.context,
    )
