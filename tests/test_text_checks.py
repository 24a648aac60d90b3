"""The checks of a text label (datagen/foundation/text_checks.py) and the patterns they may
hold (safe_patterns.py), on literal replies: each kind passing and failing, the patterns
refused when written, a reference that fails its own checks, two labels compared, and a
text Task's parse, render and compare."""

from __future__ import annotations

import time

import pytest
from pydantic import TypeAdapter, ValidationError

from datagen.foundation.safe_patterns import UnsafePattern, check_pattern
from datagen.foundation.task import Task
from datagen.foundation.text_checks import (
    Check,
    TextReference,
    check_result,
    differing_checks,
    failed_checks,
    input_errors,
)
from datagen.tasks.support_reply import TASK

CHECK = TypeAdapter(Check)
REPLY = ("Hi Maya,\n\nI'm sorry the desk lamp from order A-204518 arrived cracked. We're sending a replacement "
         "today at no cost.\n\n— Juniper Support")


@pytest.mark.parametrize("check, passed, detail", [
    ({"kind": "must_mention", "terms": ["REPLACEMENT", "no  cost"]}, True, "all of 'REPLACEMENT', 'no cost'"),
    ({"kind": "must_mention", "terms": ["replacement", "refund"]}, False,
     "all of 'replacement', 'refund': missing 'refund'"),
    ({"kind": "must_mention", "terms": ["refund", "replacement"], "mode": "any"}, True,
     "any of 'refund', 'replacement'"),
    ({"kind": "must_mention", "terms": ["replace"]}, False, "all of 'replace': missing 'replace'"),  # whole words
    ({"kind": "must_not_say", "terms": ["unfortunately", "we apologize"]}, True,
     "none of 'unfortunately', 'we apologize'"),
    ({"kind": "must_not_say", "terms": ["Im sorry", "I’m SORRY"]}, False, "says 'I’m SORRY'"),  # ’ is '
    ({"kind": "matches_pattern", "pattern": r"Juniper Support\s*$"}, True, "pattern 'Juniper Support\\\\s*$'"),
    ({"kind": "matches_pattern", "pattern": r"^Dear "}, False, "pattern '^Dear ' not found"),
    ({"kind": "max_words", "limit": 23}, True, "23 words, at most 23"),
    ({"kind": "max_words", "limit": 22}, False, "23 words, at most 22"),
    ({"kind": "names_field", "field": "order_id", "value": "a-204518"}, True, "order_id 'a-204518'"),
    ({"kind": "names_field", "field": "order_id", "value": "A-20451"}, False, "order_id 'A-20451' not named"),
])
def test_each_check_kind_passes_and_fails_on_a_literal_reply(check, passed, detail):
    result = check_result(CHECK.validate_python(check), REPLY)

    assert (result.kind, result.passed, result.detail) == (check["kind"], passed, detail)


@pytest.mark.parametrize("pattern, why", [
    ("(", "not a valid regular expression: missing ), unterminated subpattern at position 0"),
    ("(a+)+$", "a quantifier over a group that is itself repeated"),
    (r"(\w+\s?)*!", "a quantifier over a group that is itself repeated"),
    ("(ab|a)*c", "a quantifier over alternatives"),
    (r"(\w+) \1", "backreferences"),
    (".*a.*b", "2 long quantifiers"),
    (r"a.*b.{0,50}c", "2 long quantifiers"),
    ("x" * 201, "pattern has 201 characters, at most 200"),
])
def test_a_pattern_that_may_not_finish_or_does_not_compile_is_refused_when_written(pattern, why):
    with pytest.raises(UnsafePattern, match=rf"^{why[:30].replace('(', '[(]').replace(')', '[)]')}"):
        check_pattern(pattern)
    with pytest.raises(ValidationError, match="checks.0.matches_pattern.pattern"):
        TextReference.model_validate({"reply": "Hi", "checks": [{"kind": "matches_pattern", "pattern": pattern}]})


@pytest.mark.parametrize("pattern", [r"^Hi [A-Z][a-z]+,", r"A-\d{6}", r"[ab]*c", r"(?:ab){2,5}", r"a++b",
                                     r"(?i)refund"])
def test_an_ordinary_pattern_is_kept(pattern):
    assert check_pattern(pattern) == pattern


def test_the_slowest_pattern_allowed_fails_fast_on_a_long_reply():
    """One long quantifier searched over 4,000 characters without a match: quadratic at
    worst (`.*a.*b`, refused, took 45 s here)."""
    started = time.monotonic()
    result = check_result(CHECK.validate_python({"kind": "matches_pattern", "pattern": r"a.*b\d{0,9}"}), "a" * 4000)

    assert not result.passed and time.monotonic() - started < 5


@pytest.mark.parametrize("checks, error", [
    ([{"kind": "must_mention", "terms": []}], "checks.0.must_mention.terms"),
    ([{"kind": "must_mention", "terms": ["  "]}], "a term is blank"),
    ([{"kind": "max_words", "limit": 0}], "checks.0.max_words.limit"),
    ([{"kind": "names_field", "field": "Order ID", "value": "A-1"}], "checks.0.names_field.field"),
    ([{"kind": "shouts"}], "checks.0"),
    ([], "checks"),
    ([{"kind": "max_words", "limit": 5}], "the reference reply fails its own checks: check 1 \\(max_words\\): "
                                          "23 words, at most 5"),
    ([{"kind": "must_not_say", "terms": ["cracked"]}], "check 1 \\(must_not_say\\): says 'cracked'"),
])
def test_a_label_that_is_malformed_or_fails_its_own_checks_is_refused(checks, error):
    with pytest.raises(ValidationError, match=error):
        TextReference.model_validate({"reply": REPLY, "checks": checks})


def test_failed_checks_names_each_failed_kind_once_in_label_order():
    label = {"reply": REPLY, "checks": [
        {"kind": "names_field", "field": "customer_name", "value": "Maya"},
        {"kind": "must_mention", "terms": ["replacement"]},
        {"kind": "names_field", "field": "order_id", "value": "A-204518"},
        {"kind": "max_words", "limit": 30}]}

    assert failed_checks({"reply": REPLY}, label) == []
    assert failed_checks({"reply": "Hello! We will look into it. " * 5}, label) == ["names_field", "must_mention"]
    assert failed_checks({"reply": "Hi Maya, order A-204518: a replacement " + "is coming " * 20}, label) == [
        "max_words"]


def test_two_labels_differ_on_their_checks_not_on_their_replies():
    mine = {"reply": REPLY, "checks": [{"kind": "must_mention", "terms": ["replacement", "No cost"], "mode": "all"},
                                       {"kind": "max_words", "limit": 80}]}
    same = {"reply": "Hi Maya, a replacement ships at no cost.", "checks": [
        {"kind": "max_words", "limit": 80}, {"kind": "must_mention", "terms": ["no  cost", "REPLACEMENT"]}]}
    other = same | {"checks": [{"kind": "max_words", "limit": 60},
                               {"kind": "must_mention", "terms": ["no cost", "replacement"]}]}

    assert differing_checks(mine, same) == []
    assert differing_checks(mine, other) == ["checks"]


def test_a_names_field_value_the_input_does_not_hold_is_named():
    label = {"reply": REPLY, "checks": [{"kind": "names_field", "field": "customer_name", "value": "Maya"},
                                        {"kind": "names_field", "field": "order_id", "value": "A-204518"}]}

    assert input_errors("From: Maya Lund\nOrder: A-204518\n\nIt broke.", label) == []
    assert input_errors("From: Maya Lund\nOrder: A-204581\n\nIt broke.", label) == [
        "check 2 (names_field): order_id 'A-204518' is not in the input"]


def test_a_text_task_parses_a_reply_renders_a_label_and_has_no_schema_errors():
    label = TASK.few_shot[0][1]

    assert TASK.parse_answer("  Hi Ingrid,\n\nDone.\n ") == {"reply": "Hi Ingrid,\n\nDone."}
    assert TASK.parse_answer(" \n ") is None
    assert TASK.render_answer(label) == label["reply"]
    assert TASK.answer_errors({"reply": "anything"}) == []
    assert TASK.messages("a ticket", few_shot=True)[2] == {"role": "assistant", "content": label["reply"]}


def test_a_text_task_needs_a_text_label_and_a_label_comparison():
    with pytest.raises(ValueError, match="a text task's answer_schema is a TextReference"):
        Task(name="broken", version="1", answer_format="text", answer_schema=TextReference, system_prompt="",
             few_shot=(), generate=lambda count, seed: [], compare=failed_checks)
