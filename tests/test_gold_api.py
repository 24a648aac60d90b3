"""The labelers' page and API (gold/app.py) on the real app, with real logins, and the
rules it enforces from gold/labeling_store.py: who may do what, labels kept apart until
review, stale edits refused with both versions, the append-only audit log."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from gold import people as gold_people
from gold.app import COOKIE, create_app
from gold.labeling_store import LabelingStore
from tests.gold_fixtures import (
    ANN,
    BOB,
    NOW,
    REGRESSION,
    REX,
    RITA,
    TICKETS,
    open_copy,
    submit,
    triage,
    triage_set,
    write_people_db,
)

RECORD = "/api/sets/triage/records/1"
GUIDELINES_TEXT = "# Triage guidelines\n\nPick the **earlier** category when a ticket has two intents.\n"


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """The people's database, their secrets, and a session token each (two for ann): an
    Argon2 check costs ~0.2 s, so most tests reuse these sessions instead of logging in."""
    db = tmp_path_factory.mktemp("people") / "labeling.sqlite3"
    secrets = write_people_db(db)
    store = LabelingStore(db)
    try:
        tokens = {name: gold_people.log_in(store, name, secret, address="test") for name, secret in secrets.items()}
        tokens["ann-2"] = gold_people.log_in(store, "ann", secrets["ann"], address="test")
    finally:
        store.close()
    return db, secrets, tokens


@pytest.fixture
def store(people, tmp_path):
    store = open_copy(people[0], tmp_path / "labeling.sqlite3")
    assert triage_set(store) == [1, 2, 3]
    yield store
    store.close()


@pytest.fixture
def gold_root(tmp_path):
    root = tmp_path / "sets"
    (root / "triage").mkdir(parents=True)
    (root / "triage" / "GUIDELINES.md").write_text(GUIDELINES_TEXT)
    # What a set named ".." would read, if a name could climb out of the gold root.
    (tmp_path / "GUIDELINES.md").write_text("OUTSIDE THE GOLD ROOT\n")
    return root


@pytest.fixture
def app(store, gold_root):
    return create_app(store.db, gold_root)


@pytest.fixture
def log_in(app, people):
    """A client with `name`'s session cookie, as `/login` set it."""
    tokens = people[2]

    def log_in(name: str) -> TestClient:
        return TestClient(app, cookies={COOKIE: tokens[name]})

    return log_in


def save(client: TestClient, answer: dict, *, submit: bool = True, base_version: int | None = None,
         record: str = RECORD, **extra):
    return client.put(f"{record}/label", json={"answer": answer, "submit": submit, "base_version": base_version,
                                                **extra})


# ---- logging in ----

def test_api_without_a_session_is_401_and_a_page_redirects_to_login(app):
    client = TestClient(app)

    api = client.get("/api/sets/triage/records")
    page = client.get("/sets/triage", follow_redirects=False)

    assert (api.status_code, api.json()) == (401, {"error": "log in first"})
    assert (page.status_code, page.headers["location"]) == (303, "/login")


@pytest.mark.parametrize("name, secret", [("ann", "not-anns-secret"), ("nobody", "whatever-secret")])
def test_wrong_secret_or_unknown_user_gets_the_login_page_with_401_and_no_session(app, name, secret):
    client = TestClient(app)

    response = client.post("/login", data={"name": name, "secret": secret}, follow_redirects=False)

    assert response.status_code == 401
    assert "Unknown user or wrong secret." in response.text
    assert COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 401


def test_login_with_the_right_secret_gives_a_session_and_logout_ends_it(app, people):
    client = TestClient(app)
    response = client.post("/login", data={"name": "ann", "secret": people[1]["ann"]}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/")

    assert client.get("/api/me").json() == {"name": "ann", "role": "labeler"}
    response = client.post("/logout", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert client.get("/api/me").status_code == 401


def test_an_expired_session_is_logged_out(log_in, store):
    client = log_in("ann")
    with store.transaction():
        store.conn.execute("UPDATE sessions SET expires_at='2026-01-01T00:00:00+00:00'")

    assert client.get("/api/me").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_login_cookie_is_httponly_and_samesite_strict(app, people):
    response = TestClient(app).post("/login", data={"name": "bob", "secret": people[1]["bob"]},
                                    follow_redirects=False)

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


def test_every_page_renders_for_a_reviewer(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())
    client = log_in("rita")

    for path in ("/", "/sets/triage", "/sets/triage/records/1", "/sets/triage/records/2", "/sets/triage/agreement",
                 "/sets/triage/audit", "/sets/triage/audit?record=1"):
        assert client.get(path).status_code == 200, path
    guidelines = client.get("/sets/triage/guidelines")
    assert "<strong>earlier</strong>" in guidelines.text


# ---- who may do what ----

def test_labeler_cannot_approve(log_in, store):
    submit(store, BOB, 1, triage())
    submit(store, REX, 1, triage())

    response = log_in("ann").post(f"{RECORD}/approve", json={"answer": triage(), "base_version": 2})

    assert (response.status_code, response.json()) == (
        403, {"error": "ann is a labeler: only a reviewer or admin may do this"})
    assert store.record_view(RITA, "triage", 1)["status"] == "submitted"


def test_labeler_cannot_read_the_audit_log(log_in):
    client = log_in("ann")

    api = client.get("/api/sets/triage/audit")
    page = client.get("/sets/triage/audit")

    assert (api.status_code, api.json()) == (
        403, {"error": "ann is a labeler: the audit log is for reviewers and admins"})
    assert page.status_code == 403


def test_a_reviewer_who_labeled_a_record_cannot_approve_it(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, RITA, 1, triage())

    response = log_in("rita").post(f"{RECORD}/approve", json={"answer": triage(), "base_version": 2})

    assert (response.status_code, response.json()) == (
        403, {"error": "rita labeled record 1: nobody approves their own label"})
    assert store.record_view(REX, "triage", 1)["status"] == "submitted"


def test_a_reviewer_approves_a_record_labeled_by_others(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage(summary="Where is my earbuds order?"))

    response = log_in("rita").post(f"{RECORD}/approve", json={"answer": triage(), "note": "clear", "base_version": 2})

    assert response.status_code == 200
    record = response.json()
    assert (record["status"], record["reviewer"], record["review_note"], record["version"]) == (
        "approved", "rita", "clear", 3)
    assert record["final_answer"] == triage()
    assert record["final_input"] is None


@pytest.mark.parametrize("name", ["..", "%2e%2e", "%2E%2E", "Demo", "a%2Fb", "%2e%2e%2fsets", "a" * 65, "-x"])
def test_bad_set_names_are_404_and_read_nothing_outside_the_gold_root(log_in, name):
    client = log_in("rita")

    # (A bare ".." in a URL is resolved by the client itself: "/sets/.." asks for "/".)
    for path in (f"/api/sets/{name}/records", f"/api/sets/{name}/progress", f"/api/sets/{name}/records/1",
                 f"/sets/{name}/guidelines", f"/sets/{name}/audit", f"/sets/{name}/records/1"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "OUTSIDE THE GOLD ROOT" not in response.text


def test_an_unknown_set_or_record_is_404(log_in):
    client = log_in("ann")

    assert client.get("/api/sets/nosuch/records").json() == {"error": "no gold set nosuch"}
    response = client.get("/api/sets/triage/records/99")
    assert (response.status_code, response.json()) == (404, {"error": "gold set triage has no record 99"})


def test_a_record_is_only_found_in_its_own_set(log_in, store):
    store.create_set("cli:test", "regression", REGRESSION, 1)

    response = log_in("ann").get("/api/sets/regression/records/1")

    assert (response.status_code, response.json()) == (404, {"error": "gold set regression has no record 1"})


# ---- labels stay independent until review ----

def test_a_labeler_sees_only_their_own_label(log_in):
    ann, bob = log_in("ann"), log_in("bob")
    assert save(ann, triage(priority="high")).status_code == 200
    assert save(bob, {"category": "refund_request"}, submit=False).status_code == 200

    record = bob.get(RECORD).json()

    assert record["labels"] == []
    assert (record["mine"]["labeler"], record["mine"]["answer"], record["mine"]["status"]) == (
        "bob", {"category": "refund_request"}, "draft")
    assert record["status"] == "draft"
    queue = bob.get("/api/sets/triage/records").json()
    assert queue[0] == {"id": 1, "status": "draft", "input_text": TICKETS[0], "synthetic": False, "submitted": 1,
                        "mine": "draft"}


def test_a_reviewer_sees_the_labels_only_once_the_record_left_draft(log_in):
    ann, bob, rita = log_in("ann"), log_in("bob"), log_in("rita")
    save(ann, triage())
    assert rita.get(RECORD).json()["labels"] == []

    save(bob, triage(product="earbuds"))

    record = rita.get(RECORD).json()
    assert record["status"] == "submitted"
    assert [(label["labeler"], label["answer"]["product"]) for label in record["labels"]] == [
        ("ann", "wireless earbuds"), ("bob", "earbuds")]
    assert bob.get(RECORD).json()["labels"] == []  # a labeler never sees the others', even after


def test_a_third_labeler_is_refused_once_a_record_has_its_labelers(log_in, store):
    submit(store, ANN, 1, triage())
    store.save_label(BOB, "triage", 1, answer={}, submit=False, base_version=None)

    response = save(log_in("rita"), triage())

    assert (response.status_code, response.json()) == (409, {"error": "record 1 already has its 2 labeler(s)"})


# ---- concurrent edits ----

def test_a_save_from_an_older_version_gets_409_with_yours_and_theirs(log_in):
    first_tab, second_tab = log_in("ann"), log_in("ann-2")  # one labeler, two sessions
    assert save(first_tab, {"category": "wrong_item"}, submit=False).json()["label"]["version"] == 1
    assert first_tab.get(RECORD).json()["mine"]["version"] == 1
    assert second_tab.get(RECORD).json()["mine"]["version"] == 1

    first = save(first_tab, triage(priority="high"), submit=False, base_version=1)
    second = save(second_tab, triage(priority="low"), submit=False, base_version=1, note="my take")

    assert (first.status_code, first.json()["label"]["version"]) == (200, 2)
    assert second.status_code == 409
    body = second.json()
    assert body["error"] == ("your label on record 1 was saved elsewhere since you opened it "
                             "(version 2, yours started from 1)")
    assert body["yours"] == {"answer": triage(priority="low"), "input_text": None, "note": "my take",
                             "discard_reason": None, "submit": False, "base_version": 1}
    assert body["theirs"]["version"] == 2
    assert body["theirs"]["answer"] == triage(priority="high")
    assert second_tab.get(RECORD).json()["mine"]["answer"] == triage(priority="high")


def test_a_first_save_when_a_label_already_exists_is_stale(log_in):
    first_tab, second_tab = log_in("ann"), log_in("ann-2")
    save(first_tab, {"category": "wrong_item"}, submit=False)

    response = save(second_tab, {"category": "cancellation"}, submit=False, base_version=None)

    assert response.status_code == 409
    assert response.json()["theirs"]["answer"] == {"category": "wrong_item"}


def test_two_reviewers_approving_at_the_same_version_the_second_gets_409(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())
    rita, rex = log_in("rita"), log_in("rex")

    first = rita.post(f"{RECORD}/approve", json={"answer": triage(), "base_version": 2})
    second = rex.post(f"{RECORD}/approve", json={"answer": triage(priority="high"), "base_version": 2})

    assert first.status_code == 200
    assert second.status_code == 409
    body = second.json()
    assert body["error"] == "record 1 changed since you opened it (version 3, yours started from 2)"
    assert body["yours"]["answer"] == triage(priority="high")
    assert (body["theirs"]["status"], body["theirs"]["reviewer"], body["theirs"]["final_answer"]) == (
        "approved", "rita", triage())
    assert store.record_view(RITA, "triage", 1)["final_answer"] == triage()


# ---- validating labels ----

@pytest.mark.parametrize("changes, errors", [
    ({"order_id": "12345"}, [{"field": "order_id", "message": "String should match pattern '^A-\\d{6}$'"}]),
    ({"category": "complaint"}, [{"field": "category", "message": (
        "Input should be 'shipping_delay', 'refund_request', 'damaged_item', 'wrong_item', 'account_access', "
        "'billing_error', 'product_question' or 'cancellation'")}]),
    ({"summary": " ".join(["word"] * 21)}, [{"field": "summary",
                                            "message": "Value error, summary has 21 words, at most 20 allowed"}]),
    ({"mood": "angry"}, [{"field": "mood", "message": "Extra inputs are not permitted"}]),
])
def test_an_invalid_answer_on_submit_is_422_naming_the_field(log_in, store, changes, errors):
    response = save(log_in("ann"), triage(**changes))

    assert response.status_code == 422
    assert response.json()["errors"] == errors
    assert store.record_view(ANN, "triage", 1)["mine"] is None


def test_a_regression_label_is_checked_against_its_match(log_in, store):
    store.create_set("cli:test", "regression", REGRESSION, 1)
    with store.transaction():
        store.add_record("cli:test", "regression", "What is 7 + 5?", "handwritten", {}, False)
    ann = log_in("ann")
    record = "/api/sets/regression/records/4"

    refused = save(ann, {"answer": "twelve", "match": "number", "skill": "arithmetic"}, record=record)
    saved = save(ann, {"answer": "12", "match": "number", "skill": "arithmetic"}, record=record)

    assert (refused.status_code, refused.json()["error"]) == (
        422, "answer: Value error, answer 'twelve' is not a number, as match=number needs")
    assert (saved.status_code, saved.json()["record"]["status"]) == (200, "submitted")


def test_a_missing_field_on_submit_is_422_naming_it(log_in):
    answer = triage()
    del answer["needs_human"]

    response = save(log_in("ann"), answer)

    assert response.json()["errors"] == [{"field": "needs_human", "message": "Field required"}]


def test_a_draft_may_be_incomplete_or_invalid(log_in):
    response = save(log_in("ann"), {"category": "refund_request", "order_id": "12345"}, submit=False)

    assert response.status_code == 200
    label = response.json()["label"]
    assert (label["answer"], label["status"], label["version"]) == (
        {"category": "refund_request", "order_id": "12345"}, "draft", 1)
    assert response.json()["record"]["status"] == "draft"


# ---- what the k-th label decides ----

def test_agreeing_labels_make_the_record_submitted(log_in):
    save(log_in("ann"), triage(product="earbuds", summary="Earbuds late."))
    response = save(log_in("bob"), triage())

    record = response.json()["record"]
    assert (record["status"], record["review_reason"], record["version"]) == ("submitted", None, 2)


@pytest.mark.parametrize("bobs, reason", [
    (triage(priority="high"), "labels differ on priority"),
    (triage(priority="high", order_id=None), "labels differ on order_id, priority"),
    (triage(product="desk lamp"), "labels differ on product"),
])
def test_disagreeing_labels_put_the_record_in_review_naming_the_fields(log_in, store, bobs, reason):
    save(log_in("ann"), triage())
    save(log_in("bob"), bobs)

    record = store.record_view(RITA, "triage", 1)
    assert (record["status"], record["review_reason"]) == ("in_review", reason)


def test_an_edited_input_or_a_proposed_discard_puts_the_record_in_review(log_in, store):
    save(log_in("ann"), triage(), input_text=TICKETS[0] + " (order from Berlin)")
    save(log_in("bob"), None, discard_reason="a test message")

    record = store.record_view(RITA, "triage", 1)
    assert (record["status"], record["review_reason"]) == (
        "in_review", "bob proposes discarding: a test message; the input was edited")
    assert [label["input_text"] for label in record["labels"]] == [TICKETS[0] + " (order from Berlin)", None]


def test_a_labeler_cannot_save_on_a_record_in_review(log_in, store):
    ann = log_in("ann")
    save(ann, triage())
    save(log_in("bob"), triage(priority="high"))

    response = save(ann, triage(priority="high"), base_version=1)

    assert (response.status_code, response.json()) == (
        409, {"error": "record 1 is in_review: its labels are frozen for review"})
    assert store.record_view(ANN, "triage", 1)["mine"]["answer"] == triage()


# ---- what to do next ----

def test_next_record_skips_what_the_labeler_already_labeled_and_wraps_around(log_in, store):
    ann, bob = log_in("ann"), log_in("bob")
    save(ann, triage())

    assert ann.get("/api/sets/triage/next").json() == {"record": 2, "review": None}
    assert bob.get("/api/sets/triage/next").json() == {"record": 1, "review": None}
    assert ann.get("/api/sets/triage/next", params={"after": 2}).json()["record"] == 3
    assert ann.get("/api/sets/triage/next", params={"after": 3}).json()["record"] == 2
    next_page = ann.get("/sets/triage/next", params={"after": 2}, follow_redirects=False)
    assert next_page.headers["location"] == "/sets/triage/records/3"


def test_next_review_puts_disagreements_first_and_skips_a_reviewers_own_labels(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())
    submit(store, ANN, 2, triage())
    submit(store, RITA, 2, triage(priority="high"))
    submit(store, ANN, 3, triage())
    submit(store, BOB, 3, triage(priority="low"))

    assert log_in("rex").get("/api/sets/triage/next").json() == {"record": None, "review": 2}
    assert log_in("rita").get("/api/sets/triage/next").json() == {"record": None, "review": 3}
    assert store.next_review(RITA, "triage") == 3
    store.approve(RITA, "triage", 3, answer=triage(), base_version=2)
    assert store.next_review(RITA, "triage") == 1


# ---- review: approve, discard and reopen ----

def test_a_record_still_in_labeling_cannot_be_approved(log_in, store):
    submit(store, ANN, 1, triage())

    response = log_in("rita").post(f"{RECORD}/approve", json={"answer": triage(), "base_version": 1})

    assert (response.status_code, response.json()) == (
        409, {"error": "record 1 is draft: only submitted or in-review records are approved"})


def test_an_invalid_approved_answer_is_422(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())

    response = log_in("rita").post(f"{RECORD}/approve", json={"answer": triage(priority="asap"), "base_version": 2})

    assert (response.status_code, [error["field"] for error in response.json()["errors"]]) == (422, ["priority"])
    assert store.record_view(RITA, "triage", 1)["status"] == "submitted"


@pytest.mark.parametrize("reason", ["", "  ", "no"])
def test_discarding_needs_a_reason(log_in, store, reason):
    response = log_in("rita").post(f"{RECORD}/discard", json={"reason": reason, "base_version": 1})

    assert (response.status_code, response.json()["errors"]) == (
        422, [{"field": "reason", "message": "say why the record is discarded"}])
    assert store.record_view(RITA, "triage", 1)["status"] == "draft"


def test_a_reviewer_discards_with_a_reason(log_in):
    response = log_in("rita").post(f"{RECORD}/discard", json={"reason": " spam, not a ticket ", "base_version": 1})

    record = response.json()
    assert (record["status"], record["discard_reason"], record["reviewer"], record["version"]) == (
        "discarded", "spam, not a ticket", "rita", 2)


def test_reopen_returns_an_approved_record_to_review(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())
    rita = log_in("rita")
    rita.post(f"{RECORD}/approve", json={"answer": triage(), "base_version": 2})

    response = rita.post(f"{RECORD}/reopen", json={"base_version": 3})

    record = response.json()
    assert (record["status"], record["final_answer"], record["reviewer"], record["review_reason"],
            record["version"]) == ("in_review", None, None, "reopened by rita", 4)
    again = rita.post(f"{RECORD}/approve", json={"answer": triage(priority="high"), "base_version": 4})
    assert again.json()["final_answer"] == triage(priority="high")


def test_reopen_of_a_record_short_of_labels_returns_it_to_labeling(log_in, store):
    rita = log_in("rita")
    rita.post(f"{RECORD}/discard", json={"reason": "duplicate of record 2", "base_version": 1})

    record = rita.post(f"{RECORD}/reopen", json={"base_version": 2}).json()

    assert record["status"] == "draft"
    assert save(log_in("ann"), triage()).status_code == 200


def test_reopen_of_a_record_not_approved_or_discarded_is_409(log_in):
    response = log_in("rita").post(f"{RECORD}/reopen", json={"base_version": 1})

    assert (response.status_code, response.json()) == (
        409, {"error": "record 1 is draft: only approved or discarded records reopen"})


# ---- the audit log ----

def test_audit_log_shows_who_did_what_with_before_and_after(log_in, store):
    draft = store.save_label(ANN, "triage", 1, answer={"category": "shipping_delay"}, submit=False,
                             base_version=None)
    store.save_label(ANN, "triage", 1, answer=triage(), note="tracking stuck", submit=True, base_version=1)

    entries = log_in("rita").get("/api/sets/triage/audit", params={"record": 1}).json()

    assert [(e["who"], e["action"], e["at"]) for e in entries] == [
        ("ann", "submit_label", NOW), ("ann", "save_draft", NOW), ("cli:test", "import", NOW)]
    submitted, drafted, imported = entries
    assert drafted["before"] is None
    assert drafted["after"] == {"record_id": 1, "labeler": "ann", "answer": {"category": "shipping_delay"},
                                "input_text": None, "note": None, "discard_reason": None, "status": "draft",
                                "version": 1, "updated_at": NOW}
    assert drafted["after"] == draft
    assert submitted["before"] == drafted["after"]
    assert submitted["after"] == {"record_id": 1, "labeler": "ann", "answer": triage(), "input_text": None,
                                  "note": "tracking stuck", "discard_reason": None, "status": "submitted",
                                  "version": 2, "updated_at": NOW}
    assert imported["after"] == {"input_text": TICKETS[0], "source": "tickets.jsonl", "provenance": {"line": 1},
                                 "synthetic": False}


def test_every_review_action_appends_to_the_audit_log(log_in, store):
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())
    rita = log_in("rita")
    rita.post(f"{RECORD}/approve", json={"answer": triage(), "base_version": 2})
    rita.post(f"{RECORD}/reopen", json={"base_version": 3})
    rita.post(f"{RECORD}/discard", json={"reason": "not a real customer", "base_version": 4})

    entries = store.audit_entries("triage", 1)

    assert [(e["who"], e["action"]) for e in entries] == [
        ("rita", "discard"), ("rita", "reopen"), ("rita", "approve"), ("bob", "labels_complete"),
        ("bob", "submit_label"), ("ann", "submit_label"), ("cli:test", "import")]
    discard, reopen, approve, complete = entries[:4]
    assert complete["before"] == {"status": "draft", "review_reason": None, "version": 1}
    assert complete["after"] == {"status": "submitted", "review_reason": None, "version": 2}
    assert approve["before"] == {"status": "submitted", "final_answer": None, "final_input": None,
                                 "reviewer": None, "review_note": None, "version": 2}
    assert approve["after"] == {"status": "approved", "final_answer": triage(), "final_input": None,
                                "reviewer": "rita", "review_note": None, "version": 3}
    assert (reopen["before"]["status"], reopen["after"]["status"]) == ("approved", "in_review")
    assert discard["after"] == {"status": "discarded", "discard_reason": "not a real customer",
                                "reviewer": "rita", "version": 5}


def test_the_audit_log_refuses_update_and_delete(store):
    count = store.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("UPDATE audit_log SET who='nobody'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("DELETE FROM audit_log WHERE action='import'")

    assert store.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == count
    assert store.conn.execute("SELECT DISTINCT who FROM audit_log WHERE action='import'").fetchall()[0][0] == "cli:test"
