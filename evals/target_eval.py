"""The target eval: one candidate's outputs on a locked gold set, scored by code.

Input: a verified `LockedGoldSet` of the task (rows with `prompt` and `reference`) and the
candidate's outputs, one per row in row order. A conversation's gold row also holds
`context`, its earlier turns (`[{role, content}, ...]`, user first, assistant last): the
candidate answers its last turn with that history in the chat (`gold_context`,
`eval_candidates.target_chats`), and that answer is what is scored. Output: per-row records (gold row id,
prompt, output, its length, parsed, schema-valid, the fields it got wrong, exact) kept
for inspection, and the summary of `evals.target_scores.summarize` (rates with bootstrap
95% intervals, per-field accuracy, macro-F1, each field's own rule).

A text task's replies are scored by the checks of each gold row instead
(`evals.check_scores`): every check's verdict per row, the row's share of checks passed,
and each check kind's pass rate with its Wilson interval.

No LLM ever judges a gold row: the gold set's whole value is that its scores are code
applied to human labels.
"""

from __future__ import annotations

from typing import Any

from datagen.foundation.records import Turn, check_context
from evals.check_scores import score_reply, summarize_checks
from evals.target_scores import score_row, summarize
from gold.gold_root import LockedGoldSet


def gold_context(row: dict) -> tuple[Turn, ...]:
    """A gold row's earlier turns; none for a single-turn row."""
    context = tuple(Turn(turn["role"], turn["content"]) for turn in row.get("context", ()))
    check_context(context)
    return context


def check_gold_task(locked: LockedGoldSet, task_name: str) -> None:
    if locked.manifest["task"] != task_name:
        raise ValueError(f"gold set {locked.name} is of task {locked.manifest['task']!r}, not {task_name!r}")


def score_target_outputs(task, locked: LockedGoldSet, outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    check_gold_task(locked, task.name)
    if len(outputs) != len(locked.rows):
        raise ValueError(f"{len(outputs)} outputs for the {len(locked.rows)} rows of {locked.name}")
    references = [row["reference"] for row in locked.rows]
    if task.answer_format == "text":
        rows = [{"gold_id": gold["id"], "prompt": gold["prompt"], "output": output, "output_chars": len(output),
                 **score_reply(output, gold["reference"]), "reference": gold["reference"],
                 **({"context": gold["context"]} if gold.get("context") else {})}
                for gold, output in zip(locked.rows, outputs)]
        return rows, summarize_checks(rows, seed) | {"gold_set": locked.ref()}
    scores = [score_row(task, output, reference) for output, reference in zip(outputs, references)]
    rows: list[dict[str, Any]] = []
    for gold, output, score in zip(locked.rows, outputs, scores):
        rows.append({
            "gold_id": gold["id"], "prompt": gold["prompt"], "output": output, "output_chars": len(output),
            "parsed": score.parsed, "schema_valid": score.schema_valid, "exact": score.exact,
            "wrong_fields": [name for name, right in score.fields_right.items() if not right],
            "reference": gold["reference"],
            **({"context": gold["context"]} if gold.get("context") else {}),
        })
    summary = summarize(task, scores, references, seed)
    summary["gold_set"] = locked.ref()
    return rows, summary
