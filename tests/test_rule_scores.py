"""Accuracy per labelling rule: which rules decide a triage row (on literal rows and on the
locked gold set), Wilson intervals, per-rule accuracy of a candidate, and the causes a
failed verdict names."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from datagen.tasks.support_triage import TASK
from datagen.tasks.support_triage_rules import RULES, rules_of
from evals.candidate_verdicts import CandidateScores, judge_candidates
from evals.failure_causes import worst_rule_below_base
from evals.preflight_explanations import on_policy_table
from evals.rule_scores import gold_rules, rule_accuracy, wilson_interval

GOLD = Path(__file__).resolve().parents[1] / "gold" / "sets" / "support_triage" / "v1" / "records.jsonl"


def label(category, priority, needs_human, order_id=None) -> dict:
    return {"category": category, "priority": priority, "needs_human": needs_human, "order_id": order_id,
            "product": None, "summary": "x"}


def test_the_wilson_interval_matches_scipys_on_literal_counts():
    # scipy.stats.binomtest(k, n).proportion_ci(method="wilson"), rounded to 4 places.
    assert wilson_interval(2, 12) == (0.047, 0.448)
    assert wilson_interval(0, 4) == (0.0, 0.4899)
    assert wilson_interval(4, 4) == (0.5101, 1.0)
    assert wilson_interval(120, 130) == (0.8642, 0.9577)
    with pytest.raises(ValueError, match="3 of 2"):
        wilson_interval(3, 2)


@pytest.mark.parametrize(("prompt", "reference", "template_id", "note", "expected"), [
    # A generated mixed ticket: precedence from its template id, urgency's reason from its signal sentence.
    ("My kettle arrived cracked. It started to smoke when I plugged it in. Also, my kettle is the wrong colour.",
     label("damaged_item", "urgent", True), "damaged_item/cracked+wrong_item/aside-wrong-colour", "",
     ("category_precedence", "urgent_safety_hazard", "needs_human_by_urgency", "needs_human_by_category",
      "order_id_none")),
    # A gold row: the note names precedence; a malformed id is a decoy; no person, so no human.
    ("a-390172 sent the blue scarf, I ordered green, cancel the rest", label("wrong_item", "high", False),
     "", "Lowercase 'a-390172' is not a valid id, so null; wrong_item beats cancellation.",
     ("category_precedence", "high_by_category", "needs_human_not_called_for", "order_id_decoy")),
    # The note names the urgent reason; the prompt's words would not.
    ("Fix my account or I'll see you in small claims", label("account_access", "urgent", True), "",
     "A small claims court threat is a legal threat: urgent.",
     ("urgent_legal_threat", "needs_human_by_urgency", "order_id_none")),
    # Anger raises a question to high; asking for a person is what calls for a human.
    ("Order A-204518: this is a scam. Can I talk to someone?", label("product_question", "high", True, "A-204518"),
     "", "", ("high_by_signal", "needs_human_asked", "order_id_as_written")),
    ("Does the desk come with a tray?", label("product_question", "low", False), "", "",
     ("low_plain_question", "needs_human_not_called_for", "order_id_none")),
    # Two valid ids: the one not answered is a decoy.
    ("got A-300101 and A-300102, cancel the second", label("cancellation", "normal", False, "A-300102"), "", "",
     ("normal_otherwise", "needs_human_not_called_for", "order_id_decoy")),
])
def test_the_rules_that_decide_a_row(prompt, reference, template_id, note, expected):
    assert rules_of(prompt, reference, template_id, note) == expected
    assert TASK.rule_names(prompt, reference, template_id, note) == expected


def test_every_rule_decides_rows_of_the_locked_gold_set():
    rows = [json.loads(line) for line in GOLD.read_text().splitlines()]
    decided = gold_rules(TASK, rows)
    counts = {rule.name: sum(rule.name in names for names in decided.values()) for rule in RULES}
    assert counts == {
        "category_precedence": 35, "urgent_safety_hazard": 5, "urgent_compromised_account": 5,
        "urgent_legal_threat": 8, "high_by_category": 51, "high_by_signal": 12, "low_plain_question": 16,
        "normal_otherwise": 34, "needs_human_by_urgency": 17, "needs_human_by_category": 48, "needs_human_asked": 4,
        "needs_human_not_called_for": 70, "order_id_as_written": 61, "order_id_decoy": 11, "order_id_none": 58}
    by_record = {row["record"]: decided[row["id"]] for row in rows}
    # The decoys are exactly the rows whose notes discuss an id that does not count.
    assert sorted(record for record, names in by_record.items() if "order_id_decoy" in names) == [
        36, 41, 43, 60, 64, 68, 85, 94, 103, 106, 107]
    # Every urgent row's reason is found, from its notes.
    urgent = [row for row in rows if row["reference"]["priority"] == "urgent"]
    assert len(urgent) == 17
    assert all(any(name.startswith("urgent_") for name in by_record[row["record"]]) for row in urgent)


def test_a_task_naming_an_undeclared_rule_is_refused():
    broken = dataclasses.replace(TASK, rules_of=lambda *row: ("made_up",))
    with pytest.raises(ValueError, match=r"named \['made_up'\], not among its labelling_rules"):
        broken.rule_names("x", label("cancellation", "normal", False))


def target_row(gold_id: str, wrong: list[str], valid: bool = True) -> dict:
    return {"gold_id": gold_id, "wrong_fields": wrong, "schema_valid": valid, "exact": not wrong}


DECIDED = {"a": ("high_by_signal", "order_id_none"), "b": ("high_by_signal", "order_id_decoy"),
           "c": ("low_plain_question", "order_id_decoy"), "d": ("low_plain_question", "order_id_none")}


def test_rule_accuracy_scores_the_rules_field_on_the_rows_it_decides():
    rows = [target_row("a", ["priority"]), target_row("b", ["order_id"]), target_row("c", []),
            target_row("d", ["priority", "order_id"])]
    accuracy = rule_accuracy(TASK, DECIDED, rows)
    assert accuracy["high_by_signal"] == {"field": "priority", "title": "high: anger, a deadline or repeated contact",
                                          "value": 0.5, "ci95": (0.0945, 0.9055), "n": 2, "right": 1}
    assert accuracy["order_id_decoy"]["right"] == 1 and accuracy["order_id_decoy"]["n"] == 2
    assert accuracy["low_plain_question"]["value"] == 0.5
    assert accuracy["urgent_safety_hazard"] == {"field": "priority", "title": "urgent: a safety hazard",
                                                "value": None, "ci95": None, "n": 0, "right": 0}


def candidate(name: str, role: str, wrong: dict[str, list[str]], regression: list[int], valid: int = 4):
    rows = [target_row(gold_id, wrong.get(gold_id, []), index < valid) for index, gold_id in enumerate("abcd")]
    return CandidateScores(name, role, rows, [{"right": bool(flag)} for flag in regression],
                           rule_accuracy(TASK, DECIDED, rows))


def test_a_failed_verdict_names_format_the_worst_rule_below_base_and_forgetting_with_numbers():
    base = candidate("base few-shot", "baseline", {"a": ["order_id"], "b": ["order_id"], "c": ["order_id"],
                                                  "d": ["order_id"]}, [1, 1, 1, 1])
    # Right on every id (above the base there), wrong on both anger-raised priorities, one
    # answer invalid, and half the regression rows forgotten.
    tuned = candidate("tuned", "fine-tune", {"a": ["priority"], "b": ["priority"]}, [1, 1, 0, 0], valid=3)
    assert worst_rule_below_base(tuned.rules, base.rules) == ("high_by_signal", -1.0)
    verdict = judge_candidates([base, tuned], base="base few-shot", metric="field_accuracy", fields=6,
                               tolerance=0.05, seed=0)["tuned"]
    assert verdict["verdict"] == "do not escalate"
    assert not verdict["checks"]["schema_valid_share"] and not verdict["checks"]["regression_within_tolerance"]
    assert verdict["causes"] == [
        "format: schema-valid JSON on 3/4 = 0.750 [0.30, 0.95] of the gold rows, below 0.98",
        ("rule `high_by_signal` (priority: high: anger, a deadline or repeated contact): 0/2 = 0.000 [0.00, 0.66] "
         "right against base few-shot's 2/2 = 1.000 [0.34, 1.00], -1.000, the worst rule below the base"),
        ("forgetting: regression accuracy 2/4 against base few-shot's 4/4, -0.500 [-1.000, +0.000], "
         "beyond the tolerance of 0.050")]


def test_a_failure_with_no_cause_says_the_gain_is_noise_and_names_the_weakest_rule():
    base = candidate("base few-shot", "baseline", {"a": ["priority"], "c": ["priority"]}, [1, 1])
    same = candidate("same", "fine-tune", {"a": ["priority"], "c": ["priority"]}, [1, 1])
    verdict = judge_candidates([base, same], base="base few-shot", metric="field_accuracy", fields=6,
                               tolerance=0.05)["same"]
    assert verdict["verdict"] == "do not escalate"
    assert verdict["causes"] == [("no single cause: the gain is inside the noise of the gold rows; weakest rule "
                                  "`high_by_signal` (priority: high: anger, a deadline or repeated contact): "
                                  "1/2 = 0.500 [0.09, 0.91] right")]


def test_an_escalated_fine_tune_has_no_causes():
    base = candidate("base few-shot", "baseline", {gold_id: ["priority", "order_id"] for gold_id in "abcd"}, [1, 1])
    good = candidate("good", "fine-tune", {}, [1, 1])
    verdict = judge_candidates([base, good], base="base few-shot", metric="field_accuracy", fields=6,
                               tolerance=0.05)["good"]
    assert verdict["verdict"] == "escalate" and verdict["causes"] == []


def test_the_on_policy_rounds_table_reads_every_rounds_manifest(tmp_path):
    for round_, pairs in ((1, 7), (2, 0)):
        folder = tmp_path / "pilot" / "on_policy" / f"round-{round_}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"summary": {
            "round": round_, "policy": "x", "policy_sha256": f"{round_}" * 64, "prompts": 10, "samples": 40,
            "failed_requests": 0, "pairs": pairs, "one_wrong_field": pairs - 1 if pairs else 0,
            "dropped_by_reason": {"all_right": 3} if pairs else {"all_right": 10}}}))
    table = on_policy_table({"pilot": tmp_path / "pilot", "ablation": tmp_path / "none"})
    assert table.splitlines()[2:] == [
        "| pilot | 1 | `111111111111` | 10 | 40 | 0 | 7 | 6 | all_right 3 |",
        "| pilot | 2 | `222222222222` | 10 | 40 | 0 | 0 | 0 | all_right 10 |"]
    assert on_policy_table({"ablation": tmp_path / "none"}) is None
