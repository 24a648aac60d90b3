"""A locked seed set's rows, made into the build's records: few-shot turns, seed inputs, SFT anchors.

A seed set is a small human-labelled set, locked and signed like an eval set but kept for
building (`gold/seed_sets.py`), proven disjoint from the task's eval sets before the
build reads it. Each of its rows becomes one `Example` with the human answer as both
`reference` and `response`, `source` = `gold-seed:<set>/v<N>@<signed digest>` and
`parent_ids` = (the gold row's id,), so every row made from it leads back to the
approved row. The build uses them three ways, each chosen in the recipe's `seed:`:

- `few_shot`: the teacher's few-shot turns are `few_shot` seed rows instead of the
  task's own (`Task.few_shot`): real, reviewed inputs rather than the task author's.
  The rows are picked to show as many label values as they can (`few_shot_rows`);
- `self_instruct_seeds`: self-generation is shown seed rows as its examples (Self-Instruct,
  Wang et al. 2023, seeds with 175 human-written tasks), so the new inputs it writes carry
  the seed rows' ids in `parent_ids`;
- `sft_anchors`: the seed rows join the SFT rows as they are, human answers the student
  is trained on next to the teacher's (`datagen/exports/sft_examples.py`).

Input: the seed rows (gold id, prompt, approved answer) and where they come from. Output:
Examples as above; a Task whose few-shot turns are seed rows.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example
from datagen.foundation.task import Task, label_fields, label_text


class SeedSetConfig(BaseModel):
    """The recipe's `seed:` section: which locked seed set, and what the build takes from it."""

    model_config = ConfigDict(extra="forbid")

    set: str = Field(description="a locked seed set under contamination_gate.gold_root: `name` for its newest "
                     "version or `name/v<N>`; it must be of the recipe's task and created with --purpose seed")
    few_shot: int = Field(3, ge=0, description="seed rows shown to the teachers as few-shot turns instead of the "
                          "task's own; 0 keeps the task's. 3 is the triage task's own count")
    self_instruct_seeds: bool = Field(True, description="self-generation (when the recipe runs it) is shown seed "
                                      "rows instead of the generated prompts")
    sft_anchors: bool = Field(True, description="every seed row joins the SFT rows with its human answer")


@dataclass(frozen=True)
class SeedRow:
    """One approved row of a locked seed set, as the gold root read and verified it."""

    id: str  # the gold row's id: sha256 of prompt and answer
    prompt: str
    answer: dict


SOURCE_PREFIX = "gold-seed:"  # how every seed row's `source` begins


def seed_source(version: str, digest: str) -> str:
    """The `source` of every row made from seed set version `version` (`<set>/v<N>`)."""
    return f"{SOURCE_PREFIX}{version}@{digest}"


def seed_examples(rows: list[SeedRow], source: str, task: Task, run_id: str) -> list[Example]:
    """One Example per seed row, answered with its approved answer, in the set's order."""
    return [Example(task=task.name, prompt=row.prompt, response=task.render_answer(row.answer),
                    reference=canonical_json(row.answer), source=source, parent_ids=(row.id,), run_id=run_id)
            for row in rows]


def few_shot_rows(seeds: list[Example], count: int, task: Task) -> list[Example]:
    """`count` seed rows that together show the most label values (the task's closed-set
    fields: category, priority, ...), the earlier row on a tie; in the set's order."""
    fields = label_fields(task.answer_schema)
    values = [{(field, label_text(json.loads(seed.reference)[field])) for field in fields} for seed in seeds]
    shown: set[tuple[str, str]] = set()
    chosen: list[int] = []
    for _ in range(min(count, len(seeds))):
        best = max((i for i in range(len(seeds)) if i not in chosen), key=lambda i: (len(values[i] - shown), -i))
        chosen.append(best)
        shown |= values[best]
    return [seeds[index] for index in sorted(chosen)]


def with_seed_few_shot(task: Task, rows: list[Example]) -> Task:
    """`task` with `rows` (seed Examples) as the few-shot turns teachers are shown."""
    if not rows:
        raise ValueError("no seed rows to show as few-shot turns")
    return dataclasses.replace(task, few_shot=tuple((row.prompt, json.loads(row.reference)) for row in rows))
