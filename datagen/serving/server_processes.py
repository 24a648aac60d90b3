"""Servers a command starts for itself (the embedded model's, Prefect's API): each in a
session of its own, and stopped on every way out of the command.

A terminal's Ctrl-C signals the whole foreground process group. A server in that group
dies at the first Ctrl-C, while the command still needs it to finish cleanly (Prefect's
temporary API server did: the build then failed talking to it, with a traceback). So a
server starts in its own session (`start_new_session=True`), out of the terminal's
reach, and the command stops it: `stop_server` when its block ends, and an atexit hook
for any server a way out skipped. The commands turn SIGINT and SIGTERM into exceptions
(flows/graceful_stop.py), so signals take those same paths; only a SIGKILL of the
command leaves a server behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Iterator

_running: set[subprocess.Popen] = set()


class ServerNotHealthy(RuntimeError):
    """The server exited or did not answer its health check in time; the text says which."""


class ModelServerError(RuntimeError):
    """A model server crucible started would not start, or died; the text names its log."""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def start_server(command: list[str], *, output: IO | None = None, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `command` in a new session; its output goes to `output` (default: ours)."""
    # Python's default SIGTERM ends the process without running `finally` blocks or atexit
    # hooks, which would leave this server running (a `timeout` around a benchmark did).
    # A command that handles SIGTERM itself (flows/graceful_stop.py) keeps its handler.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT if output else None, cwd=cwd,
                               env=env, start_new_session=True)
    _running.add(process)
    return process


def running_servers() -> list[subprocess.Popen]:
    """The servers this command has started and not yet stopped."""
    return list(_running)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_healthy(process: subprocess.Popen, health_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _healthy(health_url):
        if process.poll() is not None:
            raise ServerNotHealthy(f"exited with code {process.returncode} during start-up")
        if time.monotonic() > deadline:
            raise ServerNotHealthy(f"was not healthy after {timeout_s:.0f} s")
        time.sleep(0.5)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    # The server leads its own process group: whatever it started goes with it.
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def stop_server(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the server's process group, SIGKILL after `grace_s` if it is still up."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    # Only a server known to be gone leaves the list: one whose stop was cut short (a
    # second Ctrl-C) is still killed at exit.
    _running.discard(process)


@atexit.register
def stop_all_servers() -> None:
    """At exit there is no time to be polite: every server still running is killed."""
    for process in list(_running):
        _signal_group(process, signal.SIGKILL)
        process.wait()
        _running.discard(process)


def log_tail(log_path: Path, lines: int = 15) -> str:
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def serving(command: list[str], *, port: int, log_path: Path, what: str, startup_timeout_s: float,
            stop_grace_s: float, cwd: Path | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run an OpenAI-compatible server on 127.0.0.1:`port` for the length of the block and
    yield its `/v1` URL: in its own session, its output in `log_path`, healthy within
    `startup_timeout_s` or a `ModelServerError` naming the log; stopped on every way out.
    `what` names the server in errors ("vLLM for <model>")."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = start_server(command, output=log, cwd=cwd, env=env)
    try:
        try:
            wait_until_healthy(process, f"http://127.0.0.1:{port}/health", startup_timeout_s)
        except ServerNotHealthy as problem:
            raise ModelServerError(f"{what} {problem}; see its log {log_path}:\n{log_tail(log_path)}") from None
        try:
            yield f"http://127.0.0.1:{port}/v1"
        except Exception as error:
            # Requests to a dead server fail as connection errors; name the real cause.
            if process.poll() is not None:
                raise ModelServerError(f"{what} died (exit code {process.returncode}) while serving; see its log "
                                       f"{log_path}:\n{log_tail(log_path)}") from error
            raise
    finally:
        stop_server(process, stop_grace_s)
