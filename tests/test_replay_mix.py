"""The replay mix from the base model's own answers: as many rows as the share asks,
each the model's greedy answer, kept on disk and read back while what made them holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datagen.serving.in_process import generate_in_process
from train.replay_mix import ReplayConfig, replay_count, replay_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = ["Describe the taste of a lemon.", "What do bees make?", "Name two ways to save water at home.",
           "What is a lighthouse for?", "Write one sentence about why sleep matters."]


def test_replay_rows_are_the_base_models_answers_kept_and_read_back(tmp_path, tiny_model):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": prompt}) + "\n" for prompt in PROMPTS))
    config = ReplayConfig(source="base_answers", file=prompts, share=0.2, max_new_tokens=4, engine="in_process")
    assert replay_count(config, 12) == 3  # 3 of 15 rows

    rows, record = replay_rows(config, 12, tiny_model, tmp_path / "replay")
    asked = [[{"role": "user", "content": prompt}] for prompt in PROMPTS[:3]]
    answers = generate_in_process(tiny_model, asked, max_new_tokens=4)
    assert [row["messages"] for row in rows] == [chat + [{"role": "assistant", "content": answer}]
                                                for chat, answer in zip(asked, answers)]
    assert (record["rows"], record["wanted"], record["engine"]) == (3, 3, "in_process")
    kept = tmp_path / "replay" / "rows.jsonl"
    assert [json.loads(line) for line in kept.read_text().splitlines()] == rows

    stamp = kept.stat().st_mtime_ns
    again, again_record = replay_rows(config, 12, tiny_model, tmp_path / "replay")
    assert again == rows and again_record["kept_from_earlier_run"] and kept.stat().st_mtime_ns == stamp
    # Another count is another intent: made afresh.
    more, _ = replay_rows(config, 16, tiny_model, tmp_path / "replay")
    assert len(more) == 4 and kept.stat().st_mtime_ns != stamp
