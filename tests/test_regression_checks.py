"""The regression set's match rules, on literal outputs, and on every locked row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.regression_checks import first_number, matches
from gold.gold_root import open_version

HERE = Path(__file__).parent
REGRESSION = HERE.parent / "gold" / "sets" / "general_regression" / "v1"


@pytest.mark.parametrize(("output", "reference", "expected"), [
    ("Paris.", {"answer": "paris", "match": "exact"}, True),
    ("  the   DOG saw another dog! ", {"answer": "The dog saw another dog.", "match": "exact"}, True),
    ("Paris, France", {"answer": "Paris", "match": "exact"}, False),
    ("The answer is 1,000.", {"answer": "1000", "match": "number"}, True),
    ("-3.5 degrees", {"answer": "-3.5", "match": "number"}, True),
    ("7 + 5 = 12", {"answer": "12", "match": "number"}, False),  # the first number counts
    ("no digits here", {"answer": "4", "match": "number"}, False),
    ("The capital of Japan is Tokyo.", {"answer": "Tokyo", "match": "contains"}, True),
    ("Kyoto", {"answer": "Tokyo", "match": "contains"}, False),
    ("2024-12-25", {"answer": r"2024-12-25\.?", "match": "regex"}, True),
    ("Sure! 2024-12-25", {"answer": r"2024-12-25\.?", "match": "regex"}, False),
])
def test_each_match_kind_on_literal_outputs(output, reference, expected):
    assert matches(output, reference) is expected


def test_first_number_reads_signs_commas_and_decimals():
    assert [first_number(text) for text in ("x -12.5 y", "1,234,567 apples", "v2", "none")] == [-12.5, 1234567.0, 2.0,
                                                                                                None]


def test_every_locked_regression_row_accepts_its_correct_outputs_and_refuses_the_wrong_ones():
    rows = {row["prompt"]: row["reference"] for row in open_version(REGRESSION).rows}
    for row in rows.values():
        if row["match"] != "regex":  # a regex is not its own correct output
            stated = f"The answer is {row['answer']}." if row["match"] == "number" else row["answer"]
            assert matches(stated, row), row
    examples = json.loads((HERE / "regression_outputs.json").read_text())
    assert sum(len(e["good"]) for e in examples) == 59 and sum(len(e["bad"]) for e in examples) == 103
    for example in examples:
        reference = rows[example["prompt"]]
        assert all(matches(output, reference) for output in example["good"]), example["prompt"]
        assert not any(matches(output, reference) for output in example["bad"]), example["prompt"]
