"""The regression set's match rules, on literal outputs, and on every locked row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.regression_checks import final_number, first_number, matches
from gold.gold_root import open_version

HERE = Path(__file__).parent
REGRESSION = HERE.parent / "gold" / "sets" / "general_regression"


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


@pytest.mark.parametrize(("output", "expected"), [
    ("7 + 5 = 12.", 12.0),
    ("9 times 9 is 81.", 81.0),
    ("12 * 3 = 36\n\nThat is 1 example of multiplication.", 36.0),  # '=' outranks a later number
    ("Tom has 5 + 3 = 8 apples.\nTom has now 8 apples.\n####", 8.0),
    ("5 - 8 = -3", -3.0),
    ("x = 2, so 2x = 4", 4.0),  # the last '='
    ("7 + 5 = twelve", 5.0),  # no number after any '=': the last number
    ("The total is 1,000", 1000.0),
    ("no digits here", None),
])
def test_final_number_reads_the_result_the_working_ends_with(output, expected):
    assert final_number(output) == expected


# The base model's own greedy outputs (SmolLM2-135M-Instruct, in process, 32 new tokens)
# on arithmetic rows of the locked set: v1's first number fails every one of them, right
# or wrong; v2's final number passes the right ones, and the echo it cannot tell apart.
BASE_OUTPUTS = [
    ("What is 7 + 5? Reply with the number only.", "7 + 5 = 12.", False, True),
    ("What is 14 + 23? Reply with just the number.", "14 + 23 = 37", False, True),
    ("What is 9 times 9? Write the number only.", "9 times 9 is 81.", False, True),
    ("What is 10 multiplied by 10? Respond with the number only.", "10 multiplied by itself is 100.", False, True),
    ("What is 1000 - 1? Reply with just the number.", "1000 - 1 = 1000", False, False),
    ("What is 50 - 18? Give only the number.", "50 - 18 = 3", False, False),
    ("What is half of 30? Give the number only.", "Half of 30 is 10.", False, False),
    ("A box holds a dozen eggs. If you eat four of them, how many eggs are left? Reply with just the number.",
     "A dozen eggs is equal to 12 eggs.\n\nThe answer is 12.", False, False),
    ("What is 81 / 9? Number only.", "To solve this, we need to find the remainder when 81 is divided by 9. ",
     False, True),  # the echo: 9 is the answer and the last operand
]


def test_v2_reads_the_results_that_v1_missed_on_the_base_models_outputs():
    v1, v2 = ({row["prompt"]: row["reference"] for row in open_version(REGRESSION / version).rows}
              for version in ("v1", "v2"))
    for prompt, output, right_v1, right_v2 in BASE_OUTPUTS:
        assert (v1[prompt]["match"], v2[prompt]["match"]) == ("number", "final_number")
        assert (matches(output, v1[prompt]), matches(output, v2[prompt])) == (right_v1, right_v2), output


def test_v2_changes_only_the_match_kind_of_the_arithmetic_rows():
    v1, v2 = (open_version(REGRESSION / version) for version in ("v1", "v2"))
    assert [row["prompt"] for row in v1.rows] == [row["prompt"] for row in v2.rows]
    changed = [(before["record"], before["reference"], after["reference"]) for before, after in zip(v1.rows, v2.rows)
               if before["reference"] != after["reference"]]
    assert len(changed) == 22 and all(
        old["skill"] == "arithmetic" and new == old | {"match": "final_number"} for _, old, new in changed)
    assert v2.manifest["changelog"]["changed"] == [
        {"record": record, "from": before["id"], "to": after["id"]}
        for record, before, after in ((b["record"], b, a) for b, a in zip(v1.rows, v2.rows) if b["id"] != a["id"])]
    assert v2.manifest["changelog"]["added"] == v2.manifest["changelog"]["removed"] == []
    assert v2.manifest["previous"]["sha256"] == v1.manifest["sha256"]
    unchanged = [(b, a) for b, a in zip(v1.rows, v2.rows) if b["id"] == a["id"]]
    assert len(unchanged) == 68 and all(b == a for b, a in unchanged)  # byte for byte, provenance included


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_locked_regression_row_accepts_its_correct_outputs_and_refuses_the_wrong_ones(version):
    rows = {row["prompt"]: row["reference"] for row in open_version(REGRESSION / version).rows}
    for row in rows.values():
        if row["match"] != "regex":  # a regex is not its own correct output
            numeric = row["match"] in ("number", "final_number")
            stated = f"The answer is {row['answer']}." if numeric else row["answer"]
            assert matches(stated, row), row
    examples = json.loads((HERE / "regression_outputs.json").read_text())
    assert sum(len(e["good"]) for e in examples) == 59 and sum(len(e["bad"]) for e in examples) == 103
    for example in examples:
        reference = rows[example["prompt"]]
        assert all(matches(output, reference) for output in example["good"]), example["prompt"]
        assert not any(matches(output, reference) for output in example["bad"]), example["prompt"]
