"""Benchmark: the labelers' page under a flood of logins, as issue 14's tester ran it.

    .venv/bin/python -m tests.benchmarks.login_flood

Starts the real `crucible gold serve` on loopback with a fresh database (two labelers, a
reviewer and a three-ticket set), then:

- **200 wrong secrets** for one user, one after another from one address: how many were
  answered after a real secret check (401) and how many refused by the lockout (429).
- **64 logins at once**, each from its own loopback address (127.0.1.x) with a name of
  its own, so that neither lockout applies and only the bound on concurrent secret checks
  stands between them and the server's memory: the server's peak resident memory
  (VmHWM) over its resident memory before, how each login was answered, and how long a
  reviewer, already logged in, waits for the set's page and a labeler from another
  address waits for a login: alone, and sent among the flood.

Linux only (loopback addresses besides 127.0.0.1, /proc). The test module
`tests/test_hostile_page.py` asserts the bounds on the same functions; this prints the
numbers.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from gold.labeling_store import LabelingStore
from tests.gold_fixtures import serving_gold, triage_set, write_people_db


def client_from(url: str, address: str, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z on Linux), so
    that one test machine can be many clients to the throttle."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address, verify=verify),
                        timeout=120, follow_redirects=False)


def log_in(client: httpx.Client, name: str, secret: str) -> httpx.Response:
    return client.post("/login", data={"name": name, "secret": secret})


def wrong_secrets(url: str, name: str, address: str, count: int) -> list[httpx.Response]:
    """`count` logins as `name` from `address`, each with a different wrong secret."""
    with client_from(url, address) as client:
        return [log_in(client, name, f"wrong-secret-{attempt}") for attempt in range(count)]


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(resident now, peak resident since start) of process `pid`, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def logins_at_once(url: str, count: int) -> list[httpx.Response]:
    """`count` logins released together, the i-th as "flood-i" from 127.0.1.i."""
    ready = threading.Barrier(count)

    def one(i: int) -> httpx.Response:
        with client_from(url, f"127.0.1.{i + 1}") as client:
            ready.wait()
            return log_in(client, f"flood-{i}", "wrong-secret")

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="login-flood-"))
    db, gold_root = folder / "labeling.sqlite3", folder / "sets"
    secrets = write_people_db(db)
    store = LabelingStore(db)
    try:
        triage_set(store)
    finally:
        store.close()
    with serving_gold(db, gold_root, folder / "serve.log") as (server, url):
        start = time.perf_counter()
        answers = Counter(response.status_code for response in wrong_secrets(url, "ann", "127.0.0.2", 200))
        print(f"200 wrong secrets for ann from one address in {time.perf_counter() - start:.1f} s: "
              f"{answers[401]} answered after a secret check (401), {answers[429]} refused by the lockout (429)"
              + (f", other: {dict(answers - Counter({401: answers[401], 429: answers[429]}))}"
                 if set(answers) - {401, 429} else ""))

        reviewer, labeler = client_from(url, "127.0.0.3"), client_from(url, "127.0.0.4")
        assert log_in(reviewer, "rita", secrets["rita"]).status_code == 303
        legit = {"reviewer's set page": lambda: reviewer.get("/sets/triage"),
                 "labeler's login": lambda: log_in(labeler, "bob", secrets["bob"])}
        quiet = {what: timed(call) for what, call in legit.items()}
        before, _ = peak_rss_mib(server.pid)
        with ThreadPoolExecutor(len(legit)) as pool:
            # Each sent 0.3 s after the flood, so that it arrives among it, not before.
            during = {what: pool.submit(timed, call, 0.3) for what, call in legit.items()}
            flood = Counter(response.status_code for response in logins_at_once(url, 64))
            during = {what: future.result() for what, future in during.items()}
        _, peak = peak_rss_mib(server.pid)
        reviewer.close(), labeler.close()
        print(f"64 logins at once from 64 addresses: {flood[401]} checked and refused (401), "
              f"{flood[503]} told to retry (503)" + (f", other: {dict(flood)}" if set(flood) - {401, 503} else ""))
        print(f"server memory: {before:.0f} MiB resident before, peak {peak:.0f} MiB during "
              f"(+{peak - before:.0f} MiB)")
        for what in legit:
            print(f"{what}: {quiet[what][0]:.2f} s alone (HTTP {quiet[what][1]}), "
                  f"{during[what][0]:.2f} s during the flood (HTTP {during[what][1]})")


def timed(call, delay_s: float = 0.0) -> tuple[float, int]:
    """Seconds `call` took to answer, after `delay_s`; and its HTTP status."""
    time.sleep(delay_s)
    began = time.perf_counter()
    response = call()
    return time.perf_counter() - began, response.status_code


if __name__ == "__main__":
    main()
