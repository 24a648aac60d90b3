"""What can go wrong with a request to an endpoint, and what crucible calls it.

Shared by the two ways a request is sent, one at a time (`client.py`) and in batch jobs
(`batch_jobs.py`); callers import these names from `client.py`, the one way in.
"""

from __future__ import annotations

import email.utils
import json
import time

import openai


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


class NotSent(Exception):
    """The request was withdrawn before it was sent."""


class MalformedBody(Exception):
    """A 200 response without a usable answer: a proxy or server fault worth a retry."""


# json.JSONDecodeError: the client raises it as is for a 200 response whose body is not JSON.
RETRIABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError,
             openai.APIResponseValidationError, json.JSONDecodeError, MalformedBody)

# The retriable errors that say the endpoint has more than it can take (429, 5xx, a
# timeout, a dropped or refused connection), as opposed to one bad answer: these cut the
# endpoint's concurrency (`adaptive_concurrency.py`).
OVERLOAD = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


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
