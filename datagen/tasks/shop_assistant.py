"""Tool calling: answer an online shop's customer with a call to one of six tools.

Input: a customer's message. Output: one call, `{"name": <tool>, "arguments": {...}}`, to
one of the tools in `TOOLS` (OpenAI's format): `lookup_order`, `track_shipment`,
`cancel_order`, `issue_refund`, `update_address` or `escalate_to_human`. The generator
renders the messages of `shop_assistant_requests.py` with
`datagen.generation.template_generator`, and the label is the call built from the drawn slots.

Verified by code (`datagen/foundation/tool_calls.py`): the answer schema holds the name to the
six tools and the arguments to the named tool's JSON schema (a missing or undeclared
argument, an amount of 0, an order number of the wrong shape are `schema_invalid`), and
`compare_answer` names `name` for the wrong tool and `arguments` for any argument that is
not the label's, except `escalate_to_human`'s `summary`, free text in the model's words.
"""

from __future__ import annotations

from dataclasses import dataclass

from datagen.foundation.task import Task
from datagen.foundation.tool_calls import call_schema, compare_calls
from datagen.generation.template_generator import generate_from_templates
from datagen.tasks.shop_assistant_requests import (
    CANCEL_REASONS,
    CITIES,
    PRIORITIES,
    REFUND_REASONS,
    TEMPLATES,
    VOCABULARY,
    call_for,
)

ORDER_ID = {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{5}$"}
TEXT = {"type": "string", "minLength": 1}


def _tool(name: str, description: str, properties: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}}}


TOOLS = (
    _tool("lookup_order", "Look up what an order contains and what the customer paid for it.",
          {"order_id": ORDER_ID}),
    _tool("track_shipment", "Track an order's parcel: where it is and when it will arrive.", {"order_id": ORDER_ID}),
    _tool("cancel_order", "Cancel an order before it ships.",
          {"order_id": ORDER_ID, "reason": {"type": "string", "enum": list(CANCEL_REASONS)}}),
    _tool("issue_refund", "Refund the price of one item of an order.",
          {"order_id": ORDER_ID, "amount": {"type": "number", "exclusiveMinimum": 0, "description": "in euros"},
           "reason": {"type": "string", "enum": list(REFUND_REASONS)}}),
    _tool("update_address", "Change where an order is delivered.",
          {"order_id": ORDER_ID, "street": TEXT, "city": TEXT, "postcode": TEXT,
           "country": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2"}}),
    _tool("escalate_to_human", "Hand the customer to a person: complaints, legal or safety matters, double "
          "charges, anything no other tool does.",
          {"summary": TEXT | {"description": "the problem in one sentence"},
           "priority": {"type": "string", "enum": list(PRIORITIES)}}),
)
ToolCall = call_schema(TOOLS)
# Arguments whose wording the label cannot know: only the schema holds them.
FREE_TEXT_ARGUMENTS = {"escalate_to_human": ("summary",)}

SYSTEM_PROMPT = """\
You are an online shop's customer service assistant. Answer each customer message with a \
call to exactly one of the tools below: reply with one JSON object and nothing else, \
{"name": "<tool name>", "arguments": {<the tool's arguments>}}.
- Copy order numbers exactly as written (two capital letters, a dash, five digits).
- lookup_order is for what an order holds or cost; track_shipment for where it is or when \
it arrives.
- issue_refund's amount is the price of the item to refund, never the order's total.
- country is the ISO 3166 two-letter code: Germany is DE, the United Kingdom GB.
- Complaints, legal or safety matters and double charges go to escalate_to_human, with a \
one-sentence summary; priority is urgent for a legal threat, a safety hazard or money \
taken twice, else normal."""

# The chat a trained model sees: its rules are learnt from the rows (`Task.trained_system_prompt`).
TRAINED_SYSTEM_PROMPT = ("You are an online shop's customer service assistant. Answer with a call to one tool, "
                         'as one JSON object: {"name": ..., "arguments": {...}}.')

FEW_SHOT = (
    ("Hi, how much did I pay for order QD-20417?", {"name": "lookup_order", "arguments": {"order_id": "QD-20417"}}),
    ("The toaster in order MB-77310 arrived broken. It cost €39.90 of the €52.40 I paid; please refund it.",
     {"name": "issue_refund", "arguments": {"order_id": "MB-77310", "amount": 39.9, "reason": "damaged"}}),
    ("My card was charged twice for one order, please fix this now.",
     {"name": "escalate_to_human",
      "arguments": {"summary": "The customer's card was charged twice for one order.", "priority": "urgent"}}),
)


@dataclass(frozen=True)
class GeneratedRequest:
    text: str  # the customer's message
    label: dict  # the right call, in ToolCall's shape
    template_id: str  # "<tool>/<phrasing>"


def generate_requests(count: int, seed: int) -> list[GeneratedRequest]:
    """`count` labelled messages, phrasings dealt evenly over the six tools; the same
    (count, seed) always gives the same list."""
    return [GeneratedRequest(message.text, call_for(message.template_id, message.slots), message.template_id)
            for message in generate_from_templates(TEMPLATES, VOCABULARY, count, seed)]


def compare_answer(answer: dict, reference: dict) -> list[str]:
    return compare_calls(answer, reference, FREE_TEXT_ARGUMENTS)


def _digits_swapped(order_id: str) -> str | None:
    # The last two different adjacent digits swapped: a number copied by hand.
    for at in range(len(order_id) - 2, 2, -1):
        if order_id[at] != order_id[at + 1] and order_id[at].isdigit() and order_id[at + 1].isdigit():
            return order_id[:at] + order_id[at + 1] + order_id[at] + order_id[at + 2:]
    return None


# An argument a model adds that its tool does not declare, borrowed from how shops work.
HALLUCINATED = {
    "lookup_order": ("include_items", True), "track_shipment": ("carrier", "DHL"),
    "cancel_order": ("refund", True), "issue_refund": ("currency", "EUR"),
    "update_address": ("save_as_default", True), "escalate_to_human": ("channel", "phone"),
}


def plausible_wrong_values(field: str, answer: dict) -> list:
    """For `arguments`, argument sets a careless model writes (`wrong_arguments` pairs,
    datagen/pairs/axis_rejections.py, which makes missing arguments and other enum values by
    rule): the order number with two digits swapped, the refund amount misread, another
    city, an argument the tool does not have. Another tool's name comes by rule."""
    if field != "arguments":
        return []
    arguments = answer["arguments"]
    made = []
    if "order_id" in arguments and (swapped := _digits_swapped(arguments["order_id"])):
        made.append(dict(arguments, order_id=swapped))
    if "amount" in arguments:
        made += [dict(arguments, amount=round(arguments["amount"] + 1, 2)),
                 dict(arguments, amount=round(arguments["amount"] * 10, 2))]
    if "city" in arguments:
        made += [dict(arguments, city=city) for city, *_ in CITIES if city != arguments["city"]]
    name, value = HALLUCINATED[answer["name"]]
    made.append(dict(arguments, **{name: value}))
    return made


TASK = Task(
    name="shop_assistant",
    version="1",
    answer_schema=ToolCall,
    system_prompt=SYSTEM_PROMPT,
    trained_system_prompt=TRAINED_SYSTEM_PROMPT,
    few_shot=FEW_SHOT,
    generate=generate_requests,
    compare=compare_answer,
    plausible_wrong_values=plausible_wrong_values,
    tools=TOOLS,
    # Generated answers are 63-157 characters rendered (2,000 messages, seed 1); a teacher's
    # indented JSON runs longer.
    max_answer_chars=400,
)

