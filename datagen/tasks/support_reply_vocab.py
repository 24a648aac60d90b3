"""The tickets `support_reply.py` generates, the house reply to each, and what it must say.

An issue has two or more ticket phrasings (Jinja2 templates for
`datagen.generation.template_generator`, template ids "<issue>/<number>"), one reply
rendered from the same slot values, and the terms that reply must mention for the issue's
next step: the house rules (`support_reply.py`'s system prompt) say what happens next for
each kind of ticket, and these terms are how code tells whether a reply said it.

Slots: `customer` (first and full name, email), `order` (an order id), `product`, `pair`
(two different products: ordered and sent), `damage`, `days`, `amount`, `fact` (a
product question with its answer and the term that answer must hold).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from datagen.generation.template_generator import Template

BANNED_PHRASES = ("we apologize for any inconvenience", "unfortunately", "as per our policy", "valued customer",
                  "kindly")
MAX_WORDS = 80
SIGN_OFF = "— Juniper Support"
SIGN_OFF_PATTERN = r"Juniper Support\s*$"


@dataclass(frozen=True)
class Customer:
    first: str
    last: str

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def email(self) -> str:
        return f"{self.first.lower()}.{self.last.lower()}@example.com"


@dataclass(frozen=True)
class Product:
    name: str


@dataclass(frozen=True)
class ProductFact:
    product: str
    question: str
    answer: str  # one or two sentences in the house voice
    term: str  # what a right answer must mention


FIRST_NAMES = ("Maya", "Tomás", "Aisha", "Jonas", "Priya", "Liam", "Sofia", "Kenji", "Nora", "Dmitri", "Grace",
               "Mateo", "Yara", "Oliver", "Hana", "Felix")
LAST_NAMES = ("Lindqvist", "Okafor", "Moreau", "Brennan", "Castillo", "Nakamura", "Schultz", "Haddad", "Kowalski",
              "Fernandes", "Abbott", "Lund")
PRODUCTS = tuple(Product(name) for name in (
    "wireless earbuds", "standing desk", "desk lamp", "hiking backpack", "coffee grinder", "yoga mat",
    "ceramic teapot", "phone case", "office chair", "bluetooth speaker", "wool blanket", "water bottle"))
DAMAGE = ("cracked", "with a dented side", "in pieces", "with a broken hinge", "scratched all over")
FACTS = (
    ProductFact("standing desk", "Does the standing desk come with a cable tray?",
                "It does: a cable tray ships in the box and screws to the underside of the desk.", "cable tray"),
    ProductFact("wireless earbuds", "Are the wireless earbuds waterproof?",
                "They're rated IPX4, which means splash-resistant: rain and sweat are fine, a swim is not.",
                "splash-resistant"),
    ProductFact("desk lamp", "Can the desk lamp be dimmed?",
                "It can: tap the base to step through its five brightness levels.", "brightness"),
    ProductFact("hiking backpack", "How much does the hiking backpack hold?",
                "Its main compartment takes 28 litres, plus two side pockets for bottles.", "28 litres"),
    ProductFact("coffee grinder", "Is the coffee grinder fine enough for espresso?",
                "Yes: its finest grind settings are made for espresso machines.", "espresso"),
    ProductFact("yoga mat", "How thick is the yoga mat?",
                "It's 6 mm, thick enough to cushion your knees and still roll up small.", "6 mm"),
)


def _customer(rng: random.Random) -> Customer:
    return Customer(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))


def _order(rng: random.Random) -> str:
    return f"A-{rng.randrange(100000, 1000000)}"


def _pair(rng: random.Random) -> tuple[Product, Product]:
    ordered, sent = rng.sample(PRODUCTS, 2)
    return ordered, sent


def _amount(rng: random.Random) -> str:
    return f"${rng.randrange(900, 25000) / 100:.2f}"


VOCABULARY = {
    "customer": _customer,
    "order": _order,
    "product": PRODUCTS,
    "pair": _pair,
    "damage": DAMAGE,
    "days": (6, 8, 9, 11, 12, 14),
    "amount": _amount,
    "fact": FACTS,
}

_FROM = "From: {{ customer.full }}\n"
_ORDER = "Order: {{ order }}\n"


@dataclass(frozen=True)
class Issue:
    name: str
    tickets: tuple[str, ...]  # Jinja2; each names the slots `reply` and `must_mention` use
    reply: str  # Jinja2: the house reply, ending with SIGN_OFF
    must_mention: tuple[str, ...]  # Jinja2 terms the reply must hold, all of them
    fields: tuple[tuple[str, str], ...] = ()  # (field, Jinja2 value): ticket fields the reply must name
    has_order: bool = True


ISSUES = (
    Issue("damaged_item", (
        _FROM + _ORDER + "Subject: {{ product.name }} arrived broken\n\nHi, the {{ product.name }} I ordered arrived "
        "{{ damage }}. Not happy.",
        _FROM + _ORDER + "Subject: Damaged delivery\n\nMy {{ product.name }} came today and it's {{ damage }}. "
        "What can you do?",
    ), "Hi {{ customer.first }},\n\nThank you for telling us, and sorry that order {{ order }} reached you "
       "{{ damage }}. A replacement {{ product.name }} leaves our warehouse today, free, and you can keep or recycle "
       "the old one.\n\n" + SIGN_OFF,
        ("replacement",)),
    Issue("wrong_item", (
        _FROM + _ORDER + "Subject: Wrong item\n\nI ordered the {{ pair[0].name }} but the box had a "
        "{{ pair[1].name }} in it.",
        _FROM + _ORDER + "Subject: Not what I ordered\n\nOpened my parcel and found a {{ pair[1].name }} instead of "
        "the {{ pair[0].name }}. Please sort this out.",
    ), "Hi {{ customer.first }},\n\nOur packing team mixed up order {{ order }}, sorry about that. Your "
       "{{ pair[0].name }} goes out today. Please send the {{ pair[1].name }} back with the free return label in "
       "your inbox.\n\n" + SIGN_OFF,
        ("return label", "{{ pair[0].name }}")),
    Issue("shipping_delay", (
        _FROM + _ORDER + "Subject: Where is my order?\n\nIt's been {{ days }} days and my order still hasn't arrived. "
        "The tracking page hasn't changed since Monday.",
        _FROM + _ORDER + "Subject: Late delivery\n\nI ordered the {{ product.name }} {{ days }} days ago and it's "
        "still not here. Any news?",
    ), "Hi {{ customer.first }},\n\nSorry for the wait on order {{ order }}. The carrier has it at a depot, and "
       "we've pushed them to move it; expect fresh news on the tracking page by tomorrow. Still nothing in three "
       "working days? We'll ship another at our cost.\n\n" + SIGN_OFF,
        ("tracking",)),
    Issue("refund_request", (
        _FROM + _ORDER + "Subject: Refund for my return\n\nI sent back the {{ product.name }} last week. When will I "
        "get my {{ amount }} back?",
        _FROM + _ORDER + "Subject: Money back please\n\nThe {{ product.name }} isn't for me and I've returned it. "
        "Please refund the {{ amount }}.",
    ), "Hi {{ customer.first }},\n\nYour returned {{ product.name }} is back with us, so we've sent the refund "
       "for order {{ order }}: {{ amount }}. Banks usually show it within a week.\n\n" + SIGN_OFF,
        ("refund",), (("amount", "{{ amount }}"),)),
    Issue("account_access", (
        "From: {{ customer.full }} <{{ customer.email }}>\nSubject: Can't log in\n\nI've tried resetting my password "
        "three times and the email never comes.",
        "From: {{ customer.full }} <{{ customer.email }}>\nSubject: Locked out\n\nMy account got locked after too many "
        "tries. Can you help me get back in?",
    ), "Hi {{ customer.first }},\n\nYour account is open again. A fresh reset link is waiting at "
       "{{ customer.email }}; use it within a day, and look in spam if it hides.\n\n" + SIGN_OFF,
        ("reset link",), (("email", "{{ customer.email }}"),), has_order=False),
    Issue("billing_error", (
        _FROM + _ORDER + "Subject: Charged twice\n\nMy card was charged {{ amount }} twice for this order. Please "
        "fix this.",
        _FROM + _ORDER + "Subject: Double charge\n\nI see two payments of {{ amount }} on my statement for the "
        "{{ product.name }}. I only ordered once!",
    ), "Hi {{ customer.first }},\n\nThanks for flagging it. Our system took {{ amount }} twice for order "
       "{{ order }}, and we've refunded the duplicate; your bank should show it within a week.\n\n" + SIGN_OFF,
        ("refunded",), (("amount", "{{ amount }}"),)),
    Issue("product_question", (
        _FROM + "Subject: Question about the {{ fact.product }}\n\n{{ fact.question }}",
        _FROM + "Subject: Before I buy\n\nQuick question before I order: {{ fact.question }} Thanks!",
    ), "Hi {{ customer.first }},\n\nHappy to help. {{ fact.answer }} Write back any time with more questions."
       "\n\n" + SIGN_OFF,
        ("{{ fact.term }}",), has_order=False),
    Issue("cancellation", (
        _FROM + _ORDER + "Subject: Cancel my order\n\nPlease cancel this order, I ordered the {{ product.name }} by "
        "mistake.",
        _FROM + _ORDER + "Subject: Change of mind\n\nI no longer need the {{ product.name }}. Can you cancel it before "
        "it ships?",
    ), "Hi {{ customer.first }},\n\nNo problem. We stopped order {{ order }} before it left us, so it's cancelled "
       "and nothing will be charged for the {{ product.name }}.\n\n" + SIGN_OFF,
        ("cancelled",)),
)

TICKET_TEMPLATES = tuple(Template(f"{issue.name}/{number}", ticket)
                         for issue in ISSUES for number, ticket in enumerate(issue.tickets, 1))
ISSUES_BY_NAME = {issue.name: issue for issue in ISSUES}
