"""Shared set-up for the gold tests: four people, a support-triage gold set, its tickets,
and `crucible gold serve` started for real on a free loopback port.

Creating a user hashes a secret with Argon2 (~50 ms), so each test module makes the
people once (`write_people_db`) and every test starts from a copy of that database.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gold.labeling_store import LabelingStore, User
from gold.people import add_user

REPO = Path(__file__).resolve().parent.parent
TRIAGE = "datagen.tasks.support_triage:TASK"
REGRESSION = "gold.regression_schema:GENERAL_REGRESSION"
NOW = "2026-11-22T00:00:00+00:00"

ANN = User("ann", "labeler")
BOB = User("bob", "labeler")
RITA = User("rita", "reviewer")
REX = User("rex", "reviewer")
PEOPLE = (ANN, BOB, RITA, REX)

TICKETS = (
    "Hi, my order A-204518 with the wireless earbuds was supposed to arrive last week. Any update?",
    "I was charged twice for the same desk lamp!! Fix this or I'm filing a chargeback.",
    "Does the standing desk come with a cable tray?",
)


def people_with_sessions(db: Path) -> dict[str, str]:
    """`write_people_db`'s four people in `db`, each logged in once: a session token by name
    (an Argon2 check costs ~0.2 s, so module fixtures log in once and tests reuse them)."""
    from gold import people

    secrets = write_people_db(db)
    store = LabelingStore(db)
    try:
        return {name: people.log_in(store, name, secret, address="test") for name, secret in secrets.items()}
    finally:
        store.close()


def write_people_db(db: Path) -> dict[str, str]:
    """Create ann and bob (labelers), rita and rex (reviewers) in `db`; their secrets by name."""
    store = LabelingStore(db, now=lambda: NOW)
    try:
        return {user.name: add_user(store, "cli:test", user.name, user.role) for user in PEOPLE}
    finally:
        store.close()  # checkpoints the WAL, so the one file is the whole database


def open_copy(template: Path, db: Path) -> LabelingStore:
    shutil.copyfile(template, db)
    return LabelingStore(db, now=lambda: NOW)


def triage_set(store: LabelingStore, name: str = "triage", labels_per_record: int = 2,
               tickets: tuple[str, ...] = TICKETS) -> list[int]:
    """A support-triage gold set holding `tickets` as draft records; their ids."""
    store.create_set("cli:test", name, TRIAGE, labels_per_record)
    with store.transaction():
        return [store.add_record("cli:test", name, text, "tickets.jsonl", {"line": line}, False)
                for line, text in enumerate(tickets, start=1)]


def triage(**changes) -> dict:
    """A valid support-triage answer (the first ticket's), with `changes`."""
    return {
        "category": "shipping_delay",
        "priority": "normal",
        "order_id": "A-204518",
        "product": "wireless earbuds",
        "needs_human": False,
        "summary": "Customer asks where the wireless earbuds order is.",
    } | changes


def submit(store: LabelingStore, user: User, record_id: int, answer: dict, gold_set: str = "triage") -> dict:
    return store.save_label(user, gold_set, record_id, answer=answer, submit=True, base_version=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving_gold(db: Path, gold_root: Path, log: Path, *options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`crucible gold serve` on `db` with `options`, in its own process (its memory is its
    own to measure); yields the process and its URL once `/login` answers, and stops it.
    Under `--certfile` the URL is https and the probe does not check the certificate."""
    https = "--certfile" in options
    port = free_port()
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "gold", "serve", "--db", str(db), "--gold-root", str(gold_root),
             "--port", str(port), *options], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"crucible gold serve exited with {server.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2, context=context if https else None) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"crucible gold serve did not answer on {url} within 30 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield server, url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
