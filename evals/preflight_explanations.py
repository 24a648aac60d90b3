"""The preflight report's "why" sections: accuracy per rule, what each ablation changed, the
on-policy rounds.

Input: per candidate, `evals.rule_scores.rule_accuracy`; the recipe's ablations with the
export manifests `train/ablations.py` wrote (`<preflight>/ablations/<name>/export/manifest.json`,
which names the parent export and the rows kept); the training runs' on-policy manifests
(`<train out>/on_policy/round-<r>/manifest.json`, `train/on_policy_rounds.py`). Output:
Markdown tables for `evals/preflight_report.py`. Reads files, computes nothing new.
"""

from __future__ import annotations

import json
from pathlib import Path

from datagen.foundation.export_layout import DPO_FILE, SFT_FILE


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _rule_cell(stats: dict, base: dict | None) -> str:
    if not stats["n"]:
        return "–"
    low, high = stats["ci95"]
    cell = f"{stats['right']}/{stats['n']} {stats['value']:.2f} [{low:.2f}, {high:.2f}]"
    # Marked where a model is below the base model: the rules it has not learnt, or unlearnt.
    return f"**{cell}** ▼" if base is not None and stats["value"] < base["value"] else cell


def rules_table(rules: dict[str, dict[str, dict]], base: str) -> str:
    """One row per labelling rule, one column per model: right/decided, the share, Wilson 95%."""
    names = list(next(iter(rules.values())))
    rows = []
    for rule in names:
        first = next(iter(rules.values()))[rule]
        rows.append([f"`{rule}`", first["field"], first["title"], str(first["n"])]
                    + [_rule_cell(by_rule[rule], None if model == base else rules[base][rule])
                       for model, by_rule in rules.items()])
    return table(["rule", "field", "what it says", "gold rows"] + list(rules), rows)


def ablation_changes(ablation) -> list[str]:
    """What an ablation changes against the pilot, in words, from its own fields."""
    changes = []
    if ablation.sft_sources is not None:
        changes.append("SFT rows only from " + ", ".join(f"`{source}`" for source in ablation.sft_sources))
    if ablation.sft_share is not None:
        changes.append(f"{ablation.sft_share:.0%} of the SFT rows (seed {ablation.seed})")
    if ablation.exclude_sources is not None:
        changes.append("SFT rows without those from " + ", ".join(f"`{source}`" for source in ablation.exclude_sources))
    if ablation.pair_strategies is not None:
        changes.append("pairs only of " + ", ".join(f"`{strategy}`" for strategy in ablation.pair_strategies))
    if not ablation.dpo:
        changes.append("no DPO")
    elif not ablation.on_policy:
        changes.append("DPO on the build's pairs, not on-policy ones")
    if ablation.replay is False:
        changes.append("no replay")
    elif ablation.replay is not None:
        settings = ", ".join(f"{key}={value}" for key, value in ablation.replay.model_dump(mode="json").items())
        changes.append(f"replay ({settings})")
    return changes


def _rows_in(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def ablations_table(ablations: list, folder: Path) -> str:
    """Per ablation: its question, what it changed, and its training rows against the pilot's."""
    rows = []
    for ablation in ablations:
        manifest = folder / ablation.name / "export" / "manifest.json"
        if manifest.is_file():
            written = json.loads(manifest.read_text())
            parent = Path(written["parent_export"])
            counts = (f"{written['rows']['sft']} of {_rows_in(parent / SFT_FILE)} SFT, "
                      f"{written['rows']['dpo']} of {_rows_in(parent / DPO_FILE)} pairs")
        else:
            counts = "the pilot's SFT adapter itself"  # `is_pilot_sft`: nothing trained
        rows.append([f"ablation {ablation.name}", ablation.description,
                     "; ".join(ablation_changes(ablation)) or "nothing (a rerun of the pilot)", counts])
    return table(["model", "question", "changed against the pilot", "training rows"], rows)


def on_policy_rounds(training: dict[str, Path]) -> list[list[str]]:
    """One row per on-policy round of every training run that sampled its policy."""
    rows = []
    for run, out in training.items():
        for manifest in sorted((out / "on_policy").glob("round-*/manifest.json"),
                               key=lambda path: int(path.parent.name.split("-")[1])):
            summary = json.loads(manifest.read_text())["summary"]
            dropped = ", ".join(f"{reason} {count}" for reason, count in sorted(summary["dropped_by_reason"].items()))
            rows.append([run, str(summary["round"]), f"`{summary['policy_sha256'][:12]}`", str(summary["prompts"]),
                         str(summary["samples"]), str(summary["failed_requests"]), str(summary["pairs"]),
                         str(summary["one_wrong_field"]), dropped or "–"])
    return rows


def on_policy_table(training: dict[str, Path]) -> str | None:
    rows = on_policy_rounds(training)
    if not rows:
        return None
    return table(["run", "round", "policy (adapter sha256)", "prompts", "samples", "failed", "pairs",
                  "one wrong field", "prompts dropped by reason"], rows)
