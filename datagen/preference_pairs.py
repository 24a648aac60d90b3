"""Verifier-ranked preference pairs: a verified answer beats a plausible wrong one.

For each prompt, `chosen` is a teacher answer that passed every filter, including
agreement with the known label; `rejected` is another sample for the same prompt that
is valid JSON in the right schema but wrong on named fields. Both are plausible outputs
of the same teacher, so the pair differs on correctness, not on format or length. A
prompt with no verified answer or no plausible wrong one yields no pair: an unparseable
rejected answer would teach "emit JSON", which the SFT stage already teaches.

Input: verified answers; rejects as (answer, reason). Output: PreferencePairs with
`strategy="verifier_ranked"`, `evidence` naming the wrong fields, and
`parent_ids=(chosen id, rejected id)`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from datagen.answer_filters import reason_kind
from datagen.records import Example, PreferencePair

SOURCE = "datagen.preference_pairs.verifier_ranked_pairs@1"


class PreferencePairConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_pairs_per_prompt: int = Field(
        1, ge=1, description="more pairs per prompt over-weight the prompts a teacher "
        "finds hard; one keeps the prompt distribution of the SFT set",
    )


def verifier_ranked_pairs(
    verified: list[Example],
    rejects: list[tuple[Example, str]],
    config: PreferencePairConfig,
    run_id: str,
) -> list[PreferencePair]:
    wrong_by_prompt: dict[str, list[tuple[Example, str]]] = {}
    for answer, reason in rejects:
        if reason_kind(reason) == "wrong_fields":
            wrong_by_prompt.setdefault(answer.parent_ids[0], []).append((answer, reason))
    chosen_by_prompt: dict[str, Example] = {}
    for answer in verified:
        chosen_by_prompt.setdefault(answer.parent_ids[0], answer)

    pairs = []
    for prompt_id, chosen in chosen_by_prompt.items():
        for rejected, reason in wrong_by_prompt.get(prompt_id, [])[: config.max_pairs_per_prompt]:
            pairs.append(
                PreferencePair(
                    task=chosen.task,
                    prompt=chosen.prompt,
                    chosen=chosen.response,
                    rejected=rejected.response,
                    strategy="verifier_ranked",
                    evidence="rejected is " + reason,
                    source=SOURCE,
                    run_id=run_id,
                    chosen_teacher=chosen.teacher,
                    rejected_teacher=rejected.teacher,
                    parent_ids=(chosen.id, rejected.id),
                )
            )
    return pairs
