"""Running a batch of requests to one or more endpoints: concurrently, each client
bounding its own concurrency; stopped on a signal or a spent budget, after which nothing
new is sent and what is in flight is abandoned after the endpoint's stop grace
(`client.py`); with progress counted for the terminal and Prefect. Teachers, the student,
self-generation, the judge and the evals all run their requests through it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable, Coroutine

from datagen.serving.client import Endpoint, NotSent, RequestFailed, TeacherClient, TeacherError
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.response_cache import CachedResponse, ResponseCache

# How often a batch looks for a stop: a signal handler cannot wake the event loop.
STOP_POLL_S = 0.2


class TeacherStopped(TeacherError):
    """The batch was stopped on purpose; what was answered is cached for the next run."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    cached: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    # Requests the endpoints allow in flight now, and at most (adaptive_concurrency.py).
    concurrency: int
    concurrency_ceiling: int

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
            concurrency=sum(c.usage.concurrency_limit for c in clients),
            concurrency_ceiling=sum(c.usage.concurrency_ceiling for c in clients),
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


async def complete_chats(endpoint: Endpoint, config: EndpointConfig, chats: list[list[dict]], sampling: dict,
                         cache: ResponseCache, *, response_format: dict | None = None,
                         should_stop: Callable[[], str | None] = lambda: None) -> list[CachedResponse]:
    """One answer to every chat from one endpoint, in order: cached, concurrent up to the
    endpoint's limits, retried. A request that still fails is an error here, not a hole:
    an eval with a missing row would score a different set of rows."""
    client = TeacherClient(endpoint, config.limits(), cache)
    stop = StopRule([client], None, should_stop)
    answers: list[CachedResponse | None] = [None] * len(chats)

    async def answer(slot: int, chat: list[dict]) -> None:
        try:
            answers[slot] = await client.ask(chat, sampling, 0, response_format, may_send=lambda: not stop())
        except NotSent:
            return
        except RequestFailed as failure:
            raise TeacherError(f"{endpoint.model} at {endpoint.identity}: a request failed after "
                               f"{failure.attempts} attempts: {failure.reason}") from None

    await run_requests([answer(slot, chat) for slot, chat in enumerate(chats)], [client], stop)
    if stop.reason:
        done = sum(answer is not None for answer in answers)
        raise TeacherStopped(f"stopped: {stop.reason}; {done} of {len(chats)} answers are cached, "
                             "run the same command again to resume")
    return answers
