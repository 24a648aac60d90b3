"""The preflight, run as a real Prefect flow on a tiny model: gold verified, the pilot and
two ablations trained, every candidate evaluated on the same gold rows, one verdict per
fine-tune, the report written and shown as an artifact, and a re-run that redoes nothing."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml

from datagen.foundation.task import parse_json_answer
from datagen.tasks.support_triage import TASK
from flows.preflight import PreflightRecipe, preflight
from gold.gold_root import NoGoldSet
from tests.locked_gold import lock_gold_rows
from tests.train_exports import GOLD_ANSWER, write_export

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")

REGRESSION = [("What is 7 + 5? Reply with the number only.", {"answer": "12", "match": "number", "skill": "arithmetic"}),
              ("What is the capital of France?", {"answer": "Paris", "match": "contains", "skill": "capitals"})]
TICKETS = [("My blender from order A-204518 arrived with a cracked jug, I want a replacement please.", GOLD_ANSWER),
           ("Does the standing desk come with a cable tray?",
            {"category": "product_question", "priority": "low", "order_id": None, "product": "standing desk",
             "needs_human": False, "summary": "Customer asks whether the standing desk includes a cable tray."})]


def write_recipes(tmp_path: Path, tiny_model: Path, gold_root: Path) -> Path:
    export = write_export(tmp_path / "export", TASK.generate(12, 7))
    train = {"task": "datagen.tasks.support_triage:TASK", "export": str(export), "base_model": str(tiny_model), "out": str(tmp_path / "train"),
             "contamination_gate": {"gold_root": str(gold_root), "audit": {"methods": ["exact", "ngram", "minhash"]}},
             "sft": {"max_steps": 2, "batch_size": 4, "max_length": 512, "learning_rate": 1e-2},
             "dpo": {"max_steps": 1, "batch_size": 4, "max_length": 512}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    recipe = {"train_recipe": str(tmp_path / "train.yaml"),
              "out": str(tmp_path / "preflight"),
              "generation": {"target_max_new_tokens": 8, "regression_max_new_tokens": 4, "batch_size": 4,
                             "engine": "in_process"},
              "ablations": [{"name": "no-dpo", "description": "without DPO", "dpo": False},
                            {"name": "half", "description": "half the SFT rows", "sft_share": 0.5, "dpo": False}]}
    (tmp_path / "preflight.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "preflight.yaml"


def load(path: Path) -> PreflightRecipe:
    from flows.recipe import load_recipe

    return load_recipe(path, PreflightRecipe)


def test_the_preflight_compares_baselines_pilot_and_ablations_on_the_gold_rows(tmp_path, tiny_model):
    gold_root = tmp_path / "gold" / "sets"
    lock_gold_rows(gold_root, "triage", "datagen.tasks.support_triage:TASK", TICKETS)
    lock_gold_rows(gold_root, "general_regression", "gold.regression_schema:GENERAL_REGRESSION", REGRESSION)
    summary = preflight(load(write_recipes(tmp_path, tiny_model, gold_root)))

    out = tmp_path / "preflight"
    evals = out / "evals"
    assert sorted(path.name for path in evals.iterdir()) == [
        "ablation-half", "ablation-no-dpo", "base-constrained", "base-few-shot", "pilot-SFT+DPO"]
    for name in ("base-few-shot", "pilot-SFT+DPO", "ablation-no-dpo", "ablation-half"):
        assert len((evals / name / "regression.jsonl").read_text().splitlines()) == 2
    assert not (evals / "base-constrained" / "regression.json").exists()  # a decoding rule, not new weights
    for name in ("base-few-shot", "base-constrained", "pilot-SFT+DPO"):
        target = json.loads((evals / name / "target.json").read_text())
        assert target["rows"] == 2 and target["gold_set"]["set"] == "triage/v1"
        assert target["gold_set"]["digest"] == summary["gold_sets"][0]["digest"]
    assert [(ref["set"], len(ref["digest"])) for ref in summary["gold_sets"]] == [
        ("triage/v1", 64), ("general_regression/v1", 64)]
    # The pilot's gate checked every training row against the regression set too.
    pilot_gate = json.loads((tmp_path / "train" / "manifest.json").read_text())["contamination_gate"]
    assert [ref["set"] for ref in pilot_gate["gold_sets"]] == ["triage/v1", "general_regression/v1"]
    # The grammar holds even a random model to the schema's object, key by key.
    for row in map(json.loads, (evals / "base-constrained" / "target.jsonl").read_text().splitlines()):
        assert row["output"].startswith('{"category":'), row["output"]
        assert parse_json_answer(row["output"]) is None  # 8 tokens cannot finish the object

    # "without DPO" is the pilot's own SFT adapter; "half" trained on 6 of the 12 rows.
    assert not (out / "ablations" / "no-dpo").exists()
    half = json.loads((out / "ablations" / "half" / "train" / "manifest.json").read_text())
    assert half["rows"] == {"sft": 6, "dpo": 0} and half["dpo"] is None

    verdicts = json.loads((out / "verdicts.json").read_text())
    assert set(verdicts) == {"pilot SFT+DPO", "ablation no-dpo", "ablation half"} == set(summary["verdicts"])
    for verdict in verdicts.values():
        assert verdict["verdict"] in {"escalate", "trade-off", "do not escalate"}
        assert len(verdict["reasons"]) == 4 and verdict["metric"] == "field_accuracy"
        # 8 new tokens cannot finish an answer: format is named first, with its numbers.
        assert verdict["causes"][0] == "format: schema-valid JSON on 0/2 = 0.000 [0.00, 0.66] of the gold rows, below 0.98"
    rules = json.loads((out / "rule_accuracy.json").read_text())
    assert set(rules) == {"base few-shot", "base constrained", "pilot SFT+DPO", "ablation no-dpo", "ablation half"}
    # The second gold ticket is a plain product question with no id: it decides these rules.
    assert rules["pilot SFT+DPO"]["low_plain_question"] == {
        "field": "priority", "title": "low: a plain product question", "value": 0.0, "ci95": [0.0, 0.7935], "n": 1,
        "right": 0}
    report = (out / "report.md").read_text()
    assert "| model | JSON parses | schema-valid | exact match | category macro-F1 |" in report
    for name in ("base few-shot", "base constrained", "pilot SFT+DPO", "ablation no-dpo", "ablation half"):
        assert f"| {name} |" in report
    assert "| `low_plain_question` | priority | low: a plain product question | 1 | 0/1 0.00 [0.00, 0.79] |" in report
    assert "## On-policy rounds" not in report  # the pilot trained DPO on the export's pairs
    assert re.search(r"\| ablation half \| half the SFT rows \| 50% of the SFT rows \(seed 0\); no DPO \| "
                     r"6 of 12 SFT, 0 of \d+ pairs \|", report)
    assert "| ablation no-dpo | without DPO | no DPO | the pilot's SFT adapter itself |" in report
    assert "  - **why**: format: schema-valid JSON on 0/2" in report
    assert report.count("![") == 4  # field accuracy, validity by length, two training runs' losses
    assert re.search(r"\| pilot \| sft \| \d+ \(\+\d+ held out\) \| 2 \| \d+\.\d{3} → \d+\.\d{3} \|", report)
    assert re.search(r"\| half \| sft \| \d+ \(\+\d+ held out\) \| 2 \|", report)
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 4 and "<table>" in html
    assert asyncio.run(_artifact_keys()) >= {"preflight-report"}

    # A re-run trains and generates nothing: every eval's fingerprint still holds.
    stamps = {path: path.stat().st_mtime_ns for path in evals.rglob("*.jsonl")}
    preflight(load(tmp_path / "preflight.yaml"))
    assert {path: path.stat().st_mtime_ns for path in evals.rglob("*.jsonl")} == stamps


async def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {artifact.key for artifact in await client.read_artifacts()}


def test_without_a_locked_regression_set_nothing_is_trained(tmp_path, tiny_model):
    gold_root = tmp_path / "gold" / "sets"
    lock_gold_rows(gold_root, "triage", "datagen.tasks.support_triage:TASK", TICKETS)
    with pytest.raises(NoGoldSet, match="no locked gold set 'general_regression'"):
        preflight(load(write_recipes(tmp_path, tiny_model, gold_root)))
    assert not (tmp_path / "train").exists()


def test_a_recipe_with_a_misspelt_ablation_field_is_refused_naming_the_field(tmp_path):
    from flows.recipe import RecipeError, load_recipe

    path = tmp_path / "preflight.yaml"
    path.write_text(yaml.safe_dump({"train_recipe": "train.yaml",
                                    "ablations": [{"name": "x", "description": "y", "sft_shares": 0.5}]}))
    with pytest.raises(RecipeError, match=r"preflight.yaml: ablations\.0\.sft_shares: Extra inputs are not permitted"):
        load_recipe(path, PreflightRecipe)


def test_every_fine_tune_decodes_as_the_recipe_says_each_decoding_a_candidate_of_its_own(tmp_path):
    from flows.preflight import candidates

    recipe = PreflightRecipe(train_recipe=tmp_path / "train.yaml", fine_tune_decoding="both", pilot_sft_candidate=True,
                             ablations=[{"name": "no-seed", "description": "without the seed set",
                                         "exclude_sources": ["gold-seed:"]}])
    found = candidates(recipe, tmp_path / "pilot", {"no-seed": tmp_path / "no-seed"}, tmp_path / "dpo")
    assert [(c.name, c.role, c.constrained, c.adapter) for c in found] == [
        ("base few-shot", "baseline", False, None), ("base constrained", "baseline", True, None),
        ("pilot SFT", "fine-tune", False, tmp_path / "pilot" / "sft" / "adapter"),
        ("pilot SFT constrained", "fine-tune", True, tmp_path / "pilot" / "sft" / "adapter"),
        ("pilot SFT+DPO", "fine-tune", False, tmp_path / "dpo"),
        ("pilot SFT+DPO constrained", "fine-tune", True, tmp_path / "dpo"),
        ("ablation no-seed", "fine-tune", False, tmp_path / "no-seed"),
        ("ablation no-seed constrained", "fine-tune", True, tmp_path / "no-seed")]
    only = candidates(recipe.model_copy(update={"fine_tune_decoding": "constrained", "pilot_sft_candidate": False,
                                                "ablations": []}), tmp_path / "pilot", {}, tmp_path / "dpo")
    assert [(c.name, c.constrained) for c in only if c.role == "fine-tune"] == [("pilot SFT+DPO constrained", True)]
    # Folder names stay distinct: each decoding's rows are kept apart.
    assert len({c.folder for c in found}) == len(found)
