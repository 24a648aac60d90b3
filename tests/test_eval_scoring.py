"""The target and regression evals on literal outputs, with exact expected records and
scores; a gold set of another task or a wrong number of outputs is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datagen.tasks.support_triage import TASK
from evals.regression_eval import regression_chats, score_regression_outputs
from evals.target_eval import score_target_outputs
from gold.gold_root import LockedGoldSet

REF = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
       "needs_human": True, "summary": "Blender arrived cracked."}


def locked(task: str, rows: list[dict]) -> LockedGoldSet:
    return LockedGoldSet(Path("gold/sets/x/v1"), {"set": "x", "version": 1, "task": task, "sha256": "ab" * 32,
                                                  "records": len(rows)},
                         [dict(row, id=f"row-{i}") for i, row in enumerate(rows)], digest="cd" * 32, key_id="k1")


def test_target_records_keep_each_output_and_what_it_got_wrong():
    gold = locked("support_triage", [{"prompt": "My blender A-204518 came cracked", "reference": REF}] * 3)
    outputs = [json.dumps(REF), json.dumps(dict(REF, priority="low")), "Sure! Here it is."]
    rows, summary = score_target_outputs(TASK, gold, outputs, seed=0)
    assert [(row["gold_id"], row["parsed"], row["schema_valid"], row["exact"], row["wrong_fields"]) for row in rows] == [
        ("row-0", True, True, True, []),
        ("row-1", True, True, False, ["priority"]),
        ("row-2", False, False, False, ["category", "priority", "order_id", "product", "needs_human", "summary"])]
    assert rows[2]["output"] == "Sure! Here it is." and rows[2]["output_chars"] == 17
    assert summary["exact"]["value"] == 0.3333 and summary["parse_rate"]["value"] == 0.6667
    assert summary["field_accuracy"]["priority"]["value"] == 0.3333
    assert summary["gold_set"] == {"set": "x/v1", "task": "support_triage", "records": 3, "sha256": "ab" * 32,
                                   "digest": "cd" * 32, "signed_by": "k1", "path": "gold/sets/x/v1"}


def test_target_eval_refuses_another_tasks_gold_or_missing_outputs():
    with pytest.raises(ValueError, match="is of task 'general_regression', not 'support_triage'"):
        score_target_outputs(TASK, locked("general_regression", [{"prompt": "p", "reference": REF}]), ["{}"])
    with pytest.raises(ValueError, match="1 outputs for the 2 rows of x/v1"):
        score_target_outputs(TASK, locked("support_triage", [{"prompt": "p", "reference": REF}] * 2), ["{}"])


def test_regression_accuracy_overall_and_per_skill():
    gold = locked("general_regression", [
        {"prompt": "What is 7 + 5? Reply with the number only.",
         "reference": {"answer": "12", "match": "number", "skill": "arithmetic"}},
        {"prompt": "Compute 12 * 3.", "reference": {"answer": "36", "match": "number", "skill": "arithmetic"}},
        {"prompt": "Capital of France?", "reference": {"answer": "Paris", "match": "contains", "skill": "capitals"}},
        {"prompt": "Respond with OK.", "reference": {"answer": "OK", "match": "exact", "skill": "format"}},
    ])
    assert regression_chats(gold)[0] == [{"role": "user", "content": "What is 7 + 5? Reply with the number only."}]
    rows, summary = score_regression_outputs(gold, ["12", "It is 35.", "The capital is Paris.", "OK, sure"], seed=0)
    assert [row["right"] for row in rows] == [True, False, True, False]
    assert summary["accuracy"]["value"] == 0.5 and summary["accuracy"]["n"] == 4
    assert {skill: rate["value"] for skill, rate in summary["by_skill"].items()} == {
        "arithmetic": 0.5, "capitals": 1.0, "format": 0.0}
