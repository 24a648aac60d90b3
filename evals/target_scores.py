"""Score model outputs for a JSON-answer task against gold references, by code only.

`score_row(task, output, reference)` checks one output: does it parse as one JSON object
(a Markdown fence around it is tolerated, prose is not: `datagen.foundation.task.parse_json_answer`),
does it validate against the task's answer schema, which fields are valid on their own
(a field with a rule of its own keeps it: the demo's 20-word summary; the task's
`field_rules` name those the preflight report shows), and which fields are
right by the task's `compare` (the rule the gold labels' agreement used). An answer
that does not validate scores every field wrong.

`summarize(rows, seed)` turns per-row scores into rates with bootstrap 95% intervals:
parse rate, schema-valid rate, accuracy per field, the share with every field right
("exact"), the share of parsed answers whose each field is valid on its own, and
macro-F1 of every enum field (scikit-learn's `f1_score`, over the gold labels present in
the resample). Gold sets are small (130 rows), so a difference between two models means
little until its intervals are shown.

The bootstrap is the plain percentile bootstrap (Efron & Tibshirani 1993): resample rows
with replacement 1,000 times with `numpy.random.default_rng(seed)`, recompute the
statistic, take the 2.5th and 97.5th percentiles. scipy's `stats.bootstrap` does the same
but warns and returns NaN on a constant sample, which is common here (a base model that
never parses); resampling a constant gives the constant, which is the right answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from pydantic import ValidationError
from sklearn.metrics import f1_score

from datagen.foundation.task import parse_json_answer

RESAMPLES = 1000


@dataclass
class RowScore:
    parsed: bool
    schema_valid: bool
    fields_valid: dict[str, bool] = field(default_factory=dict)  # each field valid on its own (parsed rows)
    fields_right: dict[str, bool] = field(default_factory=dict)
    answer: dict | None = None

    @property
    def exact(self) -> bool:
        return self.schema_valid and all(self.fields_right.values())


def score_row(task, output: str, reference: dict) -> RowScore:
    names = list(task.answer_schema.model_fields)
    answer = parse_json_answer(output)
    if answer is None:
        return RowScore(False, False, {}, dict.fromkeys(names, False))
    try:
        valid = task.answer_schema.model_validate(answer).model_dump(mode="json")
    except ValidationError as error:
        broken = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
        whole = any(not item["loc"] for item in error.errors())
        return RowScore(True, False, {name: not whole and name not in broken and name in answer for name in names},
                        dict.fromkeys(names, False), answer)
    wrong = set(task.compare(valid, reference))
    return RowScore(True, True, dict.fromkeys(names, True), {name: name not in wrong for name in names}, valid)


def bootstrap_interval(values: np.ndarray, statistic: Callable[[np.ndarray], float], seed: int,
                       resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of `statistic` over the rows of `values`."""
    rng = np.random.default_rng(seed)
    n = len(values)
    stats = np.array([statistic(values[rng.integers(0, n, n)]) for _ in range(resamples)])
    low, high = np.percentile(stats, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def rate(flags: list[bool], seed: int) -> dict[str, Any]:
    values = np.array(flags, dtype=float)
    if len(values) == 0:
        return {"value": None, "ci95": None, "n": 0}
    return {"value": round(float(values.mean()), 4), "ci95": bootstrap_interval(values, np.mean, seed),
            "n": len(values)}


def _macro_f1(pairs: np.ndarray) -> float:
    predicted, gold = pairs[:, 0], pairs[:, 1]
    return float(f1_score(gold, predicted, labels=np.unique(gold), average="macro", zero_division=0))


def summarize(task, scores: list[RowScore], references: list[dict], seed: int = 0) -> dict[str, Any]:
    names = list(task.answer_schema.model_fields)
    parsed = [score for score in scores if score.parsed]
    summary: dict[str, Any] = {
        "rows": len(scores),
        "parse_rate": rate([score.parsed for score in scores], seed),
        "schema_valid_rate": rate([score.schema_valid for score in scores], seed),
        "exact": rate([score.exact for score in scores], seed),
        "field_accuracy": {name: rate([score.fields_right[name] for score in scores], seed) for name in names},
        "field_valid_when_parsed": {name: rate([score.fields_valid.get(name, False) for score in parsed], seed)
                                    for name in names},
        "macro_f1": {},
    }
    schema = task.answer_schema.model_json_schema()["properties"]
    for name in names:
        if "enum" not in schema[name]:
            continue
        pairs = np.array([[str((score.answer or {}).get(name) if score.schema_valid else "<invalid>"),
                           str(reference[name])] for score, reference in zip(scores, references)])
        value = _macro_f1(pairs)
        summary["macro_f1"][name] = {"value": round(value, 4), "ci95": bootstrap_interval(pairs, _macro_f1, seed),
                                     "n": len(pairs)}
    return summary
