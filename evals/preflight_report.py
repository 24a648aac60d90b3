"""The preflight report: one comparison table with intervals, the verdicts, and the plots.

Input: the preflight folder's evals (`evals/<candidate>/{target,regression}.json[l]`), the
verdicts, the training runs' log histories. Output, in the same folder:

    report.md     tables, verdicts and links to the plots
    report.html   the same, self-contained (plots inlined), for a browser or an email
    plots/        field-accuracy.png  validity-by-length.png  loss-<run>.png

The Markdown is also what the flow shows as a Prefect artifact.
"""

from __future__ import annotations

import base64
import json
import re
from html import escape
from pathlib import Path

import numpy as np
from markdown_it import MarkdownIt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from datagen.foundation.run_store import write_text_atomic
from evals.preflight_explanations import ablations_table, on_policy_table, rules_table, table

LENGTH_BINS = (0, 100, 200, 300, 400, 600)  # output characters; a demo answer is ~250


def _shown(rate: dict | None) -> str:
    if not rate or rate.get("value") is None:
        return "–"
    low, high = rate["ci95"]
    return f"{rate['value']:.3f} [{low:.2f}, {high:.2f}]"


def _read(folder: Path, kind: str) -> tuple[dict | None, list[dict]]:
    summary = folder / f"{kind}.json"
    if not summary.is_file():
        return None, []
    rows = [json.loads(line) for line in (folder / f"{kind}.jsonl").read_text().splitlines()]
    return json.loads(summary.read_text()), rows


def _figure(width: float = 7.5, height: float = 3.8) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path, *axes_list) -> Path:
    for axes in axes_list:
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_field_accuracy(results: dict[str, dict], fields: list[str], path: Path, key: str = "field_accuracy",
                        title: str = "Per-field accuracy by model") -> Path:
    """Bars of `summary[key][field]` per model: accuracy per field, or a text task's pass
    rate per check kind (`key="check_pass_rate"`)."""
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(results))
    for index, (name, summary) in enumerate(results.items()):
        values = [(summary[key].get(field) or {}).get("value") or 0 for field in fields]
        axes.bar(np.arange(len(fields)) + index * width, values, width, label=name)
    axes.set_xticks(np.arange(len(fields)) + 0.4 - width / 2, fields)
    axes.set_ylim(0, 1)
    axes.set_ylabel("share on the gold set")
    axes.set_title(title)
    return _save(figure, path, axes)


def plot_validity_by_length(rows_by_model: dict[str, list[dict]], path: Path) -> Path:
    """Schema-valid share per output-length bin: a model that rambles fails the schema."""
    figure = _figure()
    axes = figure.add_subplot()
    edges = list(LENGTH_BINS) + [max([600] + [row["output_chars"] + 1 for rows in rows_by_model.values()
                                               for row in rows])]
    labels = [f"{low}-{high}" for low, high in zip(edges, edges[1:])]
    for name, rows in rows_by_model.items():
        shares = []
        for low, high in zip(edges, edges[1:]):
            binned = [row["schema_valid"] for row in rows if low <= row["output_chars"] < high]
            shares.append(np.mean(binned) if binned else np.nan)
        axes.plot(labels, shares, marker="o", label=name)
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlabel("output length (characters)")
    axes.set_ylabel("schema-valid share")
    axes.set_title("Validity by output length")
    return _save(figure, path, axes)


def plot_losses(run: str, train_out: Path, path: Path) -> Path | None:
    stages = [(stage, json.loads((train_out / stage / "log_history.json").read_text()))
              for stage in ("sft", "dpo") if (train_out / stage / "log_history.json").is_file()]
    if not stages:
        return None
    figure = _figure(7.5, 3.2)
    panels = []
    for index, (stage, history) in enumerate(stages, 1):
        axes = figure.add_subplot(1, len(stages), index)
        for key in ("loss", "eval_loss"):
            points = [(entry["step"], entry[key]) for entry in history if key in entry]
            if points:
                axes.plot(*zip(*points), marker="o", markersize=3, label=key)
        axes.set_title(f"{run}: {stage.upper()}")
        axes.set_xlabel("step")
        panels.append(axes)
    return _save(figure, path, *panels)


def _training_rows(training: dict[str, Path]) -> list[list[str]]:
    rows = []
    for run, out in training.items():
        for stage in ("sft", "dpo"):
            result = out / stage / "result.json"
            if not result.is_file():
                continue
            figures = json.loads(result.read_text())
            first, last = figures.get("first_loss"), figures.get("last_loss")
            if stage == "dpo":
                first = (figures.get("first_step") or {}).get("loss")
                last = (figures.get("last_step") or {}).get("loss")
            count = figures.get("rows", "–")
            if isinstance(count, dict):  # SFT: {"train": 37, "held_out": 3, "set_aside": [...]}
                count = f"{count['train']} (+{count['held_out']} held out)"
            seconds = figures.get("train_seconds")
            rows.append([run, stage, str(count), str(figures.get("steps", "–")),
                         f"{first:.3f} → {last:.3f}" if first is not None and last is not None else "–",
                         str(figures.get("tokens_per_second", "–")), "–" if seconds is None else f"{seconds:.0f}"])
    return rows


def _field_tables(task, target: dict[str, dict]):
    """A JSON task's comparison columns (parsing, schema, exact match, the macro-F1 of its
    first closed-set field, its own field rules: a report shows the columns of its task and
    no other's) and its accuracy per field."""
    enum_fields = list(next(iter(target.values()))["macro_f1"])[:1]
    header = (["model", "JSON parses", "schema-valid", "exact match"] + [f"{name} macro-F1" for name in enum_fields]
              + [f"{rule.title} (parsed)" for rule in task.field_rules] + ["regression accuracy", "verdict"])

    def columns(summary: dict) -> list[str]:
        return ([_shown(summary["parse_rate"]), _shown(summary["schema_valid_rate"]), _shown(summary["exact"])]
                + [_shown(summary["macro_f1"][name]) for name in enum_fields]
                + [_shown(summary["field_valid_when_parsed"][rule.field]) for rule in task.field_rules])

    return header, columns, "Accuracy per field by model", list(task.answer_schema.model_fields), "field_accuracy"


def _check_tables(task, target: dict[str, dict]):
    """A text task's comparison columns (`evals/check_scores.py`: replies given, every check
    passed, the row score the verdict compares, all checks together) and its pass rate per
    check kind, with Wilson intervals."""
    header = ["model", "replies given", "all checks pass", "row score (check share)", "checks passed",
              "regression accuracy", "verdict"]

    def columns(summary: dict) -> list[str]:
        return [_shown(summary["parse_rate"]), _shown(summary["exact"]), _shown(summary["check_share"]),
                _passed(summary["checks_passed"])]

    kinds = list(dict.fromkeys(kind for summary in target.values() for kind in summary["check_pass_rate"]))
    return header, columns, "Pass rate per check kind by model", kinds, "check_pass_rate"


def _passed(stats: dict) -> str:
    low, high = stats["ci95"]
    return f"{stats['right']}/{stats['n']} {stats['value']:.3f} [{low:.2f}, {high:.2f}]"


def write_report(out: Path, *, task, candidates: list, evals: Path, verdicts: dict, gold: tuple,
                 training: dict[str, Path], metric: str, tolerance: float, min_schema_valid: float, rules: dict[str, dict] | None = None,
                 ablations: list = (), ablations_folder: Path | None = None) -> str:
    """`rules`: per model, `evals.rule_scores.rule_accuracy` (None: the task has no labelling
    rules); `ablations` and `ablations_folder`: the recipe's ablations and where their exports are."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    target, regression, target_rows = {}, {}, {}
    for candidate in candidates:
        folder = evals / candidate.folder
        target[candidate.name], target_rows[candidate.name] = _read(folder, "target")
        regression[candidate.name] = _read(folder, "regression")[0]
    tables = _check_tables if task.answer_format == "text" else _field_tables
    comparison_header, columns, per_field_title, fields, key = tables(task, target)
    comparison = []
    for candidate in candidates:
        reg = regression[candidate.name]
        verdict = verdicts.get(candidate.name, {}).get("verdict", "baseline")
        comparison.append([candidate.name] + columns(target[candidate.name])
                          + [_shown(reg["accuracy"]) if reg else "–", f"**{verdict}**"])
    per_field = [[name] + [_shown(summary[key].get(field)) for field in fields] for name, summary in target.items()]
    skills = sorted({skill for reg in regression.values() if reg for skill in reg["by_skill"]})
    per_skill = [[name] + [_shown(reg["by_skill"].get(skill)) for skill in skills]
                 for name, reg in regression.items() if reg]

    images = [plot_field_accuracy(target, fields, plots / "field-accuracy.png", key, per_field_title),
              plot_validity_by_length(target_rows, plots / "validity-by-length.png")]
    images += [path for run, train_out in training.items()
               if (path := plot_losses(run, train_out, plots / f"loss-{run}.png")) is not None]

    target_gold, regression_gold = gold
    base = next(iter(target))  # the first candidate: the base model with the few-shot prompt
    lines = [
        f"# Preflight: {task.name}", "",
        f"Target eval: locked gold set `{target_gold.name}` ({len(target_gold.rows)} rows, sha256 "
        f"`{target_gold.manifest['sha256'][:16]}…`), verified before use. Regression eval: `{regression_gold.name}` "
        f"({len(regression_gold.rows)} rows). Every score is computed by code; brackets are bootstrap 95% "
        "intervals (1,000 resamples of the gold rows)"
        + ("; a text task's replies are scored by every check of their gold row (`evals/check_scores.py`), and "
           "the pass rates of all checks and of each kind have Wilson 95% intervals, a schema-valid answer being a "
           "reply that is not blank." if task.answer_format == "text" else "."), "",
        "## Comparison", "",
        table(comparison_header, comparison), "",
        "## Verdicts", "",
        f"Rule: escalate a fine-tune only if (1) its gain over `{base}` on per-row {metric} "
        "has a paired 95% interval above zero, (2) its regression accuracy is at most "
        f"{tolerance:.3f} below the base model's, (3) its paired interval against the best baseline is "
        f"above zero, and (4) at least {min_schema_valid:.2f} of its gold answers are schema-valid. A target gain "
        "that costs regression is a trade-off, not a successful fine-tune. **why** names the causes of a "
        "verdict other than escalate: format, the worst rule below the base model, forgetting.", "",
    ]
    for name, verdict in verdicts.items():
        lines.append(f"- **{name}: {verdict['verdict']}**")
        lines += [f"  - {reason}" for reason in verdict["reasons"]]
        lines += [f"  - **why**: {cause}" for cause in verdict["causes"]]
    lines += ["", "## Candidates", ""]
    lines += [f"- **{candidate.name}** ({candidate.role}): {candidate.description}" for candidate in candidates]
    if ablations:
        lines += ["", "## What each ablation changed", "", ablations_table(list(ablations), ablations_folder)]
    lines += ["", f"## {per_field_title.replace(' by model', '')}", "", table(["model"] + fields, per_field), ""]
    if rules:
        lines += ["## Accuracy per labelling rule", "",
                  ("Each gold row is scored on the field of every rule that decides it (the rules and how a gold "
                   "row's are found: the task's `rules_of`, from the labelers' notes, the reference and the "
                   f"prompt). Right/decided, the share and its Wilson 95% interval; ▼ below `{base}`."), "",
                  rules_table(rules, base), ""]
    rounds = on_policy_table(training)
    if rounds:
        lines += ["## On-policy rounds", "",
                  ("Each round samples the policy (the SFT adapter, then each round's DPO adapter) on the training "
                   "prompts and pairs its own plausible wrong answers against right ones "
                   "(`train/on_policy_rounds.py`)."), "", rounds, ""]
    lines += [
              "## Regression accuracy per skill", "", table(["model"] + skills, per_skill), "",
              "## Training runs", "",
              table(["run", "stage", "rows", "steps", "loss", "tokens/s", "seconds"], _training_rows(training)), "",
              "## Plots", ""]
    lines += [f"![{path.stem}](plots/{path.name})" for path in images]
    lines += ["", "Per-row outputs: `evals/<model>/target.jsonl` and `regression.jsonl` beside this report.", ""]
    markdown = "\n".join(lines)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", _html(markdown, plots, task.name))
    return markdown


def _html(markdown: str, plots: Path, title: str) -> str:
    body = MarkdownIt("commonmark").enable("table").render(markdown)

    def inline(match: re.Match) -> str:
        data = base64.b64encode((plots / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="plots/([^"]+)"', inline, body)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left}th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}code{background:#f5f5f5}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Preflight: {escape(title)}</title>"
            f"<style>{style}</style></head><body>{body}</body></html>")
