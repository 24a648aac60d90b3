"""A text answer's label: a reference reply and the checks a labeler writes, scored by code.

A free-text task (`Task(answer_format="text")`) cannot be scored by comparing fields: two
good replies share few words. Its gold label is a reference reply, which shows what good
looks like and is what SFT learns from, and a list of checks, which is what every reply is
scored on. Each check is small, typed and decided by code alone, the same way on every run:

- `must_mention`: the reply contains the terms, `all` of them or `any` one;
- `must_not_say`: the reply contains none of the terms;
- `matches_pattern`: `re.search` finds the pattern in the reply (write `(?i)` for case
  not to count); the pattern is refused when written if it may backtrack without end
  (`safe_patterns.py`);
- `max_words`: the reply has at most `limit` words (split on whitespace);
- `names_field`: the reply names a field of the input, given with the value the input
  holds (the order id `A-204518`, the customer's first name).

Terms and values match case-insensitively as whole words, with runs of whitespace and
typographic apostrophes treated alike: "refund" matches "Refund," but not "refunded" (list
both when both will do), "A-204518" matches "order A-204518." but not "A-2045180".

A reference must pass its own checks (a label whose reference fails them contradicts
itself), which is checked whenever a label is validated: when a labeler submits it, when
the generator makes one, when a locked row is read.

Input of the scoring functions: a reply text and a reference (`TextReference` or its
JSON). Output: one `CheckResult` per check, in the label's order; `failed_checks` is the
task's `compare` (the kinds of the checks a reply fails) and `differing_checks` its
`compare_labels` (whether two labels hold the same checks).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from datagen.foundation.safe_patterns import check_pattern

MAX_TERMS = 20
MAX_TERM_CHARS = 100
MAX_CHECKS = 20
Term = Annotated[str, Field(min_length=1, max_length=MAX_TERM_CHARS)]


def _terms(terms: list[str]) -> list[str]:
    cleaned = [" ".join(term.split()) for term in terms]
    if not all(cleaned):
        raise ValueError("a term is blank")
    return cleaned


class MustMention(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["must_mention"] = "must_mention"
    terms: list[Term] = Field(min_length=1, max_length=MAX_TERMS)
    mode: Literal["all", "any"] = Field("all", description="all: every term; any: at least one")

    _blank = field_validator("terms")(_terms)


class MustNotSay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["must_not_say"] = "must_not_say"
    terms: list[Term] = Field(min_length=1, max_length=MAX_TERMS)

    _blank = field_validator("terms")(_terms)


class MatchesPattern(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["matches_pattern"] = "matches_pattern"
    pattern: str = Field(min_length=1, description="a Python regular expression the reply must contain")

    @field_validator("pattern")
    @classmethod
    def _safe(cls, pattern: str) -> str:
        return check_pattern(pattern)


class MaxWords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["max_words"] = "max_words"
    limit: int = Field(ge=1, le=2000)


class NamesField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["names_field"] = "names_field"
    field: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="which field of the input, e.g. order_id")
    value: Term = Field(description="the field's value as the input gives it, e.g. A-204518")

    @field_validator("value")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _terms([value])[0]


Check = Annotated[MustMention | MustNotSay | MatchesPattern | MaxWords | NamesField, Field(discriminator="kind")]
CHECK_KINDS: tuple[str, ...] = ("must_mention", "must_not_say", "matches_pattern", "max_words", "names_field")


@dataclass(frozen=True)
class CheckResult:
    kind: str
    passed: bool
    detail: str  # what was looked for and, when it failed, what was found instead


def _fold(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").replace("\u2018", "'").split()).casefold()


@functools.lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern:
    words = [re.escape(word) for word in _fold(term).split(" ")]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)")


def mentions(reply: str, term: str) -> bool:
    """Whether `term` occurs in `reply` as whole words, ignoring case and spacing."""
    return _term_pattern(term).search(_fold(reply)) is not None


def word_count(reply: str) -> int:
    return len(reply.split())


def check_result(check: MustMention | MustNotSay | MatchesPattern | MaxWords | NamesField, reply: str) -> CheckResult:
    if isinstance(check, MustMention):
        missing = [term for term in check.terms if not mentions(reply, term)]
        passed = not missing if check.mode == "all" else len(missing) < len(check.terms)
        wanted = f"{check.mode} of {', '.join(map(repr, check.terms))}"
        detail = wanted if passed else f"{wanted}: missing {', '.join(map(repr, missing))}"
        return CheckResult(check.kind, passed, detail)
    if isinstance(check, MustNotSay):
        said = [term for term in check.terms if mentions(reply, term)]
        return CheckResult(check.kind, not said, f"says {', '.join(map(repr, said))}" if said
                           else f"none of {', '.join(map(repr, check.terms))}")
    if isinstance(check, MatchesPattern):
        passed = re.search(check.pattern, reply) is not None
        return CheckResult(check.kind, passed, f"pattern {check.pattern!r}" + ("" if passed else " not found"))
    if isinstance(check, MaxWords):
        words = word_count(reply)
        return CheckResult(check.kind, words <= check.limit, f"{words} words, at most {check.limit}")
    passed = mentions(reply, check.value)
    return CheckResult(check.kind, passed, f"{check.field} {check.value!r}" + ("" if passed else " not named"))


class TextReference(BaseModel):
    """The gold label of a text task, and the label its generator makes: what good looks
    like (`reply`) and what every reply is scored on (`checks`). `x-form` tells the
    labelers' form how to edit each field (`gold/gold_sets.py`)."""

    model_config = ConfigDict(extra="forbid")

    reply: str = Field(min_length=1, description="a reply in the house voice that passes every check",
                       json_schema_extra={"x-form": "longtext"})
    checks: list[Check] = Field(min_length=1, max_length=MAX_CHECKS,
                                description="what code checks in every reply to this input",
                                json_schema_extra={"x-form": "checks"})

    @field_validator("reply")
    @classmethod
    def _not_blank(cls, reply: str) -> str:
        if not reply.strip():
            raise ValueError("the reply is blank")
        return reply

    @field_validator("checks")
    @classmethod
    def _reference_passes(cls, checks: list, info: ValidationInfo) -> list:
        reply = info.data.get("reply")
        if reply is None:
            return checks  # the reply's own error is reported
        failed = [f"check {number} ({result.kind}): {result.detail}"
                  for number, result in enumerate((check_result(check, reply) for check in checks), 1)
                  if not result.passed]
        if failed:
            raise ValueError("the reference reply fails its own checks: " + "; ".join(failed))
        return checks


def reference_of(label: dict | TextReference) -> TextReference:
    return label if isinstance(label, TextReference) else TextReference.model_validate(label)


def check_results(reply: str, reference: dict | TextReference) -> list[CheckResult]:
    """Every check of `reference` on `reply`, in the label's order."""
    return [check_result(check, reply) for check in reference_of(reference).checks]


def failed_checks(answer: dict, reference: dict) -> list[str]:
    """A text task's `compare`: the kinds of the checks `answer["reply"]` fails, each once,
    in the label's order (the filters' `wrong_fields`, the pairs' margin)."""
    failed = [result.kind for result in check_results(answer["reply"], reference) if not result.passed]
    return list(dict.fromkeys(failed))


def _canonical(check) -> tuple:
    if isinstance(check, (MustMention, MustNotSay)):
        mode = check.mode if isinstance(check, MustMention) and len(check.terms) > 1 else "all"
        return check.kind, mode, tuple(sorted({_fold(term) for term in check.terms}))
    if isinstance(check, NamesField):
        return check.kind, check.field, _fold(check.value)
    if isinstance(check, MaxWords):
        return check.kind, check.limit
    return check.kind, check.pattern


def canonical_checks(label: dict | TextReference) -> list[tuple]:
    """A label's checks in a form where order, case and spacing of terms do not count."""
    return sorted(_canonical(check) for check in reference_of(label).checks)


def differing_checks(label: dict, other: dict) -> list[str]:
    """A text task's `compare_labels`: `["checks"]` when two labels hold different checks,
    else `[]`. The replies are not compared: two labelers write two good replies, and the
    checks are what scores a model."""
    return [] if canonical_checks(label) == canonical_checks(other) else ["checks"]


def input_errors(prompt: str, label: dict | TextReference) -> list[str]:
    """What a label says of its input that the input does not hold: a `names_field` value
    the input never mentions (a mistyped order id would fail every right reply)."""
    return [f"check {number} (names_field): {check.field} {check.value!r} is not in the input"
            for number, check in enumerate(reference_of(label).checks, 1)
            if isinstance(check, NamesField) and not mentions(prompt, check.value)]
