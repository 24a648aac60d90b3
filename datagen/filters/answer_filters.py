"""Filters for teacher answers, each returning `(keep, reason)`.

Nothing is dropped silently: `filter_answers` returns the rejects with their reason,
and the flow writes them to the stage's `rejects` table and counts every reason in the
run summary (datatrove's `exclusion_writer` pattern). A reason reads `kind: detail`,
e.g. `wrong_fields: category, priority`; the kind is what the summary counts.

The filters run in order and the first failure wins, so an answer cut off by the token
limit is reported as `truncated` rather than as the `unparseable` JSON it leaves behind.

A conversation's earlier assistant turns are trained on as well (every assistant turn
carries loss: `train/loss_masks.py`), so the first filter holds each of them to the checks
that need no label: length, refusal, repetition, language, JSON and schema, with reason
`earlier_turn: <its reason> (assistant turn N of M)`. The label, where there is one, is
the last turn's: only the response is compared with it. It runs first so that an answer
after a broken history is rejected for that history, and never becomes a pair's rejected
side (a pair's history is its prompt's).

A text task's reply (`Task.answer_format`) goes through the same filters: the text-quality
ones apply as they are, a blank reply is `unparseable`, and `agrees_with_reference` runs
the label's checks (`foundation/text_checks.py`), so `wrong_fields` names the kinds of the
checks it fails.
"""

from __future__ import annotations

import functools
import json
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from datagen.filters.text_filters import (
    LanguageConfig,
    RefusalConfig,
    RepetitionConfig,
    in_expected_language,
    no_refusal_phrase,
    not_repetitive,
    split_by_filters,
)
from datagen.foundation.records import Example
from datagen.foundation.task import Task, Verdict


class AnswerFilterConfig(BaseModel):
    """The checks every task gets, plus the text-quality filters of `text_filters.py`,
    each on when its section is given (null turns it off)."""

    model_config = ConfigDict(extra="forbid")

    max_answer_chars: int | None = Field(
        None,
        gt=0,
        description="far longer than a complete answer means rambling or extra text that a "
        "training row must not teach. Default: the task's own (`Task.max_answer_chars`, about "
        "twice its longest complete answer; 600 for the triage demo's ~250-350 characters)",
    )
    refusal: RefusalConfig | None = RefusalConfig()
    repetition: RepetitionConfig | None = RepetitionConfig()
    language: LanguageConfig | None = None


def finished_normally(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    # An imported answer was not generated here: it has no finish reason, nothing cut it off.
    # `tool_calls`: the endpoint ended the answer on a call (a teacher asked with `tool_calling: api`).
    if answer.finish_reason in ("stop", "tool_calls") or (answer.finish_reason is None and answer.teacher is None):
        return True, ""
    if answer.finish_reason == "length":
        return False, "truncated: hit max_tokens"
    return False, f"finish_reason: {answer.finish_reason}"


def within_length(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    size = len(answer.response or "")
    limit = task.max_answer_chars if config.max_answer_chars is None else config.max_answer_chars
    if size > limit:
        return False, f"too_long: {size} chars > {limit}"
    return True, ""


def not_refused(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    return no_refusal_phrase(answer.response or "", config.refusal) if config.refusal else (True, "")


def not_repetitive_answer(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    return not_repetitive(answer.response or "", config.repetition) if config.repetition else (True, "")


def in_language(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    return in_expected_language(answer.response or "", config.language) if config.language else (True, "")


def parses_as_json(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    if task.parse_answer(answer.response or "") is None:
        what = "a blank reply" if task.answer_format == "text" else "not a single JSON object"
        return False, f"unparseable: {what}"
    return True, ""


def matches_schema(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    errors = task.answer_errors(task.parse_answer(answer.response or ""))
    if errors:
        return False, "schema_invalid: " + "; ".join(errors)
    return True, ""


def agrees_with_reference(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    # A self-generated prompt has no known label: its answer is checked for format only,
    # and the flow counts such answers separately (`kept_without_reference`).
    if answer.reference is None:
        return True, ""
    wrong = task.compare(task.parse_answer(answer.response or ""), json.loads(answer.reference))
    if wrong:
        return False, "wrong_fields: " + ", ".join(wrong)
    return True, ""


# What every assistant turn of a conversation is held to: the checks that need no label.
_LABEL_FREE = (within_length, not_refused, not_repetitive_answer, in_language, parses_as_json, matches_schema)


def earlier_turns_pass(answer: Example, task: Task, config: AnswerFilterConfig) -> Verdict:
    earlier = [turn.content for turn in answer.context if turn.role == "assistant"]
    for number, content in enumerate(earlier, 1):
        # The turn alone, as an answer that finished: nothing here was cut off by max_tokens.
        turn = Example(task=answer.task, prompt="", response=content, source=answer.source, run_id=answer.run_id)
        for check in _LABEL_FREE:
            keep, reason = check(turn, task, config)
            if not keep:
                return False, f"earlier_turn: {reason} (assistant turn {number} of {len(earlier) + 1})"
    return True, ""


ANSWER_FILTERS: tuple[Callable[[Example, Task, AnswerFilterConfig], Verdict], ...] = (
    earlier_turns_pass,
    finished_normally,
    within_length,
    not_refused,
    not_repetitive_answer,
    in_language,
    parses_as_json,
    matches_schema,
    agrees_with_reference,
)


def filter_answers(
    answers: list[Example], task: Task, config: AnswerFilterConfig
) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Split answers into verified ones and (reject, reason) pairs."""
    return split_by_filters(answers, [functools.partial(f, task=task, config=config) for f in ANSWER_FILTERS])


def reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def wrong_fields_of(reason: str) -> list[str]:
    """The fields named by a `wrong_fields: a, b` reason."""
    if reason_kind(reason) != "wrong_fields":
        raise ValueError(f"not a wrong_fields reason: {reason!r}")
    return [field.strip() for field in reason.split(":", 1)[1].split(",")]
