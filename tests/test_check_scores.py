"""The target eval of a text task (evals/check_scores.py, evals/target_eval.py): every check
of every gold row scored by code on literal replies, the row score, the pass rate of each
kind with its Wilson interval worked out by hand, and the verdict on the row score."""

from __future__ import annotations

import pytest

from evals.candidate_verdicts import CandidateScores, judge_candidates
from evals.check_scores import score_reply, summarize_checks
from evals.rule_scores import wilson_interval
from evals.target_eval import score_target_outputs
from gold.gold_root import GoldRoot
from tests.locked_gold import lock_gold_rows

TICKET = "From: Maya Lund\nOrder: A-204518\nSubject: Cracked lamp\n\nMy desk lamp arrived cracked."
REPLY = ("Hi Maya,\n\nSorry the desk lamp from order A-204518 arrived cracked. We're sending a replacement today."
         "\n\n— Juniper Support")
LABEL = {"reply": REPLY, "checks": [
    {"kind": "names_field", "field": "customer_name", "value": "Maya"},
    {"kind": "names_field", "field": "order_id", "value": "A-204518"},
    {"kind": "must_mention", "terms": ["replacement"], "mode": "all"},
    {"kind": "must_not_say", "terms": ["unfortunately"]},
    {"kind": "max_words", "limit": 30},
    {"kind": "matches_pattern", "pattern": r"Juniper Support\s*$"}]}
LOGIN = "From: Ravi Menon <ravi.menon@example.com>\nSubject: Locked out\n\nI can't log in."
LOGIN_LABEL = {"reply": "Hi Ravi,\n\nWe've sent a reset link to ravi.menon@example.com.\n\n— Juniper Support",
               "checks": [{"kind": "names_field", "field": "email", "value": "ravi.menon@example.com"},
                          {"kind": "must_mention", "terms": ["reset link"], "mode": "all"}]}

# Replies a model might give to the lamp ticket, and the checks each fails.
GOOD = "Hi Maya, a replacement lamp for order A-204518 ships today.\n\n— Juniper Support"
NO_ORDER = "Hi Maya, unfortunately the lamp broke. A replacement ships today.\n\n— Juniper Support"
RAMBLING = "Hello! " + "We are looking into the lamp. " * 6


@pytest.mark.parametrize("output, passed, wrong", [
    (GOOD, [True] * 6, []),
    (NO_ORDER, [True, False, True, False, True, True], ["names_field", "must_not_say"]),
    (RAMBLING, [False, False, False, True, False, False], ["names_field", "must_mention", "max_words",
                                                           "matches_pattern"]),
    ("  \n", [False] * 6, ["names_field", "must_mention", "must_not_say", "max_words", "matches_pattern"]),
])
def test_every_check_of_a_gold_row_is_scored_on_the_reply(output, passed, wrong):
    scored = score_reply(output, LABEL)

    assert [check["passed"] for check in scored["checks"]] == passed
    assert scored["wrong_fields"] == wrong
    assert scored["check_share"] == round(sum(passed) / 6, 4)
    assert (scored["exact"], scored["parsed"]) == (all(passed), bool(output.strip()))


def test_a_blank_reply_passes_nothing_even_what_says_nothing():
    scored = score_reply("", LABEL)

    assert scored["checks"][3] == {"kind": "must_not_say", "passed": False, "detail": "no reply"}


def test_the_summary_has_a_row_score_and_each_kinds_pass_rate_with_a_wilson_interval():
    rows = [score_reply(output, LABEL) for output in (GOOD, NO_ORDER, RAMBLING, GOOD)]

    summary = summarize_checks(rows, seed=0)

    # names_field: 8 checks (2 per row): GOOD 2, NO_ORDER 1, RAMBLING 0, GOOD 2 = 5 of 8.
    assert summary["check_pass_rate"]["names_field"] == {"value": 0.625, "ci95": wilson_interval(5, 8), "n": 8,
                                                         "right": 5}
    assert wilson_interval(5, 8) == (0.3057, 0.8632)
    assert summary["check_pass_rate"]["must_not_say"] == {"value": 0.75, "ci95": (0.3006, 0.9544), "n": 4, "right": 3}
    assert summary["checks_passed"] == {"value": 0.7083, "ci95": wilson_interval(17, 24), "n": 24, "right": 17}
    # Row scores 1, 0.6667, 0.1667, 1 (each kept to 4 places): mean 0.7084.
    assert summary["check_share"]["value"] == 0.7084
    assert summary["exact"]["value"] == 0.5 and summary["parse_rate"]["value"] == 1.0


def test_the_target_eval_scores_a_locked_text_set_row_by_row(tmp_path):
    lock_gold_rows(tmp_path / "gold" / "sets", "support_reply", "datagen.tasks.support_reply:TASK",
                   [(TICKET, LABEL), (LOGIN, LOGIN_LABEL)])
    locked = GoldRoot(tmp_path / "gold" / "sets").get("support_reply")
    from datagen.tasks.support_reply import TASK

    rows, summary = score_target_outputs(TASK, locked, [NO_ORDER, "Hi Ravi, check your email."], seed=0)

    assert [(row["gold_id"], row["check_share"], row["wrong_fields"]) for row in rows] == [
        (locked.rows[0]["id"], 0.6667, ["names_field", "must_not_say"]),
        (locked.rows[1]["id"], 0.0, ["names_field", "must_mention"])]
    assert rows[1]["checks"] == [
        {"kind": "names_field", "passed": False, "detail": "email 'ravi.menon@example.com' not named"},
        {"kind": "must_mention", "passed": False, "detail": "all of 'reset link': missing 'reset link'"}]
    assert set(summary["check_pass_rate"]) == {"names_field", "must_mention", "must_not_say", "max_words",
                                               "matches_pattern"}
    assert summary["gold_set"]["set"] == "support_reply/v1"


def test_the_verdict_compares_the_row_score():
    base = [{"check_share": share, "schema_valid": True, "exact": share == 1, "wrong_fields": []}
            for share in [0.5, 0.5, 0.25, 0.5, 0.75, 0.5, 0.5, 0.25, 0.5, 0.5]]
    tuned = [row | {"check_share": min(1.0, row["check_share"] + 0.5)} for row in base]
    regression = [{"right": True}] * 4
    candidates = [CandidateScores("base few-shot", "baseline", base, regression),
                  CandidateScores("pilot", "fine-tune", tuned, regression)]

    verdicts = judge_candidates(candidates, base="base few-shot", metric="check_share", fields=2, tolerance=0.05)
    verdict = verdicts["pilot"]

    assert verdict["verdict"] == "escalate" and verdict["metric"] == "check_share"
    assert verdict["gain_over_base"]["value"] == 0.475
