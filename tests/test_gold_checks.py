"""A text set's labels in gold: checks edited through the labelers' page and its API like any
other label (refused with the reason when wrong), agreement on the checks worked out by
hand, a text set locked, verified and caught when edited, and the committed demo set."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from datagen.foundation.text_checks import TextReference, check_results, input_errors
from datagen.tasks.support_reply import TASK
from gold.agreement import agreement
from gold.app import COOKIE, create_app
from gold.gold_root import GoldRoot
from gold.gold_sets import form_fields
from gold.security_headers import CONTENT_SECURITY_POLICY
from gold.verify_gold_set import verify_version
from tests.gold_fixtures import ANN, RITA, open_copy, people_with_sessions
from tests.locked_gold import lock_gold_rows

REPLY_TASK = "datagen.tasks.support_reply:TASK"
TICKET = "From: Maya Lund\nOrder: A-204518\nSubject: Cracked lamp\n\nMy desk lamp arrived cracked."
BANNED = ["unfortunately", "kindly"]
REPLY = ("Hi Maya,\n\nSorry the desk lamp from order A-204518 arrived cracked. We're sending a replacement today."
         "\n\n— Juniper Support")
CHECKS = [{"kind": "names_field", "field": "customer_name", "value": "Maya"},
          {"kind": "names_field", "field": "order_id", "value": "A-204518"},
          {"kind": "must_mention", "terms": ["replacement"], "mode": "all"},
          {"kind": "must_not_say", "terms": BANNED},
          {"kind": "max_words", "limit": 80},
          {"kind": "matches_pattern", "pattern": r"Juniper Support\s*$"}]
LABEL = {"reply": REPLY, "checks": CHECKS}
RECORD = "/api/sets/replies/records/1"


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    db = tmp_path_factory.mktemp("people") / "labeling.sqlite3"
    return db, people_with_sessions(db)


@pytest.fixture
def store(people, tmp_path):
    store = open_copy(people[0], tmp_path / "labeling.sqlite3")
    store.create_set("cli:test", "replies", REPLY_TASK, 2)
    with store.transaction():
        store.add_record("cli:test", "replies", TICKET, "tickets.jsonl", {"line": 1}, False)
    yield store
    store.close()


@pytest.fixture
def client(store, people, tmp_path):
    app = create_app(store.db, tmp_path / "sets")
    return lambda name: TestClient(app, cookies={COOKIE: people[1][name]})


def save(client: TestClient, answer: dict, **extra):
    return client.put(f"{RECORD}/label", json={"answer": answer, "submit": True, "base_version": None, **extra})


def test_the_form_has_a_text_area_for_the_reply_and_the_checks_editor():
    assert [(field.name, field.kind) for field in form_fields(TASK.answer_schema)] == [
        ("reply", "longtext"), ("checks", "checks")]


def test_a_labeler_submits_a_reply_and_its_checks_through_the_api(client, store):
    response = save(client("ann"), LABEL, note="the house table: damaged means replacement")

    assert response.status_code == 200, response.text
    assert response.json()["label"]["answer"] == LABEL
    assert store.record_view(ANN, "replies", 1)["mine"]["answer"]["checks"][2] == {
        "kind": "must_mention", "terms": ["replacement"], "mode": "all"}


@pytest.mark.parametrize("checks, reply, field, message", [
    ([{"kind": "matches_pattern", "pattern": "(a+)+$"}], REPLY, "checks.0.matches_pattern.pattern",
     "a quantifier over a group that is itself repeated"),
    ([{"kind": "matches_pattern", "pattern": "Juniper ["}], REPLY, "checks.0.matches_pattern.pattern",
     "not a valid regular expression"),
    ([{"kind": "must_mention", "terms": [" "]}], REPLY, "checks.0.must_mention.terms", "a term is blank"),
    ([{"kind": "max_words", "limit": "eighty"}], REPLY, "checks.0.max_words.limit", "a valid integer"),
    ([{"kind": "names_field", "field": "order_id", "value": "A-999999"}], REPLY.replace("A-204518", "A-999999"),
     "checks", "check 1 (names_field): order_id 'A-999999' is not in the input"),
    ([{"kind": "max_words", "limit": 10}], REPLY, "checks",
     "the reference reply fails its own checks: check 1 (max_words): 19 words, at most 10"),
    ([], REPLY, "checks", "at least 1 item"),
])
def test_a_wrong_check_is_refused_with_422_naming_it(client, checks, reply, field, message):
    response = save(client("ann"), {"reply": reply, "checks": checks})

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    assert message in errors[0]["message"]


def test_labels_with_other_checks_go_to_review_and_the_reviewer_approves_one(client, store):
    bobs = {"reply": "Hi Maya,\n\nA replacement lamp for order A-204518 ships today.\n\n— Juniper Support",
            "checks": CHECKS[:4] + [{"kind": "max_words", "limit": 60}] + CHECKS[5:]}
    assert save(client("ann"), LABEL).status_code == 200
    assert save(client("bob"), bobs).status_code == 200
    record = store.record_view(RITA, "replies", 1)
    assert (record["status"], record["review_reason"]) == ("in_review", "labels differ on checks")

    review = client("rita").get("/sets/replies/records/1")
    approved = client("rita").post(f"{RECORD}/approve", json={"answer": LABEL, "base_version": record["version"]})

    assert review.status_code == 200 and "max_words: 60" in review.text and "max_words: 80" in review.text
    assert approved.status_code == 200 and approved.json()["final_answer"] == LABEL


def test_identical_checks_with_other_replies_agree(client, store):
    bobs = {"reply": "Hi Maya,\n\nA replacement lamp for order A-204518 ships today.\n\n— Juniper Support",
            "checks": list(reversed(CHECKS))}
    save(client("ann"), LABEL)
    save(client("bob"), bobs)

    assert store.record_view(RITA, "replies", 1)["status"] == "submitted"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.classes += (names.get("class") or "").split()
        self.inline += [f"<{tag} {name}=>" for name in names if name.startswith("on") or name == "style"]
        if tag == "style" or (tag == "script" and "src" not in names and names.get("type") != "application/json"):
            self.inline.append(f"<{tag}>")


def test_the_record_page_edits_checks_without_inline_code_under_the_same_csp(client):
    save(client("ann"), LABEL | {"checks": CHECKS}, submit=False)

    page = client("ann").get("/sets/replies/records/1")
    parsed = _Page()
    parsed.feed(page.text)

    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert parsed.inline == []
    assert parsed.classes.count("check") == 1 + len(CHECKS)  # each check, and the template of a new one
    assert {"check-kind", "check-terms", "check-mode", "check-pattern", "check-limit", "check-field", "check-value",
            "add-check", "remove-check", "check-template", "longtext"} <= set(parsed.classes)
    assert 'value="Juniper Support\\s*$"' in page.text and ">replacement</textarea>" in page.text


def test_the_agreement_page_and_api_show_agreement_per_check_kind(client, store):
    save(client("ann"), LABEL)
    save(client("bob"), LABEL | {"reply": REPLY.replace("today", "this morning")})

    figures = client("rita").get("/api/sets/replies/agreement").json()
    page = client("rita").get("/sets/replies/agreement")

    assert figures["fields"]["checks"] == {"agreement": 1.0, "identical": 1.0, "cross_pass": 1.0}
    assert figures["fields"]["reply"] == {"agreement": 1.0, "identical": 0.0}
    assert page.status_code == 200 and "checks.must_mention" in page.text and "cross-pass" in page.text


# ---- agreement on the checks, by hand ---------------------------------------------------

def label(record_id: int, labeler: str, mention: list[str], limit: int = 80, reply: str = REPLY) -> dict:
    checks = [{"kind": "names_field", "field": "customer_name", "value": "Maya"},
              {"kind": "must_mention", "terms": mention, "mode": "all"}, {"kind": "max_words", "limit": limit}]
    return {"record_id": record_id, "labeler": labeler, "answer": {"reply": reply, "checks": checks},
            "final_answer": None, "discard_reason": None}


# ann and bob label four replies. Their must_mention terms:
#
#   record   ann            bob            bob's reply passes ann's?   ann's reply passes bob's?
#   1        replacement    replacement    yes                         yes
#   2        replacement    sorry          yes ("Sorry ... replacement")  yes
#   3        cracked        cracked        yes                         yes
#   4        replacement    desk lamp      yes                         yes
#
# must_mention agreement 2/4. As nominal values, ann used replacement 3/4 and cracked 1/4, bob
# replacement 1/4, sorry 1/4, cracked 1/4, desk lamp 1/4: chance agreement p_e = 3/4 * 1/4 +
# 1/4 * 1/4 = 1/4, kappa = (1/2 - 1/4) / (3/4) = 1/3. max_words differs on record 4 only
# (80 vs 30): agreement 3/4; ann always wrote 80, so p_e = p_o = 3/4 and kappa is 0; the
# reply has 19 words, so it passes both. names_field: identical everywhere, one value: no kappa.
HAND = [label(1, "ann", ["replacement"]), label(1, "bob", ["replacement"]),
        label(2, "ann", ["replacement"]), label(2, "bob", ["sorry"]),
        label(3, "ann", ["cracked"]), label(3, "bob", ["cracked"]),
        label(4, "ann", ["replacement"]), label(4, "bob", ["desk lamp"], limit=30)]


def test_agreement_per_check_kind_and_cross_pass_are_worked_out_by_hand():
    fields = agreement(HAND, form_fields(TASK.answer_schema), TASK.compare_labels)["fields"]

    assert fields["checks"] == {"agreement": 0.5, "identical": 0.5, "cross_pass": 1.0}
    assert fields["checks.must_mention"] == {"agreement": 0.5, "identical": 0.5,
                                             "kappa": pytest.approx(1 / 3, abs=1e-4), "cross_pass": 1.0}
    assert fields["checks.max_words"] == {"agreement": 0.75, "identical": 0.75, "kappa": 0.0, "cross_pass": 1.0}
    assert fields["checks.names_field"] == {"agreement": 1.0, "identical": 1.0, "kappa": None, "cross_pass": 1.0}
    assert fields["checks.matches_pattern"] == {"agreement": 1.0, "identical": 1.0, "kappa": None, "cross_pass": None}


def test_a_check_the_other_reply_fails_lowers_cross_pass():
    short = "Hi Maya, a replacement ships. — Juniper Support"
    labels = [label(1, "ann", ["replacement"], reply=short), label(1, "bob", ["replacement", "cracked"])]

    fields = agreement(labels, form_fields(TASK.answer_schema), TASK.compare_labels)["fields"]

    # ann's reply fails bob's must_mention (no "cracked"); bob's passes ann's: 1 of 2.
    assert fields["checks"]["cross_pass"] == 0.5
    assert fields["checks.must_mention"]["cross_pass"] == 0.5
    assert fields["checks.names_field"]["cross_pass"] == 1.0


# ---- a text set locked, verified, and caught when edited ---------------------------------

def test_a_text_set_locks_counts_its_check_kinds_and_verifies(tmp_path):
    second = ("From: Ravi Menon <ravi.menon@example.com>\nSubject: Password reset\n\nThe reset email never arrives.",
              {"reply": "Hi Ravi,\n\nWe've sent a new reset link to ravi.menon@example.com.\n\n— Juniper Support",
               "checks": [{"kind": "names_field", "field": "email", "value": "ravi.menon@example.com"},
                          {"kind": "must_mention", "terms": ["reset link"], "mode": "all"}]})
    version = lock_gold_rows(tmp_path / "gold" / "sets", "support_reply", REPLY_TASK, [(TICKET, LABEL), second])

    locked = GoldRoot(tmp_path / "gold" / "sets").newest("support_reply")[0]
    assert [row["reference"] for row in locked.rows] == [LABEL, second[1]]
    assert locked.manifest["label_counts"] == {"checks": {
        "matches_pattern": 1, "max_words": 1, "must_mention": 2, "must_not_say": 1, "names_field": 3}}
    assert verify_version(version) == []

    records = version / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    os.chmod(records, 0o644)
    records.write_text(lines[0].replace('"limit":80', '"limit":800') + lines[1])
    problems = verify_version(version)
    assert f"{records} line 1 (record {locked.rows[0]['id'][:12]}): changed since the lock (sha256 differs)" in problems


def test_the_committed_support_reply_set_verifies_and_every_row_passes_its_own_checks():
    locked = GoldRoot("gold/sets").get("support_reply")

    assert (locked.name, locked.purpose, locked.key_id, len(locked.rows)) == ("support_reply/v1", "eval",
                                                                               "532ebe912f668beb", 34)
    assert set(locked.manifest["labelers"]) == {"author", "second-labeler"} and locked.manifest["reviewers"] == {
        "adjudicator": 34}
    for row in locked.rows:
        TextReference.model_validate(row["reference"])
        assert all(result.passed for result in check_results(row["reference"]["reply"], row["reference"]))
        assert input_errors(row["prompt"], row["reference"]) == []
    assert json.dumps(locked.manifest["agreement"]["fields"]["checks"]) == (
        '{"agreement": 0.8235, "identical": 0.8235, "cross_pass": 0.9706}')
