"""How many requests one endpoint gets at once: a limit that adapts to the endpoint.

A fixed `concurrency` is wrong twice over. Against a saturated server (a CPU model server
on a loaded machine, a paid API near its limits) every extra request in flight slows all
the others down: past some point each one times out, is retried, and the retries pile on
the same server, which only gets slower. Measured in issue 16: 182 requests for 43 prompts
in 25 minutes, one answered. Set low enough to be safe everywhere, it wastes fast servers.

So `concurrency` is the ceiling, and the limit under it is found at run time by AIMD, the
rule TCP has used for congestion since Jacobson's "Congestion Avoidance and Control"
(1988), as NeMo Data Designer's adaptive throttle applies it to LLM endpoints:

- The limit starts at the ceiling.
- **Multiplicative decrease.** A sign of overload (a timeout, a 429, a 5xx, a dropped or
  refused connection) halves the limit, down to 1. Data Designer cuts 429s by a quarter;
  halving, TCP's factor, suits the servers this is for: a timed-out request to a CPU
  server means it is far past its capacity, and each timeout has already cost a whole
  `timeout_s` of its work.
- **Once per burst.** The requests that were already in flight when the limit was cut
  fail together; only the first of them cuts. A failure cuts again only if its request
  was sent after the last cut (TCP reduces once per window; Data Designer: "further 429s
  from already in-flight requests in the same burst do not reduce the limit again").
- **Additive increase.** After `SUCCESSES_PER_RAISE` answers in a row without overload
  the limit goes up by one, back towards the ceiling.

A request waits for a slot under the current limit, and so does each of its retries: a
retry is a new request to the same server and takes its turn behind the others, instead
of piling on while the server is struggling. Nothing here reads a clock, so the rule
behaves the same on a fast machine and a loaded one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass
from typing import AsyncIterator

# Answers in a row before the limit is raised by one: Data Designer's `success_window`
# default. Slower than TCP's one per window of requests, on purpose: on a CPU server each
# probe past its capacity costs a burst of timeouts.
SUCCESSES_PER_RAISE = 25


@dataclass
class Slot:
    """One request's turn. `cut_generation`: how many cuts had happened when it was sent."""

    cut_generation: int


class AdaptiveConcurrency:
    def __init__(self, ceiling: int, successes_per_raise: int = SUCCESSES_PER_RAISE):
        if ceiling < 1:
            raise ValueError(f"concurrency must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self.limit = ceiling
        self.lowest = ceiling
        self.cuts = 0
        self.raises = 0
        self._successes_per_raise = successes_per_raise
        self._successes = 0
        self._in_flight = 0
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold one of the `limit` slots for one attempt: wait for it in turn (first come,
        first served), give it back on every exit."""
        await self._acquire()
        try:
            yield Slot(self.cuts)
        finally:
            self._in_flight -= 1
            self._wake()

    def overloaded(self, slot: Slot) -> None:
        """The endpoint showed overload on this slot's request: halve, once per burst."""
        self._successes = 0
        if slot.cut_generation != self.cuts or self.limit == 1:
            return
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self.cuts += 1

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self._successes_per_raise and self.limit < self.ceiling:
            self.limit += 1
            self.raises += 1
            self._successes = 0
            self._wake()

    async def _acquire(self) -> None:
        if self._in_flight < self.limit and not self._waiting:
            self._in_flight += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                # The slot was handed over just as the waiter was cancelled: pass it on.
                self._in_flight -= 1
                self._wake()
            elif turn in self._waiting:  # `_wake` may have dropped the cancelled turn already
                self._waiting.remove(turn)
            raise

    def _wake(self) -> None:
        """Hand free slots to the waiters in order; a slot is counted as taken when it is
        handed over, so a request arriving meanwhile cannot jump the queue."""
        while self._waiting and self._in_flight < self.limit:
            turn = self._waiting.popleft()
            if turn.done():
                continue
            self._in_flight += 1
            turn.set_result(None)
