"""The training flow, run as a real Prefect flow on a tiny model: gold verified first,
every training row gated, SFT then DPO, a manifest that says where everything came from,
and a re-run that trains nothing twice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from datagen.foundation.hashing import file_sha256
from datagen.tasks.support_triage import TASK
from evals.contamination.gate import ContaminationError
from flows.train_sft_dpo import TrainRecipe, train_sft_dpo
from gold.gold_root import GoldSetError, GoldSetTampered, NoGoldSet
from gold.lock_gold_set import gold_row_id
from gold.signed_versions import entry_digest
from tests.locked_gold import TEST_KEY, lock_gold_rows, trusted_root
from tests.train_exports import GOLD_ANSWER, write_export

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")

GOLD_TICKET = "My blender from order A-204518 arrived with a cracked jug, I want a replacement please."


def recipe(tmp_path: Path, tiny_model: Path, export: Path, **overrides) -> TrainRecipe:
    return TrainRecipe.model_validate({
        "task": "datagen.tasks.support_triage:TASK", "export": str(export), "base_model": str(tiny_model), "out": str(tmp_path / "train"),
        "contamination_gate": {"gold_root": str(tmp_path / "gold" / "sets"),
                               "audit": {"methods": ["exact", "ngram", "minhash"]}},
        "sft": {"max_steps": 3, "batch_size": 4, "max_length": 512, "learning_rate": 1e-2},
        "dpo": {"max_steps": 2, "batch_size": 4, "max_length": 512},
    } | overrides)


@pytest.fixture
def gold(tmp_path) -> Path:
    return lock_gold_rows(tmp_path / "gold" / "sets", "triage", "datagen.tasks.support_triage:TASK",
                          [(GOLD_TICKET, GOLD_ANSWER)])


def test_the_flow_trains_sft_then_dpo_and_records_every_input(tmp_path, tiny_model, gold):
    export = write_export(tmp_path / "export", TASK.generate(12, 4))
    manifest = train_sft_dpo(recipe(tmp_path, tiny_model, export))

    out = tmp_path / "train"
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest, default=str))
    assert manifest["final_adapter"] == str(out / "dpo" / "adapter")
    signed = json.loads((gold.parent / "versions.json").read_text())
    assert manifest["gold_sets"] == [{"set": "triage/v1", "task": "support_triage", "records": 1,
                                      "sha256": json.loads((gold / "manifest.json").read_text())["sha256"],
                                      "digest": entry_digest(signed["versions"][0]), "signed_by": TEST_KEY.id,
                                      "path": str(gold)}]
    assert manifest["without_gold_reason"] is None
    assert manifest["contamination_gate"]["status"] == "clean"
    assert manifest["rows"] == {"sft": 12, "dpo": 8}
    assert set(manifest["export"]["files"]) == {"trl_sft/train.jsonl", "trl_dpo/train.jsonl"}
    assert manifest["base_model"]["path"] == str(tiny_model) and len(manifest["base_model"]["sha256"]) == 64
    assert set(manifest["libraries"]) == {"torch", "transformers", "peft", "trl", "accelerate", "datasets",
                                          "bitsandbytes"}
    assert manifest["sft"]["steps"] == 3 and manifest["dpo"]["steps"] == 2
    assert manifest["sft"]["last_loss"] < manifest["sft"]["first_loss"]
    assert abs(manifest["dpo"]["first_step"]["loss"] - 0.6931) < 1e-3
    assert manifest["sft"]["tokens_per_second"] > 0 and manifest["dpo"]["tokens_per_second"] > 0
    for png in ("sft-loss.png", "dpo-loss.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A re-run finds both stages done and trains nothing: the adapters are untouched.
    stamp = (out / "dpo" / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    again = train_sft_dpo(recipe(tmp_path, tiny_model, export))
    assert again["sft"]["steps"] == 3
    assert (out / "dpo" / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == stamp


def test_a_gold_row_in_the_training_data_stops_the_flow_before_training(tmp_path, tiny_model, gold):
    export = write_export(tmp_path / "export", TASK.generate(8, 5), extra_prompt=GOLD_TICKET.lower())
    with pytest.raises(ContaminationError, match="sft:sft-leak matches triage-v1:"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export))
    assert not (tmp_path / "train" / "sft").exists()

    removed = train_sft_dpo(recipe(tmp_path, tiny_model, export, contamination_gate={
        "gold_root": str(tmp_path / "gold" / "sets"), "on_contamination": "remove",
        "audit": {"methods": ["exact", "ngram", "minhash"]}}))
    assert removed["contamination_gate"]["status"] == "removed"
    assert removed["rows"]["sft"] == 8


def test_a_tampered_gold_set_or_none_at_all_stops_the_flow(tmp_path, tiny_model, gold):
    export = write_export(tmp_path / "export", TASK.generate(8, 6))
    records = gold / "records.jsonl"
    os.chmod(records, 0o644)
    records.write_bytes(records.read_bytes().replace(b"blender", b"Blender"))
    with pytest.raises(GoldSetTampered, match="records.jsonl line 1"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export))

    with pytest.raises(GoldSetError, match=f"{tmp_path / 'none'}: no such folder of gold sets"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export, contamination_gate={"gold_root": str(tmp_path / "none")}))
    empty = trusted_root(tmp_path / "empty")
    with pytest.raises(NoGoldSet, match="no locked gold set of task support_triage"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export, contamination_gate={"gold_root": str(empty)}))
    assert not (tmp_path / "train" / "sft").exists()


def test_on_policy_rounds_sample_the_sft_policy_and_say_why_no_pair_was_made(tmp_path, tiny_model, gold,
                                                                              monkeypatch):
    """The tiny random policy, served by a real engine (`transformers serve`), writes noise:
    every prompt is dropped as having no plausible wrong answer, the rounds end, no DPO is
    trained on nothing, and the manifest says so. (On-policy pairs from literal samples:
    tests/test_on_policy_pairs.py.)"""
    monkeypatch.setenv("CRUCIBLE_CACHE", str(tmp_path / "cache"))
    export = write_export(tmp_path / "export", TASK.generate(6, 9))
    on_policy = {"rounds": 2, "sampling": {"samples_per_prompt": 2, "engine": "transformers",
                                           "sampling": {"temperature": 1.0, "max_tokens": 8, "seed": 0}}}
    manifest = train_sft_dpo(recipe(tmp_path, tiny_model, export, on_policy=on_policy))

    out = tmp_path / "train"
    assert manifest["dpo"] is None and manifest["final_adapter"] == str(out / "sft" / "adapter")
    [round_1] = manifest["on_policy"]
    assert (round_1["round"], round_1["prompts"], round_1["samples"], round_1["pairs"]) == (1, 6, 12, 0)
    assert set(round_1["dropped_by_reason"]) <= {"no_plausible_wrong", "all_right"}
    assert round_1["policy_sha256"] == file_sha256(out / "sft" / "adapter" / "adapter_model.safetensors")
    samples = [json.loads(line) for line in (out / "on_policy" / "round-1" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and {s["source"] for s in samples} == {"datagen.teacher.on_policy@1"}
    assert all(s["teacher"]["base_url"].startswith("merged:") for s in samples)
    assert not (out / "dpo").exists() and not (out / "on_policy" / "round-2").exists()


REGRESSION_PROMPT = "What is 7 + 5? Reply with the number only."
REGRESSION_LABEL = {"answer": "12", "match": "number", "skill": "arithmetic"}


def write_replay_chats(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"replay-{i}", "messages": [
        {"role": "user", "content": prompt}, {"role": "assistant", "content": "Sure, here it is."}]}) + "\n"
        for i, prompt in enumerate(prompts)))
    return path


def test_a_replay_row_copied_from_the_regression_set_is_refused_or_dropped_naming_it(tmp_path, tiny_model, gold):
    """The attack: a replay prompt copied from a regression gold row would teach the
    answers the preflight scores forgetting with. Every row, replay rows included, is
    gated against the regression set too, and the verdict names the replay row."""
    gold_root = tmp_path / "gold" / "sets"
    lock_gold_rows(gold_root, "general_regression", "gold.regression_schema:GENERAL_REGRESSION",
                   [(REGRESSION_PROMPT, REGRESSION_LABEL)])
    gold_id = gold_row_id(REGRESSION_PROMPT, REGRESSION_LABEL)
    export = write_export(tmp_path / "export", TASK.generate(8, 7))
    # 8 task rows at share 0.2 want 2 replay rows: the copied prompt and a clean one.
    replay = {"source": "file", "file": str(write_replay_chats(tmp_path / "replay.jsonl", [
        "what is 7 + 5?  reply with the number only", "Write a haiku about the first snow of winter."])),
        "share": 0.2}
    gate = {"gold_root": str(gold_root), "also_against": ["general_regression"],
            "audit": {"methods": ["exact", "ngram", "minhash"]}}

    with pytest.raises(ContaminationError, match=f"replay:replay-0 matches general_regression-v1:{gold_id}"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export, replay=replay, contamination_gate=gate))
    assert not (tmp_path / "train" / "sft").exists()
    refused = json.loads((tmp_path / "train" / "contamination" / "gate.json").read_text())
    assert refused["status"] == "refused" and "replay:replay-0" in refused["error"]

    removed = train_sft_dpo(recipe(tmp_path, tiny_model, export, replay=replay, dpo=None,
                                   contamination_gate=gate | {"on_contamination": "remove"}))
    verdict = removed["contamination_gate"]
    assert verdict["status"] == "removed"
    assert verdict["flagged"] == {"replay:replay-0": [f"general_regression-v1:{gold_id}"]}
    assert [ref["set"] for ref in verdict["gold_sets"]] == ["triage/v1", "general_regression/v1"]
    assert (removed["replay"]["rows"], removed["replay"]["removed_by_gate"]) == (1, ["replay-0"])
    assert removed["rows"]["sft"] == 9  # 8 task rows and the clean replay row


def test_gating_against_a_regression_set_that_cannot_be_verified_fails_closed(tmp_path, tiny_model, gold):
    export = write_export(tmp_path / "export", TASK.generate(8, 8))
    gate = {"gold_root": str(tmp_path / "gold" / "sets"), "also_against": ["general_regression"],
            "audit": {"methods": ["exact", "ngram", "minhash"]}}
    with pytest.raises(NoGoldSet, match="no locked gold set 'general_regression'"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export, contamination_gate=gate))

    version = lock_gold_rows(tmp_path / "gold" / "sets", "general_regression",
                             "gold.regression_schema:GENERAL_REGRESSION", [(REGRESSION_PROMPT, REGRESSION_LABEL)])
    records = version / "records.jsonl"
    os.chmod(records, 0o644)
    records.write_bytes(records.read_bytes().replace(b"7 + 5", b"7 + 6"))
    with pytest.raises(GoldSetTampered, match=f"{version / 'records.jsonl'} line 1"):
        train_sft_dpo(recipe(tmp_path, tiny_model, export, contamination_gate=gate))
    assert not (tmp_path / "train" / "sft").exists()
