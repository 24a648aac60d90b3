"""Target-eval scoring by code, on literal model outputs, with exact expected scores."""

from __future__ import annotations

import json

import numpy as np

from datagen.tasks.support_triage import TASK
from evals.target_scores import bootstrap_interval, score_row, summarize

REF = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
       "needs_human": True, "summary": "Blender arrived cracked."}
OUTPUTS = [
    json.dumps(REF),                                                                          # all right
    "```json\n" + json.dumps(dict(REF, priority="urgent", product="glass blender")) + "\n```",  # fenced; priority wrong
    "Here is the JSON: " + json.dumps(REF),                                                   # prose: unparseable
    json.dumps(dict(REF, summary=" ".join(["word"] * 25))),                                   # 25-word summary: invalid
    json.dumps(dict(REF, category="refund_request")),                                         # category wrong
]


def test_each_output_is_scored_by_parse_schema_and_field():
    scores = [score_row(TASK, output, REF) for output in OUTPUTS]
    assert [(s.parsed, s.schema_valid, s.exact) for s in scores] == [
        (True, True, True), (True, True, False), (False, False, False), (True, False, False), (True, True, False)]
    assert [name for name, right in scores[1].fields_right.items() if not right] == ["priority"]  # "glass blender" ok
    assert [name for name, right in scores[4].fields_right.items() if not right] == ["category"]
    assert not any(scores[3].fields_right.values())  # an answer that does not validate scores nothing
    assert [name for name, valid in scores[3].fields_valid.items() if not valid] == ["summary"]


def test_the_summary_has_exact_rates_and_macro_f1():
    summary = summarize(TASK, [score_row(TASK, output, REF) for output in OUTPUTS], [REF] * 5, seed=0)
    assert summary["rows"] == 5
    assert [summary[key]["value"] for key in ("parse_rate", "schema_valid_rate", "exact")] == [0.8, 0.6, 0.2]
    assert {name: rate["value"] for name, rate in summary["field_accuracy"].items()} == {
        "category": 0.4, "priority": 0.4, "order_id": 0.6, "product": 0.6, "needs_human": 0.6, "summary": 0.6}
    assert summary["field_valid_when_parsed"]["summary"]["value"] == 0.75  # 3 of the 4 parsed
    assert summary["field_valid_when_parsed"]["summary"]["n"] == 4
    # Gold is damaged_item throughout; 2 of 5 predicted it (2 invalid, 1 refund_request):
    # precision 2/2, recall 2/5, F1 = 2 * 1 * 0.4 / 1.4 = 0.5714.
    assert summary["macro_f1"]["category"]["value"] == 0.5714


def test_the_bootstrap_interval_on_a_fixed_seed():
    values = np.array([1, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=float)
    assert bootstrap_interval(values, np.mean, seed=0) == (0.4, 1.0)
    assert bootstrap_interval(values, np.mean, seed=0) == bootstrap_interval(values, np.mean, seed=0)
    # 10x the rows, the same share: the interval narrows around 0.7.
    assert bootstrap_interval(np.tile(values, 10), np.mean, seed=0) == (0.61, 0.78)
    assert bootstrap_interval(np.zeros(7), np.mean, seed=3) == (0.0, 0.0)  # a constant resamples to itself
