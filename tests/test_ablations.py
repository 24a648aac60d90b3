"""Data ablations select rows by their provenance in the build's own stage tables, write a
whole export beside a manifest, and refuse a selection that leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from datagen.foundation.export_layout import DPO_FILE, SFT_FILE
from datagen.foundation.run_store import RunStore
from train.ablations import Ablation, write_ablation_export

TEMPLATE, TEACHER = "datagen.sft_examples.reference_answer@1", "datagen.teacher.verified_answer@1"
SEED = "gold-seed:support_triage_seed/v1@0123abcd"


def build_run(root: Path) -> Path:
    """A finished build's `sft` and `pairs` stages and its export, as the build flow leaves them."""
    store = RunStore(root, "demo-run")
    store.write_stage("sft", {"part": pl.DataFrame({"id": ["s1", "s2", "s3", "s4"],
                                                     "source": [TEMPLATE, TEACHER, SEED, TEACHER]})}, {}, [])
    store.write_stage("pairs", {"part": pl.DataFrame({"id": ["p1", "p2", "p3"],
                                                       "strategy": ["axis_targeted", "teacher_vs_student",
                                                                    "axis_targeted"]})}, {}, [])
    export = store.run_dir / "export"
    for name, ids in ((SFT_FILE, ["s1", "s2", "s3", "s4"]), (DPO_FILE, ["p1", "p2", "p3"])):
        (export / name).parent.mkdir(parents=True, exist_ok=True)
        (export / name).write_text("".join(json.dumps({"id": row_id}) + "\n" for row_id in ids))
    return export


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_rows_are_kept_by_source_and_pairs_by_strategy(tmp_path):
    export = build_run(tmp_path / "runs")
    ablation = Ablation(name="templates", description="templates only", sft_sources=["datagen.sft_examples"],
                        pair_strategies=["axis_targeted"])
    out = write_ablation_export(ablation, export, tmp_path / "ablation")
    assert ids(out / SFT_FILE) == ["s1"]
    assert ids(out / DPO_FILE) == ["p1", "p3"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == {"sft": 1, "dpo": 2} and manifest["parent_export"] == str(export)
    assert manifest["ablation"]["sft_sources"] == ["datagen.sft_examples"]


def test_a_share_is_a_seeded_sample_and_no_dpo_writes_no_pairs(tmp_path):
    export = build_run(tmp_path / "runs")
    half = Ablation(name="half", description="half", sft_share=0.5, dpo=False)
    first = ids(write_ablation_export(half, export, tmp_path / "a") / SFT_FILE)
    assert len(first) == 2 and first == ids(write_ablation_export(half, export, tmp_path / "b") / SFT_FILE)
    assert ids(tmp_path / "a" / DPO_FILE) == []
    assert half.changes_sft() and not Ablation(name="x", description="y", dpo=False).changes_sft()


def test_a_selection_that_keeps_nothing_or_an_export_without_provenance_is_refused(tmp_path):
    export = build_run(tmp_path / "runs")
    with pytest.raises(ValueError, match="ablation none: no SFT row of .* has a source in"):
        write_ablation_export(Ablation(name="none", description="x", sft_sources=["elsewhere"]), export, tmp_path / "a")
    assert not (tmp_path / "a" / "manifest.json").exists()
    plain = tmp_path / "plain" / "export"
    (plain / "trl_sft").mkdir(parents=True)
    (plain / SFT_FILE).write_text('{"id": "s1"}\n')
    with pytest.raises(ValueError, match="not a crucible build's export"):
        write_ablation_export(Ablation(name="t", description="x", sft_sources=["a"]), plain, tmp_path / "b")
    with pytest.raises(ValueError, match="name"):
        Ablation(name="Bad Name", description="x")


def test_replay_false_is_an_sft_change_and_any_other_value_is_refused():
    without = Ablation(name="no-replay", description="without the pilot's replay mix", replay=False, dpo=False)
    assert without.replay is False and without.changes_sft() and not without.is_pilot_sft()
    assert Ablation(name="pilot", description="the pilot's replay", dpo=False).is_pilot_sft()
    with pytest.raises(ValueError, match="replay"):
        Ablation(name="x", description="y", replay=True)


def test_without_the_seed_set_leaves_out_its_anchor_rows_and_on_policy_false_changes_only_dpo(tmp_path):
    export = build_run(tmp_path / "runs")
    no_seed = Ablation(name="no-seed", description="without the seed set's anchors", exclude_sources=["gold-seed:"])
    assert no_seed.changes_sft()
    assert ids(write_ablation_export(no_seed, export, tmp_path / "a") / SFT_FILE) == ["s1", "s2", "s4"]
    with pytest.raises(ValueError, match=r"no SFT row .* outside \['datagen', 'gold-seed:'\]"):
        write_ablation_export(Ablation(name="none", description="x", exclude_sources=["datagen", "gold-seed:"]),
                              export, tmp_path / "b")
    off_policy = Ablation(name="no-on-policy", description="DPO on the build's pairs", on_policy=False)
    assert not off_policy.changes_sft() and not off_policy.is_pilot_sft()


def test_the_demo_preflight_evaluates_baselines_and_the_pilot_and_its_ablations_recipe_the_rest(monkeypatch):
    from flows.preflight import PreflightRecipe, candidates
    from flows.recipe import load_recipe

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the recipes name each other from the checkout

    demo = load_recipe(Path("flows/recipes/preflight_support_triage.yaml"), PreflightRecipe)
    names = [c.name for c in candidates(demo, Path("pilot"), {}, Path("pilot/dpo/adapter"))]
    # The demo's fine-tunes decode under the answer schema, as a JSON task is served.
    assert names == ["base few-shot", "base constrained", "pilot SFT+DPO constrained"]
    ablations = load_recipe(Path("flows/recipes/ablations_support_triage.yaml"), PreflightRecipe)
    assert ablations.out_dir(ablations.pilot()) == demo.out_dir(demo.pilot())  # the demo's evals are read back
    adapters = {a.name: Path(a.name) for a in ablations.ablations}
    names = [c.name for c in candidates(ablations, Path("pilot"), adapters, Path("pilot/dpo/adapter"))]
    assert names == ["base few-shot", "base constrained", "pilot SFT+DPO constrained", "ablation no-dpo constrained",
                     "ablation no-on-policy constrained", "ablation no-replay constrained",
                     "ablation no-seed constrained"]


def test_the_report_says_in_words_what_each_kind_of_ablation_changed():
    from evals.preflight_explanations import ablation_changes

    said = {name: ablation_changes(Ablation(name=name, description="?", **fields)) for name, fields in {
        "no-replay": {"replay": False}, "no-on-policy": {"on_policy": False}, "no-dpo": {"dpo": False},
        "no-seed": {"exclude_sources": ["gold-seed:"]}, "pilot": {}}.items()}
    assert said == {"no-replay": ["no replay"], "no-on-policy": ["DPO on the build's pairs, not on-policy ones"],
                    "no-dpo": ["no DPO"], "no-seed": ["SFT rows without those from `gold-seed:`"], "pilot": []}
