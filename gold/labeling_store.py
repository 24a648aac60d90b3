"""The labeling database: gold sets in progress, their records, every label, the review,
and an append-only audit log of every change.

One SQLite file (`gold/work/labeling.sqlite3` by default), because labeling is a few
people editing a few thousand rows and the file must be easy to back up. Every write is
one `BEGIN IMMEDIATE` transaction, so two saves never interleave, and every row that can
be edited carries a `version`: a save names the version it started from and is refused
(`StaleEdit`, with both versions) when someone saved in between. Nothing is overwritten
silently.

A record moves through:

    draft ──(k-th label submitted)──> submitted ──(reviewer approves)──> approved
                                  └─> in_review ──(reviewer adjudicates)─┘
    draft | submitted | in_review ──(reviewer discards, with a reason)──> discarded
    approved | discarded ──(reviewer reopens)──> in_review (or draft)

`submitted` means the k labels agree on every field the task's `compare` checks;
`in_review` that they do not, that a labeler edited the input, or that one proposed
discarding the record. Either way a reviewer who labeled none of it approves the final
answer: nobody approves their own label.

A set's purpose (`eval` or `seed`, `gold_sets.py`) is chosen when it is created and may
be changed by a reviewer or admin until its first lock, never after: a locked version's
purpose is signed, and a set's versions all serve one purpose. Databases made before sets
had a purpose are migrated when opened: every set in them is an eval set.

Who may do what is decided here, not in the web layer, so the API and the command line
enforce the same rules: `people.py` holds users and sessions.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import ValidationError

from datagen.foundation.text_checks import TextReference, input_errors
from gold.gold_sets import EVAL, GoldSetError, LabelSchema, check_purpose, check_set_name, load_label_schema

DEFAULT_DB = Path("gold/work/labeling.sqlite3")
ROLES = ("labeler", "reviewer", "admin")
REVIEWERS = ("reviewer", "admin")
STATUSES = ("draft", "submitted", "in_review", "approved", "discarded")
# SQLite's INTEGER is 64-bit signed: a larger Python int is an OverflowError, not "no row".
MAX_ROW_ID = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users(
    name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK(role IN ('labeler','reviewer','admin')),
    secret_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
    token_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name),
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gold_sets(
    name TEXT PRIMARY KEY, task_path TEXT NOT NULL, task TEXT NOT NULL,
    labels_per_record INTEGER NOT NULL CHECK(labels_per_record >= 1), created_at TEXT NOT NULL,
    purpose TEXT NOT NULL DEFAULT 'eval' CHECK(purpose IN ('eval','seed')));
CREATE TABLE IF NOT EXISTS records(
    id INTEGER PRIMARY KEY, gold_set TEXT NOT NULL REFERENCES gold_sets(name),
    input_text TEXT NOT NULL, source TEXT NOT NULL, provenance TEXT NOT NULL,
    synthetic INTEGER NOT NULL, status TEXT NOT NULL, review_reason TEXT,
    final_answer TEXT, final_input TEXT, reviewer TEXT, review_note TEXT, discard_reason TEXT,
    version INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels(
    record_id INTEGER NOT NULL REFERENCES records(id), labeler TEXT NOT NULL REFERENCES users(name),
    answer TEXT, input_text TEXT, note TEXT, discard_reason TEXT,
    status TEXT NOT NULL CHECK(status IN ('draft','submitted')),
    version INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(record_id, labeler));
CREATE TABLE IF NOT EXISTS audit_log(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    gold_set TEXT, record_id INTEGER, before TEXT, after TEXT);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# The column a database made before sets had a purpose lacks (`_add_purposes`).
_PURPOSE_COLUMN = "purpose TEXT NOT NULL DEFAULT 'eval' CHECK(purpose IN ('eval','seed'))"


class NotFound(LookupError):
    pass


class NotAllowed(PermissionError):
    pass


class StateConflict(RuntimeError):
    """The record's status does not allow this action now."""


class StaleEdit(RuntimeError):
    """A save that started from an older version; carries both versions."""

    def __init__(self, message: str, yours: dict, theirs: dict | None):
        super().__init__(message)
        self.yours, self.theirs = yours, theirs


class InvalidLabel(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in errors))
        self.errors = errors


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def reviews(self) -> bool:
        return self.role in REVIEWERS


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


class LabelingStore:
    def __init__(self, db: Path = DEFAULT_DB, now: Callable[[], str] = utc_now):
        db = Path(db)
        db.parent.mkdir(parents=True, exist_ok=True)
        self.db, self.now = db, now
        # One connection per store; the web app makes one store per request.
        self.conn = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(_SCHEMA)
        self._add_purposes()
        self._schemas: dict[str, LabelSchema] = {}

    def _columns(self, table: str) -> set[str]:
        return {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}

    def _add_purposes(self) -> None:
        """Migrate a database made before sets had a purpose: each set becomes an eval set,
        as its locked versions read (`gold_sets.manifest_purpose`), and the audit log says so."""
        if "purpose" in self._columns("gold_sets"):
            return  # checked outside a transaction first: the page opens a store per request
        with self.transaction():
            if "purpose" in self._columns("gold_sets"):
                return  # another process migrated it meanwhile
            self.conn.execute(f"ALTER TABLE gold_sets ADD COLUMN {_PURPOSE_COLUMN}")
            for row in self.conn.execute("SELECT name FROM gold_sets ORDER BY name").fetchall():
                self.log("crucible", "migrate_purpose", row["name"], None, None, {"purpose": EVAL})

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def log(self, who: str, action: str, gold_set: str | None, record_id: int | None,
            before: Any, after: Any) -> None:
        """Append to the audit log; call inside the change's transaction."""
        self.conn.execute(
            "INSERT INTO audit_log(at, who, action, gold_set, record_id, before, after) VALUES(?,?,?,?,?,?,?)",
            (self.now(), who, action, gold_set, record_id, _dumps(before), _dumps(after)),
        )

    # ---- gold sets ----

    def create_set(self, who: str, name: str, task_path: str, labels_per_record: int, purpose: str = EVAL) -> dict:
        check_set_name(name)
        check_purpose(purpose)
        schema = load_label_schema(task_path)
        if labels_per_record < 1:
            raise GoldSetError(f"labels per record must be at least 1, not {labels_per_record}")
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM gold_sets WHERE name=?", (name,)).fetchone():
                raise GoldSetError(f"gold set {name} exists already")
            row = {"name": name, "task_path": task_path, "task": schema.name,
                   "labels_per_record": labels_per_record, "created_at": self.now(), "purpose": purpose}
            self.conn.execute("INSERT INTO gold_sets(name, task_path, task, labels_per_record, created_at, purpose)"
                              " VALUES(:name,:task_path,:task,:labels_per_record,:created_at,:purpose)", row)
            self.log(who, "create_set", name, None, None, row)
        return row

    def is_locked(self, name: str) -> bool:
        """Whether a version of the set was locked from this database (its audit log says)."""
        return self.conn.execute("SELECT 1 FROM audit_log WHERE gold_set=? AND action='lock' LIMIT 1",
                                 (name,)).fetchone() is not None

    def set_purpose(self, user: User, name: str, purpose: str) -> dict:
        """A reviewer or admin makes the set an eval or a seed set, until its first lock."""
        check_purpose(purpose)
        if not user.reviews:
            raise NotAllowed(f"{user.name} is a {user.role}: only a reviewer or admin sets a gold set's purpose")
        with self.transaction():
            before = self.gold_set(name)
            if before["purpose"] == purpose:
                return before
            if self.is_locked(name):
                raise StateConflict(f"gold set {name} has locked versions (purpose {before['purpose']}): a set keeps "
                                    f"its purpose once locked; create a new set for {purpose} rows")
            self.conn.execute("UPDATE gold_sets SET purpose=? WHERE name=?", (purpose, name))
            self.log(user.name, "set_purpose", name, None, {"purpose": before["purpose"]}, {"purpose": purpose})
        return before | {"purpose": purpose}

    def gold_set(self, name: str) -> dict:
        check_set_name(name)
        row = self.conn.execute("SELECT * FROM gold_sets WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no gold set {name}")
        return dict(row)

    def gold_sets(self) -> list[dict]:
        """Every set, with `locked`: whether its purpose is settled (`set_purpose`)."""
        rows = self.conn.execute("SELECT * FROM gold_sets ORDER BY name").fetchall()
        return [dict(row) | {"locked": self.is_locked(row["name"])} for row in rows]

    def label_schema(self, name: str) -> LabelSchema:
        if name not in self._schemas:
            self._schemas[name] = load_label_schema(self.gold_set(name)["task_path"])
        return self._schemas[name]

    # ---- records ----

    def add_record(self, who: str, gold_set: str, text: str, source: str, provenance: dict,
                   synthetic: bool) -> int:
        """Call inside a transaction (imports add many records in one)."""
        cursor = self.conn.execute(
            "INSERT INTO records(gold_set, input_text, source, provenance, synthetic, status, version, updated_at)"
            " VALUES(?,?,?,?,?,'draft',1,?)",
            (gold_set, text, source, _dumps(provenance), int(synthetic), self.now()),
        )
        self.log(who, "import", gold_set, cursor.lastrowid, None,
                 {"input_text": text, "source": source, "provenance": provenance, "synthetic": synthetic})
        return cursor.lastrowid

    def _record(self, gold_set: str, record_id: int) -> dict:
        self.gold_set(gold_set)
        row = None
        if 0 < record_id <= MAX_ROW_ID:
            row = self.conn.execute("SELECT * FROM records WHERE id=? AND gold_set=?", (record_id, gold_set)).fetchone()
        if row is None:
            raise NotFound(f"gold set {gold_set} has no record {record_id}")
        record = dict(row)
        for key in ("provenance", "final_answer"):
            record[key] = _loads(record[key])
        record["synthetic"] = bool(record["synthetic"])
        return record

    def _labels(self, record_id: int) -> list[dict]:
        labels = []
        for row in self.conn.execute("SELECT * FROM labels WHERE record_id=? ORDER BY updated_at, labeler", (record_id,)):
            label = dict(row)
            label["answer"] = _loads(label["answer"])
            labels.append(label)
        return labels

    def records(self, user: User, gold_set: str) -> list[dict]:
        """The queue as `user` may see it: every record's status and input, the number of
        labels submitted, and the user's own label status; never another labeler's answer."""
        self.gold_set(gold_set)
        rows = self.conn.execute(
            "SELECT r.id, r.status, r.input_text, r.synthetic,"
            " (SELECT COUNT(*) FROM labels l WHERE l.record_id=r.id AND l.status='submitted') AS submitted,"
            " (SELECT status FROM labels l WHERE l.record_id=r.id AND l.labeler=?) AS mine"
            " FROM records r WHERE r.gold_set=? ORDER BY r.id", (user.name, gold_set))
        return [dict(row) | {"synthetic": bool(row["synthetic"])} for row in rows]

    def record_view(self, user: User, gold_set: str, record_id: int) -> dict:
        """One record for `user`: their own label; every label only for a reviewer, and only
        once the record has left draft, so labels stay independent until review."""
        record = self._record(gold_set, record_id)
        labels = self._labels(record_id)
        record["mine"] = next((label for label in labels if label["labeler"] == user.name), None)
        record["labels"] = labels if user.reviews and record["status"] != "draft" else []
        record["labelers"] = [label["labeler"] for label in labels]
        record["labels_per_record"] = self.gold_set(gold_set)["labels_per_record"]
        return record

    def next_record(self, user: User, gold_set: str, after: int = 0) -> int | None:
        """The first record after `after` (wrapping round to the start) that `user` can
        label: one holding their draft, or one still short of labels that they have not
        labeled."""
        k = self.gold_set(gold_set)["labels_per_record"]
        row = self.conn.execute(
            "SELECT r.id FROM records r WHERE r.gold_set=? AND r.status='draft' AND r.id>? AND ("
            " EXISTS(SELECT 1 FROM labels l WHERE l.record_id=r.id AND l.labeler=? AND l.status='draft')"
            " OR (NOT EXISTS(SELECT 1 FROM labels l WHERE l.record_id=r.id AND l.labeler=?)"
            "     AND (SELECT COUNT(*) FROM labels l WHERE l.record_id=r.id) < ?))"
            " ORDER BY r.id LIMIT 1", (gold_set, after, user.name, user.name, k)).fetchone()
        if row is None and after:
            return self.next_record(user, gold_set, 0)
        return None if row is None else row["id"]

    def next_review(self, user: User, gold_set: str) -> int | None:
        """The next record waiting for `user`'s review: disagreements first."""
        row = self.conn.execute(
            "SELECT r.id FROM records r WHERE r.gold_set=? AND r.status IN ('in_review','submitted')"
            " AND NOT EXISTS(SELECT 1 FROM labels l WHERE l.record_id=r.id AND l.labeler=?)"
            " ORDER BY r.status='submitted', r.id LIMIT 1", (gold_set, user.name)).fetchone()
        return None if row is None else row["id"]

    # ---- labeling ----

    def _valid_answer(self, gold_set: str, answer: Any, input_text: str) -> dict:
        """The answer as its schema stores it; `InvalidLabel` naming each field that is wrong,
        and for a text label each check naming a field of the input (`input_text`, as edited)
        that the input does not hold."""
        if not isinstance(answer, dict):
            raise InvalidLabel([{"loc": (), "msg": "the answer must be a JSON object"}])
        schema = self.label_schema(gold_set).answer_schema
        try:
            valid = schema.model_validate(answer).model_dump(mode="json")
        except ValidationError as error:
            raise InvalidLabel([{"loc": e["loc"], "msg": e["msg"]} for e in error.errors()]) from None
        if issubclass(schema, TextReference) and (errors := input_errors(input_text, valid)):
            raise InvalidLabel([{"loc": ("checks",), "msg": error} for error in errors])
        return valid

    def save_label(self, user: User, gold_set: str, record_id: int, *, answer: Any, input_text: str | None = None,
                   note: str | None = None, discard_reason: str | None = None, submit: bool,
                   base_version: int | None) -> dict:
        """Save `user`'s label (a draft, or submitted). `base_version` is the version of
        their label the edit started from (None for a first save); a different stored
        version refuses the save with `StaleEdit`."""
        yours = {"answer": answer, "input_text": input_text, "note": note,
                 "discard_reason": discard_reason, "submit": submit, "base_version": base_version}
        with self.transaction():
            record = self._record(gold_set, record_id)
            if record["status"] != "draft":
                raise StateConflict(f"record {record_id} is {record['status']}: its labels are frozen for review")
            labels = self._labels(record_id)
            mine = next((label for label in labels if label["labeler"] == user.name), None)
            if (mine["version"] if mine else None) != base_version:
                raise StaleEdit(f"your label on record {record_id} was saved elsewhere since you opened it "
                                f"(version {mine['version'] if mine else 'none'}, yours started from {base_version})",
                                yours, mine)
            k = self.gold_set(gold_set)["labels_per_record"]
            if mine is None and len(labels) >= k:
                raise StateConflict(f"record {record_id} already has its {k} labeler(s)")
            if submit and discard_reason:
                answer = None
            elif submit:
                answer = self._valid_answer(gold_set, answer, input_text or record["input_text"])
            elif answer is not None and not isinstance(answer, dict):
                raise InvalidLabel([{"loc": (), "msg": "the answer must be a JSON object"}])
            edited = input_text if input_text is not None and input_text != record["input_text"] else None
            label = {"record_id": record_id, "labeler": user.name, "answer": answer, "input_text": edited,
                     "note": note or None, "discard_reason": discard_reason or None,
                     "status": "submitted" if submit else "draft",
                     "version": (mine["version"] if mine else 0) + 1, "updated_at": self.now()}
            self.conn.execute(
                "INSERT OR REPLACE INTO labels VALUES(:record_id,:labeler,:answer,:input_text,:note,"
                ":discard_reason,:status,:version,:updated_at)", {**label, "answer": _dumps(answer)})
            self.log(user.name, "submit_label" if submit else "save_draft", gold_set, record_id, mine, label)
            labels = [*[other for other in labels if other["labeler"] != user.name], label]
            submitted = [other for other in labels if other["status"] == "submitted"]
            if len(submitted) >= k:
                self._complete(user, gold_set, record, submitted)
        return label

    def _complete(self, user: User, gold_set: str, record: dict, submitted: list[dict]) -> None:
        reasons = self.disagreements(gold_set, submitted)
        status = "in_review" if reasons else "submitted"
        reason = "; ".join(reasons) or None
        self._set_record(user.name, "labels_complete", gold_set, record, status=status, review_reason=reason)

    def disagreements(self, gold_set: str, labels: list[dict]) -> list[str]:
        """Why these submitted labels need a reviewer's decision; empty when they agree."""
        compare = self.label_schema(gold_set).compare
        reasons = [f"{label['labeler']} proposes discarding: {label['discard_reason']}"
                   for label in labels if label["discard_reason"]]
        if any(label["input_text"] is not None for label in labels):
            reasons.append("the input was edited")
        answered = [label for label in labels if not label["discard_reason"]]
        fields = sorted({field for a, b in combinations(answered, 2) for field in compare(a["answer"], b["answer"])})
        if fields:
            reasons.append(f"labels differ on {', '.join(fields)}")
        return reasons

    def _set_record(self, who: str, action: str, gold_set: str, record: dict, **changes: Any) -> dict:
        before = {key: record[key] for key in changes} | {"version": record["version"]}
        after = changes | {"version": record["version"] + 1}
        stored = {key: _dumps(value) if key == "final_answer" else value for key, value in after.items()}
        assignments = ", ".join(f"{key}=:{key}" for key in stored)
        self.conn.execute(f"UPDATE records SET {assignments}, updated_at=:now WHERE id=:id",
                          {**stored, "now": self.now(), "id": record["id"]})
        self.log(who, action, gold_set, record["id"], before, after)
        return {**record, **after}

    # ---- review ----

    def _reviewable(self, user: User, gold_set: str, record_id: int, base_version: int, yours: dict) -> dict:
        if not user.reviews:
            raise NotAllowed(f"{user.name} is a {user.role}: only a reviewer or admin may do this")
        record = self._record(gold_set, record_id)
        if record["version"] != base_version:
            raise StaleEdit(f"record {record_id} changed since you opened it (version {record['version']}, "
                            f"yours started from {base_version})", yours, self.record_view(user, gold_set, record_id))
        return record

    def approve(self, user: User, gold_set: str, record_id: int, *, answer: Any, input_text: str | None = None,
                note: str | None = None, base_version: int) -> dict:
        """A reviewer's final answer for a record whose labels are all in."""
        yours = {"answer": answer, "input_text": input_text, "note": note, "base_version": base_version}
        with self.transaction():
            record = self._reviewable(user, gold_set, record_id, base_version, yours)
            if record["status"] not in ("submitted", "in_review"):
                raise StateConflict(f"record {record_id} is {record['status']}: only submitted or in-review "
                                    "records are approved")
            if user.name in [label["labeler"] for label in self._labels(record_id)]:
                raise NotAllowed(f"{user.name} labeled record {record_id}: nobody approves their own label")
            answer = self._valid_answer(gold_set, answer, input_text or record["input_text"])
            edited = input_text if input_text is not None and input_text != record["input_text"] else None
            return self._set_record(user.name, "approve", gold_set, record, status="approved", final_answer=answer,
                                    final_input=edited, reviewer=user.name, review_note=note or None)

    def discard(self, user: User, gold_set: str, record_id: int, *, reason: str, base_version: int) -> dict:
        with self.transaction():
            record = self._reviewable(user, gold_set, record_id, base_version, {"reason": reason})
            if record["status"] in ("approved", "discarded"):
                raise StateConflict(f"record {record_id} is {record['status']}: reopen it first")
            if len((reason or "").strip()) < 3:
                raise InvalidLabel([{"loc": ("reason",), "msg": "say why the record is discarded"}])
            return self._set_record(user.name, "discard", gold_set, record, status="discarded",
                                    discard_reason=reason.strip(), reviewer=user.name)

    def reopen(self, user: User, gold_set: str, record_id: int, *, base_version: int) -> dict:
        """Take back an approval or a discard; the record goes back to review (or to
        labeling, when it never had all its labels)."""
        with self.transaction():
            record = self._reviewable(user, gold_set, record_id, base_version, {})
            if record["status"] not in ("approved", "discarded"):
                raise StateConflict(f"record {record_id} is {record['status']}: only approved or discarded records reopen")
            k = self.gold_set(gold_set)["labels_per_record"]
            submitted = [label for label in self._labels(record_id) if label["status"] == "submitted"]
            status = "in_review" if len(submitted) >= k else "draft"
            return self._set_record(user.name, "reopen", gold_set, record, status=status, final_answer=None,
                                    final_input=None, reviewer=None, review_note=None, discard_reason=None,
                                    review_reason=f"reopened by {user.name}")

    # ---- reading for progress, agreement and lock ----

    def progress(self, gold_set: str) -> dict:
        k = self.gold_set(gold_set)["labels_per_record"]
        by_status = dict.fromkeys(STATUSES, 0) | {
            row["status"]: row["n"] for row in self.conn.execute(
                "SELECT status, COUNT(*) AS n FROM records WHERE gold_set=? GROUP BY status", (gold_set,))}
        labelers: dict[str, dict[str, int]] = {}
        for row in self.conn.execute(
                "SELECT l.labeler, l.status, COUNT(*) AS n FROM labels l JOIN records r ON r.id=l.record_id"
                " WHERE r.gold_set=? GROUP BY l.labeler, l.status", (gold_set,)):
            labelers.setdefault(row["labeler"], {"draft": 0, "submitted": 0})[row["status"]] = row["n"]
        reviewers = {row["reviewer"]: row["n"] for row in self.conn.execute(
            "SELECT reviewer, COUNT(*) AS n FROM records WHERE gold_set=? AND status='approved' GROUP BY reviewer",
            (gold_set,))}
        total = sum(by_status.values())
        return {"records": total, "labels_per_record": k, "by_status": by_status,
                "labels_needed": total * k, "labelers": labelers, "reviewers": reviewers}

    def submitted_labels(self, gold_set: str) -> list[dict]:
        rows = self.conn.execute(
            "SELECT l.*, r.status AS record_status, r.final_answer FROM labels l JOIN records r ON r.id=l.record_id"
            " WHERE r.gold_set=? AND l.status='submitted' ORDER BY l.record_id, l.labeler", (gold_set,))
        labels = []
        for row in rows:
            label = dict(row)
            label["answer"], label["final_answer"] = _loads(label["answer"]), _loads(label["final_answer"])
            labels.append(label)
        return labels

    def approved_records(self, gold_set: str) -> list[dict]:
        """Approved records with their submitted labels, in record order: what a lock writes."""
        ids = [row["id"] for row in self.conn.execute(
            "SELECT id FROM records WHERE gold_set=? AND status='approved' ORDER BY id", (gold_set,))]
        records = []
        for record_id in ids:
            record = self._record(gold_set, record_id)
            record["labels"] = [label for label in self._labels(record_id) if label["status"] == "submitted"]
            record["labelers"] = sorted(label["labeler"] for label in record["labels"])
            records.append(record)
        return records

    def audit_entries(self, gold_set: str, record_id: int | None = None, limit: int = 500) -> list[dict]:
        query = "SELECT * FROM audit_log WHERE gold_set=?" + (" AND record_id=?" if record_id is not None else "")
        params = (gold_set, record_id) if record_id is not None else (gold_set,)
        rows = self.conn.execute(query + " ORDER BY seq DESC LIMIT ?", (*params, limit))
        return [dict(row) | {"before": _loads(row["before"]), "after": _loads(row["after"])} for row in rows]
