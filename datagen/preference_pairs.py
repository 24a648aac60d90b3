"""Preference pairs whose two answers are both plausible and differ where it matters.

Two strategies, tried in the recipe's order for each prompt until it has
`max_pairs_per_prompt` pairs:

- `verifier_ranked`: `chosen` is a teacher answer that passed every filter, including
  agreement with the known label; `rejected` is another sample for the same prompt that
  is valid JSON in the right schema but wrong on named fields.
- `minimal_correction`: `rejected` is such a plausible wrong sample, and `chosen` is the
  same answer with only the wrong fields set to the known label, both rendered the same
  way. The two sides then differ on exactly the fields that were wrong and on nothing
  else, not on the summary's wording, not on length or layout; this is how pairs are made
  when the teacher rarely gets a whole answer right.

A prompt with no plausible wrong sample yields no pair: an unparseable rejected answer
would teach "emit JSON", which SFT already teaches, and a pair whose sides are equal
teaches nothing.

Input: verified answers; rejects as (answer, reason). Output: PreferencePairs with
`strategy`, `evidence` naming the wrong fields, and `parent_ids=(chosen id, rejected id)`
(for `minimal_correction`, the rejected answer's id twice: chosen is derived from it).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datagen.answer_filters import reason_kind, wrong_fields_of
from datagen.records import Example, PreferencePair
from datagen.task import Task, parse_json_answer

SOURCE = "datagen.preference_pairs@2"

Strategy = Literal["verifier_ranked", "minimal_correction"]


class PreferencePairConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategies: list[Strategy] = Field(
        ["verifier_ranked", "minimal_correction"], min_length=1,
        description="tried in this order for each prompt",
    )
    max_pairs_per_prompt: int = Field(
        1, ge=1, description="more pairs per prompt over-weight the prompts a teacher "
        "finds hard; one keeps the prompt distribution of the SFT set",
    )


def _pair(chosen: Example, rejected: Example, chosen_text: str, rejected_text: str,
          strategy: str, evidence: str) -> PreferencePair:
    return PreferencePair(
        task=rejected.task,
        prompt=rejected.prompt,
        chosen=chosen_text,
        rejected=rejected_text,
        strategy=strategy,
        evidence=evidence,
        source=SOURCE,
        run_id=rejected.run_id,
        chosen_teacher=chosen.teacher,
        rejected_teacher=rejected.teacher,
        parent_ids=(chosen.id, rejected.id),
    )


def build_pairs(
    verified: list[Example],
    rejects: list[tuple[Example, str]],
    task: Task,
    config: PreferencePairConfig,
) -> list[PreferencePair]:
    wrong_by_prompt: dict[str, list[tuple[Example, str]]] = {}
    for answer, reason in rejects:
        if reason_kind(reason) == "wrong_fields":
            wrong_by_prompt.setdefault(answer.parent_ids[0], []).append((answer, reason))
    verified_by_prompt: dict[str, Example] = {}
    for answer in verified:
        verified_by_prompt.setdefault(answer.parent_ids[0], answer)

    pairs = []
    for prompt_id, wrong_answers in wrong_by_prompt.items():
        made: list[PreferencePair] = []
        for strategy in config.strategies:
            for rejected, reason in wrong_answers:
                if len(made) == config.max_pairs_per_prompt:
                    break
                if any(rejected.id in p.parent_ids for p in made):
                    continue
                fields = wrong_fields_of(reason)
                if strategy == "verifier_ranked" and prompt_id in verified_by_prompt:
                    chosen = verified_by_prompt[prompt_id]
                    made.append(_pair(chosen, rejected, chosen.response, rejected.response,
                                      strategy, "rejected is " + reason))
                elif strategy == "minimal_correction":
                    said = parse_json_answer(rejected.response)
                    truth = json.loads(rejected.reference)
                    corrected = dict(said, **{field: truth[field] for field in fields})
                    evidence = "chosen corrects " + ", ".join(
                        f"{field}: {said[field]!r} -> {truth[field]!r}" for field in fields
                    )
                    made.append(_pair(rejected, rejected, task.render_answer(corrected),
                                      task.render_answer(said), strategy, evidence))
        pairs += made
    return pairs
