"""A durable, content-addressed cache of teacher responses (SQLite in WAL mode).

The key is everything that determines a response and nothing else: the endpoint's base
URL, the model, every sampling parameter (seed included), the response format, the full
messages, and the sample index. It never includes the code that built the messages, so
refactoring a prompt builder that produces the same messages re-pays nothing (curator's
issue #148 is the failure this avoids), and it never includes the API key.

Each response is committed as soon as it arrives, so a crashed, killed or interrupted
build keeps every response it already paid for, and the next run reads them back.
WAL mode lets a reader (another build, an audit) see the cache while a build writes.

Beside the responses it keeps the batch jobs submitted for an endpoint in batch mode
(`batch_jobs.py`) and which requests each holds: a job is recorded as soon as the
endpoint accepts it, before anyone waits for it, so a killed run's next run polls the
same job instead of paying for its requests again.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.foundation.hashing import canonical_json
from datagen.foundation.tool_calls import message_text
from datagen.serving.request_errors import MalformedBody

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS batch_jobs (
    job_id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    status TEXT NOT NULL,       -- 'submitted' until its results are read, then the batch's last status
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS batch_job_requests (
    job_id TEXT NOT NULL REFERENCES batch_jobs (job_id),
    line INTEGER NOT NULL,      -- 1-based, as the Batch API numbers the input file's lines
    key TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
);
CREATE INDEX IF NOT EXISTS batch_job_requests_by_key ON batch_job_requests (key);
"""

# A recorded job whose results have not been read yet.
SUBMITTED = "submitted"


@dataclass(frozen=True)
class CachedResponse:
    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def from_completion(cls, completion: Any) -> "CachedResponse":
        """The answer in a chat completion; `MalformedBody` if it has none. A message with
        `tool_calls` is stored as the text of its calls (`tool_calls.message_text`), as a
        model that writes its call as text would have answered."""
        if not getattr(completion, "choices", None):
            raise MalformedBody("response has no choices")
        choice = completion.choices[0]
        content = choice.message.content if choice.message else None
        if choice.message and choice.message.tool_calls:
            content = message_text(choice.message.model_dump())
        if not isinstance(content, str):
            raise MalformedBody("response choice has no message content")
        usage = completion.usage
        return cls(
            content=content,
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )


def request_key(
    base_url: str,
    model: str,
    sampling: dict[str, Any],
    messages: list[dict[str, str]],
    sample_index: int,
    response_format: dict[str, Any] | None = None,
) -> str:
    request = {
        "base_url": base_url.rstrip("/"),
        "model": model,
        "sampling": sampling,
        "messages": messages,
        "sample_index": sample_index,
        "response_format": response_format,
    }
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only an OS crash may lose the last
        # few commits, which are then simply asked for again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> CachedResponse | None:
        row = self._db.execute(
            "SELECT content, finish_reason, prompt_tokens, completion_tokens FROM responses WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else CachedResponse(*row)

    def put(self, key: str, model: str, response: CachedResponse) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, content, finish_reason, prompt_tokens, "
            "completion_tokens) VALUES (?, ?, ?, ?, ?, ?)",
            (key, model, response.content, response.finish_reason, response.prompt_tokens,
             response.completion_tokens),
        )

    def record_batch_job(self, job_id: str, endpoint: str, model: str, input_file_id: str,
                         keys: list[str]) -> None:
        """A job the endpoint accepted, with its requests in input-file order, in one commit."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO batch_jobs (job_id, endpoint, model, input_file_id, status) VALUES (?, ?, ?, ?, ?)",
                (job_id, endpoint, model, input_file_id, SUBMITTED),
            )
            self._db.executemany("INSERT INTO batch_job_requests (job_id, line, key) VALUES (?, ?, ?)",
                                 [(job_id, line, key) for line, key in enumerate(keys, start=1)])

    def submitted_batch_jobs(self, endpoint: str, model: str) -> dict[str, list[str]]:
        """The endpoint's jobs whose results have not been read, each with its request keys
        in input-file order, oldest job first."""
        rows = self._db.execute(
            "SELECT j.job_id, r.key FROM batch_jobs j JOIN batch_job_requests r USING (job_id) "
            "WHERE j.endpoint = ? AND j.model = ? AND j.status = ? ORDER BY j.rowid, r.line",
            (endpoint, model, SUBMITTED),
        ).fetchall()
        jobs: dict[str, list[str]] = {}
        for job_id, key in rows:
            jobs.setdefault(job_id, []).append(key)
        return jobs

    def batch_submissions(self, key: str) -> int:
        """How many batch jobs have held this request: its attempts so far."""
        return self._db.execute("SELECT COUNT(*) FROM batch_job_requests WHERE key = ?", (key,)).fetchone()[0]

    def finish_batch_job(self, job_id: str, status: str) -> None:
        """The job's results are read (into the responses, or as failures): never poll it again."""
        self._db.execute("UPDATE batch_jobs SET status = ? WHERE job_id = ?", (status, job_id))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
