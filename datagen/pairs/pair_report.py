"""What a pair set teaches, before anyone trains on it.

Counts by strategy and by axis, the pairs dropped and why, the axes skipped and why, the share of pairs whose
chosen side is longer (near 1.0, DPO learns "longer wins"; Singhal et al. 2023), the
margin between the sides (wrong fields, or a judge's score gap), and the label balance of
the chosen answers: the values of every enum and boolean field of the answer schema, so
a set that prefers one category over the others shows it.

Input: kept pairs, dropped (pair, reason), skipped axes (reason -> count). Output: a dict
(the shape the curation page renders) and its Markdown.
"""

from __future__ import annotations

from collections import Counter

from datagen.foundation.records import PreferencePair
from datagen.foundation.task import Task, label_fields, label_text, parse_json_answer


def pair_report(
    pairs: list[PreferencePair], dropped: list[tuple[PreferencePair, str]], task: Task,
    max_chosen_longer_fraction: float | None, skipped: dict[str, int],
) -> dict:
    fields = label_fields(task.answer_schema)
    balance: dict[str, Counter] = {name: Counter() for name in fields}
    for pair in pairs:
        chosen = parse_json_answer(pair.chosen) or {}
        for name in fields:
            balance[name][label_text(chosen[name]) if name in chosen else "(missing)"] += 1
    longer = sum(len(p.chosen) > len(p.rejected) for p in pairs)
    return {
        "pairs": len(pairs),
        "dropped": dict(Counter(reason.split(":", 1)[0] for _, reason in dropped)),
        "skipped": dict(sorted(skipped.items())),
        "chosen_longer": longer,
        "chosen_longer_fraction": round(longer / len(pairs), 4) if pairs else 0.0,
        "max_chosen_longer_fraction": max_chosen_longer_fraction,
        "by_strategy": dict(Counter(p.strategy for p in pairs)),
        "by_axis": dict(Counter(p.axis or "(fields)" for p in pairs)),
        "margins": [p.margin for p in pairs if p.margin is not None],
        "label_balance": {name: dict(counts.most_common()) for name, counts in balance.items()},
    }


def pair_report_markdown(report: dict) -> str:
    bound = report["max_chosen_longer_fraction"]
    lines = [
        f"**preference pairs**: {report['pairs']} kept; chosen side longer in "
        f"{report['chosen_longer']} ({report['chosen_longer_fraction']:.0%}"
        + (f", bound {bound:.0%})" if bound is not None else ", unbounded)"),
        "",
        "| | pairs |",
        "|---|---:|",
    ]
    lines += [f"| strategy {name} | {n} |" for name, n in sorted(report["by_strategy"].items())]
    lines += [f"| axis {name} | {n} |" for name, n in sorted(report["by_axis"].items())]
    lines += [f"| dropped: {name} | {n} |" for name, n in sorted(report["dropped"].items())]
    # A run made before axes were counted has no "skipped" in its manifest.
    lines += [f"| skipped: {reason} | {n} |" for reason, n in report.get("skipped", {}).items()]
    margins = Counter(report["margins"])
    lines += [f"| margin {m:g} | {n} |" for m, n in sorted(margins.items())]
    for name, counts in report["label_balance"].items():
        lines.append(f"| chosen {name} | " + ", ".join(f"{v} {n}" for v, n in counts.items()) + " |")
    return "\n".join(lines)
