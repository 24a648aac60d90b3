"""Was the weight delta worth it? One verdict per fine-tuned candidate.

The rule (the preflight's, stated in the report beside every verdict):

1. **Target gain beyond the interval**: the candidate beats the base model with the
   task's few-shot prompt on the primary target metric, and the paired bootstrap 95%
   interval of the difference lies above zero.
2. **Regression loss within tolerance**: the candidate's regression accuracy is at most
   `tolerance` below the base model's (point estimate; the interval is shown).
3. **Better than the best baseline**: the paired interval of the difference to the
   strongest baseline (few-shot, constrained decoding, the teacher) lies above zero.
4. **Schema-valid answers**: at least `min_schema_valid` of its gold answers validate
   (0.98 by default, the bar issue #17 sets for the demo's pilot): a fine-tune that breaks
   the format on one row in twenty is not ready to serve, whatever its field accuracy.

All four: `escalate`. A target gain that costs regression: `trade-off`, which is not a
successful fine-tune. Anything else: `do not escalate`, with the reasons.

Differences are paired: both candidates answered the same gold rows, so the bootstrap
resamples row indices once and recomputes both means on them, which is tighter and more
honest than comparing two separately computed intervals.

Per-row primary metrics: `exact` (every field right and the answer valid) or
`field_accuracy` (the share of answer fields right on that row, 0 for an invalid
answer), which still moves when no model gets whole objects right; for a text task,
`check_share` (the share of the row's checks its reply passes, `evals/check_scores.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from evals.failure_causes import forgetting_cause, format_cause, rule_cause, weakest_rule
from evals.target_scores import RESAMPLES

PrimaryMetric = Literal["exact", "field_accuracy", "check_share"]


@dataclass
class CandidateScores:
    name: str
    role: Literal["baseline", "fine-tune"]
    target_rows: list[dict]  # evals.target_eval records, in gold row order
    regression_rows: list[dict] | None  # evals.regression_eval records; None: not asked
    rules: dict[str, dict] | None = None  # evals.rule_scores.rule_accuracy; None: the task has no rules

    def primary(self, metric: PrimaryMetric, fields: int) -> np.ndarray:
        if metric == "exact":
            return np.array([row["exact"] for row in self.target_rows], dtype=float)
        if metric == "check_share":
            return np.array([row["check_share"] for row in self.target_rows], dtype=float)
        return np.array([(fields - len(row["wrong_fields"])) / fields for row in self.target_rows], dtype=float)

    def regression(self) -> np.ndarray:
        return np.array([row["right"] for row in self.regression_rows or []], dtype=float)

    def schema_valid_share(self) -> float:
        return float(np.mean([row["schema_valid"] for row in self.target_rows]))


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int, resamples: int = RESAMPLES) -> dict:
    """mean(a) - mean(b) over the same rows, with a paired percentile-bootstrap 95% interval."""
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired rows differ in number: {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    differences = a - b
    stats = np.array([differences[rng.integers(0, len(a), len(a))].mean() for _ in range(resamples)])
    low, high = np.percentile(stats, [2.5, 97.5])
    return {"value": round(float(differences.mean()), 4), "ci95": (round(float(low), 4), round(float(high), 4))}


def judge_candidates(candidates: list[CandidateScores], *, base: str, metric: PrimaryMetric, fields: int,
                     tolerance: float, min_schema_valid: float = 0.98, seed: int = 0) -> dict[str, dict]:
    """The verdict of every fine-tune, against `base` (the base model's few-shot baseline)
    and the best baseline by the primary metric, with its causes when it is not escalated."""
    by_name = {candidate.name: candidate for candidate in candidates}
    baselines = [candidate for candidate in candidates if candidate.role == "baseline"]
    best = max(baselines, key=lambda candidate: candidate.primary(metric, fields).mean())
    reference = by_name[base]
    verdicts = {}
    for candidate in candidates:
        if candidate.role != "fine-tune":
            continue
        score = candidate.primary(metric, fields)
        gain = paired_difference(score, reference.primary(metric, fields), seed)
        versus_best = paired_difference(score, best.primary(metric, fields), seed)
        regression = paired_difference(candidate.regression(), reference.regression(), seed)
        checks = {
            "target_gain_beyond_interval": gain["ci95"][0] > 0,
            "regression_within_tolerance": -regression["value"] <= tolerance,
            "beats_best_baseline": versus_best["ci95"][0] > 0,
            "schema_valid_share": candidate.schema_valid_share() >= min_schema_valid,
        }
        verdict = _verdict(checks)
        verdicts[candidate.name] = {
            "verdict": verdict, "checks": checks,
            "reasons": _reasons(checks, gain, regression, versus_best, best.name, base, tolerance)
            + [f"schema-valid answers: {candidate.schema_valid_share():.3f} of the gold rows; "
               + ("at least" if checks["schema_valid_share"] else "below") + f" {min_schema_valid:.2f}"],
            "causes": [] if verdict == "escalate" else _causes(candidate, reference, regression, base, tolerance,
                                                               min_schema_valid),
            "gain_over_base": gain, "regression_change": regression, "versus_best_baseline": versus_best,
            "best_baseline": best.name, "metric": metric, "tolerance": tolerance, "min_schema_valid": min_schema_valid,
        }
    return verdicts


def _causes(candidate: CandidateScores, reference: CandidateScores, regression: dict, base: str, tolerance: float,
            min_schema_valid: float) -> list[str]:
    """Format, the worst rule below the base, forgetting: each that applies, with its numbers;
    none of them: the gain is inside the noise, and the weakest rule is where to add rows."""
    right = (int(candidate.regression().sum()), len(candidate.regression()))
    base_right = (int(reference.regression().sum()), len(reference.regression()))
    causes = [format_cause(candidate.target_rows, min_schema_valid),
              rule_cause(candidate.rules, reference.rules, base) if candidate.rules and reference.rules else None,
              forgetting_cause(regression, right, base_right, tolerance, base)]
    found = [cause for cause in causes if cause]
    if found:
        return found
    weakest = weakest_rule(candidate.rules) if candidate.rules else None
    return ["no single cause: the gain is inside the noise of the gold rows" + (f"; {weakest}" if weakest else "")]


def _verdict(checks: dict[str, bool]) -> str:
    if all(checks.values()):
        return "escalate"
    if checks["target_gain_beyond_interval"] and not checks["regression_within_tolerance"]:
        return "trade-off"
    return "do not escalate"


def _reasons(checks, gain, regression, versus_best, best: str, base: str, tolerance: float) -> list[str]:
    def shown(difference: dict) -> str:
        low, high = difference["ci95"]
        return f"{difference['value']:+.3f} [{low:+.3f}, {high:+.3f}]"

    return [
        f"target vs {base}: {shown(gain)}; "
        + ("gain beyond the interval" if checks["target_gain_beyond_interval"] else "no gain beyond the interval"),
        f"regression vs {base}: {shown(regression)}; "
        + ("within" if checks["regression_within_tolerance"] else "beyond") + f" the tolerance of {tolerance:.3f}",
        f"target vs the best baseline ({best}): {shown(versus_best)}; "
        + ("better" if checks["beats_best_baseline"] else "not better beyond the interval"),
    ]
