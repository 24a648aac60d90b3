"""Turn a task's rule-based generator output into Example records.

Input: the task's `generate(count, seed)`. Output: Examples with `prompt`, `reference`
(the known label as canonical JSON), `template_id` and `seed`, and no response yet.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example
from datagen.foundation.task import Task


class LabelledPromptConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(48, ge=1, description="prompts to generate before dedupe")
    seed: int = Field(0, description="same count and seed give the same prompts")


def labelled_prompts(task: Task, config: LabelledPromptConfig, run_id: str) -> list[Example]:
    source = f"{task.generate.__module__}.{task.generate.__name__}@{task.name}-v{task.version}"
    return [
        Example(
            task=task.name,
            prompt=generated.text,
            reference=canonical_json(generated.label),
            source=source,
            template_id=generated.template_id,
            seed=config.seed,
            run_id=run_id,
        )
        for generated in task.generate(config.count, config.seed)
    ]
