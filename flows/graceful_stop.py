"""Ctrl-C and SIGTERM as users mean them: stop soon, keep what is paid for, leave nothing
running, and say so in one line.

A command runs its flow with `run_command`: there a signal raises `Stopped` in the main
thread, wherever it is, so every `finally` on the way out runs (servers stop, a stage
being written is never sealed) and the command prints its `stopped:` line and exits 130.
Its Prefect API server is its own, out of the terminal's reach (flows/prefect_api.py).

A batch of teacher requests runs inside `graceful_stop()`: there the first signal only
sets a reason that the batch polls (`requested()`): it sends nothing new, keeps every
answer that arrives, abandons what its endpoints' stop grace does not cover
(datagen/serving/client.py), and ends with `TeacherStopped`, which leaves the block as
`Stopped`. A second signal raises `Stopped` at once, for a user who wants out now.

`Stopped` is an interrupt, not an error: for any `Exception` a task or flow raises,
Prefect logs a traceback; an interrupt it records as a crash "aborted by an interrupt
signal", without one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator, TypeVar

from prefect.exceptions import TerminationSignal

from datagen.serving.request_batch import TeacherStopped
from flows.prefect_api import prefect_api

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """The user stopped the command; the text is the `stopped:` line to print."""


def _received(signum: int) -> str:
    return f"{signal.Signals(signum).name} received"


def _stopped_by(signum: int) -> Stopped:
    return Stopped(f"stopped: {_received(signum)}; run the same command again to resume")


def _raise_stopped(signum: int, frame: object) -> None:
    raise _stopped_by(signum)


@contextlib.contextmanager
def _handling(handler) -> Iterator[bool]:
    """`handler` for SIGINT and SIGTERM for the block; yields whether it could be set."""
    if threading.current_thread() is not threading.main_thread():
        # Signal handlers can only be set from the main thread (e.g. a Prefect worker
        # running the flow in a thread); the process's own handling then applies.
        yield False
        return
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield True
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def run_command(flow_call: Callable[[], T]) -> T:
    """Call a command's flow with its own Prefect API; SIGINT and SIGTERM raise `Stopped`."""
    with _handling(_raise_stopped):
        try:
            with prefect_api():
                return flow_call()
        except TerminationSignal as signalled:
            # Prefect's own SIGTERM handler, which it sets while a flow runs.
            raise _stopped_by(signalled.signal) from None


class GracefulStop:
    def __init__(self) -> None:
        self._reason: str | None = None

    def requested(self) -> str | None:
        return self._reason

    def _handle(self, signum: int, frame: object) -> None:
        if self._reason is not None:
            raise Stopped(f"stopped: {_received(signum)} again; requests in flight were abandoned, "
                          "what was answered is cached, run the same command again to resume")
        self._reason = _received(signum)
        print(f"\n{signal.Signals(signum).name}: sending no new requests, then stopping "
              "(again to stop at once)", flush=True)


@contextlib.contextmanager
def graceful_stop() -> Iterator[GracefulStop]:
    stop = GracefulStop()
    with _handling(stop._handle) as in_main_thread:
        try:
            yield stop
        except TeacherStopped as stopped:
            if not in_main_thread:
                # A Prefect worker's thread: no command prints the stopped line, and the
                # run's Failed state with this message is the record of why it ended.
                raise
            raise Stopped(str(stopped)) from None
