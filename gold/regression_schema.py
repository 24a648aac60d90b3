"""The label of a regression-set row: a general task with one answer that code can check.

The regression set catches forgetting: prompts a base model can already answer (simple
arithmetic, capitals, following a format instruction, short rewriting), so a fine-tune
that makes them worse has traded general skill for the target task. A label is the
answer and how a model's output is matched against it:

- `exact`: equal after stripping, dropping one trailing `.` or `!`, collapsing
  whitespace and casefolding;
- `number`: the first number in the output equals the answer;
- `final_number`: the number the output ends its working with equals the answer (the
  first number after the last `=` that has one, else the last number), for arithmetic,
  where models restate the question before the result;
- `contains`: the answer appears in the output (casefolded), for facts a correct
  answer may wrap in a sentence;
- `regex`: the stripped output fully matches the answer as a Python regex, for format
  instructions.

The matching itself is eval code (`evals/`); this file is what labelers fill in.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gold.gold_sets import LabelSchema


class RegressionReference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, description="the correct answer, or a regex for match=regex")
    match: Literal["exact", "number", "final_number", "contains", "regex"]
    skill: Literal["arithmetic", "capitals", "facts", "format", "rewrite"]

    @model_validator(mode="after")
    def _answer_fits_match(self) -> RegressionReference:
        if self.match == "regex":
            try:
                re.compile(self.answer)
            except re.error as error:
                raise ValueError(f"answer is not a valid regex: {error}") from None
        if self.match in ("number", "final_number"):
            try:
                float(self.answer)
            except ValueError:
                raise ValueError(f"answer {self.answer!r} is not a number, as match={self.match} needs") from None
        return self


def compare_references(answer: dict, reference: dict) -> list[str]:
    """Fields on which two labels differ: all three must match exactly."""
    return [name for name in ("answer", "match", "skill") if answer.get(name) != reference.get(name)]


GENERAL_REGRESSION = LabelSchema(
    name="general_regression", answer_schema=RegressionReference, compare=compare_references
)
