"""Requests sent as batch jobs, for an endpoint with `batch: true`: OpenAI's Batch API.

OpenAI answers a batch within 24 hours at about half the price of the same requests sent
one at a time; other providers offer the same endpoints. Nothing changes for the caller:
`TeacherClient.complete` hands the request here, and the answer comes back into the same
response cache, counted the same way. Requests created together (a stage's whole list:
answer_prompts, complete_chats, one round of self-generation) go together, in as few jobs
as the API's limits allow.

The protocol, as the `openai` package exposes it:

1. the requests are written as JSONL, one line each: `custom_id` (the request's cache
   key), `method` POST, `url` /v1/chat/completions, `body` (what would have been posted);
   at most `MAX_REQUESTS_PER_JOB` lines and `MAX_BYTES_PER_JOB` bytes a file;
2. `files.create(purpose="batch")` uploads the file; `batches.create(endpoint=
   "/v1/chat/completions", completion_window="24h")` starts the job;
3. the job is recorded in the cache's sqlite (`ResponseCache.record_batch_job`) the moment
   the API accepts it, before anything waits for it;
4. `batches.retrieve` is asked every `poll_s` until the job is completed, expired,
   cancelled or failed; then `files.content` reads its output file (answers: cached and
   counted) and its error file (a line per request that failed: `RequestFailed` with the
   line's reason, as the build records any failed request).

A run that finds, for the requests it needs, jobs recorded and not yet read (a killed or
stopped run's) polls those jobs instead of submitting the requests again. Requests a job
did not get to (expired, cancelled: `batch_expired`, `batch_cancelled` in the error file,
or no line at all) are resubmitted in a new job, each at most `max_retries + 1` times in
all. A failed job (the API rejected the file, e.g. an unknown model) is not resubmitted:
its requests fail with the job's errors, and the same file would fail again.

A stop (Ctrl-C, SIGTERM, the budget) ends the polling at once and submits nothing more;
the jobs keep running at the endpoint, recorded, and the next run collects them. Reading
a job's status or files is retried on 429, 5xx and dropped connections every `poll_s`, up
to `max_retries` times in a row; past that the stage fails and the jobs stay recorded.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import openai
import pydantic
from openai.types import Batch
from openai.types.chat import ChatCompletion

from datagen.serving.request_errors import (
    RETRIABLE,
    MalformedBody,
    NotSent,
    RequestFailed,
    TeacherError,
    TeacherRefused,
    describe,
    retry_after_s,
)
from datagen.serving.response_cache import CachedResponse, ResponseCache

if TYPE_CHECKING:  # client.py imports this module
    from datagen.serving.client import ClientLimits, Endpoint, TeacherUsage

# The Batch API's limits on one input file (openai's `batches.create` documentation: "up to
# 50,000 requests, and can be up to 200 MB in size"); MB read as 10**6 bytes, the smaller.
MAX_REQUESTS_PER_JOB = 50_000
MAX_BYTES_PER_JOB = 200_000_000

CHAT_COMPLETIONS = "/v1/chat/completions"
FINISHED = ("completed", "expired", "cancelled", "failed")
# Error-file codes of requests the job never ran: not the request's fault, so sent again.
NOT_RUN = ("batch_expired", "batch_cancelled")


def request_line(key: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"custom_id": key, "method": "POST", "url": CHAT_COMPLETIONS, "body": body}).encode() + b"\n"


def job_files(lines: list[bytes], max_requests: int = MAX_REQUESTS_PER_JOB,
              max_bytes: int = MAX_BYTES_PER_JOB) -> list[list[int]]:
    """Split request lines, in order, into input files within the API's limits; each file
    is the list of its lines' indices."""
    files: list[list[int]] = []
    size = 0
    for index, line in enumerate(lines):
        if len(line) > max_bytes:
            raise TeacherError(f"batch request {index} is {len(line)} bytes, over the Batch API's "
                               f"{max_bytes} bytes a file")
        if not files or len(files[-1]) == max_requests or size + len(line) > max_bytes:
            files.append([])
            size = 0
        files[-1].append(index)
        size += len(line)
    return files


def line_reason(record: dict[str, Any]) -> str:
    """Why one line of an output or error file has no answer, in the API's words."""
    error = record.get("error")
    if error:
        return f"{error.get('code')}: {error.get('message')}"
    response = record.get("response") or {}
    body = response.get("body") or {}
    message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    return f"HTTP {response.get('status_code')}: {message or body}"


@dataclass
class _Queued:
    body: dict[str, Any]
    may_send: Callable[[], bool]
    answer: asyncio.Future


class _PollingStopped(Exception):
    """A stop was asked for while waiting: leave the jobs running and recorded."""


class BatchJobs:
    def __init__(self, client: openai.AsyncOpenAI, endpoint: Endpoint, limits: ClientLimits,
                 cache: ResponseCache, usage: TeacherUsage, count: Callable[[CachedResponse], None],
                 *, max_requests_per_job: int = MAX_REQUESTS_PER_JOB, max_bytes_per_job: int = MAX_BYTES_PER_JOB):
        self._client = client
        self._endpoint = endpoint
        self._limits = limits
        self._cache = cache
        self._usage = usage
        self._count = count
        self._max_requests = max_requests_per_job
        self._max_bytes = max_bytes_per_job
        self._queued: dict[str, _Queued] = {}
        self._gathering = False
        self._stopped = asyncio.Event()
        self._waves: set[asyncio.Task] = set()

    async def complete(self, key: str, body: dict[str, Any], may_send: Callable[[], bool]) -> CachedResponse:
        """Queue one request for the next job and wait for its answer."""
        if self._stopped.is_set() or not may_send():
            raise NotSent()
        queued = self._queued.get(key)
        if queued is None:
            queued = self._queued[key] = _Queued(body, may_send, asyncio.get_running_loop().create_future())
            if not self._gathering:
                self._gathering = True
                wave = asyncio.create_task(self._run_wave())
                self._waves.add(wave)
                wave.add_done_callback(self._waves.discard)
        # Shielded: one request asked twice shares one answer, and cancelling one asker
        # must not cancel the other's.
        return await asyncio.shield(queued.answer)

    def stop_polling(self) -> None:
        self._stopped.set()

    async def _run_wave(self) -> None:
        # Let every request created with this one reach the queue: a stage creates its
        # requests together, and each queues itself before its first wait.
        try:
            while True:
                queued = len(self._queued)
                await asyncio.sleep(0)
                if len(self._queued) == queued:
                    break
        finally:
            self._gathering = False
        wave, self._queued = self._queued, {}
        try:
            await self._answer(wave)
        except _PollingStopped:
            pass
        except Exception as error:  # the stage's error, raised by every request of the wave
            for queued in wave.values():
                if not queued.answer.done():
                    queued.answer.set_exception(error)
        for queued in wave.values():
            if not queued.answer.done():
                queued.answer.set_exception(NotSent())

    async def _answer(self, wave: dict[str, _Queued]) -> None:
        jobs = {job_id: keys for job_id, keys in
                self._cache.submitted_batch_jobs(self._endpoint.identity, self._endpoint.model).items()
                if any(key in wave for key in keys)}
        self._usage.batch_jobs_resumed += len(jobs)
        held = {key for keys in jobs.values() for key in keys}
        to_submit = [key for key in wave if key not in held]
        while jobs or to_submit:
            to_submit = [key for key in to_submit if wave[key].may_send()]
            if to_submit and not self._stopped.is_set():
                lines = [request_line(key, wave[key].body) for key in to_submit]
                for indices in job_files(lines, self._max_requests, self._max_bytes):
                    keys = [to_submit[i] for i in indices]
                    jobs[await self._submit(keys, b"".join(lines[i] for i in indices))] = keys
            to_submit = []
            for job_id in list(jobs):
                batch = await self._call(lambda: self._client.batches.retrieve(job_id), f"reading batch job {job_id}")
                if batch.status in FINISHED:
                    to_submit += await self._collect(batch, jobs.pop(job_id), wave)
            if jobs and not to_submit:
                await self._wait(self._limits.poll_s)

    async def _submit(self, keys: list[str], data: bytes) -> str:
        """Upload one input file, start its job and record it."""
        uploaded = await self._call(
            lambda: self._client.files.create(file=("crucible-batch.jsonl", data, "application/jsonl"),
                                              purpose="batch"),
            "uploading a batch input file",
        )
        batch = await self._call(
            lambda: self._client.batches.create(input_file_id=uploaded.id, endpoint=CHAT_COMPLETIONS,
                                                completion_window="24h"),
            f"starting a batch job from {uploaded.id}",
        )
        self._cache.record_batch_job(batch.id, self._endpoint.identity, self._endpoint.model, uploaded.id, keys)
        self._usage.batch_jobs += 1
        self._usage.requests += len(keys)
        return batch.id

    async def _collect(self, batch: Batch, keys: list[str], wave: dict[str, _Queued]) -> list[str]:
        """Read a finished job's files into the cache; return the wave's requests it did
        not run, to be submitted again."""
        answered: set[str] = set()
        failed: dict[str, str] = {}
        for record in await self._records(batch.output_file_id) + await self._records(batch.error_file_id):
            key = record["custom_id"]
            response = record.get("response") or {}
            if response.get("status_code") == 200:
                try:
                    answer = CachedResponse.from_completion(ChatCompletion.model_validate(response["body"]))
                except (MalformedBody, pydantic.ValidationError) as error:
                    failed[key] = describe(error)
                    continue
                self._cache.put(key, self._endpoint.model, answer)
                self._count(answer)
                answered.add(key)
                if key in wave and not wave[key].answer.done():
                    wave[key].answer.set_result(answer)
            elif (record.get("error") or {}).get("code") not in NOT_RUN:
                failed[key] = line_reason(record)
        if batch.status == "failed":
            failed |= self._rejected(batch, keys)
        again = []
        for key in keys:
            if key in answered or key not in wave or wave[key].answer.done():
                continue
            submissions = self._cache.batch_submissions(key)
            if key in failed:
                self._fail(wave[key], failed[key], submissions)
            elif submissions <= self._limits.max_retries:
                again.append(key)
            else:
                self._fail(wave[key], f"batch job {batch.status}: no answer after {submissions} jobs", submissions)
        self._cache.finish_batch_job(batch.id, batch.status)
        return again

    def _rejected(self, batch: Batch, keys: list[str]) -> dict[str, str]:
        """A failed job's errors by request: an error naming a line is that request's
        reason; the others were refused with their file, and say why."""
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        why = "; ".join(f"line {e.line}: {e.code}: {e.message}" if e.line else f"{e.code}: {e.message}"
                        for e in errors) or "no reason given"
        reasons = {key: f"batch job failed: its input file was refused ({why})" for key in keys}
        for error in errors:
            if error.line is not None and 1 <= error.line <= len(keys):
                reasons[keys[error.line - 1]] = f"batch job failed: {error.code}: {error.message}"
        return reasons

    def _fail(self, queued: _Queued, reason: str, attempts: int) -> None:
        self._usage.failures += 1
        queued.answer.set_exception(RequestFailed(reason, attempts))

    async def _records(self, file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        content = await self._call(lambda: self._client.files.content(file_id), f"reading batch file {file_id}")
        return [json.loads(line) for line in content.text.splitlines() if line.strip()]

    async def _call(self, call: Callable[[], Awaitable[Any]], what: str) -> Any:
        """One call to the Batch API, retried on what a later call can fix. A stop ends
        the wait before a retry, never a call under way: a job is either not started or
        started and recorded."""
        for attempt in range(self._limits.max_retries + 1):
            try:
                return await call()
            except RETRIABLE as error:
                reason = describe(error)
                kind = reason.split(":")[0]
                self._usage.retry_reasons[kind] = self._usage.retry_reasons.get(kind, 0) + 1
                if attempt == self._limits.max_retries:
                    raise TeacherError(
                        f"batch API of {self._endpoint.model} at {self._endpoint.base_url}: {what} failed after "
                        f"{attempt + 1} attempts: {reason}; the jobs submitted are recorded in "
                        f"{self._cache.path}, run again to resume"
                    ) from error
                self._usage.retries += 1
                await self._wait(retry_after_s(error) or self._limits.poll_s)
            except openai.APIStatusError as error:
                raise TeacherRefused(f"batch API of {self._endpoint.model} at {self._endpoint.base_url} refused "
                                     f"{what}: {describe(error)}") from error
        raise AssertionError("unreachable")

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except TimeoutError:
            return
        raise _PollingStopped()
