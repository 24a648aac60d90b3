"""A scripted, fault-injecting OpenAI-compatible teacher on loopback: a test double.

It speaks the same HTTP API as `transformers serve`, vLLM or OpenAI (POST
/v1/chat/completions), but its answers are chosen by the test: for each distinct user
prompt, the k-th request gets `script(prompt, k)`, which returns the answer text, or a
`Fault`: an HTTP error with headers (429 with Retry-After), a delay (a timeout), a dropped
connection, or a malformed body. A real model cannot be made to be right on one sample
and wrong on another, or to fail on cue; this can, so tests can assert exact contents,
retries and resumes. Real-model runs are covered by the other tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web

from datagen.serving.transformers_server import free_loopback_port


@dataclass(frozen=True)
class Fault:
    status: int = 500
    message: str = "scripted fault"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering
    body: str | None = None  # sent as is with status 200: a malformed body


Script = Callable[[str, int], "str | Fault | tuple[int, str]"]


def completion(content: str, model: str, number: int) -> dict:
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


class ScriptedTeacher:
    def __init__(self, script: Script, answer_delay_s: float = 0.0):
        self.script = script
        self.answer_delay_s = answer_delay_s
        self.seen: Counter[str] = Counter()
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = free_loopback_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            prompt = body["messages"][-1]["content"]
            k = self.seen[prompt]
            self.seen[prompt] += 1
            scripted = self.script(prompt, k)
            if isinstance(scripted, tuple):
                scripted = Fault(status=scripted[0], message=scripted[1])
            if isinstance(scripted, str):
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
        finally:
            self.in_flight -= 1

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        # A client that stopped leaves slow answers unfinished: cancel them at exit
        # rather than wait the default 60 s for them.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> "ScriptedTeacher":
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("scripted teacher did not start")
        return self

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        # Answers still pending for a client that went away: end them before the loop stops.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for request in pending:
            request.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
