"""The export's dataset card: Hub front matter that parses back, configs that load, and a body
that says where the rows came from, from literal rows."""

import datasets
from huggingface_hub import DatasetCard

from datagen.exports.dataset_card import CardFacts, DatasetCardConfig, size_category, write_dataset_card
from datagen.exports.formats import write_exports
from datagen.foundation.hashing import file_sha256
from datagen.tasks.support_triage import TASK
from tests.literal_export import CURATION, GATE, listed_outputs, sft_rows, write_literal_export

def test_the_card_parses_back_with_the_hubs_fields_and_configs_that_load(tmp_path):
    config = DatasetCardConfig(license="apache-2.0", language=["en"], tags=["support"])
    export = write_literal_export(tmp_path / "runs", config)

    card = DatasetCard.load(export / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert data["language"] == ["en"]
    assert data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["text-generation"]
    assert data["tags"] == ["synthetic", "crucible", "sft", "dpo", "support_triage", "support"]
    assert data["pretty_name"] == "crucible support_triage (literal)"
    configs = {c["config_name"]: c for c in data["configs"]}
    # One loader reads every config of a repo, so the JSONL files are the configs.
    assert sorted(configs) == ["alpaca", "sharegpt", "trl_dpo", "trl_sft"]
    assert [name for name, c in configs.items() if c.get("default")] == ["trl_sft"]
    for name, c in configs.items():
        [files] = c["data_files"]
        assert files["split"] == "train" and (export / files["path"]).is_file()
        assert files["path"].startswith(f"{name}/")
    # What the Hub's viewer does: each format loads by its config name from the card.
    assert datasets.load_dataset(str(export), "trl_dpo", split="train").num_rows == 2
    assert datasets.load_dataset(str(export), "alpaca", split="train").column_names == [
        "id", "instruction", "input", "output"]
    # Written before the export was sealed, so its manifest lists it with its sha256.
    assert listed_outputs(export)["README.md"] == file_sha256(export / "README.md")


def test_the_body_gives_provenance_curation_mix_gate_and_gold_digests(tmp_path):
    text = (write_literal_export(tmp_path / "runs") / "README.md").read_text()
    body = text.split("\n---\n", 1)[1]
    assert "license: unknown" in text
    assert "6 SFT rows and 2 preference pairs" in body
    for line in [
        "| trl_sft | train | `trl_sft/train.jsonl` | 6 |",
        "| trl_dpo_parquet | train | `trl_dpo_parquet/train.parquet` | 2 |",
        # provenance: generator and teacher model
        "| datagen.sft_examples.reference_answer@1 | - | 3 |",
        "| datagen.teacher.answer_prompts@2 | Qwen/Qwen2.5-7B-Instruct | 3 |",
        "| verifier_ranked | Qwen/Qwen2.5-7B-Instruct | 1 |",
        "| axis_targeted | - | 1 |",
        # curation figures
        "| wrong_fields | 3 |", "| minhash | 2 |",
        # the mix, asked against achieved
        "SFT set: 6 of 8 rows (reduce_total: as many as the shares allow: the scarcest source for its share is "
        "teacher (3 rows for 50%))",
        "| teacher | 50% | 50% | 3 |  | 3 | 0 | as asked; it bounds the total: only 3 teacher rows reached the SFT "
        "set (teacher answers that passed every filter, one per prompt) |",
        "| seed | 0% | 0% | 1 |  | 0 | 1 | not in mix.sft.shares: all 1 left out |",
        "preference set: not mixed, all 2 rows kept",
        # the gate and what it checked against
        "**clean**: no exported row comes close to a row of `support-triage-eval/v2`.",
        f"| support-triage-eval/v2 | support_triage | 120 | `9f2c{'0' * 60}` | lead-key-1 |",
        f"Seed set `triage-seed/v1` (digest `5d41{'0' * 60}`): disjoint from support-triage-eval/v2 by exact, minhash",
    ]:
        assert line in body, line
    assert "gold/sets/x/v2" not in text  # a local path is no business of the card's readers
    assert "whether they may be shared depends on the teachers' terms" in body


def test_size_categories_follow_the_hubs_bounds():
    assert [size_category(n) for n in (0, 999, 1000, 9999, 10_000, 2_500_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


def test_an_empty_set_is_listed_with_no_rows_and_no_config(tmp_path):
    """A build that made no pairs still gets a card; an empty file is no config, since
    `datasets` can load no table from it."""
    rows = sft_rows()
    write_exports(tmp_path, rows, [], TASK)
    write_dataset_card(tmp_path, DatasetCardConfig(), CardFacts("support_triage", "no-pairs", rows, [], CURATION, GATE))
    card = DatasetCard.load(tmp_path / "README.md")
    assert [c["config_name"] for c in card.data.configs] == ["alpaca", "sharegpt", "trl_sft"]
    assert "| trl_dpo | train | `trl_dpo/train.jsonl` | 0 |" in card.text
    assert "No mix: the export holds every SFT row and pair the build kept." in card.text
