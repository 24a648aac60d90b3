"""Rows per labelling rule: does the build exercise every rule the task's labels follow?

Input: a task with labelling rules (`Task.labelling_rules`, `Task.rule_names`) and rows
(`Example`s with `prompt`, `reference` as canonical JSON, `template_id`). Output:
`{"rows_by_rule": {rule: rows}, "without_label": rows, "minimum": m, "below_minimum": [rule, ...]}`,
every rule listed, zero included, so a rule no row teaches shows as 0, not as absent.
A row without a known label (a self-generated input) exercises no rule it can be shown to.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from datagen.foundation.records import Example
from datagen.foundation.task import Task


def rule_coverage(task: Task, rows: Iterable[Example], minimum: int) -> dict:
    counts: Counter[str] = Counter()
    without_label = 0
    for row in rows:
        if row.reference is None:
            without_label += 1
            continue
        counts.update(task.rule_names(row.prompt, json.loads(row.reference), row.template_id or ""))
    by_rule = {rule.name: counts[rule.name] for rule in task.labelling_rules}
    return {"rows_by_rule": by_rule, "without_label": without_label, "minimum": minimum,
            "below_minimum": [name for name, rows in by_rule.items() if rows < minimum]}
