"""Locking a gold set (gold/lock_gold_set.py) and verifying it (gold/verify_gold_set.py,
`crucible gold verify`): exact files, read-only, chained versions, and every tampering
named by file, line and record."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from datagen.foundation.hashing import canonical_json
from flows.cli import main
from gold.gold_root import GoldRoot, GoldSetTampered, open_version
from gold.gold_sets import GoldSetError
from gold.lock_gold_set import gold_row_id, lock_gold_set
from gold.verify_gold_set import verify_version
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
from tests.locked_gold import TEST_KEY, trusted_root, write_key_file

GUIDELINES_TEXT = "# Triage guidelines\n\nPick the earlier category when a ticket has two intents.\n"
LAMP = triage(category="billing_error", priority="urgent", order_id=None, product="desk lamp", needs_human=True,
              summary="Charged twice for a desk lamp; threatens a chargeback.")
DESK = triage(category="product_question", priority="low", order_id=None, product="standing desk",
              summary="Asks whether the standing desk includes a cable tray.")


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    db = tmp_path_factory.mktemp("people") / "labeling.sqlite3"
    write_people_db(db)
    return db


@pytest.fixture
def store(people, tmp_path):
    store = open_copy(people, tmp_path / "labeling.sqlite3")
    assert triage_set(store) == [1, 2, 3]
    yield store
    store.close()


@pytest.fixture
def gold_root(tmp_path):
    root = trusted_root(tmp_path / "sets")
    (root / "triage").mkdir(parents=True)
    (root / "triage" / "GUIDELINES.md").write_text(GUIDELINES_TEXT)
    return root


def approve(store, record_id: int, answer: dict, *, ann: dict | None = None, bob: dict | None = None,
            reviewer=RITA, **review) -> dict:
    """ann and bob label the record, `reviewer` approves `answer`."""
    submit(store, ANN, record_id, ann or answer)
    submit(store, BOB, record_id, bob or answer)
    version = store.record_view(reviewer, "triage", record_id)["version"]
    return store.approve(reviewer, "triage", record_id, answer=answer, base_version=version, **review)


@pytest.fixture
def v1(store, gold_root):
    """Version 1 of the triage set: records 1 and 2 approved, record 3 still a draft."""
    approve(store, 1, triage(), bob=triage(product="earbuds"), note="order id as written")
    approve(store, 2, LAMP)
    return lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)


def rewrite(path, text: str) -> None:
    os.chmod(path, 0o644)
    path.write_text(text)


# ---- what a lock writes ----

def test_lock_writes_v1_with_the_approved_records_in_record_order(v1, gold_root):
    assert v1 == gold_root / "triage" / "v1"
    assert sorted(path.name for path in v1.iterdir()) == ["GUIDELINES.md", "manifest.json", "records.jsonl"]
    rows = [json.loads(line) for line in (v1 / "records.jsonl").read_text().splitlines()]
    assert rows == [
        {"id": gold_row_id(TICKETS[0], triage()), "prompt": TICKETS[0], "reference": triage(),
         "notes": {"reviewer": "order id as written"}, "labelers": ["ann", "bob"], "reviewer": "rita",
         "source": "tickets.jsonl", "provenance": {"line": 1}, "synthetic": False, "record": 1},
        {"id": gold_row_id(TICKETS[1], LAMP), "prompt": TICKETS[1], "reference": LAMP,
         "notes": {}, "labelers": ["ann", "bob"], "reviewer": "rita",
         "source": "tickets.jsonl", "provenance": {"line": 2}, "synthetic": False, "record": 2},
    ]
    assert (v1 / "records.jsonl").read_text() == "".join(canonical_json(row) + "\n" for row in rows)
    assert (v1 / "GUIDELINES.md").read_text() == GUIDELINES_TEXT


def test_a_gold_row_id_is_the_sha256_of_prompt_and_canonical_reference():
    expected = hashlib.sha256(b'["Hi","{\\"a\\":1,\\"b\\":true}"]').hexdigest()

    assert gold_row_id("Hi", {"b": True, "a": 1}) == expected
    assert gold_row_id("Hi", {"a": 1, "b": True}) == expected
    assert gold_row_id("Hi", {"a": 1, "b": False}) != expected


def test_the_manifest_counts_label_values_names_people_and_hashes_every_line(v1):
    manifest = json.loads((v1 / "manifest.json").read_text())
    lines = (v1 / "records.jsonl").read_bytes().splitlines(keepends=True)

    assert (manifest["set"], manifest["version"], manifest["task"], manifest["task_path"]) == (
        "triage", 1, "support_triage", "datagen.tasks.support_triage:TASK")
    assert (manifest["locked_at"], manifest["locked_by"], manifest["records"]) == (NOW, "rita", 2)
    assert manifest["label_counts"] == {
        "category": {"billing_error": 1, "shipping_delay": 1},
        "priority": {"normal": 1, "urgent": 1},
        "needs_human": {"false": 1, "true": 1},
    }
    assert manifest["labelers"] == {"ann": 2, "bob": 2}
    assert manifest["reviewers"] == {"rita": 2}
    assert manifest["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    assert manifest["record_sha256"] == [
        {"id": json.loads(line)["id"], "sha256": hashlib.sha256(line).hexdigest()} for line in lines]
    assert manifest["guidelines_sha256"] == hashlib.sha256(GUIDELINES_TEXT.encode()).hexdigest()
    assert (manifest["synthetic_records"], manifest["sources"], manifest["left_out"]) == (
        0, {"tickets.jsonl": 2}, {"draft": 1})
    assert manifest["previous"] is None
    assert manifest["changelog"] == {"added": [line["id"] for line in manifest["record_sha256"]],
                                     "removed": [], "changed": []}
    # bob wrote "earbuds", ann "wireless earbuds": they agree, but are not identical.
    assert manifest["agreement"]["fields"]["product"] == {"agreement": 1.0, "identical": 0.5}


def test_the_locked_files_are_read_only(v1):
    for path in v1.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, path.name


def test_a_locked_version_verifies_and_reads(v1, gold_root):
    assert verify_version(v1) == []
    locked = open_version(v1 / "records.jsonl")
    assert (locked.name, locked.path, [row["record"] for row in locked.rows]) == ("triage/v1", v1, [1, 2])
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 0


def test_locking_again_with_nothing_changed_is_refused(v1, store, gold_root):
    with pytest.raises(GoldSetError, match=f"nothing changed since {v1}"):
        lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    assert sorted(path.name for path in (gold_root / "triage").iterdir()) == ["GUIDELINES.md", "v1", "versions.json"]


def test_a_labeler_cannot_lock(store, gold_root):
    approve(store, 1, triage())

    with pytest.raises(GoldSetError, match="ann is a labeler: only a reviewer or admin locks a gold set"):
        lock_gold_set(store, ANN, "triage", gold_root, TEST_KEY)
    assert not (gold_root / "triage" / "v1").exists()


def test_a_set_without_guidelines_or_approved_records_is_not_locked(store, gold_root):
    with pytest.raises(GoldSetError, match="gold set triage has no approved records to lock"):
        lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    (gold_root / "triage" / "GUIDELINES.md").unlink()
    approve(store, 1, triage())
    with pytest.raises(GoldSetError, match="GUIDELINES.md is missing"):
        lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    assert list((gold_root / "triage").iterdir()) == []


def test_the_reviewers_edited_input_is_the_prompt(store, gold_root):
    edited = "My order A-204518 (wireless earbuds) has not arrived."
    approve(store, 1, triage(), input_text=edited)

    rows = open_version(lock_gold_set(store, REX, "triage", gold_root, TEST_KEY)).rows

    assert [(row["prompt"], row["id"]) for row in rows] == [(edited, gold_row_id(edited, triage()))]


def test_v2_chains_to_v1_and_lists_what_was_added(v1, store, gold_root):
    approve(store, 3, DESK, reviewer=REX)

    v2 = lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)

    manifest = json.loads((v2 / "manifest.json").read_text())
    first = json.loads((v1 / "manifest.json").read_text())
    assert v2 == gold_root / "triage" / "v2"
    assert manifest["previous"] == {
        "version": 1, "sha256": first["sha256"],
        "manifest_sha256": hashlib.sha256((v1 / "manifest.json").read_bytes()).hexdigest()}
    assert manifest["changelog"] == {"added": [gold_row_id(TICKETS[2], DESK)], "removed": [], "changed": []}
    assert manifest["reviewers"] == {"rex": 1, "rita": 2}
    assert verify_version(v2) == []


def test_a_changed_approval_shows_in_the_changelog(v1, store, gold_root):
    store.reopen(RITA, "triage", 2, base_version=3)
    store.discard(RITA, "triage", 2, reason="a duplicate of another ticket", base_version=4)
    store.reopen(REX, "triage", 1, base_version=3)
    store.approve(REX, "triage", 1, answer=triage(priority="high"), base_version=4)

    manifest = json.loads((lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY) / "manifest.json").read_text())

    assert manifest["changelog"] == {
        "added": [], "removed": [gold_row_id(TICKETS[1], LAMP)],
        "changed": [{"record": 1, "from": gold_row_id(TICKETS[0], triage()),
                     "to": gold_row_id(TICKETS[0], triage(priority="high"))}]}
    assert manifest["left_out"] == {"draft": 1, "discarded": 1}


def test_newest_locked_sets_gives_the_newest_version_of_each_set_of_the_task(v1, store, gold_root):
    approve(store, 3, DESK)
    lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    (gold_root / "unlocked").mkdir()

    root = GoldRoot(gold_root)
    assert [locked.name for locked in root.every_version()] == ["triage/v1", "triage/v2"]
    assert [locked.name for locked in root.newest("support_triage")] == ["triage/v2"]
    with pytest.raises(GoldSetError, match=f"no locked gold set of task text_to_sql under {gold_root}"):
        root.newest("text_to_sql")


# ---- tampering ----

def test_a_one_byte_edit_is_reported_with_its_line_and_record(v1, gold_root, capsys):
    records = v1 / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    second = json.loads(lines[1])["id"]
    rewrite(records, lines[0] + lines[1].replace("charged twice", "charged thrice"))

    assert verify_version(v1) == [
        f"{records}: sha256 differs from the manifest's",
        f"{records} line 2 (record {second[:12]}): changed since the lock (sha256 differs)",
        f"{records} line 2 (record {second[:12]}): id does not match its prompt and reference",
    ]
    assert main(["gold", "verify", str(v1)]) == 1
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {v1}\n" in out
    assert f"line 2 (record {second[:12]}): changed since the lock" in out


def test_an_edit_that_also_rewrites_the_id_is_caught(v1):
    records = v1 / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    row = json.loads(lines[0])
    listed = row["id"]
    row["reference"]["priority"] = "high"
    row["id"] = gold_row_id(row["prompt"], row["reference"])
    rewrite(records, canonical_json(row) + "\n" + lines[1])

    assert verify_version(v1) == [
        f"{records}: sha256 differs from the manifest's",
        f"{records} line 1 (record {listed[:12]}): changed since the lock (sha256 differs)",
        f"{records} line 1 (record {listed[:12]}): id does not match its prompt and reference",
    ]


def test_a_dropped_line_is_reported(v1):
    records = v1 / "records.jsonl"
    rewrite(records, records.read_text().splitlines(keepends=True)[0])

    assert verify_version(v1) == [f"{records}: sha256 differs from the manifest's",
                                  f"{records}: 1 lines, the manifest lists 2 records"]


def test_read_locked_set_refuses_a_tampered_version_naming_the_line(v1):
    records = v1 / "records.jsonl"
    rewrite(records, records.read_text().replace("wireless earbuds", "wired earbuds", 1))

    with pytest.raises(GoldSetTampered, match=r"records\.jsonl line 1 \(record [0-9a-f]{12}\): changed"):
        open_version(v1)


def test_a_version_without_its_manifest_is_not_locked(v1, gold_root):
    (v1 / "manifest.json").unlink()

    assert verify_version(v1) == [f"{v1}: not locked (no manifest.json); lock it with `crucible gold lock`"]
    with pytest.raises(GoldSetTampered, match="not locked"):
        GoldRoot(gold_root)
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 1


def test_an_extra_file_in_a_version_is_reported(v1):
    (v1 / "extra.jsonl").write_text("{}\n")

    assert verify_version(v1) == [f"{v1}: files that are not part of the locked set: extra.jsonl"]


def test_an_edited_guidelines_copy_is_reported(v1):
    rewrite(v1 / "GUIDELINES.md", GUIDELINES_TEXT + "Also: urgent means urgent.\n")

    assert verify_version(v1) == [f"{v1 / 'GUIDELINES.md'}: missing or changed since the lock"]


def test_a_version_moved_to_another_number_is_reported(v1):
    moved = v1.parent / "v7"
    os.rename(v1, moved)

    assert verify_version(moved) == [f"{moved / 'manifest.json'}: says triage/v1, but lies in triage/v7"]


def test_v1_rewritten_whole_after_v2_exists_is_caught_by_v2(v1, store, gold_root):
    approve(store, 3, DESK)
    v2 = lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    # A careful forger rewrites v1's line and its manifest, so v1 verifies on its own.
    records, manifest_path = v1 / "records.jsonl", v1 / "manifest.json"
    lines = records.read_text().splitlines(keepends=True)
    row = json.loads(lines[0]) | {"reference": triage(priority="urgent")}
    row["id"] = gold_row_id(row["prompt"], row["reference"])
    lines[0] = canonical_json(row) + "\n"
    rewrite(records, "".join(lines))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256("".join(lines).encode()).hexdigest()
    manifest["record_sha256"][0] = {"id": row["id"], "sha256": hashlib.sha256(lines[0].encode()).hexdigest()}
    rewrite(manifest_path, json.dumps(manifest, indent=1) + "\n")

    assert verify_version(v1) == []
    assert verify_version(v2) == [f"{v1}: differs from the version v2 was built on"]
    with pytest.raises(GoldSetTampered, match="differs from the version v2 was built on"):
        GoldRoot(gold_root)


def test_an_edited_v1_manifest_is_caught_by_v2(v1, store, gold_root):
    approve(store, 3, DESK)
    v2 = lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    manifest = json.loads((v1 / "manifest.json").read_text()) | {"locked_by": "rex"}
    rewrite(v1 / "manifest.json", json.dumps(manifest, indent=1) + "\n")

    # Who locked v1 is not something v1 can check against itself; v2 holds its manifest's hash.
    assert verify_version(v1) == []
    assert verify_version(v2) == [f"{v1}: differs from the version v2 was built on"]


def test_a_missing_previous_version_is_reported(v1, store, gold_root):
    approve(store, 3, DESK)
    v2 = lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    for path in v1.iterdir():
        path.unlink()
    v1.rmdir()

    assert verify_version(v2) == [f"{v1}: the previous version is missing"]


def test_no_version_is_built_on_a_tampered_one(v1, store, gold_root):
    (v1 / "extra.jsonl").write_text("{}\n")
    approve(store, 3, DESK)

    with pytest.raises(GoldSetTampered, match="does not verify, so no version is built on it"):
        lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    assert not (gold_root / "triage" / "v2").exists()


def test_a_general_regression_set_locks_with_its_own_label_counts(store, gold_root):
    store.create_set("cli:test", "regression", REGRESSION, 1)
    with store.transaction():
        first = store.add_record("cli:test", "regression", "What is 7 + 5?", "handwritten", {}, False)
        second = store.add_record("cli:test", "regression", "Capital of France?", "handwritten", {}, False)
    twelve = {"answer": "12", "match": "number", "skill": "arithmetic"}
    paris = {"answer": "Paris", "match": "contains", "skill": "capitals"}
    for record_id, answer in ((first, twelve), (second, paris)):
        submit(store, ANN, record_id, answer, gold_set="regression")
        store.approve(REX, "regression", record_id, answer=answer, base_version=2)
    (gold_root / "regression").mkdir()
    (gold_root / "regression" / "GUIDELINES.md").write_text("# Regression\n")

    locked = open_version(lock_gold_set(store, REX, "regression", gold_root, TEST_KEY))

    assert [(row["prompt"], row["reference"]) for row in locked.rows] == [
        ("What is 7 + 5?", twelve), ("Capital of France?", paris)]
    assert (locked.manifest["task"], locked.manifest["label_counts"]) == (
        "general_regression", {"match": {"contains": 1, "number": 1}, "skill": {"arithmetic": 1, "capitals": 1}})


def test_lock_and_verify_from_the_command_line(store, gold_root, capsys):
    approve(store, 1, triage())
    store.close()
    db = store.db

    key = str(write_key_file(TEST_KEY, gold_root.parent / "key.pem"))
    assert main(["gold", "lock", "triage", "--as", "ann", "--db", str(db), "--gold-root", str(gold_root),
                 "--key", key]) == 2
    assert main(["gold", "lock", "triage", "--as", "rita", "--db", str(db), "--gold-root", str(gold_root),
                 "--key", key]) == 0
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 0

    out, err = capsys.readouterr()
    assert "error: ann is a labeler: only a reviewer or admin locks a gold set" in err
    assert f"locked {gold_root / 'triage' / 'v1'}: 1 records, sha256 " in out
    assert f"ok     {gold_root / 'triage' / 'v1'}\n" in out


def test_a_v1_manifest_that_is_no_longer_json_is_reported_by_v1_and_v2(v1, store, gold_root, capsys):
    approve(store, 3, DESK)
    v2 = lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)
    rewrite(v1 / "manifest.json", "not json\n")

    assert verify_version(v1) == [
        f"{v1 / 'manifest.json'}: not a JSON manifest (Expecting value: line 1 column 1 (char 0))"]
    assert verify_version(v2) == [f"{v1}: differs from the version v2 was built on"]
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 1
    assert capsys.readouterr().out.count("FAILED") == 2
