"""OpenAI's Batch API on loopback, with failures on cue: a test double.

A paid batch endpoint cannot run here, and cannot be made to expire a job or fail one
line on cue. This server implements what crucible uses of it, as the `openai` package
calls it: `POST /v1/files` (multipart, purpose `batch`), `POST /v1/batches`,
`GET /v1/batches/{id}`, `GET /v1/files/{id}/content`, with the API's JSONL request,
output and error lines. It checks what a real one would refuse (the endpoint, the
completion window, each line's method, url and unique custom_id, one model a file).

A job stays `in_progress` until it has been retrieved `polls_to_finish` times, then
finishes with the `fate` given for it, in creation order (default `completed`):

- `completed`: every request answered by `answer(body)`, which returns the text or a
  `LineError` (the line goes to the error file with that status and message);
- `expired`: the first `answered_before_expiry` requests answered, the rest in the error
  file as `batch_expired`, as the API does when the 24 h window runs out;
- `failed`: the file rejected at validation, no output, `errors` naming a line.

`retrieve_faults` answers the given retrieve calls (1-based, across all jobs) with 500.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web

from tests.loopback_server import LoopbackServer
from tests.scripted_teacher import completion


@dataclass(frozen=True)
class LineError:
    status: int = 500
    message: str = "scripted line error"


@dataclass
class FakeJob:
    id: str
    input_file_id: str
    requests: list[dict]
    fate: str
    polls: int = 0
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict] = field(default_factory=list)


class FakeBatchAPI(LoopbackServer):
    def __init__(self, answer: Callable[[dict], "str | LineError"] = lambda body: '{"ok": true}',
                 polls_to_finish: int = 2, fates: list[str] | None = None, answered_before_expiry: int = 0,
                 retrieve_faults: set[int] = frozenset()):
        super().__init__()
        self.answer = answer
        self.polls_to_finish = polls_to_finish
        self.fates = list(fates or [])
        self.answered_before_expiry = answered_before_expiry
        self.retrieve_faults = set(retrieve_faults)
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.retrieves: list[str] = []  # job ids, in the order they were asked for

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._upload)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_get("/v1/files/{id}/content", self._content)

    def submitted(self) -> list[list[str]]:
        """Each job's custom_ids, in creation order."""
        return [[r["custom_id"] for r in job.requests] for job in self.jobs.values()]

    def _file(self, data: bytes) -> str:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return file_id

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("purpose") != "batch":
            return _error(400, f"purpose must be batch, got {form.get('purpose')!r}")
        data = form["file"].file.read()
        file_id = self._file(data)
        return web.json_response({"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                  "filename": form["file"].filename, "purpose": "batch", "status": "processed"})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, f"unsupported endpoint or window: {body}")
        if body.get("input_file_id") not in self.files:
            return _error(404, f"no file {body.get('input_file_id')}")
        requests = [json.loads(line) for line in self.files[body["input_file_id"]].decode().splitlines()]
        ids = [r["custom_id"] for r in requests]
        if len(set(ids)) != len(ids) or len({r["body"]["model"] for r in requests}) != 1 or any(
                r["method"] != "POST" or r["url"] != "/v1/chat/completions" for r in requests):
            return _error(400, "invalid batch input file")
        job = FakeJob(f"batch_{len(self.jobs) + 1}", body["input_file_id"], requests,
                      self.fates[len(self.jobs)] if len(self.jobs) < len(self.fates) else "completed")
        self.jobs[job.id] = job
        return web.json_response(self._batch(job))

    async def _retrieve(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _error(404, f"no batch {request.match_info['id']}")
        self.retrieves.append(job.id)
        if len(self.retrieves) in self.retrieve_faults:
            return _error(500, "scripted retrieve fault")
        job.polls += 1
        if job.status in ("validating", "in_progress"):
            job.status = "in_progress"
            if job.polls > self.polls_to_finish:
                self._finish(job)
        return web.json_response(self._batch(job))

    async def _content(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["id"])
        if data is None:
            return _error(404, f"no file {request.match_info['id']}")
        return web.Response(body=data, content_type="application/octet-stream")

    def _finish(self, job: FakeJob) -> None:
        if job.fate == "failed":
            job.status = "failed"
            job.errors = [{"code": "invalid_request", "message": "model m is not available for batch", "line": 1,
                           "param": "body.model"}]
            return
        answered = len(job.requests) if job.fate == "completed" else self.answered_before_expiry
        output, errors = [], []
        for number, line in enumerate(job.requests):
            record = {"id": f"batch_req_{number}", "custom_id": line["custom_id"]}
            answer = self.answer(line["body"]) if number < answered else None
            if answer is None:
                errors.append(record | {"response": None, "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired."}})
            elif isinstance(answer, LineError):
                errors.append(record | {"error": None, "response": {
                    "status_code": answer.status, "request_id": f"req_{number}",
                    "body": {"error": {"message": answer.message, "type": "server_error"}}}})
            else:
                output.append(record | {"error": None, "response": {
                    "status_code": 200, "request_id": f"req_{number}",
                    "body": completion(answer, line["body"]["model"], number)}})
        job.status = job.fate
        if output:
            job.output_file_id = self._file("".join(json.dumps(r) + "\n" for r in output).encode())
        if errors:
            job.error_file_id = self._file("".join(json.dumps(r) + "\n" for r in errors).encode())

    def _batch(self, job: FakeJob) -> dict:
        return {"id": job.id, "object": "batch", "endpoint": "/v1/chat/completions", "completion_window": "24h",
                "input_file_id": job.input_file_id, "status": job.status, "created_at": 0,
                "output_file_id": job.output_file_id, "error_file_id": job.error_file_id,
                "errors": {"object": "list", "data": job.errors} if job.errors else None,
                "request_counts": {"total": len(job.requests), "completed": 0, "failed": 0}}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)
