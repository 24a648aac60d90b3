"""The words and phrasings that `support_triage_tickets.py` assembles tickets from.

Three kinds of text live here:

- slot vocabularies (products, names, delays, amounts, dates, ...), filled into templates;
- ticket templates: one body per phrasing of a category, plus "asides" that add a second,
  lower-precedence intent to a body (the mixed-intent tickets);
- signal sentences, each of which raises priority or calls for a human, with the
  keywords that identify it. No template, aside, greeting, sign-off or slot value may
  contain a signal keyword (tests/test_support_triage_tickets.py checks this), so a
  keyword in a ticket's text always means its signal was drawn, and the label can be
  recomputed from the text alone.

Templates are `str.format` patterns. Slots: {product}, {order} (a noun phrase that may or
may not carry an order id), {delay}, {date}, {amount}, {country}, {wrong_thing}; signal
sentences also use {day} and {occasion}; sign-offs use {name} and {phone}. A summary must
stay short enough that body summary + aside tail + one flag is at most 20 words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TicketTemplate:
    template_id: str  # "<category>/<phrasing>", stable: it is recorded with every example
    text: str
    summary: str  # for a body, a sentence without the final period; for an aside, a tail
    electrical: bool = False  # the phrasing only makes sense for a product with a plug

    @property
    def category(self) -> str:
        return self.template_id.split("/")[0]


# --- slot vocabularies ---------------------------------------------------------------

# Hazard sentences ("it threw sparks") need a product with a plug, so products are split.
ELECTRICAL_PRODUCTS = (
    "espresso machine", "wireless earbuds", "standing desk", "air fryer", "robot vacuum",
    "electric kettle", "desk lamp", "bluetooth speaker", "smart watch", "coffee grinder",
    "space heater", "stand mixer", "hair dryer", "baby monitor", "gaming keyboard",
    "electric toothbrush", "camping lantern", "ceiling fan",
)
NON_ELECTRICAL_PRODUCTS = (
    "office chair", "laptop stand", "cast-iron skillet", "dinner set", "bookshelf",
    "bike helmet", "water filter", "phone case",
)
PRODUCTS = ELECTRICAL_PRODUCTS + NON_ELECTRICAL_PRODUCTS

NAMES = (
    "Maria", "Tom", "Priya", "James", "Aisha", "Daniel", "Chen", "Sofia", "Kwame", "Laura",
    "Mateo", "Hannah", "Omar", "Grace", "Yuki", "Liam", "Fatima", "Ben", "Elena", "Raj",
)
# Distractor numbers: none of these may look like an order id (A- and six digits).
PHONE_NUMBERS = (
    "555-0142", "(212) 555-0187", "+44 20 7946 0958", "555 013 4477", "(415) 555-0199",
    "0412 555 019", "555-0176", "+1 312 555 0110",
)
AMOUNTS = (
    "$49.99", "$129.00", "$18.50", "$249.95", "$89.99", "$12.40", "$399.00", "$64.25",
    "£35.00", "€79.90",
)
DELAYS = (
    "two weeks", "ten days", "over a month", "three weeks", "a week", "five days",
    "nearly three weeks", "almost a month",
)
DATES = (
    "March 3", "April 18", "May 29", "June 2", "July 14", "August 9", "September 21",
    "October 5", "November 30", "December 12",
)
COUNTRIES = ("Canada", "the UK", "Germany", "Australia", "Mexico", "Ireland", "Japan")
WRONG_THINGS = (
    "a bag of dog treats", "a kids' puzzle", "a pair of socks", "a set of bath towels",
    "an empty box", "someone else's shoes", "a ream of printer paper",
)
DEADLINE_DAYS = ("Friday", "Saturday", "this weekend", "next Monday", "the 14th", "Christmas Eve")
OCCASIONS = (
    "my daughter's birthday", "a wedding", "our anniversary", "a work trip",
    "my son's graduation", "a family party",
)

# {order} is one of these. About 60% of tickets get an id; the rest say "my order" or
# refer to it by date, a number the model must not mistake for an id. No relative dates
# ("last Tuesday"): they would contradict a template's "{delay} ago".
ORDER_ID_PHRASES = (
    "order {order_id}", "order #{order_id}", "order number {order_id}",
    "my order {order_id}", "my order ({order_id})",
)
ORDER_PHRASES_WITHOUT_ID = (
    "my order", "my recent order", "my last order", "the order I placed on {order_date}",
    "my order from {order_date}",
)
# Decoys: an order reference that is not a valid id (A- and exactly six digits, as written),
# so the label's order_id is null. GUIDELINES.md step 4's own examples: a lowercase a, no
# hyphen, a space, five digits, a bare number, another kind of reference. {digits} is six
# digits, {five} five; no decoy may contain "A-" and six digits (tests check the text).
ORDER_DECOY_PHRASES = (
    "order a-{digits}", "order A{digits}", "order A {digits}", "order A-{five}", "order #{digits}",
    "order number {digits}", "pre-order PO-{digits}",
)

GREETINGS = (
    "Hi,", "Hello,", "Hi there,", "Dear support team,", "Hey,", "Good morning,",
    "To whom it may concern,",
)
SIGN_OFFS = (
    "Thanks,\n{name}", "Thank you!", "Regards,\n{name}", "- {name}", "Cheers,\n{name}",
    "Thanks, {name}\n{phone}", "You can reach me on {phone} if that's easier.",
    "Sent from my iPhone",
)

# --- body templates, at least six per category ----------------------------------------

BODY_TEMPLATES = (
    # shipping_delay
    TicketTemplate(
        "shipping_delay/where-is-it",
        "Where is {order}? It should have arrived {delay} ago.",
        "Customer asks where their overdue order is",
    ),
    TicketTemplate(
        "shipping_delay/tracking-stuck",
        "The tracking for {order} hasn't moved in {delay}. It just says \"in transit\". "
        "Can you check on my {product}?",
        "Customer's {product} shipment is stuck in transit",
    ),
    TicketTemplate(
        "shipping_delay/still-no-product",
        "Still no {product}. Ordered it {delay} ago.",
        "Customer's {product} has not arrived after {delay}",
    ),
    TicketTemplate(
        "shipping_delay/estimate-passed",
        "The estimated delivery date for {order} was {date} and nothing has shown up yet. "
        "Could you tell me when to expect it?",
        "Customer's order missed its estimated delivery date",
    ),
    TicketTemplate(
        "shipping_delay/marked-delivered",
        "Tracking says {order} was delivered on {date}, but there's nothing at my door "
        "and my neighbours haven't seen it either.",
        "Order shows delivered but the customer never received it",
    ),
    TicketTemplate(
        "shipping_delay/express-not-dispatched",
        "I paid for express shipping on the {product} and it's now been {delay}. According "
        "to the tracking page the package hasn't even left the warehouse. I'm not sure what "
        "is going on. Could you look into {order}, please?",
        "Express-shipped {product} still not dispatched after {delay}",
    ),
    TicketTemplate(
        "shipping_delay/any-update",
        "Any update on {order}? Haven't heard anything since I paid.",
        "Customer asks for an update on an undelivered order",
    ),
    # refund_request
    TicketTemplate(
        "refund_request/not-as-expected",
        "I'd like to return the {product} from {order} and get a refund. It just isn't what "
        "I expected.",
        "Customer wants to return the {product} for a refund",
    ),
    TicketTemplate(
        "refund_request/refund-not-received",
        "I sent the {product} back {delay} ago and still haven't seen the refund of "
        "{amount} on my card.",
        "Customer's {amount} refund for the returned {product} has not arrived",
    ),
    TicketTemplate(
        "refund_request/terse",
        "Refund please for {order}. Don't need it anymore.",
        "Customer requests a refund for an unneeded order",
    ),
    TicketTemplate(
        "refund_request/price-drop",
        "I bought the {product} for {amount} and a week later it's on sale for much less. "
        "Can I get the difference refunded?",
        "Customer asks for a price-difference refund on the {product}",
    ),
    TicketTemplate(
        "refund_request/still-boxed",
        "Is it too late to return {order}? I'd like my money back for the {product}, "
        "it's still in the box.",
        "Customer wants a refund for the unopened {product}",
    ),
    TicketTemplate(
        "refund_request/unwanted-gift",
        "The {product} in {order} was meant as a gift, but the recipient already has one. "
        "It's unopened. Could you please tell me how to send it back and get a refund to "
        "my original payment method? Thank you.",
        "Customer wants a refund for an unopened gift {product}",
    ),
    TicketTemplate(
        "refund_request/credit-or-refund",
        "Could I get store credit or a refund for the {product}? I've decided it isn't "
        "for me.",
        "Customer asks for a refund or credit for the {product}",
    ),
    # damaged_item
    TicketTemplate(
        "damaged_item/arrived-cracked",
        "The {product} in {order} arrived cracked. Can you send a replacement?",
        "Customer's {product} arrived cracked; wants a replacement",
    ),
    TicketTemplate(
        "damaged_item/stopped-working",
        "My {product} stopped working after {delay}. It won't turn on at all anymore.",
        "Customer's {product} stopped working after {delay}",
        electrical=True,
    ),
    TicketTemplate(
        "damaged_item/crushed-box",
        "The box for {order} was crushed when it arrived and the {product} inside is dented and "
        "scratched. Not happy.",
        "Customer's {product} arrived dented and scratched",
    ),
    TicketTemplate(
        "damaged_item/broken-part",
        "Part of the {product} was snapped off when I opened {order}. Photos attached.",
        "Customer's {product} arrived with a broken part",
    ),
    TicketTemplate(
        "damaged_item/long-crack",
        "Sorry to bother you. I unpacked the {product} from {order} this morning and "
        "noticed a long crack down the side. I haven't used it yet. I'd prefer a "
        "replacement if possible.",
        "Customer's {product} has a crack; prefers a replacement",
    ),
    TicketTemplate(
        "damaged_item/in-pieces",
        "Got the {product} today. In pieces.",
        "Customer's {product} arrived in pieces",
    ),
    TicketTemplate(
        "damaged_item/cuts-out",
        "The {product} from {order} only runs for a few minutes and then cuts out. Pretty "
        "sure it's defective.",
        "Customer's {product} cuts out after minutes; likely defective",
        electrical=True,
    ),
    # wrong_item
    TicketTemplate(
        "wrong_item/something-else",
        "I ordered the {product} but the box for {order} had {wrong_thing} in it.",
        "Customer ordered the {product} but received something else",
    ),
    TicketTemplate(
        "wrong_item/wrong-colour",
        "The {product} I received in {order} is the wrong colour. I ordered black, this is "
        "bright pink.",
        "Customer received the {product} in the wrong colour",
    ),
    TicketTemplate(
        "wrong_item/wrong-model",
        "You sent me the wrong model of {product}. The invoice for {order} clearly says "
        "the pro version.",
        "Customer received the wrong model of {product}",
    ),
    TicketTemplate(
        "wrong_item/not-mine",
        "This isn't what I bought. Got {wrong_thing} instead of my {product}.",
        "Customer received the wrong item instead of the {product}",
    ),
    TicketTemplate(
        "wrong_item/other-label",
        "The package for {order} has somebody else's name on the label and it's not my "
        "{product}.",
        "Customer received another customer's package, not the {product}",
    ),
    TicketTemplate(
        "wrong_item/wrong-size",
        "Ordered the large {product}, got the small one.",
        "Customer received the wrong size of {product}",
    ),
    TicketTemplate(
        "wrong_item/paragraph",
        "I opened {order} today expecting the {product} I paid for, but instead there was "
        "{wrong_thing}. I've kept everything in the original packaging. How do I get the "
        "right item sent to me?",
        "Customer got the wrong item instead of the {product}",
    ),
    # account_access: no product, and an order only when the ticket is about a purchase
    TicketTemplate(
        "account_access/reset-email-missing",
        "I can't log in. The password reset email never arrives, I've checked spam.",
        "Customer cannot log in; password reset email never arrives",
    ),
    TicketTemplate(
        "account_access/locked-out",
        "My account got locked after too many login attempts. How do I unlock it?",
        "Customer's account is locked after too many login attempts",
    ),
    TicketTemplate(
        "account_access/two-factor",
        "I got a new phone and now I can't get the two-factor code to sign in.",
        "Customer lost two-factor codes after changing phones",
    ),
    TicketTemplate(
        "account_access/old-email",
        "I don't have access to the email address on my account anymore, so I can't sign "
        "in. Can you update it?",
        "Customer cannot sign in; needs account email updated",
    ),
    TicketTemplate(
        "account_access/terse",
        "Can't log in. Help.",
        "Customer cannot log in",
    ),
    TicketTemplate(
        "account_access/check-order",
        "I can't log in to check the status of {order}. It keeps saying my password is "
        "wrong even after resetting it.",
        "Customer cannot log in to check on an order",
    ),
    TicketTemplate(
        "account_access/deactivated",
        "My account says it has been deactivated and I don't know why. I had store credit "
        "on it.",
        "Customer's account was deactivated unexpectedly",
    ),
    # billing_error
    TicketTemplate(
        "billing_error/double-charge",
        "I was charged twice for {order}, two charges of {amount} on my statement.",
        "Customer was charged {amount} twice for one order",
    ),
    TicketTemplate(
        "billing_error/above-listed-price",
        "The {product} was listed at {amount} but I was charged more than that for {order}.",
        "Customer was charged above the listed price for the {product}",
    ),
    TicketTemplate(
        "billing_error/billed-after-cancelling",
        "I ended my subscription on {date} but was still billed {amount} this month.",
        "Customer billed {amount} after ending their subscription",
    ),
    TicketTemplate(
        "billing_error/discount-missing",
        "My discount code didn't apply to {order}, so I paid full price for the {product}. "
        "Please fix the charge.",
        "Customer's discount code was not applied to the {product}",
    ),
    TicketTemplate(
        "billing_error/shipping-fee",
        "I was charged {amount} for shipping on {order} even though it was over the "
        "free-shipping threshold.",
        "Customer was wrongly charged {amount} for shipping",
    ),
    TicketTemplate(
        "billing_error/terse",
        "Charged twice. {amount} x2. Fix please.",
        "Customer reports a duplicate {amount} charge",
    ),
    TicketTemplate(
        "billing_error/statement-mismatch",
        "I've been looking at my bank statement and there's a charge of {amount} from you "
        "on {date} that doesn't match what I bought. My only purchase was {order}, which "
        "cost less than that. Could you explain the difference?",
        "Customer sees a {amount} charge that does not match their purchase",
    ),
    # cancellation
    TicketTemplate(
        "cancellation/no-longer-needed",
        "Please cancel {order}. I don't need it anymore.",
        "Customer asks to cancel an order they no longer need",
    ),
    TicketTemplate(
        "cancellation/ordered-by-mistake",
        "I ordered the {product} by mistake. Can you cancel it before it ships?",
        "Customer ordered the {product} by mistake; wants it cancelled",
    ),
    TicketTemplate(
        "cancellation/found-cheaper",
        "Found the {product} cheaper elsewhere, please cancel {order}.",
        "Customer wants to cancel the {product} after finding it cheaper",
    ),
    TicketTemplate(
        "cancellation/ordered-twice",
        "I accidentally ordered the {product} twice. Please cancel the extra one.",
        "Customer ordered the {product} twice; wants one cancelled",
    ),
    TicketTemplate(
        "cancellation/subscription",
        "How do I cancel my coffee bean subscription? I can't find the option anywhere.",
        "Customer wants to cancel their subscription",
    ),
    TicketTemplate(
        "cancellation/if-not-shipped",
        "Circumstances have changed and I won't be needing the {product} after all. If "
        "{order} hasn't shipped yet, could you cancel it? If it has, let me know what to do.",
        "Customer wants to cancel the {product} if not yet shipped",
    ),
    TicketTemplate(
        "cancellation/terse",
        "Cancel {order} please.",
        "Customer asks to cancel an order",
    ),
    # product_question
    TicketTemplate(
        "product_question/warranty",
        "Does the {product} come with a warranty? If so, how long is it?",
        "Customer asks whether the {product} has a warranty",
    ),
    TicketTemplate(
        "product_question/works-abroad",
        "Is the {product} okay to use in {country}? I'm moving there next month.",
        "Customer asks if the {product} works in {country}",
    ),
    TicketTemplate(
        "product_question/restock",
        "When will the {product} be back in stock?",
        "Customer asks when the {product} will be restocked",
    ),
    TicketTemplate(
        "product_question/dimensions",
        "What are the exact dimensions and weight of the {product}? I want to make sure it "
        "will fit.",
        "Customer asks for the {product} dimensions and weight",
    ),
    TicketTemplate(
        "product_question/ship-abroad",
        "Do you ship to {country}, and how long does it usually take?",
        "Customer asks about shipping to {country}",
    ),
    TicketTemplate(
        "product_question/gift-wrap",
        "Can I still add gift wrapping to {order}? It's the {product} for my mum.",
        "Customer asks to add gift wrapping to the {product}",
    ),
    TicketTemplate(
        "product_question/cleaning",
        "Quick question: what's the best way to clean the {product}?",
        "Customer asks how to clean the {product}",
    ),
    TicketTemplate(
        "product_question/colours",
        "Does the {product} come in other colours?",
        "Customer asks which colours the {product} comes in",
    ),
)

# --- asides: a second intent appended to a body (mixed-intent tickets) ----------------
# No account_access aside: it heads the precedence list, so it can never be secondary.
# Tails are at most five words: body summary (<= 11) + tail + flag (<= 4) <= 20 words.

ASIDE_TEMPLATES = (
    TicketTemplate(
        "billing_error/aside-double-charge",
        "Also, I think I was charged twice for my last order.",
        "; also reports a double charge",
    ),
    TicketTemplate(
        "damaged_item/aside-dent",
        "Also, my {product} came with a big dent in it.",
        "; also reports a dent",
    ),
    TicketTemplate(
        "wrong_item/aside-wrong-colour",
        "Also, my {product} is the wrong colour.",
        "; also received wrong colour",
    ),
    TicketTemplate(
        "refund_request/aside-shipping-fee",
        "I'd also like the shipping fee refunded.",
        "; also wants shipping refunded",
    ),
    TicketTemplate(
        "cancellation/aside-cancel-rest",
        "And please cancel the rest of my order.",
        "; also wants the rest cancelled",
    ),
    TicketTemplate(
        "shipping_delay/aside-slow",
        "On top of that it took {delay} to get here.",
        "; also complains of slow delivery",
    ),
    TicketTemplate(
        "product_question/aside-warranty",
        "Also, can I ask whether my {product} comes with a warranty?",
        "; also asks about the warranty",
    ),
    TicketTemplate(
        "product_question/aside-ship-abroad",
        "Separately, do you ship to {country}?",
        "; also asks about shipping abroad",
    ),
)

# --- signal sentences and the keywords that identify them -----------------------------
# Typos never touch these sentences, so each keeps its keyword verbatim.

HAZARD_KEYWORDS = ("smoke", "sparks", "burning smell", "overheat", "injured")
HAZARD_SENTENCES = (  # all say "it": they follow a body that names an electrical product
    "It started to smoke when I plugged it in.",
    "It threw sparks from the cable last night.",
    "There's a burning smell every time I turn it on.",
    "It keeps overheating and the casing gets too hot to touch.",
    "My son was injured when it overheated, he has a burn on his hand.",
)

COMPROMISE_KEYWORDS = ("hacked", "unauthorized")
COMPROMISE_SENTENCES = (
    "I think my account was hacked, my email and password were changed.",
    "I got an alert about an unauthorized login from another country.",
    "There are unauthorized purchases on my account that I never made.",
    "Someone hacked into it and changed the delivery address.",
)

THREAT_KEYWORDS = ("chargeback", "legal action", "lawyer")
THREAT_SENTENCES = (
    "If this isn't fixed I will file a chargeback with my bank.",
    "I'm ready to take legal action over this.",
    "My lawyer will be hearing about this.",
    "Sort this out or I'm disputing it as a chargeback.",
)

ANGRY_KEYWORDS = ("ridiculous", "unacceptable", "furious", "worst", "fed up", "what a joke")
ANGRY_SENTENCES = (
    "THIS IS RIDICULOUS.",
    "Honestly this is completely unacceptable!!",
    "I am FURIOUS right now.",
    "Worst customer service I have ever dealt with.",
    "I'm absolutely fed up with this company.",
    "WHAT A JOKE.",
)

DEADLINE_KEYWORDS = ("need it by", "arrive by", "have it by")
DEADLINE_SENTENCES = (
    "I need it by {day} for {occasion}.",
    "It has to arrive by {day}, it's for {occasion}.",
    "Please, I really need it by {day}, it's for {occasion}.",
    "I must have it by {day} because of {occasion}.",
)

REPEAT_CONTACT_KEYWORDS = (
    "third time", "already contacted", "second time asking", "already emailed",
)
REPEAT_CONTACT_SENTENCES = (
    "This is the third time I'm writing about this.",
    "I've already contacted you twice and nobody replied.",
    "Second time asking.",
    "I already emailed about this last week and heard nothing back.",
)

ASK_FOR_PERSON_KEYWORDS = ("manager", "real person", "a human", "speak to", "talk to")
ASK_FOR_PERSON_SENTENCES = (
    "Let me speak to a manager.",
    "I want to talk to a real person, not a bot.",
    "Can I please speak to a human?",
    "Please have a real person call me.",
)
