import datetime
import json
from collections import Counter
from decimal import Decimal

import pytest

from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers, within_length
from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Teacher
from datagen.foundation.task import schema_errors
from datagen.tasks.invoice_extraction import TASK, InvoiceAnswer, compare_answer, generate_invoices
from datagen.tasks.invoice_extraction_vocab import DATE_FORMATS, LAYOUTS
from datagen.tasks.support_triage import TASK as TRIAGE

RECEIPT = """\
GREENWAY FLORISTS
9 Rue des Lilas, 75011 Paris
TEL +44 117 496 0321
RECEIPT R-0012303
Sep 26, 2025
SOURDOUGH LOAF
  7 @ 5.20       36.40
TOTAL EUR 36.40
CARD ****7364
THANK YOU - KEEP THIS RECEIPT"""
REFERENCE = {
    "vendor": "Greenway Florists",
    "invoice_number": "R-0012303",
    "date": "2025-09-26",
    "currency": "EUR",
    "line_items": [{"description": "Sourdough loaf", "quantity": 7.0, "unit_price": 5.2}],
    "total": 36.4,
}
TWO_LINES = dict(
    REFERENCE,
    line_items=[
        {"description": "Tulip bouquet", "quantity": 2.0, "unit_price": 18.4},
        {"description": "Sourdough loaf", "quantity": 7.0, "unit_price": 5.2},
    ],
    total=73.2,
)
CURRENCY_MARKS = {"USD": ("$", "USD"), "EUR": ("€", "EUR"), "GBP": ("£", "GBP"), "CHF": ("CHF",)}


@pytest.fixture(scope="module")
def invoices():
    return generate_invoices(200, seed=0)


def test_a_fixed_seed_gives_this_receipt_and_label():
    (invoice,) = generate_invoices(1, seed=1)
    assert (invoice.template_id, invoice.text, invoice.label) == ("receipt", RECEIPT, REFERENCE)


def test_same_seed_same_invoices_other_seed_other_invoices():
    assert generate_invoices(15, seed=4) == generate_invoices(15, seed=4)
    assert [i.text for i in generate_invoices(15, seed=4)] != [i.text for i in generate_invoices(15, seed=5)]


def test_every_layout_is_used_evenly(invoices):
    assert Counter(i.template_id for i in invoices) == {t.template_id: 40 for t in LAYOUTS}


def test_labels_fit_the_schema_and_the_total_is_the_sum_of_the_lines(invoices):
    for invoice in invoices:
        assert schema_errors(InvoiceAnswer, invoice.label) == []
        lines = sum(Decimal(str(i["quantity"])) * Decimal(str(i["unit_price"])) for i in invoice.label["line_items"])
        assert Decimal(str(invoice.label["total"])) == lines, invoice.text
        assert lines == lines.quantize(Decimal("0.01")), invoice.text  # exact cents


def printed(amount: float) -> tuple[str, str]:
    return f"{amount:.2f}", f"{amount:,.2f}"


def test_every_label_value_can_be_read_from_the_text(invoices):
    for invoice in invoices:
        text, label = invoice.text.casefold(), invoice.label
        assert label["vendor"].casefold() in text
        assert label["invoice_number"] in invoice.text
        date = datetime.date.fromisoformat(label["date"])
        assert any(date.strftime(f) in invoice.text for f in DATE_FORMATS), invoice.text
        assert any(mark in invoice.text for mark in CURRENCY_MARKS[label["currency"]]), invoice.text
        if label["currency"] != "USD":
            assert "$" not in invoice.text, invoice.text
        for item in label["line_items"]:
            assert item["description"].casefold() in text
            assert any(p in invoice.text for p in printed(item["unit_price"])), invoice.text
        assert any(p in invoice.text for p in printed(label["total"])), invoice.text


def test_distractor_numbers_and_dates_appear(invoices):
    texts = [i.text for i in invoices]
    assert sum("PO-" in t for t in texts) >= 60
    assert sum("ACC-" in t for t in texts) >= 60
    assert sum("due" in t.lower() for t in texts) >= 100
    assert sum("Bill to" in t or "Customer:" in t for t in texts) >= 60


def test_compare_forgives_case_spacing_and_float_noise():
    answer = dict(
        REFERENCE,
        vendor="GREENWAY  florists",
        line_items=[{"description": "SOURDOUGH LOAF", "quantity": 7, "unit_price": 5.2000001}],
        total=36.404,
    )
    assert compare_answer(answer, REFERENCE) == []
    assert compare_answer(REFERENCE, REFERENCE) == []


def test_compare_names_every_wrong_field_in_schema_order():
    answer = dict(
        REFERENCE,
        vendor="Greenway Florist",
        invoice_number="r-0012303",
        date="2025-26-09",
        currency="USD",
        line_items=[{"description": "Sourdough loaf", "quantity": 6, "unit_price": 5.2}],
        total=36.41,
    )
    assert compare_answer(answer, REFERENCE) == [
        "vendor", "invoice_number", "date", "currency", "line_items", "total",
    ]


def test_line_items_must_all_be_there_in_the_listed_order():
    swapped = dict(TWO_LINES, line_items=TWO_LINES["line_items"][::-1])
    missing = dict(TWO_LINES, line_items=TWO_LINES["line_items"][:1])
    assert compare_answer(swapped, TWO_LINES) == ["line_items"]
    assert compare_answer(missing, TWO_LINES) == ["line_items"]
    assert compare_answer(TWO_LINES, REFERENCE) == ["line_items", "total"]


def test_few_shot_answers_fit_the_schema_and_add_up():
    assert len(TASK.few_shot) == 3
    for prompt, answer in TASK.few_shot:
        assert schema_errors(InvoiceAnswer, answer) == []
        assert answer["invoice_number"] in prompt and answer["vendor"] in prompt
        lines = sum(i["quantity"] * i["unit_price"] for i in answer["line_items"])
        assert abs(lines - answer["total"]) < 1e-9
    assert "JSON object and nothing else" in TASK.system_prompt
    assert len(TASK.messages("x", few_shot=True)) == 2 + 2 * 3


def test_a_wrong_total_is_rejected_by_the_answer_filters():
    def answer(fields: dict) -> Example:
        return Example(task="invoice_extraction", prompt=RECEIPT, response=json.dumps(fields),
                       reference=canonical_json(REFERENCE), source="test", run_id="r",
                       teacher=Teacher("http://127.0.0.1:1/v1", "m", "{}", 0), finish_reason="stop",
                       parent_ids=("p1",))

    right, wrong = answer(REFERENCE), answer(dict(REFERENCE, total=34.6))
    kept, rejected = filter_answers([right, wrong], TASK, AnswerFilterConfig())
    assert kept == [right]
    assert rejected == [(wrong, "wrong_fields: total")]
    assert json.loads(TASK.render_answer(REFERENCE)) == REFERENCE


def test_the_answer_length_limit_is_the_tasks_unless_the_recipe_sets_one():
    long_answer = Example(task="invoice_extraction", prompt=RECEIPT, response=" " * 700, source="test", run_id="r")
    assert within_length(long_answer, TASK, AnswerFilterConfig()) == (True, "")  # 1,200 for invoices
    assert within_length(long_answer, TRIAGE, AnswerFilterConfig()) == (False, "too_long: 700 chars > 600")
    assert within_length(long_answer, TASK, AnswerFilterConfig(max_answer_chars=650)) == (
        False, "too_long: 700 chars > 650")
