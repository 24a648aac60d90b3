"""The GPU check's dry run (tests/gpu/check.py): every part runs on this CPU with the tiny
model, what needs CUDA is skipped with its reason, and the figures file holds every key
the README's table is made from."""

from __future__ import annotations

import json

import pytest

from tests.gpu.check import PARTS, main, statuses
from tests.gpu.figures_table import figures_table

pytestmark = pytest.mark.slow


def test_the_dry_run_runs_every_part_and_gives_a_reason_for_each_skip(tiny_model, tmp_path, one_torch_thread,
                                                                      capsys):
    out = tmp_path / "figures.json"
    assert main(["--dry-run", "--model", str(tiny_model), "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    figures = json.loads(out.read_text())

    assert figures["dry_run"] is True
    assert list(PARTS) == ["environment", "qlora_sft_dpo", "vllm_lora", "train_throughput"]
    assert {part: figures[part]["status"] for part in PARTS} == dict.fromkeys(PARTS, "ok")
    found = statuses(figures)
    assert not [status for status in found if status.startswith("failed")], found
    assert all(status == "ok" or (status.startswith("skipped: ") and len(status) > len("skipped: ") + 20)
               for status in found), found

    training = figures["qlora_sft_dpo"]
    assert training["quantization"] == "none" and training["qlora"]["status"].startswith("skipped: dry run on CPU")
    for stage in ("sft", "dpo"):
        assert set(training[stage]) >= {"steps", "first_loss", "last_loss", "adapter_tensors_changed",
                                        "adapter_tensors", "tokens_per_second", "peak_memory"}
        assert training[stage]["adapter_tensors_changed"] > 0
    assert abs(training["dpo"]["first_loss"] - 0.6931) < 0.001  # the SFT adapter handed over as policy and reference

    serving = figures["vllm_lora"]
    assert serving["base"]["requests"] == serving["prompts"] == 4
    assert serving["base"]["output_tokens"] > 0 and serving["base"]["output_tokens_per_second"] > 0
    assert serving["lora"]["status"].startswith("skipped: dry run on CPU")

    throughput = figures["train_throughput"]
    assert {name: method["status"] for name, method in throughput["methods"].items()} == {
        "TRL SFT": "ok", "crucible SFT packed": "ok", "crucible SFT": "ok"}
    assert throughput["packed_over_trl_defaults"] > 0 and throughput["packed_over_unpacked"] > 0
    assert throughput["packed_attention"]["packed_vs_alone"] < 1e-4 < throughput["packed_attention"][
        "unpacked_row_vs_alone"]

    assert figures_table(figures) in capsys.readouterr().out
