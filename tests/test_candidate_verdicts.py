"""Verdicts per fine-tune, from literal per-row results: the paired interval on a fixed
seed, and each of escalate, trade-off and do not escalate."""

from __future__ import annotations

import numpy as np
import pytest

from evals.candidate_verdicts import CandidateScores, judge_candidates, paired_difference

BASE = [0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0]
BETTER = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0]


def target(exact: list[int]) -> list[dict]:
    return [{"exact": bool(flag), "schema_valid": True, "wrong_fields": [] if flag else ["category", "priority"]}
            for flag in exact]


def regression(right: list[int]) -> list[dict]:
    return [{"right": bool(flag)} for flag in right]


def test_the_paired_difference_and_its_interval_on_a_fixed_seed():
    difference = paired_difference(np.array(BETTER, float), np.array(BASE, float), seed=0)
    assert difference == {"value": 0.4167, "ci95": (0.1667, 0.6667)}
    assert paired_difference(np.array(BASE, float), np.array(BASE, float), seed=0) == {"value": 0.0, "ci95": (0.0, 0.0)}
    with pytest.raises(ValueError, match="differ in number"):
        paired_difference(np.array([1.0]), np.array([1.0, 0.0]), seed=0)


def test_each_verdict_follows_the_rule():
    candidates = [
        CandidateScores("base few-shot", "baseline", target(BASE), regression([1] * 8)),
        CandidateScores("base constrained", "baseline", target([0] * 12), None),
        CandidateScores("good", "fine-tune", target(BETTER), regression([1] * 8)),
        CandidateScores("forgetful", "fine-tune", target(BETTER), regression([1, 1, 1, 1, 1, 0, 0, 0])),
        CandidateScores("weak", "fine-tune", target(BASE), regression([1] * 8)),
    ]
    verdicts = judge_candidates(candidates, base="base few-shot", metric="exact", fields=6, tolerance=0.05, seed=0)
    assert {name: verdict["verdict"] for name, verdict in verdicts.items()} == {
        "good": "escalate", "forgetful": "trade-off", "weak": "do not escalate"}
    assert verdicts["good"]["best_baseline"] == "base few-shot"
    assert verdicts["good"]["gain_over_base"] == {"value": 0.4167, "ci95": (0.1667, 0.6667)}
    assert verdicts["forgetful"]["regression_change"]["value"] == -0.375
    assert verdicts["forgetful"]["checks"] == {"target_gain_beyond_interval": True,
                                               "regression_within_tolerance": False, "beats_best_baseline": True,
                                               "schema_valid_share": True}
    assert verdicts["weak"]["reasons"][0] == ("target vs base few-shot: +0.000 [+0.000, +0.000]; "
                                              "no gain beyond the interval")


def test_field_accuracy_counts_the_share_of_fields_right_per_row():
    rows = target([1, 0]) + [{"exact": False, "wrong_fields": ["category", "priority", "order_id", "product",
                                                              "needs_human", "summary"]}]
    scores = CandidateScores("x", "fine-tune", rows, None)
    assert scores.primary("field_accuracy", fields=6).tolist() == [1.0, 4 / 6, 0.0]
    assert scores.primary("exact", fields=6).tolist() == [1.0, 0.0, 0.0]


def test_a_better_baseline_than_the_fine_tune_means_do_not_escalate():
    candidates = [
        CandidateScores("base few-shot", "baseline", target(BASE), regression([1] * 8)),
        CandidateScores("base constrained", "baseline", target(BETTER), None),
        CandidateScores("tuned", "fine-tune", target(BETTER), regression([1] * 8)),
    ]
    verdict = judge_candidates(candidates, base="base few-shot", metric="exact", fields=6, tolerance=0.05)["tuned"]
    assert verdict["verdict"] == "do not escalate"
    assert verdict["best_baseline"] == "base constrained"
    assert verdict["checks"]["target_gain_beyond_interval"] and not verdict["checks"]["beats_best_baseline"]
