"""An aiohttp app served on loopback from a thread of its own, for the test servers that
stand in for a model endpoint (scripted_teacher.py, saturating_teacher.py,
fake_batch_api.py): a real HTTP server that crucible's real client talks to.

Handlers are cancelled when their client disconnects (aiohttp's `handler_cancellation`),
as vLLM aborts such a request, so a server can notice a client that gave up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

from aiohttp import web

from datagen.serving.server_processes import free_loopback_port


class LoopbackServer:
    def __init__(self):
        self.port = free_loopback_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def on_start(self) -> None:
        """Started in the server's loop before it serves: background work of the server."""

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=256 * 1024 * 1024)
        self.add_routes(app)
        # A client that stopped leaves slow answers unfinished: cancel them at exit
        # rather than wait the default 60 s for them.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._loop.run_until_complete(self.on_start())
        self._started.set()
        self._loop.run_forever()

    def __enter__(self):
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
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


def eventually(condition: Callable[[], bool], what: str, guard_s: float = 10.0) -> None:
    """Wait for something the server's thread will see soon (a client's disconnect);
    `guard_s` only keeps a broken test from hanging, it measures nothing."""
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)
