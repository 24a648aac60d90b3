"""Extract an invoice or receipt, given as plain text, into one JSON object.

Input: the document's text. Output: `vendor`, `invoice_number`, `date` (ISO),
`currency` (ISO 4217), `line_items` (description, quantity, unit_price, in the order
listed) and `total`. The generator renders five layouts (a table, bill-to-first, a till
receipt, an email, key-value lines) from `invoice_extraction_vocab.py` with
`datagen.generation.template_generator`, and the label is built from the drawn slot values, never
parsed back out of the text: the total is the sum of the line amounts, exact in cents.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.task import FieldRule, Task
from datagen.generation.template_generator import generate_from_templates
from datagen.tasks.invoice_extraction_vocab import CURRENCIES, CUSTOMERS, LAYOUTS, PAYMENT_TERMS, VOCABULARY

# Half a cent: amounts are money printed to the cent, so two numbers closer than this
# are the same printed amount and differ only by float noise (0.1 + 0.2), while any two
# different cents are 0.01 apart and stay different.
AMOUNT_TOLERANCE = 0.005


class LineItemAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1)
    quantity: float = Field(gt=0)
    unit_price: float = Field(ge=0)


class InvoiceAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str = Field(min_length=1)
    invoice_number: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    line_items: list[LineItemAnswer] = Field(min_length=1)
    total: float


SYSTEM_PROMPT = """\
You extract invoices and receipts. Reply with exactly one JSON object and nothing else, \
with these keys:
- "vendor": the business that issued the document (the seller, not the customer billed), \
as written.
- "invoice_number": the invoice or receipt number exactly as printed, without its label. \
Never a PO, account, VAT, card or phone number.
- "date": the issue date (not the due date) as YYYY-MM-DD.
- "currency": the ISO 4217 code; $ means USD, € means EUR, £ means GBP.
- "line_items": every line in the order listed, each an object with "description" (as \
written), "quantity" (a number) and "unit_price" (a number, the price of one unit).
- "total": the document's total as a number, without currency sign or thousands \
separators."""

FEW_SHOT = (
    (
        "Riverside Stationers\nTel 555-0110\nInvoice No. 88231\nDate: 02 February 2024\n"
        "Bill to: Acme Corp (PO-41200)\n\n3 x Stapler @ $7.50 = $22.50\n"
        "10 x Notebook A5 @ $2.10 = $21.00\n\nTotal due: $43.50",
        {
            "vendor": "Riverside Stationers",
            "invoice_number": "88231",
            "date": "2024-02-02",
            "currency": "USD",
            "line_items": [
                {"description": "Stapler", "quantity": 3, "unit_price": 7.5},
                {"description": "Notebook A5", "quantity": 10, "unit_price": 2.1},
            ],
            "total": 43.5,
        },
    ),
    (
        "CAFE MORGEN\nBahnhofstrasse 4, 8001 Zurich\nRECEIPT R-0020417\n2025/07/19\n"
        "CAPPUCCINO\n  2 @ 4.80        9.60\nCROISSANT\n  1 @ 3.20        3.20\n"
        "TOTAL CHF 12.80\nCARD ****5521",
        {
            "vendor": "CAFE MORGEN",
            "invoice_number": "R-0020417",
            "date": "2025-07-19",
            "currency": "CHF",
            "line_items": [
                {"description": "CAPPUCCINO", "quantity": 2, "unit_price": 4.8},
                {"description": "CROISSANT", "quantity": 1, "unit_price": 3.2},
            ],
            "total": 12.8,
        },
    ),
    (
        "Subject: Invoice INV-2023-0412 from Hollis Design\n\nHello Sam,\n\nplease find our "
        "invoice INV-2023-0412 dated March 9, 2023 for logo work.\n\n"
        "1. Logo design, 6.5 at €1,200.00 each\n\n"
        "The total of €7,800.00 is due by April 8, 2023.",
        {
            "vendor": "Hollis Design",
            "invoice_number": "INV-2023-0412",
            "date": "2023-03-09",
            "currency": "EUR",
            "line_items": [{"description": "Logo design", "quantity": 6.5, "unit_price": 1200.0}],
            "total": 7800.0,
        },
    ),
)


@dataclass(frozen=True)
class GeneratedInvoice:
    text: str  # the invoice or receipt as plain text
    label: dict  # ground truth in InvoiceAnswer's shape
    template_id: str  # the layout: table, bill_to_first, receipt, email or key_value


def invoice_label(slots: dict) -> dict:
    """The correct extraction, from the values the invoice was rendered with."""
    items = slots["items"]
    return {
        "vendor": slots["vendor"],
        "invoice_number": slots["invoice_number"],
        "date": slots["issue_date"].isoformat(),
        "currency": slots["currency"].code,
        "line_items": [
            {
                "description": item.description,
                "quantity": float(item.quantity),
                "unit_price": float(item.unit_price),
            }
            for item in items
        ],
        "total": float(sum(item.amount for item in items)),
    }


def generate_invoices(count: int, seed: int) -> list[GeneratedInvoice]:
    """`count` labelled invoices, layouts dealt evenly; the same (count, seed) always
    gives the same list."""
    return [
        GeneratedInvoice(text=doc.text, label=invoice_label(doc.slots), template_id=doc.template_id)
        for doc in generate_from_templates(LAYOUTS, VOCABULARY, count, seed)
    ]


def _same_text(said: str, truth: str) -> bool:
    # Case and spacing are layout, not content: a receipt prints "BLUE HARBOR COFFEE CO."
    # for the vendor "Blue Harbor Coffee Co.", and either is a right reading of it.
    return " ".join(said.split()).casefold() == " ".join(truth.split()).casefold()


def _same_amount(said: float, truth: float) -> bool:
    return abs(said - truth) <= AMOUNT_TOLERANCE


def _same_line(said: dict, truth: dict) -> bool:
    return (
        _same_text(said["description"], truth["description"])
        and _same_amount(said["quantity"], truth["quantity"])
        and _same_amount(said["unit_price"], truth["unit_price"])
    )


def compare_answer(answer: dict, reference: dict) -> list[str]:
    """The fields on which a schema-valid answer disagrees with the reference label.

    vendor: equal ignoring case and spacing. invoice_number, date, currency: equal after
    trimming, and case counts in the number because an identifier is looked up as
    printed. total: within AMOUNT_TOLERANCE. line_items: one field, wrong unless the
    lists have the same length and agree line by line, in order (descriptions as vendor,
    numbers as total); minimal-correction pairs then replace the whole list.
    """
    wrong = []
    if not _same_text(answer["vendor"], reference["vendor"]):
        wrong.append("vendor")
    for name in ("invoice_number", "date", "currency"):
        if answer[name].strip() != reference[name]:
            wrong.append(name)
    said_lines, true_lines = answer["line_items"], reference["line_items"]
    if len(said_lines) != len(true_lines) or not all(
        _same_line(said, truth) for said, truth in zip(said_lines, true_lines)
    ):
        wrong.append("line_items")
    if not _same_amount(answer["total"], reference["total"]):
        wrong.append("total")
    return wrong


def _digits_swapped(number: str) -> list[str]:
    # The last two adjacent different digits swapped: a number copied by hand.
    for match in reversed(list(re.finditer(r"(?=(\d)(\d))", number))):
        first, second = match.groups()
        if first != second:
            at = match.start()
            return [number[:at] + second + first + number[at + 2:]]
    return []


def plausible_wrong_values(field: str, answer: dict) -> list:
    """What a careless reader of the document writes instead, for `one_wrong_field`
    pairs: the customer billed for the vendor, the due date for the issue date (every
    layout prints both), another currency, the invoice number with two digits swapped.
    Numbers and line items get theirs by rule (datagen/pairs/axis_rejections.py)."""
    if field == "vendor":
        return list(CUSTOMERS)
    if field == "currency":
        return sorted({currency.code for currency in CURRENCIES})
    if field == "invoice_number":
        return _digits_swapped(answer["invoice_number"])
    if field == "date":
        try:
            issued = datetime.date.fromisoformat(answer["date"])
        except ValueError:  # fits the schema's pattern but is no day (2024-02-30): no due date to give
            return []
        return [(issued + terms).isoformat() for terms in PAYMENT_TERMS]
    return []


TASK = Task(
    name="invoice_extraction",
    version="1",
    answer_schema=InvoiceAnswer,
    system_prompt=SYSTEM_PROMPT,
    few_shot=FEW_SHOT,
    generate=generate_invoices,
    compare=compare_answer,
    plausible_wrong_values=plausible_wrong_values,
    field_rules=(FieldRule("date", "date as YYYY-MM-DD"), FieldRule("currency", "currency as 3 capitals")),
    # Generated answers are 202-565 characters rendered (median 371, 2,000 invoices, seed
    # 1); a teacher's indented JSON of five lines runs longer.
    max_answer_chars=1200,
)
