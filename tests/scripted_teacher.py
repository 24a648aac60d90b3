"""A scripted OpenAI-compatible teacher on loopback, for fault injection in tests.

It speaks the same HTTP API as `transformers serve`, vLLM or OpenAI (POST
/v1/chat/completions), but its answers are chosen by the test: for each distinct user
prompt, the k-th request gets `script(prompt, k)`. A real model cannot be made to be
right on one sample and wrong on another; this can, so the tests can assert the exact
contents of the SFT set and the pairs. Real-model runs are covered by the other tests.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datagen.model_server import free_loopback_port


class ScriptedTeacher:
    def __init__(self, script: Callable[[str, int], str | tuple[int, str]]):
        self.script = script
        self.seen: Counter[str] = Counter()
        self.requests: list[dict] = []
        self.port = free_loopback_port()
        app = Starlette(routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        prompt = body["messages"][-1]["content"]
        k = self.seen[prompt]
        self.seen[prompt] += 1
        scripted = self.script(prompt, k)
        if isinstance(scripted, tuple):  # (HTTP status, error message)
            return JSONResponse({"error": {"message": scripted[1]}}, status_code=scripted[0])
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": scripted}}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )

    def __enter__(self) -> "ScriptedTeacher":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted teacher did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
