"""One teacher endpoint: cached, rate-limited, retried requests, with their cost counted.

Every request goes through four steps:

1. the response cache (`response_cache.py`): a hit costs nothing and sends nothing;
2. the endpoint's limits: at most `concurrency` requests in flight, and, when the recipe
   sets them, requests-per-minute and tokens-per-minute budgets (leaky buckets from
   `aiolimiter`; tokens are estimated before sending as prompt characters / 4 plus
   `max_tokens`, the most the request can use);
3. retries on what a later attempt can fix: 429, 5xx, timeouts, dropped connections and
   malformed bodies. The wait is the server's `Retry-After` when it sends one, else
   exponential backoff with jitter: `base * 2**attempt`, times a random factor in
   [0.5, 1), capped. A 400, 401, 403, 404 or 422 will not get better: it fails at once
   with the endpoint's own message (`TeacherRefused`), and the build stops;
4. accounting: tokens in and out and their cost from the recipe's prices.

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
import email.utils
import ipaddress
import json
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import openai
from aiolimiter import AsyncLimiter
from openai.types.chat import ChatCompletion

from datagen.serving.response_cache import CachedResponse, ResponseCache, request_key

# How long, after a stop, requests in flight to a remote endpoint may still finish and be
# cached: a short answer from a hosted API takes a few seconds, a queued one longer; past
# this the user's wait costs more than re-asking on the next run.
REMOTE_STOP_GRACE_S = 30.0


class TeacherError(RuntimeError):
    pass


class TeacherRefused(TeacherError):
    """The endpoint rejected the request itself (bad key, unknown model, bad parameters)."""


class RequestFailed(Exception):
    """One request still failed after every retry; the build records it and goes on."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


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


def is_loopback(base_url: str) -> bool:
    """Whether the endpoint is a server on this machine (the embedded model's, a local vLLM)."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# json.JSONDecodeError: the client raises it as is for a 200 response whose body is not JSON.
_RETRIABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError,
              openai.APIResponseValidationError, json.JSONDecodeError)


def retry_after_s(error: Exception) -> float | None:
    """The server's requested wait, from `retry-after-ms` or `Retry-After` (seconds or a date)."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


def describe(error: Exception) -> str:
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {error.message}"
    if isinstance(error, openai.APIConnectionError):
        # aiohttp reports a refused connection as a connect timeout: the cause says which.
        kind = "timeout" if isinstance(error, openai.APITimeoutError) else "connection error"
        return f"{kind}: {error.__cause__ or error}"
    return f"{type(error).__name__}: {error}"


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
        self._in_flight = asyncio.Semaphore(limits.concurrency)
        self._refused: TeacherRefused | None = None  # once refused, send nothing more
        self._sending: set[asyncio.Task] = set()  # requests holding a slot: sent, retrying or about to be
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

        `may_send` is asked once a slot is free and before every retry; if it says no (a
        stop was requested meanwhile) nothing more is sent: `NotSent`.
        """
        async with self._in_flight:
            if not may_send():
                raise NotSent()
            sending = asyncio.current_task()
            self._sending.add(sending)
            try:
                return await self._send(key, messages, sampling, response_format, may_send)
            finally:
                self._sending.discard(sending)

    async def _send(self, key: str, messages: list[dict[str, str]], sampling: dict[str, Any],
                    response_format: dict[str, Any] | None, may_send: Callable[[], bool]) -> CachedResponse:
        extra = {"response_format": response_format} if response_format else {}
        estimate = sum(len(m["content"]) for m in messages) // 4 + sampling["max_tokens"]
        for attempt in range(self.limits.max_retries + 1):
            if attempt and not may_send():
                raise NotSent()
            if self._rpm:
                await self._rpm.acquire()
            if self._tpm:
                await self._tpm.acquire(min(estimate, self.limits.tokens_per_minute))
            if self._refused is not None:
                raise self._refused
            self.usage.requests += 1
            try:
                # `post` with a plain body skips the SDK's per-request TypedDict
                # transform of the messages, two thirds of the client's CPU time for
                # few-shot prompts (cProfile, tests/benchmarks/teacher_client.py); auth,
                # error mapping and response parsing are the SDK's as with `create`.
                completion = await self._client.post(
                    "/chat/completions",
                    body={"model": self.endpoint.model, "messages": messages, **sampling, **extra},
                    cast_to=ChatCompletion,
                )
                response = self._response(completion)
            except _RETRIABLE + (MalformedBody,) as error:
                reason = describe(error)
                kind = reason.split(":")[0]
                self.usage.retry_reasons[kind] = self.usage.retry_reasons.get(kind, 0) + 1
                if attempt == self.limits.max_retries:
                    self.usage.failures += 1
                    raise RequestFailed(reason, attempt + 1) from error
                self.usage.retries += 1
                await self._sleep(self._delay(error, attempt))
                continue
            except openai.APIStatusError as error:
                self._refused = TeacherRefused(
                    f"teacher {self.endpoint.model} at {self.endpoint.base_url} answered "
                    f"{describe(error)}"
                )
                raise self._refused from error
            self.cache.put(key, self.endpoint.model, response)
            self._count(response)
            return response
        raise AssertionError("unreachable")

    def _response(self, completion: Any) -> CachedResponse:
        if not getattr(completion, "choices", None):
            raise MalformedBody("response has no choices")
        choice = completion.choices[0]
        content = choice.message.content if choice.message else None
        if not isinstance(content, str):
            raise MalformedBody("response choice has no message content")
        usage = completion.usage
        return CachedResponse(
            content=content,
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

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

    def abandon_in_flight(self) -> None:
        """After the stop grace, cancel the requests still in flight: an answer that
        arrives within it is cached; one cut off is asked for again on the next run."""
        loop = asyncio.get_running_loop()
        for task in list(self._sending):
            loop.call_later(self.stop_grace_s, self._abandon, task)

    def _abandon(self, task: asyncio.Task) -> None:
        if task in self._sending:  # not finished within the grace
            task.cancel()

    async def close(self) -> None:
        await self._client.close()


class NotSent(Exception):
    """The request was withdrawn before it was sent."""


class MalformedBody(Exception):
    """A 200 response without a usable answer: a proxy or server fault worth a retry."""
