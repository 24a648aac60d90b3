"""A scripted, fault-injecting OpenAI-compatible teacher on loopback: a test double.

It speaks the same HTTP API as `transformers serve`, vLLM or OpenAI (POST
/v1/chat/completions), but its answers are chosen by the test: for each distinct user
prompt, the k-th request gets `script(prompt, k)`, which returns the answer text, a whole
assistant message (a dict, e.g. one with `tool_calls`), or a `Fault`: an HTTP error with
headers (429 with Retry-After), a delay (a timeout), a dropped connection, or a
malformed body. A conversation's requests share their last user turn ("Thanks!"), so a
test of conversations passes `key`, which names a request by more of its messages than
the last. A real model cannot be made to be right on one sample
and wrong on another, or to fail on cue; this can, so tests can assert exact contents,
retries and resumes. Real-model runs are covered by the other tests. `disconnects`
counts the requests whose client left before the answer (a timeout, an abandoned request).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web

from tests.loopback_server import LoopbackServer


@dataclass(frozen=True)
class Fault:
    status: int = 500
    message: str = "scripted fault"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering
    body: str | None = None  # sent as is with status 200: a malformed body


Script = Callable[[str, int], "str | dict | Fault | tuple[int, str]"]


def completion(content: str | dict, model: str, number: int) -> dict:
    """A chat completion answering `content`: a text, or a whole assistant message (one
    with `tool_calls` ends on them, as OpenAI's do)."""
    message = content if isinstance(content, dict) else {"role": "assistant", "content": content}
    finish_reason = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def last_message(messages: list[dict]) -> str:
    return messages[-1]["content"]


class ScriptedTeacher(LoopbackServer):
    def __init__(self, script: Script, answer_delay_s: float = 0.0,
                 key: Callable[[list[dict]], str] = last_message):
        super().__init__()
        self.script = script
        self.key = key
        self.answer_delay_s = answer_delay_s
        self.seen: Counter[str] = Counter()
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._complete)

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            prompt = self.key(body["messages"])
            k = self.seen[prompt]
            self.seen[prompt] += 1
            scripted = self.script(prompt, k)
            if isinstance(scripted, tuple):
                scripted = Fault(status=scripted[0], message=scripted[1])
            if isinstance(scripted, (str, dict)):
                await asyncio.sleep(self.answer_delay_s)
                return web.json_response(completion(scripted, body["model"], len(self.requests)))
            await asyncio.sleep(scripted.delay_s)
            if scripted.drop:
                request.transport.abort()
                return web.Response()
            if scripted.body is not None:
                return web.Response(text=scripted.body, content_type="application/json")
            return web.json_response(
                {"error": {"message": scripted.message, "type": "scripted"}},
                status=scripted.status,
                headers=scripted.headers,
            )
        except asyncio.CancelledError:  # the client left before the answer
            self.disconnects += 1
            raise
        finally:
            self.in_flight -= 1
