"""Slow down guessing at the login form, and bound how many secret checks run at once.

Two things a flood of logins does to `crucible gold serve`, and what stops each:

- **Guessing.** Every failed login counts against the name tried and against the client
  address. After its free failures (5 per name, 20 per address) a key is locked out for
  30 s, and each further failure doubles the lockout (30 s, 1 min, 2 min, ... up to
  15 min): the exponential lockout of the OWASP Authentication Cheat Sheet ("Account
  Lockout"). With the defaults one name gets at most 12 guesses an hour, well under the
  100 failed attempts an hour that OWASP ASVS 4.0 (V2.2.1) and NIST SP 800-63B (5.2.2)
  allow as the most; 30 s is long enough that a script gains little by waiting it out,
  and short enough for a labeler who mistyped five times. During a lockout every
  login for that name or from that address is refused, a right secret too (otherwise the
  lockout would only tell the guesser which guess was right). Names that do not exist are
  counted the same way, so a lockout does not tell which names exist. A right secret
  clears its name's failures, but not its address's: an attacker with an account of their
  own must not be able to wipe the count of their guesses at other names. A key with no
  failure for `forget_after_s` starts clean.
- **Memory.** An Argon2 check allocates 64 MiB (argon2-cffi's default, RFC 9106's
  low-memory profile) and runs ~0.2 s; sixty-four at once took the server past 2.7 GB.
  `SecretCheckSlots` lets `concurrent_checks` run at once and `waiting_checks` wait their
  turn (a waiting login holds a worker thread, but no CPU and no Argon2 memory: at most
  18 of the server's 40 threads, so pages keep the rest); a login beyond that is answered
  503 at once, with Retry-After, rather than queued without end.

Concurrent attempts cannot get round the count: an attempt is admitted while it could
still be within the free failures if every attempt in flight failed, and once the free
failures are spent only one attempt per key is checked at a time.

The counts live in the server's memory: a restart forgets them (and the audit log keeps
every failure). Clocks are injected, so tests do not sleep.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class ThrottleConfig:
    """Where the defaults come from: see the module docstring."""

    free_failures_per_name: int = 5
    # Higher than per name: labelers behind one office NAT or one TLS proxy share an address.
    free_failures_per_address: int = 20
    first_lockout_s: float = 30.0
    max_lockout_s: float = 15 * 60.0
    forget_after_s: float = 60 * 60.0
    # 2 x 64 MiB of Argon2 memory at most; two checks already keep two cores busy.
    concurrent_checks: int = 2
    # ~16 checks of ~0.2 s on two slots: a login waits at most ~2 s before its turn.
    waiting_checks: int = 16


# Retry-After when the refusal is only that another attempt at the same key is being checked.
_CHECK_UNDER_WAY_S = 1.0


class LockedOut(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"Too many failed logins for this name or from this address: try again in {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class ServerBusy(Exception):
    retry_after_s = 1

    def __init__(self) -> None:
        super().__init__(f"Too many logins at once: try again in {self.retry_after_s} s.")


@dataclass
class _Failures:
    count: int = 0
    last_failure: float = -math.inf
    locked_until: float = -math.inf
    checking: int = 0  # admitted attempts not yet decided


class LoginThrottle:
    """Failed-login counts per name and per address. Call `admit` before checking a secret,
    then exactly one of `failed`, `succeeded` or `withdrawn` (the check never ran)."""

    def __init__(self, config: ThrottleConfig = ThrottleConfig(), clock: Callable[[], float] = time.monotonic):
        self.config, self.clock = config, clock
        self._keys: dict[tuple[str, str], _Failures] = {}
        self._admitted_since_prune = 0
        self._lock = threading.Lock()  # one server loop calls it, but test clients may run several

    @staticmethod
    def _keys_of(name: str, address: str) -> list[tuple[str, str]]:
        # A user name has at most 32 characters; a longer "name" only needs to be counted.
        return [("name", name[:64]), ("address", address)]

    def _free_failures(self, key: tuple[str, str]) -> int:
        return self.config.free_failures_per_name if key[0] == "name" else self.config.free_failures_per_address

    def _state(self, key: tuple[str, str], now: float) -> _Failures:
        state = self._keys.setdefault(key, _Failures())
        if state.checking == 0 and now - state.last_failure > self.config.forget_after_s:
            state.count, state.locked_until = 0, -math.inf
        return state

    def _wait_s(self, key: tuple[str, str], state: _Failures, now: float) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        if now < state.locked_until:
            return state.locked_until - now
        if state.checking and state.count + state.checking >= self._free_failures(key):
            return _CHECK_UNDER_WAY_S
        return 0.0

    def admit(self, name: str, address: str) -> None:
        """Let one attempt at `name` from `address` be checked, or raise `LockedOut`."""
        with self._lock:
            now = self.clock()
            self._prune(now)
            keys = self._keys_of(name, address)
            states = [self._state(key, now) for key in keys]
            wait = max(self._wait_s(key, state, now) for key, state in zip(keys, states))
            if wait > 0:
                raise LockedOut(math.ceil(wait))
            for state in states:
                state.checking += 1

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            for key in self._keys_of(name, address):
                state = self._keys[key]
                state.checking -= 1
                state.count += 1
                state.last_failure = now
                beyond = state.count - self._free_failures(key)
                if beyond >= 0:
                    lockout = min(self.config.max_lockout_s, self.config.first_lockout_s * 2 ** min(beyond, 64))
                    state.locked_until = now + lockout

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            name_key, address_key = self._keys_of(name, address)
            self._keys[address_key].checking -= 1
            state = self._keys[name_key]
            state.checking, state.count, state.locked_until = state.checking - 1, 0, -math.inf

    def withdrawn(self, name: str, address: str) -> None:
        with self._lock:
            for key in self._keys_of(name, address):
                self._keys[key].checking -= 1

    def _prune(self, now: float) -> None:
        # Every name and address ever tried would otherwise stay in memory for good.
        self._admitted_since_prune += 1
        if self._admitted_since_prune < 1000:
            return
        self._admitted_since_prune = 0
        for key, state in list(self._keys.items()):
            if state.checking == 0 and now - state.last_failure > self.config.forget_after_s:
                del self._keys[key]


class SecretCheckSlots:
    """At most `concurrent_checks` secret checks at once and `waiting_checks` waiting;
    `ServerBusy` beyond that. Use in the worker thread that checks: `with slots.slot():`.
    Thread semaphores, not asyncio ones: an asyncio semaphore belongs to one event loop,
    and logins waiting on it from two loops (test clients in threads) would never wake."""

    def __init__(self, config: ThrottleConfig = ThrottleConfig()):
        self._running = threading.BoundedSemaphore(config.concurrent_checks)
        self._admitted = threading.BoundedSemaphore(config.concurrent_checks + config.waiting_checks)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._admitted.acquire(blocking=False):
            raise ServerBusy()
        try:
            with self._running:
                yield
        finally:
            self._admitted.release()
