"""Locked gold sets for tests, made the way labelers make one: imported, labeled,
approved by someone else, and locked (`gold/`), so every consumer's verification passes."""

from __future__ import annotations

from pathlib import Path

from gold.labeling_store import LabelingStore, User
from gold.lock_gold_set import lock_gold_set
from gold.people import add_user

LABELER, REVIEWER = User("lena", "labeler"), User("rob", "reviewer")


def lock_gold_rows(gold_root: Path, name: str, task_path: str, rows: list[tuple[str, dict]]) -> Path:
    """Lock `rows` (prompt, answer) as the next version of gold set `name`; returns its folder."""
    gold_root = Path(gold_root)
    store = LabelingStore(gold_root.parent / f"{name}-labeling.sqlite3")
    try:
        if not store.gold_sets():
            add_user(store, "test", LABELER.name, LABELER.role, "labeler-secret")
            add_user(store, "test", REVIEWER.name, REVIEWER.role, "reviewer-secret")
        if name not in {gold_set["name"] for gold_set in store.gold_sets()}:
            store.create_set("test", name, task_path, 1)
        (gold_root / name).mkdir(parents=True, exist_ok=True)
        (gold_root / name / "GUIDELINES.md").write_text("# Test guidelines\n")
        with store.transaction():
            ids = [store.add_record("test", name, prompt, "tests", {}, False) for prompt, _ in rows]
        for record_id, (_, answer) in zip(ids, rows):
            store.save_label(LABELER, name, record_id, answer=answer, submit=True, base_version=None)
            version = store.record_view(REVIEWER, name, record_id)["version"]
            store.approve(REVIEWER, name, record_id, answer=answer, base_version=version)
        return lock_gold_set(store, REVIEWER, name, gold_root)
    finally:
        store.close()
