"""The Prefect API a command's flows report to: the user's server when one is configured,
else a temporary one that the command starts in its own session and stops at its end.

Prefect with no API URL starts such a temporary server by itself
(`prefect.server.api.server.SubprocessASGIServer`), but in the command's process group,
where a terminal's Ctrl-C kills it with the command: the build then ended minutes later
with exit 1 and an `httpx.ConnectError` traceback instead of its `stopped:` line. This
module starts the same app the same way (uvicorn on `create_app`, the UI off, the
command's Prefect settings), through `datagen.serving.server_processes`, so it is out of the
terminal's reach and is stopped on every way out; PREFECT_API_URL points at it for the
length of the command, for this process and any worker process it starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

import prefect
from prefect.context import refresh_global_settings_context
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, get_current_settings

from datagen.serving.server_processes import (
    ServerNotHealthy,
    free_loopback_port,
    start_server,
    stop_server,
    wait_until_healthy,
)

# Measured here: about 20 s to healthy on a quiet 2-core machine (database migrations
# included); a loaded one takes longer, and Prefect's own default of 20 s then fails.
STARTUP_TIMEOUT_S = 180.0
# The server holds the flow runs' states; uvicorn finishes its requests within this.
STOP_GRACE_S = 10.0
DRAIN_TIMEOUT_S = 10.0


class PrefectApiError(RuntimeError):
    pass


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the API URL the command's flows use, starting a temporary server if none is set."""
    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    port = free_loopback_port()
    command = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
        "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ]
    # As SubprocessASGIServer runs it: no UI, and the app's ephemeral mode (only the
    # services a temporary server needs).
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           **get_current_settings().to_environment_variables(exclude_unset=True)}
    server = start_server(command, env=env)
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        try:
            wait_until_healthy(server, f"{api_url}/health", STARTUP_TIMEOUT_S)
        except ServerNotHealthy as problem:
            raise PrefectApiError(f"the temporary Prefect server on port {port} {problem}; its output is "
                                  "above. Set PREFECT_API_URL to use a running server instead") from None
        # The environment, not a settings context: Prefect's own threads and any worker
        # process must see it too.
        os.environ["PREFECT_API_URL"] = api_url
        refresh_global_settings_context()
        try:
            yield api_url
        finally:
            _send_pending_logs_and_events()
            del os.environ["PREFECT_API_URL"]
            refresh_global_settings_context()
    finally:
        stop_server(server, STOP_GRACE_S)


def _send_pending_logs_and_events() -> None:
    """Prefect sends logs and events from background threads; they must reach the
    server before it stops, or each one left prints an `Error logging to API`."""
    APILogWorker.drain_all(timeout=DRAIN_TIMEOUT_S)
    EventsWorker.drain_all(timeout=DRAIN_TIMEOUT_S)
