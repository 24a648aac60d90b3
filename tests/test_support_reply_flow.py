"""The free-text family end to end from its committed recipes: a build against the scripted
teacher (tests/scripted_teacher.py) as teacher, student and judge, then the preflight on
the tiny model, with a text gold set locked into a temporary root. What it proves: replies
are filtered and verified by their checks, pairs come from the checks and from the judge,
and every gold row's checks are scored, into a verdict on the row score."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from datagen.foundation.text_checks import check_results
from datagen.tasks.support_reply import TASK, generate_tickets
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from flows.preflight import PreflightRecipe, preflight
from flows.recipe import load_recipe
from tests.locked_gold import lock_gold_rows
from tests.scripted_teacher import ScriptedTeacher
from tests.test_task_families import REGRESSION, write_recipes

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")

GOLD = [
    ("From: Ravi Menon <ravi.menon@example.com>\nSubject: Password reset\n\nThe reset email never arrives. Help?",
     {"reply": "Hi Ravi,\n\nWe've sent a new reset link to ravi.menon@example.com.\n\n— Juniper Support",
      "checks": [{"kind": "names_field", "field": "customer_name", "value": "Ravi"},
                 {"kind": "must_mention", "terms": ["reset link"], "mode": "all"},
                 {"kind": "max_words", "limit": 80}]}),
    ("From: Clara Bos\nOrder: A-528113\nSubject: Please cancel\n\nI ordered two water bottles by mistake.",
     {"reply": "Hi Clara,\n\nOrder A-528113 is cancelled, so you won't be charged.\n\n— Juniper Support",
      "checks": [{"kind": "names_field", "field": "order_id", "value": "A-528113"},
                 {"kind": "must_mention", "terms": ["cancelled"], "mode": "all"},
                 {"kind": "matches_pattern", "pattern": r"Juniper Support\s*$"}]}),
]
THANKS = "Thank you for writing in."
WRONG = "Hello! We have received your message and will get back to you."


def test_the_free_text_family_builds_and_preflights_from_its_recipes(tmp_path, tiny_model):
    gold_root = tmp_path / "gold" / "sets"
    lock_gold_rows(gold_root, "support_reply", "datagen.tasks.support_reply:TASK", GOLD)
    lock_gold_rows(gold_root, "general_regression", "gold.regression_schema:GENERAL_REGRESSION", REGRESSION)
    tickets = generate_tickets(6, 1)
    labels = {ticket.text: ticket.label for ticket in tickets}
    # Every other ticket's second reply passes its checks too (a padded reply the judge ranks
    # lower); the others' fails them. The student, asked after the teacher, always fails.
    padded = {ticket.text for ticket in tickets[::2]}

    def script(question: str, k: int) -> str:
        if question in labels:
            reply = labels[question]["reply"]
            if k == 0:
                return reply
            if k == 1 and question in padded:
                return reply.replace("\n\n— Juniper Support", f" {THANKS}\n\n— Juniper Support")
            return WRONG
        if "[Answer A]" in question:  # the judge, pairwise: the reply without the padding, in both orders
            first = question.split("[Answer A]")[1].split("[End of answer A]")[0]
            return json.dumps({"rationale": "plainer", "winner": "B" if THANKS in first else "A"})
        return json.dumps({"rationale": "scored", "score": 4 if THANKS in question else 8})

    with ScriptedTeacher(script) as teacher:
        folder = write_recipes(tmp_path, "support_reply", teacher.base_url, tiny_model, gold_root)
        recipe = yaml.safe_load((folder / "build.yaml").read_text())
        recipe["judge"]["endpoint"] = {"base_url": teacher.base_url, "model": "judge", "backoff_base_s": 0.01}
        # One request at a time: the k-th request for a ticket is then its k-th sample, so which
        # reply is sample 0 (the SFT row's, when both pass) does not depend on timing.
        recipe["distill"]["teachers"][0]["concurrency"] = 1
        (folder / "build.yaml").write_text(yaml.safe_dump(recipe))
        summary = build_dataset(load_recipe(folder / "build.yaml", BuildDatasetRecipe))

    run = Path(summary["run_dir"])
    assert summary["counts"]["SFT rows"] == summary["counts"]["prompts after dedupe"] == 6
    verified = json.loads((run / "verified" / "manifest.json").read_text())["summary"]
    assert verified["rejected_by_reason"] == {"wrong_fields": 3}
    # Two pairs a ticket by the checks, three by the judge; of the 15, three whose chosen side is
    # longer are dropped to keep that share within the recipe's 0.6.
    pair_set = summary["pair set"]
    assert pair_set["by_strategy"] == {"verifier_ranked": 2, "check_targeted": 5, "teacher_vs_student": 2,
                                       "judge_ranked": 3}
    assert (pair_set["dropped"], pair_set["skipped"]) == ({"length_balance": 3}, {})
    pairs = pl.read_parquet(run / "pairs" / "part-00000.parquet")
    for pair in pairs.filter(pl.col("strategy") == "check_targeted").iter_rows(named=True):
        failed = [r.kind for r in check_results(pair["rejected"], labels[pair["prompt"]]) if not r.passed]
        assert failed == [pair["axis"]] and all(r.passed for r in check_results(pair["chosen"], labels[pair["prompt"]]))
    for pair in pairs.filter(pl.col("strategy") == "judge_ranked").iter_rows(named=True):
        assert THANKS in pair["rejected"] and THANKS not in pair["chosen"]
    judge = json.loads((run / "judge" / "manifest.json").read_text())["summary"]
    assert judge["length_bias"] == {"compared": 3, "longer_won": 0, "longer_won_fraction": 0.0}
    exported = [json.loads(line) for line in (Path(summary["exports"]) / "trl_sft" / "train.jsonl").read_text()
                .splitlines()]
    for row in exported:  # a verified teacher reply, or the label's: either passes every check
        system, user, assistant = row["messages"]
        assert system == {"role": "system", "content": TASK.training_system_prompt}
        assert all(r.passed for r in check_results(assistant["content"], labels[user["content"]]))

    result = preflight(load_recipe(folder / "preflight.yaml", PreflightRecipe))
    out = tmp_path / "preflight"
    assert [ref["set"] for ref in result["gold_sets"]] == ["support_reply/v1", "general_regression/v1"]
    rows = [json.loads(line) for line in (out / "evals" / "pilot-SFT+DPO" / "target.jsonl").read_text().splitlines()]
    assert [len(row["checks"]) for row in rows] == [3, 3]
    assert all(0 <= row["check_share"] <= 1 for row in rows)
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert set(verdicts) == {"pilot SFT", "pilot SFT+DPO"}
    assert {verdict["metric"] for verdict in verdicts.values()} == {"check_share"}
    report = (out / "report.md").read_text()
    assert ("| model | replies given | all checks pass | row score (check share) | checks passed | regression "
            "accuracy | verdict |") in report.splitlines()
    assert "## Pass rate per check kind" in report
