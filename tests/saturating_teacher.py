"""A CPU model server in miniature, on loopback: a test double for a saturated endpoint.

Every request needs `work_s` seconds of the server's one processor, and the requests in
flight share it equally (processor sharing, as a CPU model server batches them): alone a
request takes `work_s`, with ten in flight each takes about ten times as long. Past
`timeout_s / work_s` requests in flight every one of them times out, which is what the
demo's teacher did on a loaded machine (issue 16). A real model cannot be made to
saturate on cue and in seconds; this can.

A request whose client disconnects is counted in `disconnects`; with
`abort_on_disconnect` (vLLM's behaviour) it stops taking a share of the processor, else it
runs to the end for nobody, as in `transformers serve`, which aborts a streamed request
whose client left but not a plain one like crucible's (transformers 5.23,
cli/serving/chat_completion.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from tests.loopback_server import LoopbackServer
from tests.scripted_teacher import completion

# How often the processor's time is shared out; small against any `work_s` a test uses.
TICK_S = 0.005


@dataclass(eq=False)
class _Request:
    remaining_s: float
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SaturatingTeacher(LoopbackServer):
    def __init__(self, work_s: float, abort_on_disconnect: bool = True):
        super().__init__()
        self.work_s = work_s
        self.abort_on_disconnect = abort_on_disconnect
        self.received = 0
        self.answered = 0
        self.disconnects = 0
        self.max_in_flight = 0
        self._running: set[_Request] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._complete)

    async def on_start(self) -> None:
        self._processor = asyncio.get_running_loop().create_task(self._share_processor())

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received += 1
        work = _Request(self.work_s)
        self._running.add(work)
        self.max_in_flight = max(self.max_in_flight, len(self._running))
        try:
            await work.done.wait()
        except asyncio.CancelledError:  # the client left
            self.disconnects += 1
            if self.abort_on_disconnect:
                self._running.discard(work)
            raise
        self.answered += 1
        return web.json_response(completion('{"ok": true}', body["model"], self.received))

    async def _share_processor(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            if self._running:
                share = (now - last) / len(self._running)
                for work in list(self._running):
                    work.remaining_s -= share
                    if work.remaining_s <= 0:
                        self._running.discard(work)
                        work.done.set()
            last = now
