"""Turn Ctrl-C and SIGTERM into a graceful stop for the length of a block.

The first signal sets a reason that long stages poll (`requested()`): they stop starting
new work, let what is in flight finish, keep every completed response, and end with a
clear message. A second signal gets Python's default behaviour, for a user who really
wants out now.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class GracefulStop:
    def __init__(self) -> None:
        self._reason: str | None = None

    def requested(self) -> str | None:
        return self._reason

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self._reason is not None:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self._reason = f"{name} received"
        print(f"\n{name}: finishing requests in flight, then stopping (again to abort now)", flush=True)


@contextlib.contextmanager
def graceful_stop() -> Iterator[GracefulStop]:
    stop = GracefulStop()
    if threading.current_thread() is not threading.main_thread():
        # Signal handlers can only be set from the main thread (e.g. a Prefect worker
        # running the flow in a thread); the process's own handling then applies.
        yield stop
        return
    previous = {sig: signal.signal(sig, stop._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
