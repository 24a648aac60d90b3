"""The export's dataset card: `README.md` in the Hugging Face Hub's format.

The front matter is `huggingface_hub`'s `DatasetCardData`, so the Hub (and
`datasets.load_dataset` on the folder) reads it: license, language, size category,
task categories, tags, and `configs`, one per format folder of the export with its
files, so each format loads by name and the Hub's viewer shows each. The body says what
the rows are and where they came from: the provenance of the exported rows (per
generator and teacher model, pairs per strategy), the curation figures of the stages
before (prompts set aside and deduplicated, answers rejected per filter, pairs dropped),
the data mix asked and achieved, the contamination gate's verdict, and the digests of
the gold sets it was gated against and of the seed set.

The build writes it into the export folder before the folder is sealed
(`RunStore.write_stage`), so the card is listed with its sha256 in the export's manifest
like every file.

Input: the export folder (its format files written), the recipe's `card:` section, and
`CardFacts`. Output: `<folder>/README.md`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from huggingface_hub import DatasetCard, DatasetCardData
from pydantic import BaseModel, ConfigDict, Field

from datagen.exports.data_mix import mix_markdown
from datagen.foundation.export_layout import CARD_FILE, SFT_FILE
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.run_store import RunStore, write_text_atomic

DATA_SUFFIXES = (".jsonl", ".parquet")
# `datasets` (and so the Hub's viewer) reads every config of a repo with one loader, chosen
# by file type (huggingface/datasets#6447): a card with JSONL and parquet configs fails to
# load. Every format has its JSONL file, so those are the configs; the parquet files hold
# the same rows again, for readers who want parquet.
CONFIG_SUFFIX = ".jsonl"
DataFiles = dict[str, dict[str, tuple[str, int]]]  # format folder -> split -> (path in the export, rows)
# The Hub's size categories (huggingface_hub's DatasetCardData docs), by their upper bound.
SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                   (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                   (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))


class DatasetCardConfig(BaseModel):
    """The recipe's `card:` section: what the card's front matter says that the build cannot know."""

    model_config = ConfigDict(extra="forbid")

    license: str = Field(
        "unknown", description="a Hub license id (https://huggingface.co/docs/hub/repositories-licenses). "
        "`unknown` by default: the rows are written by your teachers and your task's generator, and whether "
        "you may share them depends on the teachers' terms and your imports, which crucible cannot know")
    language: list[str] = Field(["en"], min_length=1, description="ISO 639 codes of the rows' language")
    task_categories: list[str] = Field(
        ["text-generation"], min_length=1, description="the Hub's task categories: chat SFT and preference "
        "rows train text generation, whatever the task asks for")
    pretty_name: str | None = Field(None, description="the card's title; default: crucible <task> (<run id>)")
    tags: list[str] = Field([], description="more tags beside synthetic, crucible, sft, dpo and the task's name")


@dataclass(frozen=True)
class CardFacts:
    """What the card reports of one build."""

    task: str
    run_id: str
    sft: list[Example]  # the exported SFT rows
    pairs: list[PreferencePair]  # the exported pairs
    curation: dict[str, dict[str, int]]  # table title -> {what: rows}: `curation_figures`
    gate: dict  # the contamination gate's verdict (`GateResult.as_dict`)
    seed_set: dict | None = None  # `build_summary.seed_set_summary`: set, digest, verdict, eval sets, methods
    mix: dict | None = None  # the data mix's report (`datagen/exports/data_mix.py`)


def curation_figures(store: RunStore) -> dict[str, dict[str, int]]:
    """Rows per stage and the reasons rows went, from the manifests of the stages before the export."""
    manifest = store.manifest
    stages = {"prompts generated": ("prompts", "part")}
    for stage, title in (("self_instruct", "inputs self-generated"), ("imported", "rows imported")):
        if store.is_complete(stage):
            stages[title] = (stage, "part")
    stages |= {"prompts after the length check and dedupe": ("unique_prompts", "part"),
               "answers (teacher and imported)": ("verified", None), "answers kept": ("verified", "part"),
               "SFT rows": ("sft", "part"), "preference pairs": ("pairs", "part")}
    counts = {title: (sum(manifest(stage)["counts"].values()) if table is None else manifest(stage)["counts"][table])
              for title, (stage, table) in stages.items()}
    prompts, verified = manifest("unique_prompts")["summary"], manifest("verified")["summary"]
    return {"rows per stage": counts,
            "prompts set aside by reason": prompts.get("rejected_by_reason", {}),
            "prompts removed by dedupe": prompts["removed_by_method"],
            "answers rejected by filter": verified["rejected_by_reason"],
            "pairs dropped by reason": manifest("pairs")["summary"]["report"]["dropped"]}


def size_category(rows: int) -> str:
    return next((name for bound, name in SIZE_CATEGORIES if rows < bound), "n>1T")


def data_files(folder: Path) -> DataFiles:
    """Each format folder's files: config name -> split -> (path in the folder, rows)."""
    found: DataFiles = {}
    for path in sorted(folder.glob("*/*")):
        if path.suffix not in DATA_SUFFIXES or path.name.startswith("."):
            continue
        found.setdefault(path.parent.name, {})[path.stem] = (path.relative_to(folder).as_posix(), _rows(path))
    if not found:
        raise FileNotFoundError(f"{folder}: no format folder with a .jsonl or .parquet file to describe")
    return found


def _rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    with open(path, "rb") as handle:  # written one row a line; polars refuses an empty file
        return sum(1 for line in handle if line.strip())


def card_data(config: DatasetCardConfig, facts: CardFacts, files: DataFiles) -> DatasetCardData:
    default = SFT_FILE.split("/")[0]
    configs = [{"config_name": name,
                "data_files": [{"split": split, "path": path} for split, (path, _) in splits.items()]}
               | ({"default": True} if name == default else {}) for name, splits in files.items()
               # an empty file is no config: `datasets` cannot load a table from it
               if all(path.endswith(CONFIG_SUFFIX) and rows for path, rows in splits.values())]
    largest = max(rows for splits in files.values() for _, rows in splits.values())
    return DatasetCardData(
        license=config.license, language=config.language, pretty_name=_title(config, facts),
        size_categories=[size_category(largest)], task_categories=config.task_categories,
        tags=list(dict.fromkeys(["synthetic", "crucible", "sft", "dpo", facts.task, *config.tags])),
        configs=configs or None,
    )


def _title(config: DatasetCardConfig, facts: CardFacts) -> str:
    return config.pretty_name or f"crucible {facts.task} ({facts.run_id})"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A markdown table, its columns of counts right-aligned."""
    counts = [bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in counts) + "|"]
    return lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows] + [""]


def _counted(counter: Counter) -> list[list[object]]:
    return [[*key, n] if isinstance(key, tuple) else [key, n] for key, n in counter.most_common()]


def card_body(config: DatasetCardConfig, facts: CardFacts, files: DataFiles) -> str:
    sft_models = Counter((row.source, row.teacher.model if row.teacher else "-") for row in facts.sft)
    pair_strategies = Counter((pair.strategy, pair.chosen_teacher.model if pair.chosen_teacher else "-")
                              for pair in facts.pairs)
    lines = [
        f"# {_title(config, facts)}", "",
        f"Synthetic data for the `{facts.task}` task, made and curated by crucible in run `{facts.run_id}`: "
        f"{len(facts.sft)} SFT rows and {len(facts.pairs)} preference pairs, each set in several formats. Every "
        "row keeps its `id`, the sha256 of its content, which leads back to its full provenance (generator and "
        "version, template, seed, teacher endpoint, model and sampling, parent rows) in the run store.", "",
        "## Formats", "",
        "Load one with `datasets.load_dataset(\"<this repo or folder>\", \"<config>\", split=\"train\")`. The "
        "parquet files hold the same rows as their JSONL twins and are no config, since `datasets` reads a "
        "repo's configs with one loader: `load_dataset(\"parquet\", data_files=...)` reads them.", "",
        *_table(["folder", "split", "file", "rows"],
                [[name, split, f"`{path}`", rows] for name, splits in files.items()
                 for split, (path, rows) in splits.items()]),
        "## Provenance", "",
        "**SFT rows** by generator and teacher model", "",
        *_table(["source", "teacher model", "rows"], _counted(sft_models)),
        "**preference pairs** by strategy and the chosen side's teacher model", "",
        *_table(["strategy", "teacher model", "pairs"], _counted(pair_strategies)),
        "## Curation", "",
    ]
    for title, counts in facts.curation.items():
        lines += [f"**{title}**", "", *_table(["", "rows"], [[k, n] for k, n in counts.items()] or [["(none)", 0]])]
    lines += ["## Data mix", ""]
    if facts.mix is None:
        lines += ["No mix: the export holds every SFT row and pair the build kept.", ""]
    else:
        if facts.gate["status"] == "removed":
            lines += ["The mix below is before the contamination gate, which then removed the rows it names.", ""]
        lines += [mix_markdown(facts.mix), ""]
    lines += ["## Contamination gate", "", _verdict(facts.gate), ""]
    if facts.gate["gold_sets"]:
        lines += _table(["gold set", "task", "records", "digest", "signed by"],
                        [[ref["set"], ref["task"], ref["records"], f"`{ref['digest']}`", ref["signed_by"]]
                         for ref in facts.gate["gold_sets"]])
    if facts.seed_set is not None:
        seed = facts.seed_set
        lines += [f"Seed set `{seed['set']}` (digest `{seed['digest']}`): {seed['verdict']} from "
                  f"{', '.join(seed['eval_sets'])} by {', '.join(seed['methods'])}. Its rows are human answers "
                  "the build learns from (few-shot turns, SFT anchors), so the gate checks eval sets only.", ""]
    lines += ["## License", "", f"`{config.license}`" + (
        ": the rows were written by the teachers and the task's generator named above; whether they may be "
        "shared depends on the teachers' terms and on any imported data." if config.license == "unknown" else "."), ""]
    return "\n".join(lines)


def _verdict(gate: dict) -> str:
    sets = ", ".join(f"`{ref['set']}`" for ref in gate["gold_sets"])
    flagged = len(gate["flagged"])
    return {
        "clean": f"**clean**: no exported row comes close to a row of {sets}.",
        "removed": f"**removed**: {flagged} rows came close to rows of {sets} and were left out of the export.",
        "overridden": f"**overridden**: {flagged} rows come close to rows of {sets} and were exported anyway, "
                      f"for this stated reason: {gate['override_reason']}",
        "without_gold": f"**not gated**: the task had no locked gold set; the recipe's reason: "
                        f"{gate['without_gold_reason']}",
    }[gate["status"]]


def dataset_card(folder: Path, config: DatasetCardConfig, facts: CardFacts) -> DatasetCard:
    files = data_files(folder)
    data = card_data(config, facts, files)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{card_body(config, facts, files)}")


def write_dataset_card(folder: Path, config: DatasetCardConfig, facts: CardFacts) -> Path:
    """`<folder>/README.md`, describing the format files already in `folder`."""
    path = Path(folder) / CARD_FILE
    write_text_atomic(path, str(dataset_card(Path(folder), config, facts)))
    return path
