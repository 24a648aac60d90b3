"""A hostile or hurried user against the promise "locked means locked" (issue 14).

Each case is something that passed before gold versions were signed and every consumer
opened the gold root through `gold/gold_root.py`: a one-field edit of a locked manifest,
a deleted or swapped version, a consistent rewrite made without the private key, a forged
signature, a wrong gold root, an unlocked set handed to the audit, a training recipe with
no task. Each must now be refused, by `crucible gold verify` and by every consumer, with
the path and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datagen.foundation.hashing import canonical_json
from evals.contamination.audit_inputs import AuditInputError, read_gold
from evals.contamination.gate import ContaminationGateConfig, gold_sets_to_gate
from flows.cli import main
from flows.recipe import RecipeError, load_recipe
from flows.train_sft_dpo import TrainRecipe
from gold.gold_root import GoldRoot, GoldSetTampered, NoGoldSet
from gold.gold_sets import GoldSetError
from gold.lock_gold_set import gold_row_id, sign_gold_set
from gold.signed_versions import SIGNED_VERSIONS, version_entry, write_signed_versions
from gold.signing import TRUSTED_KEYS, generate_key, load_signing_key
from gold.verify_gold_set import verify_version
from tests.locked_gold import FORGER_KEY, TEST_KEY, lock_gold_rows, write_key_file

TRIAGE_TASK = "datagen.tasks.support_triage:TASK"
REGRESSION_TASK = "gold.regression_schema:GENERAL_REGRESSION"
BLENDER = "My blender from order A-204518 arrived with a cracked jug, I want a replacement please."
DESK = "Does the standing desk come with a cable tray?"
ANSWER = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
          "needs_human": True, "summary": "Blender arrived with a cracked jug; customer wants a replacement."}
DESK_ANSWER = {"category": "product_question", "priority": "low", "order_id": None, "product": "standing desk",
               "needs_human": False, "summary": "Asks whether the standing desk includes a cable tray."}


@pytest.fixture(scope="module")
def locked_root(tmp_path_factory) -> Path:
    """A gold root with triage v1 and v2 and a regression set, all locked and signed."""
    gold_root = tmp_path_factory.mktemp("locked") / "gold" / "sets"
    lock_gold_rows(gold_root, "triage", TRIAGE_TASK, [(BLENDER, ANSWER)])
    lock_gold_rows(gold_root, "triage", TRIAGE_TASK, [(BLENDER, ANSWER), (DESK, DESK_ANSWER)])
    lock_gold_rows(gold_root, "regression", REGRESSION_TASK,
                   [("What is 7 + 5?", {"answer": "12", "match": "number", "skill": "arithmetic"})])
    assert GoldRoot(gold_root).newest("support_triage")[0].name == "triage/v2"
    return gold_root


@pytest.fixture
def root(locked_root, tmp_path) -> Path:
    """A copy of `locked_root` for one test to attack (locked files stay read-only)."""
    shutil.copytree(locked_root.parent.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / "gold" / "sets"


def writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def edit_manifest(folder: Path, **changes) -> None:
    path = writable(folder / "manifest.json")
    path.write_text(json.dumps(json.loads(path.read_text()) | changes, indent=1) + "\n")


def verify_cli(gold_root: Path, capsys) -> tuple[int, str]:
    code = main(["gold", "verify", "--gold-root", str(gold_root)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def gate(gold_root: Path, **settings):
    config = ContaminationGateConfig.model_validate({"gold_root": str(gold_root)} | settings)
    return gold_sets_to_gate(config, "support_triage")


# ---- a locked manifest's own fields ---------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("task", "text_to_sql"), ("locked_by", "mallory"), ("labelers", {"mallory": 2}), ("reviewers", {"mallory": 2}),
    ("agreement", {}), ("label_counts", {}), ("synthetic_records", 3), ("left_out", {"discarded": 4}),
])
def test_a_one_field_edit_of_a_locked_manifest_is_caught_by_verify_and_every_consumer(root, field, value, capsys):
    v2 = root / "triage" / "v2"
    edit_manifest(v2, **{field: value})

    code, out = verify_cli(root, capsys)
    assert code == 1
    assert f"FAILED {v2}\n  {v2 / 'manifest.json'}: changed since it was signed" in out
    with pytest.raises(GoldSetTampered, match=f"{v2 / 'manifest.json'}: changed since it was signed"):
        gate(root)  # the build's and the training gate's way in
    with pytest.raises(AuditInputError, match="changed since it was signed"):
        read_gold(v2)


def test_retagging_the_task_no_longer_hides_a_gold_set_from_the_gate(root):
    # Before signing, this made the gate find no set of the task and pass a copied gold row.
    for version in ("v1", "v2"):
        edit_manifest(root / "triage" / version, task="text_to_sql")
    with pytest.raises(GoldSetTampered, match="do not verify, so none is used"):
        gate(root)


# ---- whole versions: deleted, swapped, added, rewritten ----------------------------------


def test_deleting_the_newest_version_is_caught(root, capsys):
    v2 = root / "triage" / "v2"
    os.chmod(v2, 0o755)
    shutil.rmtree(v2)

    code, out = verify_cli(root, capsys)
    assert code == 1 and f"{v2}: signed as locked, but missing (deleted?)" in out
    with pytest.raises(GoldSetTampered, match=r"v2: signed as locked, but missing"):
        GoldRoot(root)


def test_a_version_swapped_for_another_sets_is_caught(root, capsys):
    v1, other = root / "triage" / "v1", root / "regression" / "v1"
    for path in v1.iterdir():
        writable(path)
    for name in ("records.jsonl", "manifest.json"):
        shutil.copyfile(other / name, v1 / name)

    code, out = verify_cli(root, capsys)
    assert code == 1 and f"{v1 / 'records.jsonl'}: changed since it was signed" in out


def test_a_version_added_without_the_key_is_not_signed(root, capsys):
    v3 = root / "triage" / "v3"
    shutil.copytree(root / "triage" / "v2", v3)
    for path in v3.iterdir():
        writable(path)
    edit_manifest(v3, version=3)

    code, out = verify_cli(root, capsys)
    assert code == 1 and f"{v3}: not in the signed list {SIGNED_VERSIONS}; nobody with a trusted key locked it" in out


def consistent_rewrite(version: Path, priority: str) -> None:
    """What a careful forger does: change a label, recompute the row id, every hash in the
    manifest, and the signed list's file hashes, everything but the signature."""
    records = writable(version / "records.jsonl")
    lines = records.read_text().splitlines(keepends=True)
    row = json.loads(lines[0])
    row["reference"]["priority"] = priority
    row["id"] = gold_row_id(row["prompt"], row["reference"])
    lines[0] = canonical_json(row) + "\n"
    records.write_text("".join(lines))
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256("".join(lines).encode()).hexdigest()
    manifest["record_sha256"][0] = {"id": row["id"], "sha256": hashlib.sha256(lines[0].encode()).hexdigest()}
    writable(version / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    signed_path = version.parent / SIGNED_VERSIONS
    signed = json.loads(signed_path.read_text())
    number = int(version.name[1:])
    signed["versions"][number - 1] = version_entry(version)
    signed_path.write_text(json.dumps(signed, indent=1) + "\n")


def test_a_consistent_rewrite_without_the_private_key_is_caught(root, capsys):
    v2 = root / "triage" / "v2"
    consistent_rewrite(v2, "low")
    assert verify_version(v2) == []  # the version's own checks pass now: only the signature can tell

    code, out = verify_cli(root, capsys)
    assert code == 1
    assert f"{root / 'triage' / SIGNED_VERSIONS}: the signature by key {TEST_KEY.id} does not match" in out
    with pytest.raises(GoldSetTampered, match="changed without the private key"):
        gate(root)


def test_a_rewrite_signed_with_an_untrusted_key_is_caught(root, capsys):
    v2 = root / "triage" / "v2"
    consistent_rewrite(v2, "low")
    entries = json.loads((root / "triage" / SIGNED_VERSIONS).read_text())["versions"]
    write_signed_versions(root / "triage", entries, FORGER_KEY)

    code, out = verify_cli(root, capsys)
    assert code == 1 and f"signed by key {FORGER_KEY.id}, which {TRUSTED_KEYS} does not trust" in out
    # Nor may the forger's key bless the rewrite through `sign`, or lock on top of it.
    with pytest.raises(GoldSetError, match=f"key {FORGER_KEY.id} \\(forger\\) is not in"):
        sign_gold_set(root, "triage", FORGER_KEY)
    # A trusted key holder cannot re-bless a version changed after it was signed either.
    with pytest.raises(GoldSetTampered, match="does not trust"):
        sign_gold_set(root, "triage", TEST_KEY)


def test_a_revoked_key_unsigns_what_it_signed(root, capsys):
    trusted = root / TRUSTED_KEYS
    keys = json.loads(trusted.read_text())
    trusted.write_text(json.dumps(keys | {"keys": []}, indent=1))

    code, out = verify_cli(root, capsys)
    assert code == 1 and f"signed by key {TEST_KEY.id}, which {TRUSTED_KEYS} does not trust" in out
    trusted.unlink()
    code, out = verify_cli(root, capsys)
    assert code == 2 and f"{trusted}: missing, so no gold version can be trusted" in out


def test_a_deleted_signed_list_leaves_every_version_unsigned(root, capsys):
    (root / "triage" / SIGNED_VERSIONS).unlink()
    code, out = verify_cli(root, capsys)
    assert code == 1
    for version in ("v1", "v2"):
        assert f"FAILED {root / 'triage' / version}\n  {root / 'triage' / SIGNED_VERSIONS}: missing" in out


# ---- where the gold root is wrong or the set was never locked --------------------------


def test_a_mistyped_gold_root_is_an_error_not_no_gold(tmp_path, capsys):
    missing = tmp_path / "gold" / "stes"
    with pytest.raises(GoldSetError, match=f"{missing}: no such folder of gold sets"):
        gate(missing)
    code, out = verify_cli(missing, capsys)
    assert code == 2 and f"{missing}: no such folder of gold sets" in out


def test_no_gold_set_of_the_task_needs_a_stated_reason(tmp_path):
    gold_root = tmp_path / "gold" / "sets"
    lock_gold_rows(gold_root, "regression", REGRESSION_TASK,
                   [("What is 7 + 5?", {"answer": "12", "match": "number", "skill": "arithmetic"})])
    with pytest.raises(NoGoldSet, match="set contamination_gate.without_gold_reason to say why"):
        gate(gold_root)
    with pytest.raises(ValueError, match="at least 10 characters"):
        gate(gold_root, without_gold_reason="because")
    assert gate(gold_root, without_gold_reason="a new task; its gold set is being labelled")[1] == []


def test_the_audit_refuses_an_unlocked_set_or_one_without_its_manifest(root, tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"prompt": "Where is my parcel?", "response": "on its way"}) + "\n")
    candidate = tmp_path / "candidate" / "v1"
    candidate.mkdir(parents=True)
    (candidate / "records.jsonl").write_text(json.dumps({"prompt": BLENDER, "reference": "x"}) + "\n")
    v2 = root / "triage" / "v2"
    writable(v2 / "manifest.json").unlink()

    for gold, reason in ((candidate, "not locked (no manifest.json)"), (v2, "not locked (no manifest.json)"),
                         (root / "triage" / "v1", "do not verify")):
        done = subprocess.run([sys.executable, "-m", "flows.cli", "audit", "--gold", str(gold), "--train", str(train),
                               "--out", str(tmp_path / "audit"), "--no-embedding"],
                              cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, (gold, done.stdout, done.stderr)
        assert reason in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "audit").exists()


def test_a_training_recipe_must_name_its_task(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("export: runs/x/export\n")
    with pytest.raises(RecipeError, match=r"train.yaml: task: Field required"):
        load_recipe(path, TrainRecipe)


# ---- keys ---------------------------------------------------------------------------------


def test_a_private_key_is_refused_inside_a_checkout_or_readable_by_others(tmp_path):
    checkout = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    with pytest.raises(GoldSetError, match="lies inside the git checkout"):
        generate_key(checkout / "keys" / "gold.pem", "ann")
    key = generate_key(tmp_path / "keys" / "gold.pem", "ann")
    assert (tmp_path / "keys" / "gold.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(GoldSetError, match="exists already"):
        generate_key(tmp_path / "keys" / "gold.pem", "ann")
    os.chmod(tmp_path / "keys" / "gold.pem", 0o644)
    with pytest.raises(GoldSetError, match="permissions 644 let others read the signing key"):
        load_signing_key(tmp_path / "keys" / "gold.pem", "ann")
    os.chmod(tmp_path / "keys" / "gold.pem", 0o600)
    assert load_signing_key(tmp_path / "keys" / "gold.pem", "ann").id == key.id


def test_lock_refuses_a_key_the_root_does_not_trust(root, tmp_path, capsys):
    from gold.labeling_store import LabelingStore
    from gold.lock_gold_set import lock_gold_set
    from tests.locked_gold import REVIEWER

    store = LabelingStore(root.parent / "triage-labeling.sqlite3")
    try:
        with pytest.raises(GoldSetError, match=f"key {FORGER_KEY.id} \\(forger\\) is not in .*trusted_keys.json"):
            lock_gold_set(store, REVIEWER, "triage", root, FORGER_KEY)
    finally:
        store.close()
    forged = write_key_file(FORGER_KEY, tmp_path / "forger.pem")
    assert main(["gold", "sign", "triage", "--gold-root", str(root), "--key", str(forged)]) == 2
    assert "is not in" in capsys.readouterr().err


def test_keygen_trusts_the_new_key_and_sign_adopts_an_unsigned_set(tmp_path, capsys):
    gold_root = tmp_path / "gold" / "sets"
    v1 = lock_gold_rows(gold_root, "triage", TRIAGE_TASK, [(BLENDER, ANSWER)])
    (v1.parent / SIGNED_VERSIONS).unlink()  # a set locked before versions were signed
    key_path = tmp_path / "home" / "gold.pem"
    assert main(["gold", "keygen", "--owner", "rita", "--gold-root", str(gold_root), "--key", str(key_path)]) == 0
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 1
    assert main(["gold", "sign", "triage", "--gold-root", str(gold_root), "--key", str(key_path)]) == 0
    assert main(["gold", "verify", "--gold-root", str(gold_root)]) == 0
    owners = {entry["owner"] for entry in json.loads((gold_root / TRUSTED_KEYS).read_text())["keys"]}
    assert owners == {"tests", "rita"}
    assert "never commit it" in capsys.readouterr().out


# ---- the committed demo sets ----------------------------------------------------------


def test_the_committed_gold_sets_are_signed_by_a_trusted_key():
    repo = Path(__file__).parent.parent
    root = GoldRoot(repo / "gold" / "sets")
    assert sorted(locked.name for locked in root.every_version()) == [
        "general_regression/v1", "general_regression/v2", "invoice_extraction/v1", "support_reply/v1",
        "support_triage/v1", "support_triage_seed/v1", "text_to_sql/v1"]
    trusted = json.loads((repo / "gold" / "sets" / TRUSTED_KEYS).read_text())["keys"]
    assert {locked.key_id for locked in root.every_version()} <= {entry["id"] for entry in trusted}


def test_an_export_of_another_task_is_refused_before_its_gate(tmp_path):
    from flows.train_sft_dpo import ExportTaskMismatch, check_export_task

    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"config": {"task": "datagen.tasks.text_to_sql:TASK"}}))
    with pytest.raises(ExportTaskMismatch, match="was built for datagen.tasks.text_to_sql:TASK"):
        check_export_task(export, TRIAGE_TASK)
    ablation = tmp_path / "ablation"
    ablation.mkdir()
    (ablation / "manifest.json").write_text(json.dumps({"parent_export": str(export)}))
    with pytest.raises(ExportTaskMismatch):
        check_export_task(ablation, TRIAGE_TASK)
    check_export_task(export, "datagen.tasks.text_to_sql:TASK")
