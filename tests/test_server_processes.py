"""A server crucible starts never outlives the command that started it, even when the
command gets a plain SIGTERM (a `timeout`, a scheduler) and has no handler of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

COMMAND = """
import sys, time
from datagen.serving.server_processes import start_server
server = start_server([sys.executable, "-c", "import time; time.sleep(300)"])
print(server.pid, flush=True)
time.sleep(300)
"""


def test_a_sigterm_to_a_command_without_a_handler_still_stops_its_server():
    command = subprocess.Popen([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).parent.parent)
    server = int(command.stdout.readline())
    command.send_signal(signal.SIGTERM)
    assert command.wait(timeout=60) == 128 + signal.SIGTERM
    for _ in range(50):  # the kill is sent before exit; the process table may lag a moment
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"server {server} outlived the command")
