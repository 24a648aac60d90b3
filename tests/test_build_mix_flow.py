"""A build with a `mix:` section, end to end: a real Prefect run, a scripted teacher on loopback;
the mix stage, the exported rows, the card, the summary and the curation report agree."""

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from huggingface_hub import DatasetCard

from datagen.exports.data_mix import mix_source
from datagen.foundation.records import examples_from_frame
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from tests.conftest import read_jsonl
from tests.scripted_teacher import ScriptedTeacher
from tests.test_build_dataset_flow import labels_by_prompt, recipe

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_the_mix_stage_decides_what_is_exported_and_every_report_shows_it(tmp_path):
    labels = labels_by_prompt(8, 4)
    right = set(list(labels)[:3])  # the teacher gets three tickets right: three teacher rows, the rest template

    def script(prompt: str, k: int) -> str:
        label = labels[prompt]
        if k == 0 and prompt in right:
            return json.dumps(label)
        return json.dumps(dict(label, needs_human=not label["needs_human"]))  # plausible, wrong on one field

    with ScriptedTeacher(script) as teacher:
        build = recipe(tmp_path, count=8, seed=4, samples=2, base_url=teacher.base_url, model="scripted")
        build = BuildDatasetRecipe.model_validate(build.model_dump() | {
            "pairs": {"strategies": ["verifier_ranked", "minimal_correction"]},
            "mix": {"seed": 7,
                    "sft": {"shares": {"template": 0.5, "teacher": 0.5}},
                    "preference": {"shares": {"teacher": 1.0}, "caps": {"teacher": 4}}},
            "card": {"license": "cc-by-4.0"},
        })
        summary = build_dataset(build, run_id="mixed")

    run = Path(summary["run_dir"])
    sft = examples_from_frame(pl.read_parquet(run / "sft" / "part-00000.parquet"))
    assert Counter(mix_source(r) for r in sft) == {"teacher": 3, "template": len(sft) - 3}
    # 3 teacher rows bound the SFT set at 50%: 3 + 3; every pair is made from teacher answers, capped at 4.
    mix = summary["data mix"]
    assert (mix["sets"]["sft"]["rows"], mix["sets"]["preference"]["rows"]) == (6, 4)
    assert summary["counts"]["SFT rows after the mix"] == 6
    assert summary["counts"]["preference pairs after the mix"] == 4
    left_out = pl.read_parquet(run / "mix" / "sft_left_out-00000.parquet")
    assert left_out.height == len(sft) - 6
    assert set(left_out["reason"]) == {"over_share: template's 50% share is 3 rows"}
    pairs_left = pl.read_parquet(run / "mix" / "pairs_left_out-00000.parquet")
    assert set(pairs_left["reason"]) == {"over_cap: teacher is capped at 4 rows (mix.preference.caps)"}
    assert pairs_left.height == summary["counts"]["preference pairs"] - 4

    export = Path(summary["exports"])
    assert len(read_jsonl(export / "trl_sft" / "train.jsonl")) == 6
    assert len(read_jsonl(export / "trl_dpo" / "train.jsonl")) == 4
    mixed_ids = set(pl.read_parquet(run / "mix" / "sft-00000.parquet")["id"])
    assert {row["id"] for row in read_jsonl(export / "alpaca" / "train.jsonl")} == mixed_ids
    manifest = json.loads((export / "manifest.json").read_text())
    assert "README.md" in manifest["outputs"] and list(manifest["inputs"]) == ["mix"]

    card = DatasetCard.load(export / "README.md")
    assert card.data.license == "cc-by-4.0"
    assert "SFT set: 6 of" in card.text and "| template | 50% | 50% |" in card.text
    gate = manifest["summary"]["contamination_gate"]
    assert gate["status"] == "clean" and all(f"`{ref['digest']}`" in card.text for ref in gate["gold_sets"])
    assert "**answers rejected by filter**" in card.text and "| wrong_fields |" in card.text

    page = (run / "summary.md").read_text()
    assert page.index("**data mix** (seed 7)") < page.index("SFT set: 6 of 8 rows") < page.index("preference set: 4 of")
    assert json.loads((run / "curation.json").read_text())["mix"] == mix
    assert "Data mix" in (run / "curation.html").read_text()
