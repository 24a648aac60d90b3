"""`one_wrong_field` on each task's schema: closed sets, numbers, lists, nullable fields and
the task's own plausible values, on literal answers with exact rejected sides; and an
answer with no field to make wrong is skipped with its reason, counted in the pair report."""

import json

import pytest

from datagen.foundation.records import Example
from datagen.pairs.axis_rejections import NoRejection, make_axis_rejection, wrong_values
from datagen.pairs.pair_report import pair_report, pair_report_markdown
from datagen.pairs.preference_pairs import PairSources, PreferencePairConfig, build_pairs
from datagen.tasks import invoice_extraction, support_triage, text_to_sql
from tests.test_invoice_extraction_task import TWO_LINES
from tests.test_support_triage_task import REFERENCE as TRIAGE_ANSWER

GARDEN = {"sql": "SELECT name, price FROM products WHERE category = 'garden' ORDER BY price LIMIT 2"}
NO_SLIP = {"sql": "SELECT COUNT(*) FROM products"}


def rendered(task, answer: dict, **changes) -> str:
    return task.render_answer(dict(answer, **changes))


@pytest.mark.parametrize("task, answer, field, before, after", [
    (support_triage.TASK, TRIAGE_ANSWER, "priority", "high", "normal"),
    (invoice_extraction.TASK, TWO_LINES, "line_items", TWO_LINES["line_items"], TWO_LINES["line_items"][:1]),
    (text_to_sql.TASK, GARDEN, "sql", GARDEN["sql"],
     "SELECT name, price FROM products WHERE category = 'kitchen' ORDER BY price LIMIT 2"),
])
def test_one_wrong_field_changes_one_field_of_any_task(task, answer, field, before, after):
    chosen, rejected, evidence = make_axis_rejection(json.dumps(answer, indent=2), "one_wrong_field", task)
    assert chosen == task.render_answer(answer)
    assert rejected == rendered(task, answer, **{field: after})
    assert evidence == f"rejected sets {field}: {json.dumps(before)} -> {json.dumps(after)}"
    assert task.compare(json.loads(rejected), answer) == [field]


def test_each_invoice_field_has_its_wrong_values():
    task = invoice_extraction.TASK
    assert {name: wrong_values(task, TWO_LINES, name, None) for name in TWO_LINES} == {
        # the customer billed, for the vendor
        "vendor": ["Contoso Ltd", "Fabrikam Inc.", "Tailspin Toys", "Wingtip Partners", "Litware Labs",
                   "Proseware Health", "Adatum Logistics", "Woodgrove Dental"],
        "invoice_number": ["R-0012330"],  # two digits swapped
        "date": ["2025-10-10", "2025-10-26", "2025-11-10"],  # the due date, net 14, 30 or 45
        "currency": ["CHF", "GBP", "USD"],
        "line_items": [[{"description": "Tulip bouquet", "quantity": 2.0, "unit_price": 18.4}]],  # last line missed
        "total": [732.0, 7.32, 74.2],  # the decimal point moved, or one more
    }


def test_a_nullable_field_may_be_emptied_and_free_text_the_verifier_ignores_never_changes():
    task = support_triage.TASK
    assert wrong_values(task, TRIAGE_ANSWER, "order_id", None) == [None]
    assert wrong_values(task, TRIAGE_ANSWER, "product", None) == [None]
    assert wrong_values(task, TRIAGE_ANSWER, "summary", None) == []  # compare does not check it


def test_every_sql_slip_that_changes_the_rows_is_a_wrong_value():
    assert wrong_values(text_to_sql.TASK, GARDEN, "sql", None) == [
        "SELECT name, price FROM products WHERE category = 'garden' ORDER BY price DESC LIMIT 2",
        "SELECT name, price FROM products WHERE category = 'garden' ORDER BY price LIMIT 3",
        "SELECT name, price FROM products WHERE category = 'electronics' ORDER BY price LIMIT 2",
        "SELECT name, price FROM products WHERE category = 'kitchen' ORDER BY price LIMIT 2",
        "SELECT name, price FROM products WHERE category = 'office' ORDER BY price LIMIT 2",
    ]


def test_an_answer_with_nothing_to_make_wrong_is_skipped_with_its_reason():
    with pytest.raises(NoRejection) as skip:
        make_axis_rejection(json.dumps(NO_SLIP), "one_wrong_field", text_to_sql.TASK)
    assert str(skip.value) == "one_wrong_field: no value of sql makes the answer wrong on that field alone"
    with pytest.raises(NoRejection) as skip:
        make_axis_rejection('{"sql": ""}', "one_wrong_field", text_to_sql.TASK)
    assert str(skip.value) == "one_wrong_field: the chosen answer does not fit the schema"


def sft_row(prompt: str, answer: dict) -> Example:
    return Example(task="text_to_sql", prompt=prompt, response=json.dumps(answer), source="ref", run_id="r",
                   parent_ids=(prompt,))


def test_the_pair_report_counts_the_skipped_axis_and_the_next_axis_makes_the_pair():
    rows = [sft_row("How many products are there?", NO_SLIP), sft_row("Two cheapest garden products?", GARDEN)]
    config = PreferencePairConfig(strategies=["axis_targeted"], axes=["one_wrong_field", "needless_preamble"])
    pairs, dropped, skipped = build_pairs(PairSources([], [], sft_rows=rows), text_to_sql.TASK, config)
    reason = "one_wrong_field: no value of sql makes the answer wrong on that field alone"
    assert skipped == {reason: 1}
    assert sorted((p.prompt, p.axis) for p in pairs) == [
        ("How many products are there?", "needless_preamble"), ("Two cheapest garden products?", "one_wrong_field")]
    report = pair_report(pairs, dropped, text_to_sql.TASK, None, skipped)
    assert report["skipped"] == {reason: 1} and report["by_axis"] == {"needless_preamble": 1, "one_wrong_field": 1}
    assert f"| skipped: {reason} | 1 |" in pair_report_markdown(report).splitlines()
