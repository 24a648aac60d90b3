"""Demo task: triage a customer-support ticket into one JSON object.

Input: a customer's message. Output: `category`, `priority`, `order_id`, `product`,
`needs_human`, `summary` (at most 20 words). The labelling rules (which category wins in
a mixed-intent ticket, what raises priority, when a human is needed) live with the
generator in `support_triage_tickets.py`; the system prompt states them to the teacher
so that a capable teacher can get them right.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datagen.foundation.task import FieldRule, Task
from datagen.tasks import support_triage_rules
from datagen.tasks.support_triage_tickets import generate_tickets

Category = Literal[
    "shipping_delay",
    "refund_request",
    "damaged_item",
    "wrong_item",
    "account_access",
    "billing_error",
    "product_question",
    "cancellation",
]
Priority = Literal["low", "normal", "high", "urgent"]
MAX_SUMMARY_WORDS = 20


class TriageAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category
    priority: Priority
    order_id: str | None = Field(pattern=r"^A-\d{6}$")
    product: str | None
    needs_human: bool
    summary: str = Field(min_length=1)

    @field_validator("summary")
    @classmethod
    def _summary_is_short(cls, summary: str) -> str:
        words = len(summary.split())
        if words > MAX_SUMMARY_WORDS:
            raise ValueError(f"summary has {words} words, at most {MAX_SUMMARY_WORDS} allowed")
        return summary


SYSTEM_PROMPT = """\
You triage customer-support tickets. Reply with exactly one JSON object and nothing else, \
with these keys:
- "category": one of shipping_delay, refund_request, damaged_item, wrong_item, \
account_access, billing_error, product_question, cancellation. If the ticket has two \
intents, pick the earlier in that order of precedence: account_access, billing_error, \
damaged_item, wrong_item, refund_request, cancellation, shipping_delay, product_question.
- "priority": one of low, normal, high, urgent. urgent: a safety hazard, a hacked account \
or unauthorized purchases, or a chargeback or legal threat. high: damaged or wrong item, \
billing error, account access, an angry customer, a deadline, or repeated contact. low: a \
plain product question. Otherwise normal.
- "order_id": the order id as written (like A-482913), or null.
- "product": the product named in the ticket, or null.
- "needs_human": true if priority is urgent, the category is refund_request, \
billing_error or damaged_item, or the customer asks for a person; otherwise false.
- "summary": one sentence of at most 20 words."""

# The fine-tuned model's system turn: the keys and their allowed values, not the rules,
# which it learns from the rows. (With the keys alone, 15 SFT steps taught the JSON
# format, 39 of 40 gold rows parsing, but categories were invented: 4 of 40 valid.)
TRAINED_SYSTEM_PROMPT = (
    "Triage the customer-support ticket. Reply with one JSON object with the keys category "
    "(shipping_delay, refund_request, damaged_item, wrong_item, account_access, billing_error, "
    "product_question or cancellation), priority (low, normal, high or urgent), order_id (or null), "
    "product (or null), needs_human (true or false) and summary (at most 20 words)."
)

FEW_SHOT = (
    (
        "Hi, my order A-204518 with the wireless earbuds was supposed to arrive last week "
        "and tracking hasn't moved. Any update?",
        {
            "category": "shipping_delay",
            "priority": "normal",
            "order_id": "A-204518",
            "product": "wireless earbuds",
            "needs_human": False,
            "summary": "Customer asks why the wireless earbuds order has not arrived.",
        },
    ),
    (
        "I was charged twice for the same desk lamp!! Fix this or I'm filing a chargeback.",
        {
            "category": "billing_error",
            "priority": "urgent",
            "order_id": None,
            "product": "desk lamp",
            "needs_human": True,
            "summary": "Customer was charged twice for a desk lamp and threatens a chargeback.",
        },
    ),
    (
        "Does the standing desk come with a cable tray?",
        {
            "category": "product_question",
            "priority": "low",
            "order_id": None,
            "product": "standing desk",
            "needs_human": False,
            "summary": "Customer asks whether the standing desk includes a cable tray.",
        },
    ),
)

_EXACT_FIELDS = ("category", "priority", "order_id", "needs_human")


def _normalize_product(product: str | None) -> str | None:
    return None if product is None else re.sub(r"\s+", " ", product).strip().casefold()


def compare_answer(answer: dict, reference: dict) -> list[str]:
    """The fields on which a schema-valid answer disagrees with the reference label.

    category, priority, order_id and needs_human must match exactly. product matches when
    both are null or, ignoring case and spacing, one contains the other ("earbuds" for
    "wireless earbuds"): the name is free text, and a shorter correct mention is right.
    summary is free text, checked only by the schema's length rule.
    """
    wrong = [name for name in _EXACT_FIELDS if answer[name] != reference[name]]
    said, truth = _normalize_product(answer["product"]), _normalize_product(reference["product"])
    if (said is None) != (truth is None) or (
        said is not None and said not in truth and truth not in said
    ):
        wrong.append("product")
    return wrong


TASK = Task(
    name="support_triage",
    version="3",  # 2: training rows carry TRAINED_SYSTEM_PROMPT; 3: lessons dealt per rule, order-id decoys
    answer_schema=TriageAnswer,
    system_prompt=SYSTEM_PROMPT,
    trained_system_prompt=TRAINED_SYSTEM_PROMPT,
    few_shot=FEW_SHOT,
    generate=generate_tickets,
    compare=compare_answer,
    input_description="a message that a customer sends to an online shop's support team",
    # One per category, in the customer's terms: self-generation asks for each in turn,
    # so the share of kept inputs per topic shows which categories collapse.
    judge_rubric=(
        "Judge only what code cannot check: category, priority, order_id and needs_human are "
        "verified elsewhere. The summary must state the customer's actual request and its key "
        "facts (what happened, to which product, what they want) as the ticket gives them, add "
        "nothing the ticket does not say (no invented causes, amounts, dates or promises), and be "
        "one plain sentence of at most 20 words with no greeting or filler. The product must be "
        "named as the customer names it (\"desk lamp\", not \"lighting product\" or a brand the "
        "ticket never mentions), or be null when the ticket names none. 9-10: faithful, complete, "
        "concise, product named right. 5-8: faithful but wordy or vague, one key fact missing, or "
        "the product over-generalised. 1-4: the summary says something the ticket does not, "
        "misses the request, or names the wrong product."
    ),
    topics=(
        "a parcel that is late or has not arrived",
        "wanting their money back for something they returned or do not want",
        "an item that arrived broken or damaged",
        "receiving the wrong item, size or colour",
        "not being able to log in to their account",
        "being charged the wrong amount or charged twice",
        "a question about a product before buying it",
        "cancelling an order or a subscription",
    ),
    # The 135M teacher often answers as the shop instead of writing as the customer.
    self_instruct_rejected_phrases=("your order", "your package", "your account", "assist you", "help you with",
                                    "sorry for the inconvenience", "sorry for any", "I'm here to help"),
    field_rules=(FieldRule("summary", f"summary ≤ {MAX_SUMMARY_WORDS} words"),),
    labelling_rules=support_triage_rules.RULES,
    rules_of=support_triage_rules.rules_of,
    max_answer_chars=600,  # a complete answer is ~250-350 characters
)
