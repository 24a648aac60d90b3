"""One teacher endpoint: cached, rate-limited, retried requests, with their cost counted.

Every request goes through four steps:

1. the response cache (`response_cache.py`): a hit costs nothing and sends nothing;
2. the endpoint's limits: a slot under the adaptive concurrency limit, at most
   `concurrency` and less while the endpoint shows overload (`adaptive_concurrency.py`),
   and, when the recipe sets them, requests-per-minute and tokens-per-minute budgets
   (leaky buckets from `aiolimiter`; tokens are estimated before sending as prompt
   characters / 4 plus `max_tokens`, the most the request can use);
3. retries on what a later attempt can fix: 429, 5xx, timeouts, dropped connections and
   malformed bodies. The wait is the server's `Retry-After` when it sends one, else
   exponential backoff with jitter: `base * 2**attempt`, times a random factor in
   [0.5, 1), capped. Each retry then waits for a slot like any request, so retries never
   pile onto a server that is already past its capacity. A 400, 401, 403, 404 or 422 will
   not get better: it fails at once with the endpoint's own message (`TeacherRefused`),
   and the build stops;
4. accounting: tokens in and out and their cost from the recipe's prices.

An endpoint with `batch: true` skips steps 2 and 3: what the cache does not have goes to
the endpoint's Batch API as jobs (`batch_jobs.py`), and the answers fill the same cache.

A request that times out or is abandoned closes its connection (aiohttp does so when a
read times out or the task is cancelled; tests/test_adaptive_concurrency.py checks it
against a server that records disconnects), so a server that aborts a request whose
client left, as vLLM does, stops spending work on it.

When the batch is stopped (Ctrl-C, SIGTERM, the budget), nothing new is sent, and the
requests in flight are abandoned after the endpoint's stop grace (`abandon_in_flight`):
at once for a server on this machine, where nothing is paid and a CPU model can take
minutes to answer, and after `REMOTE_STOP_GRACE_S` elsewhere, so that answers already
paid for that arrive in time are cached.

The HTTP transport is aiohttp (`openai.DefaultAioHttpClient`): at high concurrency the
default httpx transport, not the server, is the bottleneck (shared/ENVIRONMENT.md: about
270 requests/s against 800 on this machine's two cores).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import openai
from aiolimiter import AsyncLimiter
from openai.types.chat import ChatCompletion

from datagen.serving.adaptive_concurrency import AdaptiveConcurrency, Slot
from datagen.serving.batch_jobs import BatchJobs
from datagen.serving.request_errors import (
    OVERLOAD,
    RETRIABLE,
    MalformedBody,
    NotSent,
    RequestFailed,
    TeacherError,
    TeacherRefused,
    describe,
    retry_after_s,
)
from datagen.serving.response_cache import CachedResponse, ResponseCache, request_key

__all__ = ["REMOTE_STOP_GRACE_S", "ClientLimits", "Endpoint", "MalformedBody", "NotSent", "RequestFailed",
           "TeacherClient", "TeacherError", "TeacherRefused", "TeacherUsage", "is_loopback"]

# How long, after a stop, requests in flight to a remote endpoint may still finish and be
# cached: a short answer from a hosted API takes a few seconds, a queued one longer; past
# this the user's wait costs more than re-asking on the next run.
REMOTE_STOP_GRACE_S = 30.0


@dataclass
class TeacherUsage:
    """What one teacher cost this run. Cached responses count as hits, not as tokens."""

    requests: int = 0
    cache_hits: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    # The adaptive concurrency limit (`adaptive_concurrency.py`): its ceiling (the
    # endpoint's `concurrency`), where it is now, the lowest it went, and how often
    # overload cut it and answers raised it again.
    concurrency_ceiling: int = 0
    concurrency_limit: int = 0
    concurrency_lowest: int = 0
    concurrency_cuts: int = 0
    concurrency_raises: int = 0
    # An endpoint in batch mode: the jobs this run submitted, and those a killed earlier
    # run had submitted that this one polled instead of paying again.
    batch_jobs: int = 0
    batch_jobs_resumed: int = 0


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str
    # What the cache and the rows' provenance call this endpoint: its base URL, except for
    # a server started for one run on a random loopback port, whose URL means nothing later.
    identity: str = ""

    def __post_init__(self) -> None:
        if not self.identity:
            object.__setattr__(self, "identity", self.base_url)


@dataclass(frozen=True)
class ClientLimits:
    concurrency: int
    requests_per_minute: int | None
    tokens_per_minute: int | None
    timeout_s: float
    max_retries: int
    backoff_base_s: float
    backoff_cap_s: float
    input_usd_per_million: float
    output_usd_per_million: float
    stop_grace_s: float | None = None  # None: 0 on loopback, REMOTE_STOP_GRACE_S elsewhere
    batch: bool = False  # send through the endpoint's Batch API (`batch_jobs.py`)
    poll_s: float = 60.0  # in batch mode, how often each job's status is read


def is_loopback(base_url: str) -> bool:
    """Whether the endpoint is a server on this machine (the embedded model's, a local vLLM)."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TeacherClient:
    def __init__(
        self,
        endpoint: Endpoint,
        limits: ClientLimits,
        cache: ResponseCache,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        self.endpoint = endpoint
        self.limits = limits
        self.cache = cache
        self.usage = TeacherUsage()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=limits.timeout_s,
            max_retries=0,  # retries are ours: counted, logged, and Retry-After honoured
            http_client=openai.DefaultAioHttpClient(timeout=limits.timeout_s),
        )
        self._concurrency = AdaptiveConcurrency(limits.concurrency)
        self._count_concurrency()
        self._batch = None
        if limits.batch:
            self._batch = BatchJobs(self._client, endpoint, limits, cache, self.usage, self._count)
        self._refused: TeacherRefused | None = None  # once refused, send nothing more
        # Requests from their first slot until they return: sent, waiting to retry or about to be.
        self._sending: set[asyncio.Task] = set()
        self.stop_grace_s = limits.stop_grace_s
        if self.stop_grace_s is None:
            self.stop_grace_s = 0.0 if is_loopback(endpoint.base_url) else REMOTE_STOP_GRACE_S
        self._rpm = AsyncLimiter(limits.requests_per_minute, 60) if limits.requests_per_minute else None
        self._tpm = AsyncLimiter(limits.tokens_per_minute, 60) if limits.tokens_per_minute else None

    def cached(self, key: str) -> CachedResponse | None:
        hit = self.cache.get(key)
        if hit is not None:
            self.usage.cache_hits += 1
        return hit

    def key(self, messages: list[dict], sampling: dict[str, Any], sample_index: int,
            response_format: dict | None) -> str:
        return request_key(self.endpoint.identity, self.endpoint.model, sampling, messages,
                           sample_index, response_format)

    async def ask(
        self,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        sample_index: int,
        response_format: dict[str, Any] | None = None,
        may_send: Callable[[], bool] = lambda: True,
    ) -> CachedResponse:
        """The cached response if there is one, else `complete`'s."""
        key = self.key(messages, sampling, sample_index, response_format)
        response = self.cached(key)
        if response is None:
            response = await self.complete(key, messages, sampling, response_format, may_send)
        return response

    async def complete(
        self,
        key: str,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        response_format: dict[str, Any] | None = None,
        may_send: Callable[[], bool] = lambda: True,
    ) -> CachedResponse:
        """Send one request (the caller checked the cache), store the answer, count its cost.

        `may_send` is asked once a slot is free, for the first attempt and for every
        retry; if it says no (a stop was requested meanwhile) nothing more is sent:
        `NotSent`.
        """
        extra = {"response_format": response_format} if response_format else {}
        body = {"model": self.endpoint.model, "messages": messages, **sampling, **extra}
        if self._batch is not None:
            return await self._batch.complete(key, body, may_send)
        estimate = sum(len(m["content"]) for m in messages) // 4 + sampling["max_tokens"]
        sending = asyncio.current_task()
        try:
            for attempt in range(self.limits.max_retries + 1):
                async with self._concurrency.slot() as slot:
                    if not may_send():
                        raise NotSent()
                    self._sending.add(sending)
                    try:
                        response = await self._attempt(body, estimate)
                    except RETRIABLE as error:
                        delay = self._failed(error, slot, attempt)
                    else:
                        self._concurrency.succeeded()
                        self.cache.put(key, self.endpoint.model, response)
                        self._count(response)
                        return response
                    finally:
                        self._count_concurrency()
                # Outside the slot: a request waiting to be retried leaves its place to others.
                await self._sleep(delay)
            raise AssertionError("unreachable")
        finally:
            self._sending.discard(sending)

    async def _attempt(self, body: dict[str, Any], estimate: int) -> CachedResponse:
        if self._rpm:
            await self._rpm.acquire()
        if self._tpm:
            await self._tpm.acquire(min(estimate, self.limits.tokens_per_minute))
        if self._refused is not None:
            raise self._refused
        self.usage.requests += 1
        try:
            # `post` with a plain body skips the SDK's per-request TypedDict transform of
            # the messages, two thirds of the client's CPU time for few-shot prompts
            # (cProfile, tests/benchmarks/teacher_client.py); auth, error mapping and
            # response parsing are the SDK's as with `create`.
            completion = await self._client.post("/chat/completions", body=body, cast_to=ChatCompletion)
        except RETRIABLE:
            raise
        except openai.APIStatusError as error:
            self._refused = TeacherRefused(
                f"teacher {self.endpoint.model} at {self.endpoint.base_url} answered {describe(error)}"
            )
            raise self._refused from error
        return CachedResponse.from_completion(completion)

    def _failed(self, error: Exception, slot: Slot, attempt: int) -> float:
        """Count a retriable failure; raise `RequestFailed` after the last attempt, else
        return how long to wait before the next."""
        if isinstance(error, OVERLOAD):
            self._concurrency.overloaded(slot)
        reason = describe(error)
        kind = reason.split(":")[0]
        self.usage.retry_reasons[kind] = self.usage.retry_reasons.get(kind, 0) + 1
        if attempt == self.limits.max_retries:
            self.usage.failures += 1
            raise RequestFailed(reason, attempt + 1) from error
        self.usage.retries += 1
        return self._delay(error, attempt)

    def _delay(self, error: Exception, attempt: int) -> float:
        requested = retry_after_s(error)
        if requested is not None:
            return min(requested, self.limits.backoff_cap_s * 4)
        backoff = min(self.limits.backoff_cap_s, self.limits.backoff_base_s * 2**attempt)
        return backoff * (0.5 + self._rng.random() / 2)

    def _count(self, response: CachedResponse) -> None:
        self.usage.prompt_tokens += response.prompt_tokens
        self.usage.completion_tokens += response.completion_tokens
        self.usage.cost_usd += (
            response.prompt_tokens * self.limits.input_usd_per_million
            + response.completion_tokens * self.limits.output_usd_per_million
        ) / 1e6

    def _count_concurrency(self) -> None:
        self.usage.concurrency_ceiling = self._concurrency.ceiling
        self.usage.concurrency_limit = self._concurrency.limit
        self.usage.concurrency_lowest = self._concurrency.lowest
        self.usage.concurrency_cuts = self._concurrency.cuts
        self.usage.concurrency_raises = self._concurrency.raises

    def abandon_in_flight(self) -> None:
        """After the stop grace, cancel the requests still in flight: an answer that
        arrives within it is cached; one cut off is asked for again on the next run.
        Batch jobs are not waited for: they keep running at the endpoint, recorded in
        the cache, and the next run polls them."""
        if self._batch is not None:
            self._batch.stop_polling()
            return
        loop = asyncio.get_running_loop()
        for task in list(self._sending):
            loop.call_later(self.stop_grace_s, self._abandon, task)

    def _abandon(self, task: asyncio.Task) -> None:
        if task in self._sending:  # not finished within the grace
            task.cancel()

    async def close(self) -> None:
        await self._client.close()
