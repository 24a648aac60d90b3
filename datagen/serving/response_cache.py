"""A durable, content-addressed cache of teacher responses (SQLite in WAL mode).

The key is everything that determines a response and nothing else: the endpoint's base
URL, the model, every sampling parameter (seed included), the response format, the full
messages, and the sample index. It never includes the code that built the messages, so
refactoring a prompt builder that produces the same messages re-pays nothing (curator's
issue #148 is the failure this avoids), and it never includes the API key.

Each response is committed as soon as it arrives, so a crashed, killed or interrupted
build keeps every response it already paid for, and the next run reads them back.
WAL mode lets a reader (another build, an audit) see the cache while a build writes.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.foundation.hashing import canonical_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


@dataclass(frozen=True)
class CachedResponse:
    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


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
        self._db.execute(_SCHEMA)

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

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
