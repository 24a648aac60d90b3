"""Choose the SFT rows: one verified teacher answer per prompt.

Several samples of one prompt may all pass verification; keeping them all would weight
the easy prompts by how often the teacher got them right. The first verified sample (in
sample-index order) is kept.

Input: verified answers. Output: at most one per prompt (`parent_ids[0]`), in input order.
"""

from __future__ import annotations

from datagen.records import Example


def one_answer_per_prompt(verified: list[Example]) -> list[Example]:
    ordered = sorted(verified, key=lambda a: (a.parent_ids[0], a.teacher.sample_index if a.teacher else 0))
    first: dict[str, Example] = {}
    for answer in ordered:
        first.setdefault(answer.parent_ids[0], answer)
    chosen_ids = {a.id for a in first.values()}
    return [a for a in verified if a.id in chosen_ids]
