"""The layouts and slot vocabularies that `invoice_extraction.py` renders invoices from.

Layouts are Jinja2 templates for `datagen.generation.template_generator`. Every layout names the
slots the label comes from (vendor, invoice_number, issue_date, date_format, currency,
items) and some distractors: a customer's name beside the vendor's, PO, VAT, account,
card and phone numbers beside the invoice number, a due date beside the issue date.

Rules that keep the label knowable from the text alone:
- a date is printed only in formats no reader can misread: ISO, year-first, or with the
  month's name (never 03/04/2024, which is March or April depending on the country);
- `$` always means USD, and every other currency is printed as its symbol or its code;
- prices are whole cents and fractional quantities (hours) only go with whole-unit rates,
  so every line amount and the total are exact cents, printed as they are labelled;
- vendors and customers are different lists, and no invoice number looks like a PO
  ("PO-"), account ("ACC-") or VAT number.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from decimal import Decimal

from datagen.generation.template_generator import Template


@dataclass(frozen=True)
class Currency:
    code: str  # ISO 4217, the label's value
    pattern: str  # how an amount is printed, e.g. "€{:,.2f}"

    def show(self, amount: Decimal) -> str:
        return self.pattern.format(amount)


@dataclass(frozen=True)
class LineItem:
    description: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price


CURRENCIES = (
    Currency("USD", "${:,.2f}"),
    Currency("USD", "USD {:,.2f}"),
    Currency("EUR", "€{:,.2f}"),
    Currency("EUR", "{:,.2f} EUR"),
    Currency("GBP", "£{:,.2f}"),
    Currency("CHF", "CHF {:,.2f}"),
)
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y")

VENDORS = (
    "Northwind Traders", "Blue Harbor Coffee Co.", "Kestrel Office Supply", "Alder & Finch Ltd",
    "Meridian Print Works", "Copperleaf Catering", "Summit IT Services GmbH", "Lumen Electrical",
    "Harbourside Hardware", "Orchard Lane Bakery", "Vantage Cloud Consulting", "Greenway Florists",
)
CUSTOMERS = (
    "Contoso Ltd", "Fabrikam Inc.", "Tailspin Toys", "Wingtip Partners", "Litware Labs",
    "Proseware Health", "Adatum Logistics", "Woodgrove Dental",
)
# (description, unit price, sold by the hour): hourly rates are whole units so that half
# hours still make exact cents. No description has a comma: the email layout lists
# "description, quantity at price each", where a comma would blur the quantity.
CATALOG = (
    ("A4 copy paper (500 sheets)", "6.49", False), ("Ballpoint pens (box of 12)", "4.25", False),
    ("Toner cartridge TN-245", "79.90", False), ("Ethiopian coffee beans 1kg", "24.50", False),
    ("Oat milk 1L", "2.35", False), ("Paper cups 12oz (sleeve of 50)", "8.99", False),
    ("USB-C docking station", "189.00", False), ("27-inch monitor", "249.99", False),
    ("LED panel 60x60", "42.75", False), ("Extension lead 4-way", "12.60", False),
    ("Business cards (250)", "35.00", False), ("Tulip bouquet", "18.40", False),
    ("Sourdough loaf", "5.20", False), ("Catering platter (serves 10)", "96.00", False),
    ("On-site support", "95.00", True), ("Cloud migration consulting", "150.00", True),
    ("Electrician labour", "68.00", True), ("Graphic design", "80.00", True),
)
ADDRESSES = (
    "14 Harbour Road, Bristol BS1 4QA", "221 Market Street, Suite 300, Denver, CO 80202",
    "Hauptstrasse 88, 8001 Zurich", "9 Rue des Lilas, 75011 Paris",
    "3/17 Quay Street, Galway H91 X2F4", "1200 Lakeshore Blvd, Chicago, IL 60601",
)
PHONES = ("+44 117 496 0321", "(303) 555-0148", "+41 44 668 18 00", "+33 1 84 88 21 07",
          "555-0192", "+1 312 555 0135")
CONTACTS = ("Priya", "Tom", "Ms Okafor", "Mr Lindqvist", "Accounts Payable", "Dana")
NUMBER_LABELS = ("Invoice #", "Inv #", "Invoice No.", "Invoice Number:", "Invoice no:")
DATE_LABELS = ("Date:", "Invoice date:", "Issued:", "Date of issue:")
TOTAL_LABELS = ("TOTAL", "Total due", "Amount due", "Invoice total")
PAYMENT_TERMS = tuple(datetime.timedelta(days=days) for days in (14, 30, 45))
FIRST_DAY, LAST_DAY = datetime.date(2023, 1, 1), datetime.date(2025, 12, 31)


def invoice_number(rng: random.Random) -> str:
    return rng.choice(("INV-{y}-{n:04d}", "{y}/{n:05d}", "NW{n:06d}", "R-{n:07d}")).format(
        y=rng.randint(2023, 2025), n=rng.randint(1, 99999)
    )


def issue_date(rng: random.Random) -> datetime.date:
    return FIRST_DAY + datetime.timedelta(days=rng.randint(0, (LAST_DAY - FIRST_DAY).days))


def line_items(rng: random.Random) -> list[LineItem]:
    """One to five lines of different products; hourly lines may be half hours."""
    items = []
    for description, price, hourly in rng.sample(CATALOG, rng.randint(1, 5)):
        quantity = Decimal(rng.randint(1, 16)) / 2 if hourly else Decimal(rng.randint(1, 12))
        items.append(LineItem(description, quantity, Decimal(price)))
    return items


VOCABULARY = {
    "vendor": VENDORS,
    "customer": CUSTOMERS,
    "contact": CONTACTS,
    "address": ADDRESSES,
    "phone": PHONES,
    "invoice_number": invoice_number,
    "issue_date": issue_date,
    "date_format": DATE_FORMATS,
    "payment_terms": PAYMENT_TERMS,
    "currency": CURRENCIES,
    "items": line_items,
    "number_label": NUMBER_LABELS,
    "date_label": DATE_LABELS,
    "total_label": TOTAL_LABELS,
    "po_number": lambda rng: f"PO-{rng.randint(10000, 99999)}",
    "account": lambda rng: f"ACC-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
    "vat_id": lambda rng: f"VAT {rng.choice(('GB', 'DE', 'FR'))}{rng.randint(100000000, 999999999)}",
    "card_digits": lambda rng: f"{rng.randint(0, 9999):04d}",
}

# Shared first lines: the total is summed once, dates are printed in the drawn format.
_PRELUDE = """\
{% set total = items|sum(attribute="amount") %}
{% set date = issue_date.strftime(date_format) %}
{% set due = (issue_date + payment_terms).strftime(date_format) %}
"""

LAYOUTS = (
    Template("table", _PRELUDE + """\
{{ vendor }}
{{ address }}
Tel: {{ phone }}    {{ vat_id }}

INVOICE
{{ number_label }} {{ invoice_number }}
{{ date_label }} {{ date }}
Due: {{ due }}
Bill to: {{ customer }}
Your ref: {{ po_number }}

{{ "%-30s %5s %12s %12s"|format("Description", "Qty", "Unit price", "Amount") }}
{% for item in items %}
{{ "%-30s %5s %12s %12s"|format(item.description, item.quantity, currency.show(item.unit_price), currency.show(item.amount)) }}
{% endfor %}

{{ total_label }}: {{ currency.show(total) }}
"""),
    Template("bill_to_first", _PRELUDE + """\
Bill to:
{{ customer }}
Account {{ account }}

{{ date_label }} {{ date }}
{{ number_label }} {{ invoice_number }}
Payment terms: net {{ payment_terms.days }} days (due {{ due }})

From {{ vendor }}, {{ address }}, phone {{ phone }}

{% for item in items %}
* {{ item.description }}: {{ item.quantity }} x {{ currency.show(item.unit_price) }} = {{ currency.show(item.amount) }}
{% endfor %}
{{ total_label }} {{ currency.show(total) }}
"""),
    Template("receipt", _PRELUDE + """\
{{ vendor|upper }}
{{ address }}
TEL {{ phone }}
RECEIPT {{ invoice_number }}
{{ date }}
{% for item in items %}
{{ item.description|upper }}
  {{ item.quantity }} @ {{ "%.2f"|format(item.unit_price) }}{{ "%12.2f"|format(item.amount) }}
{% endfor %}
TOTAL {{ currency.code }} {{ "%.2f"|format(total) }}
CARD ****{{ card_digits }}
THANK YOU - KEEP THIS RECEIPT
"""),
    Template("email", _PRELUDE + """\
Subject: Invoice {{ invoice_number }} from {{ vendor }}

Hello {{ contact }},

please find below our invoice {{ invoice_number }} dated {{ date }} for your order {{ po_number }}.

{% for item in items %}
{{ loop.index }}. {{ item.description }}, {{ item.quantity }} at {{ currency.show(item.unit_price) }} each
{% endfor %}

The total of {{ currency.show(total) }} is due by {{ due }}. Questions? Call {{ phone }}.

Kind regards,
{{ vendor }} accounts team
"""),
    Template("key_value", _PRELUDE + """\
Supplier: {{ vendor }}
Customer: {{ customer }} ({{ account }})
{{ number_label }} {{ invoice_number }}
{{ date_label }} {{ date }}
Currency: {{ currency.code }}

Qty | Item | Unit price | Line total
{% for item in items %}
{{ item.quantity }} | {{ item.description }} | {{ "%.2f"|format(item.unit_price) }} | {{ "%.2f"|format(item.amount) }}
{% endfor %}
{{ total_label }}: {{ "%.2f"|format(total) }}
"""),
)
