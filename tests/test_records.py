import hashlib
import json

import polars as pl
import pytest

from datagen.foundation.records import (
    Example,
    PreferencePair,
    Teacher,
    examples_from_frame,
    examples_to_frame,
    pairs_from_frame,
    pairs_to_frame,
)

TEACHER = Teacher(base_url="http://127.0.0.1:9/v1", model="m", sampling='{"temperature":0.7}', sample_index=1)


def test_example_id_is_sha256_of_content_only():
    a = Example(task="t", prompt="hello", response="world", source="s1", run_id="r1")
    b = Example(task="t", prompt="hello", response="world", source="s2", run_id="r2", seed=3)
    expected = hashlib.sha256(json.dumps(["t", "hello", "world"], separators=(",", ":")).encode()).hexdigest()
    assert a.id == b.id == expected
    assert Example(task="t", prompt="hello", response="World", source="s1", run_id="r1").id != a.id


def test_examples_round_trip_through_parquet_with_provenance(tmp_path):
    examples = [
        Example(task="t", prompt="p", source="gen@1", run_id="r", reference='{"a":1}', template_id="x/1", seed=7),
        Example(
            task="t", prompt="p", response="ans", source="teacher@1", run_id="r",
            teacher=TEACHER, finish_reason="stop", parent_ids=("abc",),
        ),
    ]
    path = tmp_path / "e.parquet"
    examples_to_frame(examples).write_parquet(path)
    assert examples_from_frame(pl.read_parquet(path)) == examples


def test_a_row_whose_content_was_edited_is_refused():
    frame = examples_to_frame([Example(task="t", prompt="p", source="s", run_id="r")])
    tampered = frame.with_columns(prompt=pl.lit("q"))
    with pytest.raises(ValueError, match="does not hash to its id"):
        examples_from_frame(tampered)


def test_pairs_round_trip_and_hash_both_answers():
    pair = PreferencePair(
        task="t", prompt="p", chosen="good", rejected="bad", strategy="verifier_ranked",
        evidence="rejected is wrong_fields: category", source="s", run_id="r",
        chosen_teacher=TEACHER, parent_ids=("c", "r"),
    )
    swapped = PreferencePair(
        task="t", prompt="p", chosen="bad", rejected="good", strategy="verifier_ranked",
        evidence="", source="s", run_id="r",
    )
    assert pair.id != swapped.id
    assert pairs_from_frame(pairs_to_frame([pair])) == [pair]
