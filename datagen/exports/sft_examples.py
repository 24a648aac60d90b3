"""Choose the SFT rows: one answer per prompt, a verified teacher answer when there is one.

Several samples of one prompt may all pass verification; keeping them all would weight
the easy prompts by how often the teacher got them right, so the first verified sample
(in sample-index order) is kept. Prompts the teacher never got right can be filled with
the generator's own reference answer (`fill_with_references`): the rule-based generator
knows the right label by construction, and a small teacher such as the embedded 135M
model gets only a few tickets fully right. Every row says which it is in `source`.

Answers to prompts with no known label (self-generated ones) passed only the format
filters; they are used when the recipe says so (`use_unlabelled`).

A seed set's rows (`datagen/generation/seed_examples.py`), when the recipe makes them
anchors, join as they are: human answers, with their `gold-seed:` source and gold row id.

Input: verified answers, the prompts they answer, and anchors. Output: at most one row per
prompt, teacher rows first, then reference rows, each in prompt order, then the anchors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.records import Example
from datagen.foundation.task import Task

REFERENCE_SOURCE = "datagen.sft_examples.reference_answer@1"


class SftSelectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fill_with_references: bool = Field(
        True, description="answer prompts with no verified teacher answer from the generator's label"
    )
    use_unlabelled: bool = Field(
        False, description="also take answers to prompts with no known label (self-generated "
        "ones), which only the format filters checked: right for a strong teacher, wrong for "
        "one that is often wrong, whose guesses would become the student's labels",
    )


def one_answer_per_prompt(verified: list[Example]) -> list[Example]:
    ordered = sorted(verified, key=lambda a: (a.parent_ids[0], a.teacher.sample_index if a.teacher else 0))
    first: dict[str, Example] = {}
    for answer in ordered:
        first.setdefault(answer.parent_ids[0], answer)
    chosen_ids = {a.id for a in first.values()}
    return [a for a in verified if a.id in chosen_ids]


def reference_answer(prompt: Example, task: Task) -> Example:
    return Example(
        task=prompt.task,
        prompt=prompt.prompt,
        response=task.render_answer(json.loads(prompt.reference)),
        reference=prompt.reference,
        source=REFERENCE_SOURCE,
        template_id=prompt.template_id,
        seed=prompt.seed,
        parent_ids=(prompt.id,),
        run_id=prompt.run_id,
        context=prompt.context,
    )


def sft_rows(
    verified: list[Example], prompts: list[Example], task: Task, config: SftSelectionConfig,
    anchors: Sequence[Example] = (),
) -> list[Example]:
    if not config.use_unlabelled:
        # Imported answers (no teacher) are the user's own and stay.
        verified = [a for a in verified if a.reference is not None or a.teacher is None]
    rows = one_answer_per_prompt(verified)
    if config.fill_with_references:
        answered = {row.parent_ids[0] for row in rows}
        rows += [
            reference_answer(p, task) for p in prompts if p.id not in answered and p.reference is not None
        ]
    return rows + list(anchors)
