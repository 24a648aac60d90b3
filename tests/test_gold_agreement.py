"""Agreement between labelers (gold/agreement.py) on literal labels, with the numbers
worked out by hand."""

from __future__ import annotations

import pytest

from datagen.tasks.support_triage import TASK
from gold.agreement import agreement
from gold.gold_sets import form_fields
from gold.regression_schema import GENERAL_REGRESSION
from tests.gold_fixtures import triage

FIELDS = form_fields(TASK.answer_schema)


def label(record_id: int, labeler: str, final: dict | None = None, **changes) -> dict:
    """A submitted triage label as `LabelingStore.submitted_labels` gives it."""
    return {"record_id": record_id, "labeler": labeler, "answer": triage(**changes), "final_answer": final,
            "discard_reason": None}


def triage_agreement(labels: list[dict]) -> dict:
    return agreement(labels, FIELDS, TASK.compare)


# ann and bob label four tickets; they differ on category only on record 3, on product
# only in wording on record 1 ("earbuds" is in "wireless earbuds"), on summary on record 2.
#
# category       ann              bob
#   record 1     shipping_delay   shipping_delay
#   record 2     refund_request   refund_request
#   record 3     shipping_delay   refund_request
#   record 4     refund_request   refund_request
#
# Observed agreement p_o = 3/4. ann used each category 2/4, bob shipping 1/4 and refund
# 3/4, so chance agreement p_e = 2/4 * 1/4 + 2/4 * 3/4 = 1/2, and Cohen's kappa
# = (p_o - p_e) / (1 - p_e) = (3/4 - 1/2) / (1/2) = 0.5.
ANN_AND_BOB = [
    label(1, "ann", product="earbuds"), label(1, "bob"),
    label(2, "ann", category="refund_request"), label(2, "bob", category="refund_request", summary="Late order."),
    label(3, "ann"), label(3, "bob", category="refund_request"),
    label(4, "ann", category="refund_request"), label(4, "bob", category="refund_request"),
]


def test_cohens_kappa_on_category_is_worked_out_by_hand():
    figures = triage_agreement(ANN_AND_BOB)

    assert figures["fields"]["category"] == {"agreement": 0.75, "identical": 0.75, "kappa": pytest.approx(0.5)}
    assert figures["pairs"] == [{"labelers": ["ann", "bob"], "records": 4,
                                 "kappa": {"category": 0.5, "priority": None, "needs_human": None}}]
    assert (figures["labels"], figures["records_with_several_labels"], figures["label_pairs"]) == (8, 4, 4)


def test_every_field_gets_agreement_and_identical_and_categorical_fields_kappa():
    fields = triage_agreement(ANN_AND_BOB)["fields"]

    assert fields == {
        "category": {"agreement": 0.75, "identical": 0.75, "kappa": 0.5},
        "priority": {"agreement": 1.0, "identical": 1.0, "kappa": None},
        "order_id": {"agreement": 1.0, "identical": 1.0},
        "product": {"agreement": 1.0, "identical": 0.75},
        "needs_human": {"agreement": 1.0, "identical": 1.0, "kappa": None},
        "summary": {"agreement": 1.0, "identical": 0.75},
    }


def test_product_containment_agrees_but_is_not_identical():
    fields = triage_agreement([label(1, "ann", product="Wireless  Earbuds"), label(1, "bob", product="earbuds"),
                               label(2, "ann", product="desk lamp"), label(2, "bob", product="lamp shade")])["fields"]

    assert fields["product"] == {"agreement": 0.5, "identical": 0.0}


def test_kappa_is_none_when_both_labelers_only_used_one_value():
    labels = [label(1, "ann", category="refund_request"), label(1, "bob", category="refund_request"),
              label(2, "ann", category="refund_request"), label(2, "bob", category="refund_request")]

    assert triage_agreement(labels)["fields"]["category"] == {"agreement": 1.0, "identical": 1.0, "kappa": None}


def test_kappa_is_zero_when_each_labeler_always_used_a_different_value():
    # p_o = 0; ann always shipping, bob always refund, so p_e = 1 * 0 + 0 * 1 = 0: kappa = 0.
    labels = [label(1, "ann"), label(1, "bob", category="refund_request"),
              label(2, "ann"), label(2, "bob", category="refund_request")]

    assert triage_agreement(labels)["fields"]["category"]["kappa"] == 0.0


def test_kappa_is_minus_one_for_swapped_labels():
    # p_o = 0, p_e = 1/2 * 1/2 + 1/2 * 1/2 = 1/2: kappa = (0 - 1/2) / (1 - 1/2) = -1.
    labels = [label(1, "ann", needs_human=True), label(1, "bob"),
              label(2, "ann"), label(2, "bob", needs_human=True)]

    assert triage_agreement(labels)["fields"]["needs_human"] == {"agreement": 0.0, "identical": 0.0, "kappa": -1.0}


def test_the_set_kappa_is_the_mean_over_pairs_weighted_by_shared_records():
    # ann-bob share 4 records at kappa 0.5 (above); ann-cy share 2 and agree on both, each
    # category once: kappa 1. The set: (4 * 0.5 + 2 * 1) / 6 = 0.6667.
    labels = ANN_AND_BOB + [label(5, "ann"), label(5, "cy"),
                            label(6, "ann", category="refund_request"), label(6, "cy", category="refund_request")]

    figures = triage_agreement(labels)

    assert figures["fields"]["category"] == {"agreement": 0.8333, "identical": 0.8333, "kappa": 0.6667}
    assert [(pair["labelers"], pair["records"], pair["kappa"]["category"]) for pair in figures["pairs"]] == [
        (["ann", "bob"], 4, 0.5), (["ann", "cy"], 2, 1.0)]
    per_labeler = {name: figures["labelers"][name]["fields"]["category"] for name in ("ann", "bob", "cy")}
    assert per_labeler == {
        "ann": {"agreement": 0.8333, "identical": 0.8333, "vs_final": None, "kappa": 0.6667},
        "bob": {"agreement": 0.75, "identical": 0.75, "vs_final": None, "kappa": 0.5},
        "cy": {"agreement": 1.0, "identical": 1.0, "vs_final": None, "kappa": 1.0},
    }
    assert {name: figures["labelers"][name]["labels"] for name in ("ann", "bob", "cy")} == {
        "ann": 6, "bob": 4, "cy": 2}


def test_vs_final_is_the_share_of_a_labelers_answers_matching_the_approved_one():
    # The reviewer approved refund_request on record 3, where ann said shipping_delay; record
    # 4 has no approved answer yet, so it does not count.
    finals = {1: triage(), 2: triage(category="refund_request"), 3: triage(category="refund_request"), 4: None}
    labels = [dict(one, final_answer=finals[one["record_id"]]) for one in ANN_AND_BOB]

    labelers = triage_agreement(labels)["labelers"]

    assert labelers["ann"]["fields"]["category"]["vs_final"] == pytest.approx(2 / 3, abs=1e-4)
    assert labelers["bob"]["fields"]["category"]["vs_final"] == 1.0
    # "earbuds" matches the approved "wireless earbuds" by the task's rule.
    assert labelers["ann"]["fields"]["product"]["vs_final"] == 1.0


def test_labels_proposing_a_discard_are_left_out():
    discard = {"record_id": 2, "labeler": "bob", "answer": None, "final_answer": None, "discard_reason": "spam"}
    labels = [label(1, "ann"), label(1, "bob"), label(2, "ann"), discard]

    figures = triage_agreement(labels)

    assert (figures["labels"], figures["records_with_several_labels"], figures["label_pairs"]) == (3, 1, 1)
    assert figures["labelers"]["bob"]["labels"] == 1


def test_no_pairs_gives_no_figures():
    figures = triage_agreement([label(1, "ann"), label(2, "bob")])

    assert figures["fields"]["category"] == {"agreement": None, "identical": None, "kappa": None}
    assert figures["pairs"] == []


def test_agreement_on_the_general_regression_schema():
    # match: ann number, exact; bob number, contains. p_o = 1/2; ann used number 1/2 and
    # exact 1/2, bob number 1/2 and contains 1/2, so p_e = 1/2 * 1/2 = 1/4 and
    # kappa = (1/2 - 1/4) / (3/4) = 1/3.
    def regression(record_id, labeler, answer, match, skill):
        return {"record_id": record_id, "labeler": labeler, "final_answer": None, "discard_reason": None,
                "answer": {"answer": answer, "match": match, "skill": skill}}

    labels = [regression(1, "ann", "12", "number", "arithmetic"), regression(1, "bob", "12", "number", "arithmetic"),
              regression(2, "ann", "Paris", "exact", "capitals"), regression(2, "bob", "paris", "contains", "capitals")]

    fields = agreement(labels, form_fields(GENERAL_REGRESSION.answer_schema), GENERAL_REGRESSION.compare)["fields"]

    assert fields == {
        "answer": {"agreement": 0.5, "identical": 0.5},
        "match": {"agreement": 0.5, "identical": 0.5, "kappa": pytest.approx(1 / 3, abs=1e-4)},
        "skill": {"agreement": 1.0, "identical": 1.0, "kappa": 1.0},
    }
