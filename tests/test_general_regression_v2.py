"""general_regression/v2 is reproducible from v1 through the labeling store: the record
of how it was made (`gold/demo/general_regression_v2.py`) restores v1's rows, applies the
reviewed change, and a lock of the result is refused as nothing new over the committed v2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from gold.demo import general_regression_v2
from gold.gold_sets import GoldSetError
from gold.labeling_store import LabelingStore, User
from gold.lock_gold_set import lock_gold_set
from gold.regression_schema import RegressionReference
from tests.locked_gold import TEST_KEY, trusted_root

GOLD = Path(__file__).parent.parent / "gold" / "sets"


def test_restoring_v1_and_the_reviewed_change_lock_to_the_committed_v2(tmp_path):
    root = tmp_path / "sets"
    shutil.copytree(GOLD / "general_regression", root / "general_regression")
    shutil.copyfile(GOLD / "trusted_keys.json", root / "trusted_keys.json")
    trusted_root(root)
    db = tmp_path / "labeling.sqlite3"
    assert general_regression_v2.main(["--db", str(db), "--gold-root", str(root)]) == 0

    store = LabelingStore(db)
    try:
        audit = [entry["action"] for entry in store.audit_entries("general_regression", limit=1000)]
        assert (audit.count("reopen"), audit.count("approve")) == (22, 90 + 22)
        with pytest.raises(GoldSetError, match=f"nothing changed since {root / 'general_regression' / 'v2'}"):
            lock_gold_set(store, User("adjudicator", "reviewer"), "general_regression", root, TEST_KEY)
    finally:
        store.close()
    with pytest.raises(SystemExit, match="exists: this script builds a fresh database"):
        general_regression_v2.main(["--db", str(db), "--gold-root", str(root)])


def test_a_final_number_label_must_be_a_number():
    with pytest.raises(ValidationError, match="answer 'twelve' is not a number, as match=final_number needs"):
        RegressionReference(answer="twelve", match="final_number", skill="arithmetic")
    assert RegressionReference(answer="12", match="final_number", skill="arithmetic").match == "final_number"
