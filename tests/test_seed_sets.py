"""Seed sets (gold/seed_sets.py): a gold set's purpose stored, migrated, shown, set and
signed; a seed set is never an eval set; a seed set that overlaps an eval set is not
locked, and the refusal names both rows and the measures."""

from __future__ import annotations

import functools
import json
import os
import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evals.contamination.seed_disjointness import seed_disjointness
from flows.cli import main
from gold.app import COOKIE, create_app
from gold.gold_root import GoldRoot, GoldSetTampered, NoGoldSet
from gold.gold_sets import GoldSetError
from gold.labeling_store import LabelingStore, NotAllowed, StateConflict
from gold.lock_gold_set import gold_row_id, lock_gold_set
from gold.people import add_user
from gold.seed_sets import SeedOverlapError
from tests.gold_fixtures import (
    ANN,
    BOB,
    NOW,
    REPO,
    RITA,
    TRIAGE,
    open_copy,
    people_with_sessions,
    submit,
    triage,
    triage_set,
)
from tests.locked_gold import TEST_KEY, lock_gold_rows, trusted_root, write_key_file

PARCEL = ("My parcel for order A-311920 has been stuck at the Leeds depot for nine days now, can you chase the "
          "courier please?")
BLENDER = "The blender jar arrived with a crack down the side, order A-118734. I would like a replacement sent out."
EVAL_ROWS = [
    (PARCEL, triage(order_id="A-311920", product=None, priority="high",
                    summary="Parcel stuck at the Leeds depot for nine days; asks us to chase the courier.")),
    (BLENDER, triage(category="damaged_item", priority="high", order_id="A-118734", product="blender",
                     summary="Blender jar arrived cracked; customer wants a replacement.")),
]
EMAIL = "Can I change the email address on my account without losing my order history and saved cards?"
COPY = "  my parcel for order A-311920 has been stuck at the LEEDS depot for nine days now, can you chase the courier please?"
PARAPHRASE = "Order A-118734 - my blender jar came cracked down the side, please send a replacement."
SEED_ROWS = [
    (EMAIL, triage(category="account_access", priority="normal", order_id=None, product=None,
                   summary="Asks whether changing the account email keeps order history and saved cards.")),
    (COPY, EVAL_ROWS[0][1]),
    (PARAPHRASE, triage(category="damaged_item", priority="high", order_id="A-118734", product="blender",
                        summary="Blender jar came cracked; wants a replacement.")),
]


def embed(texts):
    """A toy sentence embedder: parcels point one way, blenders another, the rest between
    (cosine 0.6 and 0.8 with them, under the 0.85 threshold)."""
    return np.array([[1.0, 0.0] if "parcel" in text else [0.0, 1.0] if "blender" in text else [0.6, 0.8]
                     for text in texts])


CHECK = functools.partial(seed_disjointness, embed=embed)


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """ann, bob, rita and rex, and a session token each."""
    db = tmp_path_factory.mktemp("people") / "labeling.sqlite3"
    return db, people_with_sessions(db)


# ---- the purpose in the labeling store ----

def test_a_set_is_an_eval_set_unless_created_as_a_seed_set(tmp_path):
    store = LabelingStore(tmp_path / "labeling.sqlite3", now=lambda: NOW)
    store.create_set("cli:test", "triage", TRIAGE, 2)
    store.create_set("cli:test", "triage_seed", TRIAGE, 2, "seed")

    assert [(s["name"], s["purpose"], s["locked"]) for s in store.gold_sets()] == [
        ("triage", "eval", False), ("triage_seed", "seed", False)]
    assert store.audit_entries("triage_seed")[0]["after"]["purpose"] == "seed"
    with pytest.raises(GoldSetError, match="^'train' is not a gold set purpose: use eval or seed$"):
        store.create_set("cli:test", "other", TRIAGE, 2, "train")


def test_a_database_from_before_purposes_is_migrated_with_every_set_an_eval_set(tmp_path):
    db = tmp_path / "labeling.sqlite3"
    old = sqlite3.connect(db)  # the gold_sets table as it was before sets had a purpose
    old.execute("CREATE TABLE gold_sets(name TEXT PRIMARY KEY, task_path TEXT NOT NULL, task TEXT NOT NULL, "
                "labels_per_record INTEGER NOT NULL CHECK(labels_per_record >= 1), created_at TEXT NOT NULL)")
    old.execute("INSERT INTO gold_sets VALUES('triage', ?, 'support_triage', 2, ?)", (TRIAGE, NOW))
    old.commit()
    old.close()

    store = LabelingStore(db, now=lambda: NOW)
    assert store.gold_set("triage") == {"name": "triage", "task_path": TRIAGE, "task": "support_triage",
                                        "labels_per_record": 2, "created_at": NOW, "purpose": "eval"}
    store.create_set("cli:test", "triage_seed", TRIAGE, 2, "seed")
    store.close()
    again = LabelingStore(db)  # migrated once: opening it again changes nothing
    assert [(s["name"], s["purpose"]) for s in again.gold_sets()] == [("triage", "eval"), ("triage_seed", "seed")]
    assert [(e["who"], e["action"], e["before"], e["after"]) for e in again.audit_entries("triage")] == [
        ("crucible", "migrate_purpose", None, {"purpose": "eval"})]


def test_a_reviewer_sets_the_purpose_until_the_first_lock(people, tmp_path):
    store = open_copy(people[0], tmp_path / "labeling.sqlite3")
    triage_set(store)
    gold_root = trusted_root(tmp_path / "sets")
    (gold_root / "triage").mkdir()
    (gold_root / "triage" / "GUIDELINES.md").write_text("# Triage\n")

    with pytest.raises(NotAllowed, match="^ann is a labeler: only a reviewer or admin sets a gold set's purpose$"):
        store.set_purpose(ANN, "triage", "seed")
    assert store.set_purpose(RITA, "triage", "seed")["purpose"] == "seed"
    assert store.set_purpose(RITA, "triage", "eval")["purpose"] == "eval"
    submit(store, ANN, 1, triage())
    submit(store, BOB, 1, triage())
    store.approve(RITA, "triage", 1, answer=triage(), base_version=store.record_view(RITA, "triage", 1)["version"])
    lock_gold_set(store, RITA, "triage", gold_root, TEST_KEY)

    with pytest.raises(StateConflict, match=r"^gold set triage has locked versions \(purpose eval\): a set keeps its "
                                            "purpose once locked; create a new set for seed rows$"):
        store.set_purpose(RITA, "triage", "seed")
    assert store.gold_sets()[0]["locked"] is True
    changes = [(e["who"], e["before"], e["after"]) for e in store.audit_entries("triage") if e["action"] == "set_purpose"]
    assert changes == [("rita", {"purpose": "seed"}, {"purpose": "eval"}), ("rita", {"purpose": "eval"}, {"purpose": "seed"})]
    store.close()


def test_the_sets_page_shows_each_purpose_and_a_reviewer_sets_it(people, tmp_path):
    db, tokens = people
    store = open_copy(db, tmp_path / "labeling.sqlite3")
    triage_set(store)
    store.close()
    app = create_app(tmp_path / "labeling.sqlite3", tmp_path / "sets")
    rita, ann = (TestClient(app, cookies={COOKIE: tokens[name]}) for name in ("rita", "ann"))

    assert [(s["name"], s["purpose"], s["locked"]) for s in ann.get("/api/sets").json()] == [("triage", "eval", False)]
    refused = ann.put("/api/sets/triage/purpose", json={"purpose": "seed"})
    assert (refused.status_code, refused.json()["error"]) == (
        403, "ann is a labeler: only a reviewer or admin sets a gold set's purpose")
    assert rita.put("/api/sets/triage/purpose", json={"purpose": "train"}).status_code == 422
    assert rita.post("/sets/triage/purpose", data={"purpose": "train"}).status_code == 422

    done = rita.post("/sets/triage/purpose", data={"purpose": "seed"}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/")
    page = rita.get("/").text
    assert '<form method="post" action="/sets/triage/purpose" class="purpose-form">' in page
    assert '<option value="seed" selected>seed</option>' in page
    labeler_page = ann.get("/").text
    assert '<span class="pill purpose-seed">seed</span>' in labeler_page
    assert "purpose-form" not in labeler_page
    assert '<span id="set-purpose" class="pill purpose-seed">seed</span>' in ann.get("/sets/triage").text
    assert rita.put("/api/sets/triage/purpose", json={"purpose": "eval"}).json()["purpose"] == "eval"


# ---- the purpose in locked versions ----

def test_the_purpose_is_signed_and_a_manifest_without_one_is_an_eval_set(tmp_path):
    root = tmp_path / "sets"
    v1 = lock_gold_rows(root, "triage", TRIAGE, EVAL_ROWS)
    manifest = json.loads((v1 / "manifest.json").read_text())
    assert manifest["purpose"] == "eval"
    assert "disjoint_from_eval_sets" not in manifest

    os.chmod(v1 / "manifest.json", 0o644)
    (v1 / "manifest.json").write_text(json.dumps(manifest | {"purpose": "seed"}, indent=1) + "\n")
    with pytest.raises(GoldSetTampered, match=f"{v1 / 'manifest.json'}: changed since it was signed"):
        GoldRoot(root)

    # The committed demo sets were locked before sets had a purpose: they are eval sets.
    committed = GoldRoot(REPO / "gold" / "sets").get("support_triage/v1")
    assert "purpose" not in committed.manifest
    assert committed.purpose == "eval"


def test_a_seed_set_is_never_an_eval_set(tmp_path):
    root = tmp_path / "sets"
    lock_gold_rows(root, "triage", TRIAGE, EVAL_ROWS)
    seed_v1 = lock_gold_rows(root, "triage_seed", TRIAGE, SEED_ROWS[:1], "seed", CHECK)
    gold = GoldRoot(root)

    assert [locked.name for locked in gold.newest("support_triage")] == ["triage/v1"]
    seed = gold.seed_set("triage_seed", "support_triage")
    assert (seed.name, seed.path, seed.purpose) == ("triage_seed/v1", seed_v1, "seed")
    assert gold.seed_set("triage_seed/v1", "support_triage") == seed
    with pytest.raises(NoGoldSet, match=r"triage/v1 is not a seed set \(purpose eval\): its rows measure fine-tunes"):
        gold.seed_set("triage", "support_triage")
    with pytest.raises(NoGoldSet, match="seed set triage_seed/v1 is of task support_triage, not text_to_sql"):
        gold.seed_set("triage_seed", "text_to_sql")
    # The judge's guard covers every human-labelled row, seed rows included.
    assert gold.prompt_index().find(EMAIL) == ("prompt", f"gold set triage_seed/v1 line 1 ({seed_v1 / 'records.jsonl'})")

    eval_v1 = gold.get("triage")
    assert seed.manifest["purpose"] == "seed"
    assert seed.manifest["disjoint_from_eval_sets"] == {
        "seed": "triage_seed", "verdict": "disjoint",
        "eval_sets": [{"set": "triage/v1", "digest": eval_v1.digest, "sha256": eval_v1.manifest["sha256"],
                       "records": 2}],
        "methods": ["exact", "ngram", "minhash", "embedding"], "overlaps": [], "reports": []}


def test_a_seed_set_that_overlaps_an_eval_set_is_not_locked_naming_rows_and_measures(tmp_path):
    root = tmp_path / "sets"
    records = lock_gold_rows(root, "triage", TRIAGE, EVAL_ROWS) / "records.jsonl"
    seed_ids = [gold_row_id(*row)[:12] for row in SEED_ROWS]
    eval_ids = [gold_row_id(*row)[:12] for row in EVAL_ROWS]

    with pytest.raises(SeedOverlapError) as refused:
        lock_gold_rows(root, "triage_seed", TRIAGE, SEED_ROWS, "seed", CHECK)
    assert str(refused.value) == (
        "seed set triage_seed is not locked: it comes too close to eval rows in 2 pairs (measured by exact, "
        "ngram, minhash, embedding):\n"
        f"  seed row triage_seed record 2 (id {seed_ids[1]}) ~ eval row {records}:1 (id {eval_ids[0]}) of "
        "triage/v1: exact, ngram, minhash, embedding\n"
        f"  seed row triage_seed record 3 (id {seed_ids[2]}) ~ eval row {records}:2 (id {eval_ids[1]}) of "
        "triage/v1: embedding\n"
        "rewrite or discard those seed rows in review and lock a new version: eval rows are never trained on")
    assert not (root / "triage_seed" / "v1").exists()


def test_a_seed_set_is_locked_only_against_an_eval_set_and_with_the_audit(tmp_path):
    root = tmp_path / "sets"
    with pytest.raises(SeedOverlapError, match="^seed set triage_seed is not locked: its task has no locked eval set "
                                               "to prove it disjoint from; lock the eval set first$"):
        lock_gold_rows(root, "triage_seed", TRIAGE, SEED_ROWS[:1], "seed", CHECK)
    lock_gold_rows(root, "triage", TRIAGE, EVAL_ROWS)
    with pytest.raises(GoldSetError, match="^seed set triage_seed is not locked: a seed set is locked only once the "
                                           "contamination audit proves it disjoint"):
        lock_gold_rows(root, "triage_seed", TRIAGE, SEED_ROWS[:1], "seed")
    assert not (root / "triage_seed" / "v1").exists()


def test_crucible_gold_lock_runs_the_full_audit_on_a_seed_set(tmp_path, capsys):
    """The real command, the real sentence model: a paraphrase of an eval ticket is refused
    by its embedding alone; discarded in review, the rest locks and verifies."""
    root = tmp_path / "sets"
    lock_gold_rows(root, "triage", TRIAGE, EVAL_ROWS)
    db = tmp_path / "labeling.sqlite3"
    options = ["--db", str(db), "--gold-root", str(root)]
    assert main(["gold", "create-set", "triage_seed", "--task", TRIAGE, "--purpose", "seed",
                 "--labels-per-record", "1", *options]) == 0
    (root / "triage_seed").mkdir()
    (root / "triage_seed" / "GUIDELINES.md").write_text("# Seed tickets\n")
    store = LabelingStore(db)
    add_user(store, "test", ANN.name, ANN.role, "ann-secret")
    add_user(store, "test", RITA.name, RITA.role, "rita-secret")
    with store.transaction():
        ids = [store.add_record("test", "triage_seed", text, "tests", {}, False) for text, _ in (SEED_ROWS[0], SEED_ROWS[2])]
    for record_id, (_, answer) in zip(ids, (SEED_ROWS[0], SEED_ROWS[2])):
        submit(store, ANN, record_id, answer, "triage_seed")
        store.approve(RITA, "triage_seed", record_id, answer=answer,
                      base_version=store.record_view(RITA, "triage_seed", record_id)["version"])
    key = str(write_key_file(TEST_KEY, tmp_path / "key.pem"))
    lock = ["gold", "lock", "triage_seed", "--as", "rita", "--key", key, *options]

    assert main(lock) == 2
    err = capsys.readouterr().err
    assert "error: seed set triage_seed is not locked: it comes too close to eval rows in 1 pairs" in err
    assert (f"  seed row triage_seed record 2 (id {gold_row_id(*SEED_ROWS[2])[:12]}) ~ eval row "
            f"{root / 'triage' / 'v1' / 'records.jsonl'}:2 (id {gold_row_id(*EVAL_ROWS[1])[:12]}) of triage/v1: "
            "embedding\n") in err

    version = store.record_view(RITA, "triage_seed", ids[1])["version"]
    store.reopen(RITA, "triage_seed", ids[1], base_version=version)
    store.discard(RITA, "triage_seed", ids[1], reason="a paraphrase of an eval ticket",
                  base_version=version + 1)
    store.close()
    assert main(lock) == 0
    assert main(["gold", "verify", *options]) == 0
    out = capsys.readouterr().out
    assert "seed set disjoint from triage/v1 (exact, ngram, minhash, embedding)\n" in out
    assert f"ok     {root / 'triage_seed' / 'v1'}\n" in out
    locked = GoldRoot(root).seed_set("triage_seed", "support_triage")
    assert [row["prompt"] for row in locked.rows] == [EMAIL]


def test_the_demo_seed_set_is_locked_signed_varied_and_disjoint_from_the_triage_eval_set():
    """gold/sets/support_triage_seed (made by gold/demo/build_demo_sets.py, locked by
    `crucible gold lock`): a verified seed set of at least 30 tickets showing every label
    value, whose signed proof names the newest triage eval version, and which the audit's
    text measures still find disjoint from it (the embedding measure ran at the lock)."""
    from evals.contamination.audit import AuditConfig

    gold = GoldRoot(REPO / "gold" / "sets")
    seed = gold.seed_set("support_triage_seed", "support_triage")
    newest_eval = gold.newest("support_triage")
    assert seed.purpose == "seed" and len(seed.rows) >= 30
    assert seed.manifest["label_counts"] == {  # every value of every closed field, with its count
        "category": {"account_access": 4, "billing_error": 5, "cancellation": 4, "damaged_item": 6,
                     "product_question": 4, "refund_request": 6, "shipping_delay": 4, "wrong_item": 5},
        "priority": {"high": 23, "low": 3, "normal": 7, "urgent": 5}, "needs_human": {"false": 17, "true": 21}}
    proof = seed.manifest["disjoint_from_eval_sets"]
    assert proof["verdict"] == "disjoint"
    assert [ref["digest"] for ref in proof["eval_sets"]] == [locked.digest for locked in newest_eval]
    ids = [row["order_id"] for row in (r["reference"] for r in seed.rows)]
    assert sum(i is None for i in ids) >= 10 and sum(i is not None for i in ids) >= 10

    again = seed_disjointness(seed.label, [(str(i), row) for i, row in enumerate(seed.rows)], newest_eval,
                              AuditConfig(methods=["exact", "ngram", "minhash"]))
    assert again.verdict == "disjoint", again.overlaps
