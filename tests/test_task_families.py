"""The two task families beside the demo, end to end from their committed recipes: a build
against the scripted teacher (tests/scripted_teacher.py), then the preflight on the tiny
model, with gold sets locked into a temporary root. What a second family tripped over
before: one_wrong_field on a schema with no enum, the report's triage columns, recipes to
copy, triage-sized limits."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from datagen.foundation.task import import_task
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from flows.preflight import PreflightRecipe, preflight
from flows.recipe import load_recipe
from flows.train_sft_dpo import TrainRecipe
from tests.locked_gold import lock_gold_rows

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")

RECIPES = Path(__file__).parent.parent / "flows" / "recipes"
REGRESSION = [("What is 7 + 5? Reply with the number only.", {"answer": "12", "match": "number", "skill": "arithmetic"}),
              ("What is the capital of France?", {"answer": "Paris", "match": "contains", "skill": "capitals"})]
GOLD = {
    "invoice_extraction": [
        ("PINE & PAPER\n12 Harbour St\nReceipt 5521   2024-06-01\n2 x Notebook 4.50\nTOTAL EUR 9.00",
         {"vendor": "PINE & PAPER", "invoice_number": "5521", "date": "2024-06-01", "currency": "EUR",
          "line_items": [{"description": "Notebook", "quantity": 2, "unit_price": 4.5}], "total": 9.0}),
        ("From: Ada Osei\nInvoice AO-7, 3 March 2025\nLogo sketch: 1 x $250.00\nTotal: $250.00",
         {"vendor": "Ada Osei", "invoice_number": "AO-7", "date": "2025-03-03", "currency": "USD",
          "line_items": [{"description": "Logo sketch", "quantity": 1, "unit_price": 250.0}], "total": 250.0}),
    ],
    "text_to_sql": [
        ("how many people live in Lyon?", {"sql": "SELECT COUNT(*) FROM customers WHERE city = 'Lyon'"}),
        ("What's the cheapest kitchen product?",
         {"sql": "SELECT name FROM products WHERE category = 'kitchen' ORDER BY price LIMIT 1"}),
    ],
}
# wrong_fields: the student's answers (teacher_vs_student); the rest axis_targeted, spread by a
# hash of each prompt's id: one_wrong_field was made wherever its turn came, none skipped.
AXES = {
    "invoice_extraction": {"wrong_fields": 6, "one_wrong_field": 1, "broken_format": 2, "needless_preamble": 3},
    "text_to_sql": {"wrong_fields": 6, "one_wrong_field": 1, "broken_format": 1, "needless_preamble": 4},
}
# The task's own report columns, and nothing of the triage task's: neither has an enum field.
COMPARISON_HEADER = {
    "invoice_extraction": "| model | JSON parses | schema-valid | exact match | date as YYYY-MM-DD (parsed) "
                          "| currency as 3 capitals (parsed) | regression accuracy | verdict |",
    "text_to_sql": "| model | JSON parses | schema-valid | exact match | regression accuracy | verdict |",
}


def plausible_wrong(label: dict) -> dict:
    """The student's answer: right in form, wrong on one field."""
    return dict(label, total=label["total"] + 1) if "total" in label else {"sql": "SELECT name FROM customers"}


def committed(name: str) -> dict:
    return yaml.safe_load((RECIPES / name).read_text())


def write_recipes(tmp_path: Path, task: str, teacher_url: str, tiny_model: Path, gold_root: Path) -> Path:
    """The committed recipes of `task`, pointed at the scripted teacher, the tiny model and
    the temporary gold root, with tiny counts and steps."""
    gate = {"gold_root": str(gold_root), "audit": {"methods": ["exact", "ngram", "minhash"]}}
    build = committed(f"{task}.yaml")
    teacher = build["distill"]["teachers"][0] | {"base_url": teacher_url, "model": "scripted", "backoff_base_s": 0.01}
    build |= {"runs_dir": str(tmp_path / "runs"), "prompts": {"count": 6, "seed": 1}, "contamination_gate": gate,
              "student": build["student"] | {"base_url": teacher_url, "model": "scripted-student"}}
    build["distill"] |= {"teachers": [teacher], "cache_path": str(tmp_path / "responses.sqlite")}
    train = committed(f"train_{task}.yaml")
    train |= {"build_recipe": str(tmp_path / "build.yaml"), "base_model": str(tiny_model),
              "out": str(tmp_path / "train"), "contamination_gate": gate}
    train["sft"] |= {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-2}
    train["dpo"] |= {"max_steps": 1, "batch_size": 4, "gradient_accumulation_steps": 1}
    flight = committed(f"preflight_{task}.yaml")
    flight |= {"train_recipe": str(tmp_path / "train.yaml"), "out": str(tmp_path / "preflight"),
               "generation": {"target_max_new_tokens": 8, "regression_max_new_tokens": 4, "batch_size": 4,
                              # the engines are tested in test_serving_engine; here the flow
                              "engine": "in_process"}}
    for name, recipe in (("build", build), ("train", train), ("preflight", flight)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path


@pytest.mark.parametrize("task", ["invoice_extraction", "text_to_sql"])
def test_a_task_family_builds_and_preflights_from_its_recipes(tmp_path, tiny_model, task):
    from tests.scripted_teacher import ScriptedTeacher

    gold_root = tmp_path / "gold" / "sets"
    lock_gold_rows(gold_root, task, f"datagen.tasks.{task}:TASK", GOLD[task])
    lock_gold_rows(gold_root, "general_regression", "gold.regression_schema:GENERAL_REGRESSION", REGRESSION)
    task_def = import_task(f"datagen.tasks.{task}:TASK")
    labels = {p.text: p.label for p in task_def.generate(6, 1)}

    def script(prompt: str, k: int) -> str:
        # k = 0 is the teacher's sample, k = 1 the student's, asked afterwards
        return json.dumps(labels[prompt] if k == 0 else plausible_wrong(labels[prompt]))

    with ScriptedTeacher(script) as teacher:
        folder = write_recipes(tmp_path, task, teacher.base_url, tiny_model, gold_root)
        summary = build_dataset(load_recipe(folder / "build.yaml", BuildDatasetRecipe))

    unique = summary["counts"]["prompts after dedupe"]
    assert summary["counts"]["SFT rows"] == unique == 6
    assert summary["student answers rejected by reason"] == {"wrong_fields": unique}
    pair_set = summary["pair set"]
    assert pair_set["by_strategy"] == {"teacher_vs_student": 6, "axis_targeted": 6}
    assert pair_set["by_axis"] == AXES[task] and pair_set["skipped"] == {} and pair_set["dropped"] == {}
    pairs = pl.read_parquet(Path(summary["run_dir"]) / "pairs" / "part-00000.parquet")
    (wrong_field,) = pairs.filter(pl.col("axis") == "one_wrong_field").iter_rows(named=True)
    chosen, rejected = json.loads(wrong_field["chosen"]), json.loads(wrong_field["rejected"])
    assert len(task_def.compare(rejected, chosen)) == 1 and wrong_field["evidence"].startswith("rejected sets ")
    assert load_recipe(folder / "train.yaml", TrainRecipe).export_dir() == Path(summary["exports"])

    result = preflight(load_recipe(folder / "preflight.yaml", PreflightRecipe))
    out = tmp_path / "preflight"
    assert sorted(path.name for path in (out / "evals").iterdir()) == [
        "ablation-half-data", "ablation-no-dpo", "base-constrained", "base-few-shot", "pilot-SFT+DPO"]
    assert [ref["set"] for ref in result["gold_sets"]] == [f"{task}/v1", "general_regression/v1"]
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert set(verdicts) == {"pilot SFT+DPO", "ablation no-dpo", "ablation half-data"}
    assert all(verdict["verdict"] in {"escalate", "trade-off", "do not escalate"} for verdict in verdicts.values())
    report = (out / "report.md").read_text()
    assert COMPARISON_HEADER[task] in report.splitlines()
    assert "summary" not in report.casefold()
    assert "| model | " + " | ".join(task_def.answer_schema.model_fields) + " |" in report  # accuracy per field


def test_every_committed_recipe_loads():
    for path in sorted(RECIPES.glob("*.yaml")):
        model = PreflightRecipe if path.name.startswith(("preflight_", "ablations_")) else (
            TrainRecipe if path.name.startswith("train_") else BuildDatasetRecipe)
        load_recipe(path, model)
