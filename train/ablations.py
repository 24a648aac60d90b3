"""Data ablations: the pilot's training run again with one thing about its data changed.

An ablation answers "which part of the data did the work?". Each names what it changes
against the pilot (the preflight recipe's training recipe):

- `sft_sources`: keep only SFT rows whose provenance `source` starts with one of these
  (e.g. `datagen.exports.sft_examples.reference_answer` for template rows only, against the
  teacher's verified answers);
- `exclude_sources`: leave out SFT rows whose `source` starts with one of these (e.g.
  `gold-seed:` for "what did the human seed set's anchor rows buy?");
- `pair_strategies`: keep only preference pairs built by these strategies (e.g.
  `axis_targeted`, whose two answers differ on the one axis that matters);
- `sft_share`: train on this share of the SFT rows (a seeded sample), for "would more
  data help?";
- `dpo: false`: stop after SFT;
- `on_policy: false`: DPO on the build's pairs instead of the policy's own samples, where
  the pilot samples them (`train/on_policy_rounds.py`): "what did on-policy pairs buy?";
- `replay`: mix general rows into SFT against forgetting (`train/replay_mix.py`), or
  `replay: false` to train without the pilot's replay mix ("what did replay buy?").

The selection reads each row's provenance from the build's own stage tables
(`runs/<run_id>/sft`, `runs/<run_id>/pairs`), so an ablation of an export that crucible
did not build can only change `sft_share`, `dpo`, `on_policy` and `replay`. Output: an export folder of
the same layout (`trl_sft/train.jsonl`, `trl_dpo/train.jsonl`) with a manifest that names
its parent export and what was kept.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.export_layout import DPO_FILE, SFT_FILE
from datagen.foundation.hashing import file_sha256
from datagen.foundation.run_store import RunStore, write_text_atomic
from train.replay_mix import ReplayConfig


class Ablation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$", description="a folder name: lower case, digits, - and _")
    description: str = Field(min_length=1, description="the question it answers, shown in the report")
    sft_sources: list[str] | None = Field(None, min_length=1)
    exclude_sources: list[str] | None = Field(None, min_length=1,
                                              description="SFT rows whose source starts with one of these are left out")
    pair_strategies: list[str] | None = Field(None, min_length=1)
    sft_share: float | None = Field(None, gt=0, lt=1)
    dpo: bool = True
    on_policy: bool = Field(True, description="false: DPO on the build's pairs where the pilot samples its own")
    replay: ReplayConfig | Literal[False] | None = Field(
        None, description="a replay mix of its own; false: none, where the pilot has one; default: the pilot's")
    seed: int = 0

    def changes_sft(self) -> bool:
        """Whether its SFT stage differs from the pilot's (if not, the pilot's is reused)."""
        return (self.sft_sources is not None or self.exclude_sources is not None or self.sft_share is not None
                or self.replay is not None)

    def is_pilot_sft(self) -> bool:
        """"Without DPO" and nothing else: the pilot's own SFT adapter, nothing to train."""
        return not self.changes_sft() and not self.dpo


def read_export_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such export file; build the dataset first (make build)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _column_by_id(export: Path, stage: str, column: str) -> dict[str, str]:
    store = RunStore(export.parent.parent, export.parent.name)
    if not store.is_complete(stage):
        raise ValueError(f"{export}: not a crucible build's export (no finished {store.stage_dir(stage)}), "
                         f"so rows cannot be selected by {column}")
    table = store.read(stage)
    return dict(zip(table["id"].to_list(), table[column].to_list()))


def select_sft_rows(ablation: Ablation, export: Path) -> list[dict]:
    rows = read_export_rows(export / SFT_FILE)
    if ablation.sft_sources is not None or ablation.exclude_sources is not None:
        sources = _column_by_id(export, "sft", "source")
        if ablation.sft_sources is not None:
            rows = [row for row in rows if sources.get(row["id"], "").startswith(tuple(ablation.sft_sources))]
        if ablation.exclude_sources is not None:
            rows = [row for row in rows if not sources.get(row["id"], "").startswith(tuple(ablation.exclude_sources))]
    if ablation.sft_share is not None:
        keep = max(1, round(len(rows) * ablation.sft_share))
        rows = sorted(random.Random(ablation.seed).sample(rows, keep), key=lambda row: row["id"])
    if not rows:
        raise ValueError(f"ablation {ablation.name}: no SFT row of {export} has a source in {ablation.sft_sources} "
                         f"outside {ablation.exclude_sources}")
    return rows


def select_pairs(ablation: Ablation, export: Path) -> list[dict]:
    if not ablation.dpo:
        return []
    pairs = read_export_rows(export / DPO_FILE)
    if ablation.pair_strategies is not None:
        strategies = _column_by_id(export, "pairs", "strategy")
        pairs = [pair for pair in pairs if strategies.get(pair["id"]) in ablation.pair_strategies]
        if not pairs:
            raise ValueError(f"ablation {ablation.name}: no pair of {export} is of {ablation.pair_strategies}")
    return pairs


def write_ablation_export(ablation: Ablation, export: Path, out: Path) -> Path:
    """The ablation's export folder under `out`; written whole or not at all (the manifest last)."""
    sft, pairs = select_sft_rows(ablation, export), select_pairs(ablation, export)
    for name, rows in ((SFT_FILE, sft), (DPO_FILE, pairs)):
        write_text_atomic(out / name, "".join(json.dumps(row) + "\n" for row in rows))
    manifest = {"parent_export": str(export), "ablation": ablation.model_dump(mode="json"),
                "rows": {"sft": len(sft), "dpo": len(pairs)},
                "files": {name: file_sha256(out / name) for name in (SFT_FILE, DPO_FILE)}}
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return out
