"""The regression eval: does a candidate still do what the base model could?

Input: the verified locked regression set (`gold/regression_schema.py` labels) and the
candidate's outputs in row order. Output: per-row records (gold row id, prompt, output,
skill, match rule, right) and the summary: accuracy with a bootstrap 95% interval, and
accuracy per skill, so a loss can be traced to what was forgotten.

A regression row is asked as a bare user turn, without the target task's system prompt:
forgetting shows when the model is used for something else.
"""

from __future__ import annotations

from collections import defaultdict

from evals.regression_checks import matches
from evals.target_scores import rate
from gold.gold_root import LockedGoldSet


def regression_chats(locked: LockedGoldSet) -> list[list[dict]]:
    return [[{"role": "user", "content": row["prompt"]}] for row in locked.rows]


def score_regression_outputs(locked: LockedGoldSet, outputs: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    if len(outputs) != len(locked.rows):
        raise ValueError(f"{len(outputs)} outputs for the {len(locked.rows)} rows of {locked.name}")
    rows = []
    by_skill: dict[str, list[bool]] = defaultdict(list)
    for gold, output in zip(locked.rows, outputs):
        right = matches(output, gold["reference"])
        by_skill[gold["reference"]["skill"]].append(right)
        rows.append({"gold_id": gold["id"], "prompt": gold["prompt"], "output": output,
                     "skill": gold["reference"]["skill"], "match": gold["reference"]["match"],
                     "answer": gold["reference"]["answer"], "right": right})
    summary = {
        "rows": len(rows),
        "accuracy": rate([row["right"] for row in rows], seed),
        "by_skill": {skill: rate(flags, seed) for skill, flags in sorted(by_skill.items())},
        "gold_set": locked.ref(),
    }
    return rows, summary
