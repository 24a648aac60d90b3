"""Rule-based generator of customer-support tickets with ground-truth triage labels.

Output: `GeneratedTicket(text, label, template_id)`, where `label` has exactly the keys
category, priority, order_id, product, needs_human, summary (the answer schema of
`support_triage.py`). `generate_tickets(count, seed)` is seeded with its own
`random.Random(seed)`, so the same (count, seed) gives the same tickets in any process.

How a ticket is built: categories are dealt round-robin (each block of eight is a
shuffled permutation, so 40 tickets cover every category five times). Each category then
deals its tickets the lessons they teach, from three plans of its own, each dealt in
shuffled rounds like the categories: the signal (`SIGNAL_PLANS`: a hazard, hacked account,
threat, anger, deadline, repeated contact, asking for a person, or none), whether an
"aside" of a lower-precedence category follows the body (`MIXED_PLAN`, a mixed-intent
ticket), and how the order is referred to (`ORDER_PLANS`: a valid id, a decoy that is not
one, or no id). Dealt, not drawn by chance, so that every labelling rule
(`support_triage_rules.py`) is exercised by a known number of rows: any 48k tickets
(k rounds of every plan) give each rule at least 2k rows, 144 tickets at least 6. Then a
body template of the category is drawn (one that names an order when the lesson is an id
or a decoy, one that names a product when it is a hazard), an optional greeting and
sign-off, and for ~20% of tickets 1-3 typos. The phrasings live in `support_triage_vocab.py`.

Labelling rules; the label follows from what the text says:

- category: the ticket's primary intent. A mixed ticket's category is whichever of its two
  intents comes first in CATEGORY_PRECEDENCE: account_access > billing_error >
  damaged_item > wrong_item > refund_request > cancellation > shipping_delay >
  product_question.
- priority: base low for product_question, normal otherwise, raised to the highest that
  applies. urgent: a safety hazard (smoke, sparks, burning smell, overheating, injury), a
  compromised account (hacked, unauthorized login or purchases), or a chargeback or legal
  threat. high: the category or the secondary intent is damaged_item, wrong_item,
  billing_error or account_access; an angry tone; a deadline; or repeated contact.
- needs_human: priority urgent, or category refund_request, billing_error or damaged_item,
  or the customer asks for a person (manager, human, real person).
- order_id: "A-" and six digits exactly as in the text, or None. Two in five tickets of a
  category other than account_access carry an id, one in five a decoy (`a-390172`,
  `A 390172`, `A-39017`, `#390172`, `PO-390172`: GUIDELINES.md step 4's invalid ids, so
  null); the others say "my order" or "the order I placed on March 3", or name no order.
  Dates, amounts and phone numbers are distractors, never ids. account_access tickets
  mention an order only when they are about a purchase, one in six with an id.
- product: the product name exactly as in the text, or None when no product is named.
  A ticket names at most one product.
- summary: a reference summary of at most 20 words: the body's summary, the aside's
  tail ("; also asks about the warranty"), and the gravest urgent signal if any.

Typos (swap, drop or duplicate a letter) touch only lowercase words of four or more
letters, never the order id, the product name or a signal sentence, so the label's values
and the signals that set priority stay verbatim in the text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from datagen.generation.template_generator import dealt_evenly
from datagen.tasks import support_triage_vocab as vocab
from datagen.tasks.support_triage_vocab import TicketTemplate

CATEGORY_PRECEDENCE = (
    "account_access", "billing_error", "damaged_item", "wrong_item", "refund_request",
    "cancellation", "shipping_delay", "product_question",
)
CATEGORIES = CATEGORY_PRECEDENCE
PRIORITIES = ("low", "normal", "high", "urgent")
HIGH_PRIORITY_CATEGORIES = frozenset(
    {"damaged_item", "wrong_item", "billing_error", "account_access"}
)
NEEDS_HUMAN_CATEGORIES = frozenset({"refund_request", "billing_error", "damaged_item"})
LABEL_KEYS = ("category", "priority", "order_id", "product", "needs_human", "summary")
MAX_SUMMARY_WORDS = 20  # the answer schema's limit (support_triage.TriageAnswer)

# Shares of tickets that teach no rule: how a ticket looks, not what its label is.
TYPO_SHARE = 0.2
GREETING_SHARE = 0.5
SIGN_OFF_SHARE = 0.45

# The signal each ticket of a category carries, dealt in shuffled rounds of six. Where a
# signal reads naturally: a hazard needs an electrical product in hand; a hacked account is
# only told as an account problem (told in a billing ticket it would blur the two
# categories); a deadline needs something still to arrive; nobody threatens a chargeback
# over a pre-sale question. Signals that change the label are favoured: anger, deadlines and
# repeated contact on the categories they raise to high, asking for a person where the
# category alone would not call for a human. A third of each round carries no signal, so
# plain tickets (low questions, normal cancellations) stay common. One round of every
# category (48 tickets) gives each priority and needs_human rule at least two rows.
SIGNAL_PLANS = {
    "account_access": (None, "account_compromised", "account_compromised", "asks_for_person", "legal_threat",
                       "repeat_contact"),
    "billing_error": (None, None, "legal_threat", "angry", "repeat_contact", "asks_for_person"),
    "damaged_item": (None, None, "safety_hazard", "safety_hazard", "legal_threat", "deadline"),
    "wrong_item": (None, None, "asks_for_person", "asks_for_person", "legal_threat", "deadline"),
    "refund_request": (None, None, "safety_hazard", "legal_threat", "angry", "repeat_contact"),
    "cancellation": (None, None, "asks_for_person", "angry", "repeat_contact", "legal_threat"),
    "shipping_delay": (None, None, "deadline", "asks_for_person", "repeat_contact", "legal_threat"),
    "product_question": (None, None, "safety_hazard", "deadline", "angry", "asks_for_person"),
}
# One ticket in four of a category with a lower one gets an aside (category precedence).
MIXED_PLAN = (True, False, False, False)
# How the order is referred to: "id" (a valid id), "decoy" (an id-like string that is not
# one) or "none" (no id; "my order", or no order at all).
ORDER_PLANS = {category: ("id", "id", "decoy", "none", "none") for category in CATEGORIES}
ORDER_PLANS["account_access"] = ("id", "none", "none", "none", "none", "none")  # rarely about a purchase

# Redraws per ticket before accepting a text that was already generated: distinct texts
# are best-effort, since a terse template with few slots has few possible renderings.
MAX_REDRAWS = 20
TYPO_WORD = re.compile(r"\b[a-z]{4,}\b")


@dataclass(frozen=True)
class GeneratedTicket:
    text: str  # the customer message
    label: dict  # ground truth, keys exactly LABEL_KEYS
    template_id: str  # "<category>/<phrasing>", or "<body>+<aside>" for a mixed ticket


@dataclass(frozen=True)
class TicketSignals:
    """What the text says beyond its intents; each flag is one signal sentence."""

    safety_hazard: bool = False
    account_compromised: bool = False
    legal_threat: bool = False  # a chargeback or legal action
    angry: bool = False
    deadline: bool = False
    repeat_contact: bool = False
    asks_for_person: bool = False


def primary_category(intents: list[str]) -> str:
    """The intent that comes first in CATEGORY_PRECEDENCE."""
    return min(intents, key=CATEGORY_PRECEDENCE.index)


def priority_for(category: str, secondary: str | None, signals: TicketSignals) -> str:
    if signals.safety_hazard or signals.account_compromised or signals.legal_threat:
        return "urgent"
    if (
        {category, secondary} & HIGH_PRIORITY_CATEGORIES
        or signals.angry
        or signals.deadline
        or signals.repeat_contact
    ):
        return "high"
    return "low" if category == "product_question" else "normal"


def needs_human_for(category: str, priority: str, asks_for_person: bool) -> bool:
    return priority == "urgent" or category in NEEDS_HUMAN_CATEGORIES or asks_for_person


def add_typos(text: str, protected: tuple[str, ...], typo_count: int, rng: random.Random) -> str:
    """Misspell `typo_count` distinct words of `text` (fewer if it has fewer candidates).

    A candidate is a lowercase word of at least four letters outside every occurrence of
    the `protected` strings. Each gets one swap of two different adjacent letters, one
    dropped letter, or one doubled letter.
    """
    guarded = [
        (found.start(), found.end())
        for phrase in protected
        for found in re.finditer(re.escape(phrase), text)
    ]
    candidates = [
        word
        for word in TYPO_WORD.finditer(text)
        if not any(word.start() < end and start < word.end() for start, end in guarded)
    ]
    chosen = rng.sample(candidates, min(typo_count, len(candidates)))
    # Replace from the end so earlier spans keep their offsets.
    for word in sorted(chosen, key=lambda w: w.start(), reverse=True):
        text = text[: word.start()] + misspell(word.group(), rng) + text[word.end() :]
    return text


def misspell(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # "double", or a swap of two equal letters


def draw_slots(rng: random.Random, electrical: bool, order: str) -> tuple[dict[str, str], str | None]:
    """Slot values for every placeholder, and the order id if the {order} phrase has one
    (`order` "id"), a decoy ("decoy": an id-like reference that is not an id) or neither."""
    slots = {
        "product": rng.choice(vocab.ELECTRICAL_PRODUCTS if electrical else vocab.PRODUCTS),
        "delay": rng.choice(vocab.DELAYS),
        "date": rng.choice(vocab.DATES),
        "order_date": rng.choice(vocab.DATES),  # drawn apart from {date}: a ticket may name both
        "amount": rng.choice(vocab.AMOUNTS),
        "country": rng.choice(vocab.COUNTRIES),
        "wrong_thing": rng.choice(vocab.WRONG_THINGS),
        "day": rng.choice(vocab.DEADLINE_DAYS),
        "occasion": rng.choice(vocab.OCCASIONS),
        "name": rng.choice(vocab.NAMES),
        "phone": rng.choice(vocab.PHONE_NUMBERS),
    }
    order_id = None
    if order == "id":
        order_id = f"A-{rng.randint(100000, 999999)}"
        slots["order"] = rng.choice(vocab.ORDER_ID_PHRASES).format(order_id=order_id)
    elif order == "decoy":
        slots["order"] = rng.choice(vocab.ORDER_DECOY_PHRASES).format(
            digits=rng.randint(100000, 999999), five=rng.randint(10000, 99999))
    else:
        slots["order"] = rng.choice(vocab.ORDER_PHRASES_WITHOUT_ID).format(**slots)
    return slots, order_id


@dataclass(frozen=True)
class Lesson:
    """What one ticket is dealt to teach: its signal, whether it has a second intent, and how
    it refers to the order."""

    signal: str | None  # a TicketSignals flag, or None
    mixed: bool
    order: str  # "id", "decoy" or "none"


def draw_aside(category: str, rng: random.Random) -> TicketTemplate | None:
    """A second intent of lower precedence than `category` (None for the lowest category)."""
    lower = [
        aside
        for aside in vocab.ASIDE_TEMPLATES
        if CATEGORY_PRECEDENCE.index(aside.category) > CATEGORY_PRECEDENCE.index(category)
    ]
    return rng.choice(lower) if lower else None


def draw_body(category: str, lesson: Lesson, rng: random.Random) -> TicketTemplate:
    """A body of `category` that can carry the lesson: one naming the order for an id or a
    decoy, one naming a product for a hazard."""
    bodies = [t for t in vocab.BODY_TEMPLATES if t.category == category]
    if lesson.order != "none":
        bodies = [t for t in bodies if "{order}" in t.text]
    if lesson.signal == "safety_hazard":
        bodies = [t for t in bodies if "{product}" in t.text]
    if not bodies:
        raise ValueError(f"no {category} body can teach {lesson}: fix SIGNAL_PLANS or ORDER_PLANS")
    return rng.choice(bodies)


def signal_sentences(
    signals: TicketSignals, slots: dict[str, str], rng: random.Random
) -> list[str]:
    sentences_by_flag = (
        (signals.safety_hazard, vocab.HAZARD_SENTENCES),
        (signals.account_compromised, vocab.COMPROMISE_SENTENCES),
        (signals.legal_threat, vocab.THREAT_SENTENCES),
        (signals.angry, vocab.ANGRY_SENTENCES),
        (signals.deadline, vocab.DEADLINE_SENTENCES),
        (signals.repeat_contact, vocab.REPEAT_CONTACT_SENTENCES),
        (signals.asks_for_person, vocab.ASK_FOR_PERSON_SENTENCES),
    )
    return [
        rng.choice(sentences).format(**slots)
        for present, sentences in sentences_by_flag
        if present
    ]


def reference_summary(
    body: TicketTemplate,
    aside: TicketTemplate | None,
    signals: TicketSignals,
    slots: dict[str, str],
) -> str:
    """Body summary, the aside's tail, and the gravest urgent signal if there is one."""
    summary = body.summary.format(**slots) + (aside.summary.format(**slots) if aside else "") + "."
    if signals.safety_hazard:
        summary += " Reports a safety hazard."
    elif signals.account_compromised:
        summary += " Suspects a hacked account."
    elif signals.legal_threat:
        summary += " Threatens chargeback or lawsuit."
    words = len(summary.split())
    assert words <= MAX_SUMMARY_WORDS, f"{body.template_id}: summary of {words} words: {summary!r}"
    return summary


def compose_ticket(category: str, lesson: Lesson, rng: random.Random) -> GeneratedTicket:
    body = draw_body(category, lesson, rng)
    aside = draw_aside(category, rng) if lesson.mixed else None
    # A hazard is told of a product with a plug, which the ticket names.
    slots, order_id = draw_slots(rng, body.electrical or lesson.signal == "safety_hazard", lesson.order)
    phrasings = [body] + ([aside] if aside else [])
    names_product = any("{product}" in t.text for t in phrasings)
    shows_order = "{order}" in body.text  # asides never mention the order by id
    signals = TicketSignals(**({lesson.signal: True} if lesson.signal else {}))

    sentences = [t.text.format(**slots) for t in phrasings]
    # Signal sentences go anywhere after the body: hazards say "it" for the product.
    extras = signal_sentences(signals, slots, rng)
    for extra in extras:
        sentences.insert(rng.randint(1, len(sentences)), extra)
    lines = [" ".join(sentences)]
    if rng.random() < GREETING_SHARE:
        lines.insert(0, rng.choice(vocab.GREETINGS))
    if rng.random() < SIGN_OFF_SHARE:
        lines.append(rng.choice(vocab.SIGN_OFFS).format(**slots))
    text = "\n".join(lines)

    product = slots["product"] if names_product else None
    order_id = order_id if shows_order else None
    if rng.random() < TYPO_SHARE:
        protected = tuple(value for value in (product, order_id) if value) + tuple(extras)
        text = add_typos(text, protected, rng.randint(1, 3), rng)

    secondary = aside.category if aside else None
    primary = primary_category([t.category for t in phrasings])  # the body's: see draw_aside
    priority = priority_for(primary, secondary, signals)
    label = {
        "category": primary,
        "priority": priority,
        "order_id": order_id,
        "product": product,
        "needs_human": needs_human_for(primary, priority, signals.asks_for_person),
        "summary": reference_summary(body, aside, signals, slots),
    }
    template_id = body.template_id + (f"+{aside.template_id}" if aside else "")
    return GeneratedTicket(text=text, label=label, template_id=template_id)


def lessons_of(category: str, count: int, rng: random.Random) -> list[Lesson]:
    """`count` lessons for tickets of `category`, each plan dealt in its own shuffled rounds."""
    signals = dealt_evenly(SIGNAL_PLANS[category], count, rng)
    has_lower = category != CATEGORY_PRECEDENCE[-1]
    mixed = dealt_evenly(MIXED_PLAN, count, rng) if has_lower else [False] * count
    orders = dealt_evenly(ORDER_PLANS[category], count, rng)
    return [Lesson(*lesson) for lesson in zip(signals, mixed, orders)]


def generate_tickets(count: int, seed: int) -> list[GeneratedTicket]:
    """`count` labelled tickets; the same (count, seed) always gives the same list."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    tickets: list[GeneratedTicket] = []
    seen: set[str] = set()
    # Categories dealt in shuffled blocks of eight, so any 8k tickets are balanced; then each
    # category's lessons from its own plans, so its every k rounds teach each lesson k times.
    categories = dealt_evenly(CATEGORIES, count, rng)
    lessons = {category: iter(lessons_of(category, categories.count(category), rng)) for category in CATEGORIES}
    for category in categories:
        lesson = next(lessons[category])
        ticket = compose_ticket(category, lesson, rng)
        for _ in range(MAX_REDRAWS):
            if ticket.text not in seen:
                break
            ticket = compose_ticket(category, lesson, rng)
        seen.add(ticket.text)
        tickets.append(ticket)
    return tickets
