"""The customer messages `shop_assistant.py` generates, and the call each one needs.

Templates are Jinja2 for `datagen.generation.template_generator`, with ids
`<tool>/<phrasing>`: the tool is the label's, and `call_for` builds the arguments from
the drawn slots, never from the text. Rules that keep the right call knowable from the
message alone:
- an order number is printed once, as it must be copied (two letters, a dash, five digits);
- a refund message prints the item's price and the order's total, and asks for the item:
  the amount is the item's price (the total is the plausible wrong amount);
- a cancellation or refund gives one reason, phrased so that it fits one enum value only;
- an address names the country, whose ISO code is the argument;
- an escalation carries no order number, and is urgent exactly when it is a legal threat,
  a safety hazard or money taken twice;
- asking what an order holds or cost is `lookup_order`, asking where it is or when it
  comes is `track_shipment`.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from datagen.generation.template_generator import Template

CANCEL_REASONS = ("ordered_by_mistake", "changed_mind", "found_cheaper", "delivery_too_slow")
REFUND_REASONS = ("damaged", "wrong_item", "missing_item", "late_delivery")
PRIORITIES = ("normal", "urgent")


@dataclass(frozen=True)
class Reason:
    phrase: str
    value: str  # the enum value the phrase means


@dataclass(frozen=True)
class Refund:
    item: str
    price: float
    total: float  # the order's total, the item's price and what else was in it
    reason: Reason


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    postcode: str
    country: str  # as the customer writes it
    code: str  # ISO 3166-1 alpha-2, the argument


@dataclass(frozen=True)
class Complaint:
    text: str
    summary: str  # a reference summary; the verifier does not compare the wording
    priority: str


CANCELLATIONS = (
    Reason("I ordered it by mistake", "ordered_by_mistake"),
    Reason("I clicked buy twice by accident", "ordered_by_mistake"),
    Reason("I changed my mind", "changed_mind"),
    Reason("I don't need it anymore", "changed_mind"),
    Reason("I found it cheaper in another shop", "found_cheaper"),
    Reason("another store sells it for less", "found_cheaper"),
    Reason("the delivery estimate is far too long", "delivery_too_slow"),
    Reason("it won't arrive before I leave on holiday", "delivery_too_slow"),
)
REFUND_REASON_PHRASES = (
    Reason("arrived broken", "damaged"),
    Reason("came with a deep crack in it", "damaged"),
    Reason("is not what I ordered", "wrong_item"),
    Reason("came in the wrong colour", "wrong_item"),
    Reason("was missing from the box", "missing_item"),
    Reason("never came, although the rest of the order did", "missing_item"),
    Reason("arrived two weeks after the promised date", "late_delivery"),
    Reason("came so late that I had to buy another one", "late_delivery"),
)
ITEMS = ("desk lamp", "kettle", "yoga mat", "phone case", "wool scarf", "coffee grinder", "backpack",
         "bluetooth speaker", "picture frame", "cutting board", "rain jacket", "water bottle")
CITIES = (  # (city, postcodes, country as written, code)
    ("Berlin", ("10115", "10247", "12043"), "Germany", "DE"),
    ("Leeds", ("LS1 4AB", "LS6 2QT", "LS11 5DR"), "the United Kingdom", "GB"),
    ("Lyon", ("69002", "69007", "69100"), "France", "FR"),
    ("Utrecht", ("3511 AB", "3581 KP", "3521 CD"), "the Netherlands", "NL"),
    ("Porto", ("4000-123", "4050-262", "4150-051"), "Portugal", "PT"),
    ("Austin", ("78701", "78704", "78745"), "the United States", "US"),
)
STREETS = ("12 Mill Lane", "Hauptstrasse 7", "4 Rue Mercière", "Oudegracht 210", "Rua das Flores 31",
           "801 Congress Avenue", "27 Station Road", "Kastanienallee 19")
COMPLAINTS = (
    Complaint("Your courier was incredibly rude to my elderly mother at the door.",
              "The courier was rude to the customer's mother at delivery.", "normal"),
    Complaint("Your website keeps logging me out at checkout and I've wasted an hour.",
              "The website keeps logging the customer out at checkout.", "normal"),
    Complaint("I'd like to give some feedback: your parcels use far too much plastic.",
              "Feedback that the parcels use too much plastic.", "normal"),
    Complaint("Nobody has answered my three emails about a warranty question.",
              "Three emails about a warranty question went unanswered.", "normal"),
    Complaint("I've been charged twice for the same order and my account is now overdrawn.",
              "The customer was charged twice for one order.", "urgent"),
    Complaint("The heater I bought from you started smoking and nearly caught fire.",
              "A heater bought from the shop started smoking: a fire risk.", "urgent"),
    Complaint("If this isn't sorted out by Friday I'm handing the matter to my lawyer.",
              "The customer threatens legal action.", "urgent"),
    Complaint("The charger you sold me gave my son an electric shock.",
              "A charger from the shop gave the customer's son an electric shock.", "urgent"),
)


def order_id(rng: random.Random) -> str:
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(2))
    return f"{letters}-{rng.randrange(10_000, 100_000)}"


def refund(rng: random.Random) -> Refund:
    price = rng.randrange(499, 12_000) / 100
    others = rng.randrange(300, 9_000) / 100
    return Refund(rng.choice(ITEMS), price, round(price + others, 2), rng.choice(REFUND_REASON_PHRASES))


def address(rng: random.Random) -> Address:
    city, postcodes, country, code = rng.choice(CITIES)
    return Address(rng.choice(STREETS), city, rng.choice(postcodes), country, code)


VOCABULARY = {
    "order_id": order_id,
    "cancellation": CANCELLATIONS,
    "refund": refund,
    "address": address,
    "complaint": COMPLAINTS,
    "greeting": ("", "Hi! ", "Hello. ", "Good morning. "),
}

TEMPLATES = (
    Template("lookup_order/1", "{{ greeting }}What exactly is in my order {{ order_id }}? I can't remember what "
             "I bought."),
    Template("lookup_order/2", "{{ greeting }}How much did I pay for order {{ order_id }}?"),
    Template("lookup_order/3", "{{ greeting }}Can you list the items in order {{ order_id }} please"),
    Template("track_shipment/1", "{{ greeting }}Where is my parcel? It's order {{ order_id }}."),
    Template("track_shipment/2", "{{ greeting }}When will order {{ order_id }} arrive? I need it by the weekend."),
    Template("track_shipment/3", "{{ greeting }}can i get the tracking for {{ order_id }}"),
    Template("cancel_order/1", "{{ greeting }}Please cancel order {{ order_id }}, {{ cancellation.phrase }}."),
    Template("cancel_order/2", "{{ greeting }}{{ cancellation.phrase | capitalize }}, so I'd like to cancel "
             "{{ order_id }} before it ships."),
    Template("issue_refund/1", "{{ greeting }}The {{ refund.item }} in order {{ order_id }} "
             "{{ refund.reason.phrase }}. It cost €{{ '%.2f' | format(refund.price) }} of the "
             "€{{ '%.2f' | format(refund.total) }} I paid; please refund it."),
    Template("issue_refund/2", "{{ greeting }}Order {{ order_id }} (total €{{ '%.2f' | format(refund.total) }}): the "
             "{{ refund.item }} (€{{ '%.2f' | format(refund.price) }}) {{ refund.reason.phrase }}. I want my "
             "money back for it."),
    Template("update_address/1", "{{ greeting }}Please ship order {{ order_id }} to {{ address.street }}, "
             "{{ address.postcode }} {{ address.city }}, {{ address.country }} instead."),
    Template("update_address/2", "{{ greeting }}I've moved! The new address for {{ order_id }} is "
             "{{ address.street }}, {{ address.city }} {{ address.postcode }}, {{ address.country }}."),
    Template("escalate_to_human/1", "{{ greeting }}{{ complaint.text }}"),
    Template("escalate_to_human/2", "{{ greeting }}{{ complaint.text }} I want to talk to a real person."),
)


def call_for(template_id: str, slots: dict) -> dict:
    """The right call for a message rendered from `template_id` with `slots`."""
    tool = template_id.split("/")[0]
    if tool in ("lookup_order", "track_shipment"):
        arguments = {"order_id": slots["order_id"]}
    elif tool == "cancel_order":
        arguments = {"order_id": slots["order_id"], "reason": slots["cancellation"].value}
    elif tool == "issue_refund":
        drawn = slots["refund"]
        arguments = {"order_id": slots["order_id"], "amount": drawn.price, "reason": drawn.reason.value}
    elif tool == "update_address":
        drawn = slots["address"]
        arguments = {"order_id": slots["order_id"], "street": drawn.street, "city": drawn.city,
                     "postcode": drawn.postcode, "country": drawn.code}
    else:
        arguments = {"summary": slots["complaint"].summary, "priority": slots["complaint"].priority}
    return {"name": tool, "arguments": arguments}
