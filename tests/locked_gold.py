"""Locked gold sets for tests, made the way labelers make one: imported, labeled,
approved by someone else, and locked (`gold/`) with the tests' signing key, which the
gold root trusts, so every consumer's verification passes."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gold.labeling_store import LabelingStore, User
from gold.lock_gold_set import lock_gold_set
from gold.people import add_user
from gold.seed_sets import SeedCheck
from gold.signing import SigningKey, trust_key

LABELER, REVIEWER = User("lena", "labeler"), User("rob", "reviewer")
# The tests' own signing key, fixed so test gold roots are the same run to run. A
# forger's key, also fixed, is trusted by nobody.
TEST_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))), "tests")
FORGER_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))), "forger")


def trusted_root(gold_root: Path) -> Path:
    """`gold_root`, created if need be, trusting the tests' key."""
    Path(gold_root).mkdir(parents=True, exist_ok=True)
    trust_key(gold_root, TEST_KEY)
    return Path(gold_root)


def write_key_file(key: SigningKey, path: Path) -> Path:
    """`key` as the PEM file `crucible gold lock --key` reads, owner-only."""
    pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    return path


def lock_gold_rows(gold_root: Path, name: str, task_path: str, rows: list[tuple[str, dict]], purpose: str = "eval",
                   seed_check: SeedCheck | None = None) -> Path:
    """Lock `rows` (prompt, answer) as the next version of gold set `name`, an eval set or
    a seed set (which `seed_check` must prove disjoint from the eval sets); returns its folder."""
    gold_root = trusted_root(gold_root)
    store = LabelingStore(gold_root.parent / f"{name}-labeling.sqlite3")
    try:
        if not store.gold_sets():
            add_user(store, "test", LABELER.name, LABELER.role, "labeler-secret")
            add_user(store, "test", REVIEWER.name, REVIEWER.role, "reviewer-secret")
        if name not in {gold_set["name"] for gold_set in store.gold_sets()}:
            store.create_set("test", name, task_path, 1, purpose)
        (gold_root / name).mkdir(parents=True, exist_ok=True)
        (gold_root / name / "GUIDELINES.md").write_text("# Test guidelines\n")
        with store.transaction():
            ids = [store.add_record("test", name, prompt, "tests", {}, False) for prompt, _ in rows]
        for record_id, (_, answer) in zip(ids, rows):
            store.save_label(LABELER, name, record_id, answer=answer, submit=True, base_version=None)
            version = store.record_view(REVIEWER, name, record_id)["version"]
            store.approve(REVIEWER, name, record_id, answer=answer, base_version=version)
        return lock_gold_set(store, REVIEWER, name, gold_root, TEST_KEY, seed_check)
    finally:
        store.close()
