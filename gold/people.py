"""Labelers, reviewers and admins, and their sessions.

Users are created from the command line (`crucible gold add-user NAME --role ROLE`),
which prints a generated secret once. Only an Argon2id hash of the secret is stored
(argon2-cffi, the OWASP-recommended password hash). A login gives a session token, kept
by the browser in an HttpOnly cookie; the database holds only the token's sha256, so a
copy of the database lets nobody in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from gold.labeling_store import ROLES, LabelingStore, NotAllowed, User

SESSION_HOURS = 12
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_HASHER = PasswordHasher()
# Checked against when the user does not exist, so a login takes as long either way and
# does not tell which names exist.
_DUMMY_HASH = _HASHER.hash("no such user")


def add_user(store: LabelingStore, who: str, name: str, role: str, secret: str | None = None) -> str:
    """Create a user; returns the secret (generated unless given)."""
    if not USER_NAME.match(name):
        raise ValueError(f"{name!r} is not a user name: lowercase letters, digits, '.', '_' and '-', at most 32")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    secret = secret or secrets.token_urlsafe(12)
    if len(secret) < 8:
        raise ValueError("a secret has at least 8 characters")
    with store.transaction():
        if store.conn.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
            raise ValueError(f"user {name} exists already")
        store.conn.execute("INSERT INTO users VALUES(?,?,?,?)", (name, role, _HASHER.hash(secret), store.now()))
        store.log(who, "add_user", None, None, None, {"name": name, "role": role})
    return secret


def users(store: LabelingStore) -> list[User]:
    return [User(row["name"], row["role"]) for row in store.conn.execute("SELECT name, role FROM users ORDER BY name")]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(store: LabelingStore, name: str, secret: str, *, address: str) -> str:
    """A new session token for a right name and secret; `NotAllowed` otherwise. Every
    failure goes to the audit log with `address` (where the login came from)."""
    row = store.conn.execute("SELECT secret_hash FROM users WHERE name=?", (name,)).fetchone()
    try:
        _HASHER.verify(row["secret_hash"] if row else _DUMMY_HASH, secret)
    except VerifyMismatchError:
        log_failed_login(store, name, address, "wrong secret" if row else "unknown user")
        raise NotAllowed("unknown user or wrong secret") from None
    if row is None:  # the dummy hash's own secret was typed as a name nobody has
        log_failed_login(store, name, address, "unknown user")
        raise NotAllowed("unknown user or wrong secret")
    token = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    with store.transaction():
        store.conn.execute("INSERT INTO sessions VALUES(?,?,?,?)", (
            _token_hash(token), name, now.isoformat(timespec="seconds"),
            (now + timedelta(hours=SESSION_HOURS)).isoformat(timespec="seconds")))
        store.log(name, "log_in", None, None, None, {"address": address})
    return token


def log_failed_login(store: LabelingStore, name: str, address: str, reason: str) -> None:
    """Append a refused login to the audit log: who tried, from where, why; never the secret.
    The name is whatever the client typed, so only a valid user name goes in `who`."""
    who = name if USER_NAME.match(name) else "(not a user name)"
    with store.transaction():
        store.log(who, "log_in_failed", None, None, None,
                  {"name": name[:64], "address": address, "reason": reason})


def session_user(store: LabelingStore, token: str | None) -> User | None:
    if not token:
        return None
    row = store.conn.execute(
        "SELECT u.name, u.role, s.expires_at FROM sessions s JOIN users u ON u.name=s.user WHERE s.token_hash=?",
        (_token_hash(token),)).fetchone()
    if row is None or datetime.fromisoformat(row["expires_at"]) < datetime.now(timezone.utc):
        return None
    return User(row["name"], row["role"])


def log_out(store: LabelingStore, token: str) -> None:
    with store.transaction():
        store.conn.execute("DELETE FROM sessions WHERE token_hash=?", (_token_hash(token),))
