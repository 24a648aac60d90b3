"""Accuracy per labelling rule: which of the task's rules a model has not learnt.

Input: the gold rows of a locked set (`prompt`, `reference`, `notes`) and one candidate's
target-eval records (`evals.target_eval`: `gold_id`, `wrong_fields`), and the task, whose
`rule_names` says which rules decide a row (for the triage demo: from the labelers' notes,
the reference label and the prompt; see `datagen/tasks/support_triage_rules.py`). Output,
per rule: the field it decides, the gold rows it decides, how many of them the candidate got
that field right on, and the share with a Wilson 95% interval.

Why Wilson and not the bootstrap the other rates use: a rule decides 4 to 60 of the 130
gold rows, and on a handful of rows the percentile bootstrap of a share that is 0 or 1
collapses to [0, 0] or [1, 1], claiming certainty from four rows. The Wilson score
interval (Wilson 1927; recommended for small n by Brown, Cai & DasGupta 2001, "Interval
Estimation for a Binomial Proportion") stays honest there and needs no resampling.
"""

from __future__ import annotations

import math
from typing import Any

Z95 = 1.959964  # the standard normal's 97.5th percentile


def wilson_interval(right: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score 95% interval of `right` successes in `n` trials."""
    if n <= 0 or not 0 <= right <= n:
        raise ValueError(f"a share needs 0 <= right <= n and n > 0, got {right} of {n}")
    share = right / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def share_with_interval(right: int, n: int) -> dict[str, Any]:
    return {"value": round(right / n, 4), "ci95": wilson_interval(right, n), "n": n, "right": right}


def gold_note(row: dict) -> str:
    """Every labeler's note on a gold row, in labeler order, as one text."""
    return " ".join(note for _, note in sorted(row["notes"].items()))


def gold_rules(task, gold_rows: list[dict]) -> dict[str, tuple[str, ...]]:
    """Gold row id -> the rules that decide it."""
    return {row["id"]: task.rule_names(row["prompt"], row["reference"], "", gold_note(row)) for row in gold_rows}


def rule_accuracy(task, rules_by_row: dict[str, tuple[str, ...]], target_rows: list[dict]) -> dict[str, dict]:
    """Per labelling rule of the task: its field, title and accuracy on the rows it decides
    (a rule that decides no gold row has `n` 0 and no value). An answer that fails the
    schema has every field wrong, so it counts as wrong on every rule of its row."""
    results = {}
    for rule in task.labelling_rules:
        decided = [row for row in target_rows if rule.name in rules_by_row[row["gold_id"]]]
        right = sum(rule.field not in row["wrong_fields"] for row in decided)
        results[rule.name] = {"field": rule.field, "title": rule.title,
                              **(share_with_interval(right, len(decided)) if decided
                                 else {"value": None, "ci95": None, "n": 0, "right": 0})}
    return results
