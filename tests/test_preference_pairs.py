"""Every pair strategy, the identical-pair drop, the length bound and the pair report,
on literal answers with exact expected pairs."""

import json

from datagen.exports.sft_examples import one_answer_per_prompt
from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.task import label_fields
from datagen.pairs.axis_rejections import axis_rejection
from datagen.pairs.pair_report import pair_report
from datagen.pairs.preference_pairs import PairSources, PreferencePairConfig, bound_chosen_longer, build_pairs
from datagen.tasks.support_triage import TASK
from tests.test_support_triage_task import REFERENCE, answer

RIGHT = TASK.render_answer(REFERENCE)


def pairs_of(sources: PairSources, **config):
    pairs, dropped, skipped = build_pairs(sources, TASK, PreferencePairConfig(**config))
    assert skipped == {}  # every axis can be made from a triage answer
    return pairs, dropped


def test_verifier_ranked_takes_a_verified_answer_over_a_plausible_wrong_one():
    right = answer(json.dumps(REFERENCE), 0)
    right_again = answer(json.dumps(dict(REFERENCE, summary="Cracked earbuds, wants new ones.")), 1)
    wrong = answer(json.dumps(dict(REFERENCE, priority="low")), 2)
    garbage = answer("no idea", 3)
    lonely_wrong = answer(json.dumps(dict(REFERENCE, priority="low")), 0, prompt_id="p2")
    kept, rejected = filter_answers([right, right_again, wrong, garbage, lonely_wrong], TASK, AnswerFilterConfig())
    assert one_answer_per_prompt(kept) == [right]
    pairs, dropped = pairs_of(PairSources(kept, rejected), strategies=["verifier_ranked"])
    assert dropped == []
    (pair,) = pairs
    assert (pair.chosen, pair.rejected) == (right.response, wrong.response)
    assert pair.evidence == "rejected is wrong_fields: priority"
    assert pair.parent_ids == (right.id, wrong.id)
    assert (pair.strategy, pair.axis, pair.margin) == ("verifier_ranked", None, 1.0)


def test_minimal_correction_pairs_differ_only_on_the_wrong_fields():
    said = dict(REFERENCE, priority="low", product="kettle", summary="Kettle is broken.")
    wrong = answer(json.dumps(said, indent=2), 0)
    kept, rejected = filter_answers([wrong], TASK, AnswerFilterConfig())
    assert kept == []
    (pair,), _ = pairs_of(PairSources(kept, rejected))
    assert pair.strategy == "minimal_correction"
    assert json.loads(pair.chosen) == dict(said, priority="high", product="wireless earbuds")
    assert json.loads(pair.rejected) == said
    # Same layout on both sides: the raw answer's indentation is not a signal to learn.
    assert pair.rejected == TASK.render_answer(said)
    assert pair.evidence == "chosen corrects priority: 'low' -> 'high', product: 'kettle' -> 'wireless earbuds'"
    assert pair.parent_ids == (wrong.id, wrong.id)
    assert pair.margin == 2.0


def test_each_axis_changes_exactly_one_thing():
    chosen, rejected, evidence = axis_rejection(RIGHT, "broken_format", TASK)
    assert chosen == RIGHT
    assert rejected == (
        "{'category': 'damaged_item', 'priority': 'high', 'order_id': 'A-555123', "
        "'product': 'wireless earbuds', 'needs_human': True, "
        "'summary': 'Earbuds arrived with a cracked case; customer wants a replacement.'}"
    )
    assert evidence == "rejected is the same object in Python syntax, not JSON"
    chosen, rejected, evidence = axis_rejection(RIGHT, "needless_preamble", TASK)
    assert rejected.endswith(RIGHT) and rejected != RIGHT
    assert evidence.startswith("rejected opens with ")
    chosen, rejected, evidence = axis_rejection(RIGHT, "one_wrong_field", TASK)
    changed = [k for k in REFERENCE if json.loads(rejected)[k] != REFERENCE[k]]
    assert len(changed) == 1 and changed[0] in label_fields(TASK.answer_schema)
    assert TASK.compare(json.loads(rejected), REFERENCE) == changed
    assert evidence.startswith(f"rejected sets {changed[0]}: ")
    assert axis_rejection("not json", "broken_format", TASK) is None


def test_label_fields_are_the_enums_and_booleans_of_the_schema():
    assert label_fields(TASK.answer_schema) == {
        "category": ["shipping_delay", "refund_request", "damaged_item", "wrong_item", "account_access",
                     "billing_error", "product_question", "cancellation"],
        "priority": ["low", "normal", "high", "urgent"],
        "needs_human": [True, False],
    }


def sft_row(prompt_id: str) -> Example:
    return Example(task="support_triage", prompt=f"ticket {prompt_id}", response=RIGHT, source="ref",
                   run_id="r", parent_ids=(prompt_id,))


def test_axis_targeted_spreads_axes_over_prompts_and_teacher_vs_student_uses_the_rejected_student():
    rows = [sft_row(f"p{i}") for i in range(12)]
    pairs, dropped = pairs_of(PairSources([], [], sft_rows=rows), strategies=["axis_targeted"])
    assert dropped == [] and len(pairs) == 12
    assert {p.axis for p in pairs} == {"one_wrong_field", "broken_format", "needless_preamble"}
    assert all(p.strategy == "axis_targeted" and p.margin == 1.0 for p in pairs)

    student = Example(task="support_triage", prompt="ticket p0", response="The ticket is about earbuds.",
                      source="student", run_id="r", parent_ids=("p0",))
    pairs, _ = pairs_of(
        PairSources([], [], sft_rows=rows[:2], student_rejects=[(student, "unparseable: not a single JSON object")]),
        strategies=["teacher_vs_student", "axis_targeted"],
    )
    assert [(p.strategy, p.prompt) for p in pairs] == [("teacher_vs_student", "ticket p0"), ("axis_targeted", "ticket p1")]
    assert pairs[0].parent_ids == (rows[0].id, student.id)
    assert pairs[0].rejected == "The ticket is about earbuds."
    assert pairs[0].evidence == "the base student's answer is unparseable: not a single JSON object"
    assert pairs[0].axis == "unparseable"


def test_pairs_whose_sides_say_the_same_are_dropped():
    spaced = answer(json.dumps(REFERENCE, indent=4), 0)
    student = Example(task="support_triage", prompt="x", response=json.dumps(REFERENCE, indent=4),
                      source="student", run_id="r", parent_ids=("p1",))
    row = sft_row("p1")
    pairs, dropped = pairs_of(PairSources([spaced], [], sft_rows=[row], student_rejects=[(student, "too_long: x")]),
                              strategies=["teacher_vs_student"])
    assert pairs == []
    assert [reason for _, reason in dropped] == ["identical: both sides give the same answer"]


def pair(i: int, chosen_len: int, rejected_len: int) -> PreferencePair:
    return PreferencePair(task="t", prompt=f"p{i}", chosen="c" * chosen_len, rejected="r" * rejected_len,
                          strategy="s", evidence="e", source="x", run_id="r")


def test_the_chosen_longer_share_is_bounded_by_dropping_the_fewest_pairs():
    pairs = [pair(i, 10, 5) for i in range(6)] + [pair(i, 5, 10) for i in range(6, 10)]
    kept, dropped = bound_chosen_longer(pairs, 0.5)
    # 6 of 10 longer; dropping 2 leaves 4 of 8 = 0.5
    assert len(dropped) == 2 and len(kept) == 8
    assert sum(len(p.chosen) > len(p.rejected) for p in kept) == 4
    assert bound_chosen_longer(pairs, 0.6) == (pairs, [])
    kept, dropped = bound_chosen_longer(pairs, 0.0)
    assert len(dropped) == 6 and all(len(p.chosen) < len(p.rejected) for p in kept)


def test_pair_report_counts_what_the_set_teaches():
    rows = [sft_row(f"p{i}") for i in range(12)]
    pairs, dropped = pairs_of(PairSources([], [], sft_rows=rows), strategies=["axis_targeted"],
                              max_chosen_longer_fraction=0.25)
    report = pair_report(pairs, dropped, TASK, 0.25, {})
    assert report["pairs"] == len(pairs) == 12 - len(dropped)
    assert report["chosen_longer_fraction"] <= 0.25
    assert report["dropped"] == ({"length_balance": len(dropped)} if dropped else {})
    assert report["by_strategy"] == {"axis_targeted": len(pairs)}
    assert sum(report["by_axis"].values()) == len(pairs)
    assert report["label_balance"]["category"] == {"damaged_item": len(pairs)}
    assert report["margins"] == [1.0] * len(pairs)
