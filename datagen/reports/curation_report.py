"""The curation report of one build: what the answer filters removed, and what that did
to the shape of the data.

Counts alone hide what curation does to a dataset: a filter that removes 5% of the rows
can remove half of one category, every long answer, or every row of one template. So
the report sets all answers ("before") beside the kept ones ("after"), as datatrove's
per-step stats and NeMo Curator's reports do: rejections per filter, answer lengths,
the balance of every closed-set answer field, and which templates' rows survive.

Input: the `answers` stage (EXAMPLE_SCHEMA), the `verified` stage's `part` (kept) and
its `rejects` (EXAMPLE_SCHEMA plus `reason`, the filter kind, and `detail`).
Output: a JSON-ready dict, rendered by `curation_markdown` for the Prefect artifact and
by `curation_html` as one self-contained page for the run folder.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy
import polars as pl
from pydantic import ValidationError

from datagen.exports.data_mix import MIX_HEADER, mix_table_rows, set_line, sets_in_order
from datagen.foundation.report_html import bar_figure, cell_text, histogram_figure, html_table, page, paragraph, plot
from datagen.foundation.task import Task, label_fields, label_text, parse_json_answer

# Enough bins to show a second mode (answers piling up at max_tokens), few enough to read.
HISTOGRAM_BINS = 20
TOP_GROUPS = 20  # templates / sources listed; a run can have hundreds of templates
EXAMPLE_CHARS = 300  # of prompt and response shown per example reject
UNPARSEABLE = "(unparseable)"  # the label of an answer with no reference that fails the schema
NO_GROUP = "(none)"  # template_id of self-generated prompts
QUANTILES = {"p10": 0.1, "median": 0.5, "p90": 0.9}


def curation_report(
    answers: pl.DataFrame,
    kept: pl.DataFrame,
    rejects: pl.DataFrame,
    task: Task,
    tokenize: Callable[[str], list[int]] | None = None,
) -> dict[str, Any]:
    if kept.height + rejects.height != answers.height:
        raise ValueError(
            f"kept ({kept.height}) + rejects ({rejects.height}) != answers ({answers.height}): "
            "the report needs one filtering of exactly these answers"
        )
    text = pl.col("response").fill_null("")
    units = {"chars": text.str.len_chars()}
    if tokenize is not None:
        units["tokens"] = text.map_elements(lambda response: len(tokenize(response)), return_dtype=pl.Int64)
    return {
        "task": task.name,
        "counts": {"answers": answers.height, "kept": kept.height, "rejected": rejects.height},
        "rejected_by_filter": rejections_by_filter(rejects, answers.height),
        "reject_examples": reject_examples(rejects),
        "lengths": {
            unit: length_distribution(answers.select(n=length)["n"], kept.select(n=length)["n"])
            for unit, length in units.items()
        },
        "labels": label_distribution(answers, kept, task),
        "by_template": survival(answers, kept, "template_id"),
        "by_source": survival(answers, kept, "source"),
    }


def rejections_by_filter(rejects: pl.DataFrame, answers: int) -> list[dict[str, Any]]:
    """Rows per filter kind, in order of first appearance, with their share of the input."""
    counted = rejects.group_by(pl.col("reason").alias("filter"), maintain_order=True).len("rows")
    return counted.with_columns(share=pl.col("rows") / answers).to_dicts()


def reject_examples(rejects: pl.DataFrame) -> list[dict[str, Any]]:
    """The first reject of each filter kind, so a reader sees what the filter caught."""
    return (
        rejects.group_by(pl.col("reason").alias("filter"), maintain_order=True)
        .agg(pl.col("detail", "prompt", "response").fill_null("").str.slice(0, EXAMPLE_CHARS).first())
        .to_dicts()
    )


def length_distribution(before: pl.Series, after: pl.Series) -> dict[str, Any]:
    """Stats and histogram counts of integer lengths before and after, on shared bin edges.

    Bins are whole numbers wide so that each length falls in exactly one of them.
    """
    both = pl.concat([before, after])
    if both.is_empty():
        return {"edges": [], "before": _length_stats(before, 0, 1, 0), "after": _length_stats(after, 0, 1, 0)}
    low, span = both.min(), both.max() - both.min() + 1
    width = math.ceil(span / HISTOGRAM_BINS)
    bins = math.ceil(span / width)
    return {
        "edges": [low + i * width for i in range(bins + 1)],
        "before": _length_stats(before, low, width, bins),
        "after": _length_stats(after, low, width, bins),
    }


def _length_stats(lengths: pl.Series, low: int, width: int, bins: int) -> dict[str, Any]:
    n = pl.col("n")
    frame = lengths.to_frame("n")
    stats = frame.select(
        min=n.min(),
        **{name: n.quantile(q, interpolation="linear") for name, q in QUANTILES.items()},
        max=n.max(),
        mean=n.mean(),
    ).row(0, named=True)
    counts = [0] * bins
    for index, rows in frame.group_by((n - low) // width).len().iter_rows():
        counts[index] = rows
    return {**stats, "counts": counts}


def _label_of(reference: str | None, response: str | None, task: Task) -> dict | None:
    # The reference is the known-correct label; only self-generated prompts lack one,
    # and for those the teacher's answer is the best label there is, when it is valid.
    if reference is not None:
        return json.loads(reference)
    answer = parse_json_answer(response or "")
    if answer is None:
        return None
    try:
        return task.answer_schema.model_validate(answer).model_dump(mode="json")
    except ValidationError:
        return None


def _labels(frame: pl.DataFrame, task: Task, fields: list[str]) -> pl.DataFrame:
    labels = [_label_of(ref, resp, task) for ref, resp in zip(frame["reference"], frame["response"])]
    rows = [{name: UNPARSEABLE if label is None else label_text(label[name]) for name in fields} for label in labels]
    return pl.DataFrame(rows, schema={name: pl.String for name in fields})


def label_distribution(answers: pl.DataFrame, kept: pl.DataFrame, task: Task) -> dict[str, Any]:
    """Rows per value of every closed-set field, before and after; every declared value is
    listed, so a value the filters wiped out shows as 0 rather than vanishing."""
    fields = label_fields(task.answer_schema)
    before, after = _labels(answers, task, list(fields)), _labels(kept, task, list(fields))
    distribution = {}
    for name, declared in fields.items():
        counts = {side: dict(frame.group_by(name).len().iter_rows()) for side, frame in (("before", before), ("after", after))}
        values = [label_text(value) for value in declared]
        values += sorted((counts["before"].keys() | counts["after"].keys()) - set(values))  # UNPARSEABLE
        distribution[name] = {side: {value: counts[side].get(value, 0) for value in values} for side in counts}
    return distribution


def survival(answers: pl.DataFrame, kept: pl.DataFrame, column: str) -> list[dict[str, Any]]:
    """Rows per value of `column` before and after, largest groups first, top TOP_GROUPS."""
    group = pl.col(column).fill_null(NO_GROUP).alias("key")
    return (
        answers.group_by(group).len("before")
        .join(kept.group_by(group).len("after"), on="key", how="left")
        .with_columns(pl.col("after").fill_null(0))
        .with_columns(kept_share=pl.col("after") / pl.col("before"))
        .sort(["before", "key"], descending=[True, False])
        .head(TOP_GROUPS)
        .to_dicts()
    )


def _percent(share: float) -> str:
    return f"{share:.1%}"


def _label_rows(sides: dict[str, dict[str, int]]) -> list[list[Any]]:
    return [[value, n, sides["after"][value]] for value, n in sides["before"].items()]


def _length_rows(report: dict) -> list[list[Any]]:
    return [
        [f"{unit} {side}"] + [lengths[side][stat] for stat in ("min", *QUANTILES, "max", "mean")]
        for unit, lengths in report["lengths"].items()
        for side in ("before", "after")
    ]


def _tables(report: dict) -> dict[str, tuple[list[list[Any]], list[str]]]:
    """Every table of the report as (rows, header), shared by the markdown and HTML."""
    counts = report["counts"]
    answers = counts["answers"] or 1  # an empty run shows shares of 0%, not a ZeroDivisionError
    return {
        "summary": ([
            ["answers in", counts["answers"], ""],
            ["kept", counts["kept"], _percent(counts["kept"] / answers)],
            ["rejected", counts["rejected"], _percent(counts["rejected"] / answers)],
        ], ["", "rows", "share of input"]),
        "filters": ([[r["filter"], r["rows"], _percent(r["share"])] for r in report["rejected_by_filter"]],
                    ["filter", "rows", "share of input"]),
        "examples": ([[e["filter"], e["detail"], e["prompt"], e["response"]] for e in report["reject_examples"]],
                     ["filter", "detail", "prompt", "response"]),
        "lengths": (_length_rows(report), ["length", "min", *QUANTILES, "max", "mean"]),
        **{
            f"by_{group}": ([[r["key"], r["before"], r["after"], _percent(r["kept_share"])] for r in report[f"by_{group}"]],
                            [group, "before", "after", "kept"])
            for group in ("template", "source")
        },
    }


def _markdown_table(rows: list[list[Any]], header: list[str]) -> list[str]:
    def cell(value: Any) -> str:
        # Pipes would split the cell; markup from data must show as text.
        return cell_text(value).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    return lines + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]


def curation_markdown(report: dict) -> str:
    tables = _tables(report)
    lines = [f"## Curation of `{report['task']}` answers", ""]
    for title, key in (("", "summary"), ("rejected by filter", "filters"), ("answer length", "lengths")):
        lines += ([f"**{title}**", ""] if title else []) + _markdown_table(*tables[key]) + [""]
    for name, sides in report["labels"].items():
        lines += _markdown_table(_label_rows(sides), [name, "before", "after"]) + [""]
    lines += [f"**rows by template (top {TOP_GROUPS})**", ""] + _markdown_table(*tables["by_template"]) + [""]
    return "\n".join(lines)


def curation_html(report: dict, pair_report: dict | None = None, mix: dict | None = None) -> str:
    tables = _tables(report)
    rejected = report["rejected_by_filter"]
    rejections = (
        plot(bar_figure([r["filter"] for r in rejected], {"rejected": [r["rows"] for r in rejected]},
                        "answers rejected per filter"), "answers rejected per filter")
        + html_table(*(tables["filters"]))
        + "<h3>First reject of each filter</h3>" + html_table(*(tables["examples"]))
        if rejected else paragraph("No answer was rejected.")
    )
    lengths = "".join(
        plot(histogram_figure(d["edges"], {"all answers": d["before"]["counts"], "kept": d["after"]["counts"]},
                              f"answer length in {unit}", unit), f"answer length in {unit}")
        for unit, d in report["lengths"].items() if d["edges"]
    ) + html_table(*(tables["lengths"]))
    labels = "".join(
        plot(bar_figure(list(sides["before"]), {side: list(counts.values()) for side, counts in sides.items()},
                        name), f"{name} before and after") + html_table(_label_rows(sides), [name, "before", "after"])
        for name, sides in report["labels"].items()
    ) or paragraph("The answer schema has no closed-set field to count.")
    sections = [
        ("Summary", html_table(*(tables["summary"]))),
        ("Rejections by filter", rejections),
        ("Answer length", lengths),
        ("Label balance", labels),
        ("Template survival", html_table(*(tables["by_template"])) + html_table(*(tables["by_source"]))),
    ]
    if pair_report is not None:
        sections.append(("Preference pairs", _pair_section(pair_report)))
    if mix is not None:
        sections.append(("Data mix", _mix_section(mix)))
    return page(f"Curation report: {report['task']}", sections)


def _pair_section(pairs: dict) -> str:
    """Renders whatever the pair builder's report holds; every key is optional."""
    parts = []
    if "pairs" in pairs:
        parts.append(html_table([["pairs", pairs["pairs"]]], ["", "rows"]))
    if pairs.get("chosen_longer_fraction") is not None:
        limit = pairs.get("max_chosen_longer_fraction")
        over = limit is not None and pairs["chosen_longer_fraction"] > limit
        parts.append(paragraph(
            f"chosen is the longer answer in {pairs['chosen_longer_fraction']:.1%} of pairs"
            + ("" if limit is None else f" (limit {limit:.1%})") + (": over the limit, a length bias" if over else ""),
            "warn" if over else None,
        ))
    if pairs.get("dropped"):
        parts.append(html_table(sorted(pairs["dropped"].items()), ["dropped because", "pairs"]))
    if pairs.get("skipped"):
        parts.append(html_table(sorted(pairs["skipped"].items()), ["axis skipped because", "prompts"]))
    for key, title in (("by_strategy", "pairs per strategy"), ("by_axis", "pairs per axis")):
        if pairs.get(key):
            parts.append(plot(bar_figure(list(pairs[key]), {"pairs": list(pairs[key].values())}, title), title))
    if pairs.get("margins"):
        counts, edges = numpy.histogram(pairs["margins"], bins=HISTOGRAM_BINS)
        parts.append(plot(histogram_figure(edges, {"pairs": counts}, "margin between chosen and rejected", "margin"),
                          "margin histogram"))
    if pairs.get("label_balance"):
        rows = [[name, value, n] for name, counts in pairs["label_balance"].items() for value, n in counts.items()]
        parts.append(html_table(rows, ["field", "value", "pairs"]))
    return "".join(parts) or paragraph("The pair report is empty.")


def _mix_section(mix: dict) -> str:
    """The data mix's report (`datagen/exports/data_mix.py`): per set, asked against achieved."""
    parts = []
    for name, mixed in sets_in_order(mix):
        parts.append(paragraph(set_line(name, mixed)))
        if mixed["mixed"]:
            parts.append(html_table(mix_table_rows(mixed), MIX_HEADER))
    return "".join(parts) + paragraph(f"Replay: {mix['replay']}.")
