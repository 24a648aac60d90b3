"""Demo text task: reply to a customer-support ticket in the house voice.

Input: a ticket (`From:`, `Order:` when there is one, `Subject:`, the message). Output: the
reply, as plain text. There is no one right reply, so a reply is scored by the checks of
its label (`datagen/foundation/text_checks.py`), one per house rule:

- `names_field customer_name`: it greets the customer by first name;
- `names_field order_id`: it names the order, when the ticket has one; `amount` and
  `email` too, when the next step concerns them (a refund, a reset link);
- `must_mention`: it says the issue's next step in the house's words (a replacement, a
  return label and the right item, the tracking page, a refund, a reset link, the
  refunded charge, the product fact asked about, that the order is cancelled);
- `must_not_say`: none of the phrases the house voice bans;
- `max_words 80`;
- `matches_pattern`: it ends with the sign-off.

The generator renders the tickets of `support_reply_vocab.py` with
`datagen.generation.template_generator`, and the label (a reference reply and these
checks) from the same slot values, so every label is right by construction and its reply
passes its checks (`TextReference` validates that).
"""

from __future__ import annotations

from dataclasses import dataclass

from datagen.foundation.task import Task
from datagen.foundation.text_checks import TextReference, differing_checks, failed_checks
from datagen.generation.template_generator import Template, generate_from_templates, render
from datagen.tasks.support_reply_vocab import (
    BANNED_PHRASES,
    ISSUES,
    ISSUES_BY_NAME,
    MAX_WORDS,
    SIGN_OFF,
    SIGN_OFF_PATTERN,
    TICKET_TEMPLATES,
    VOCABULARY,
)

_BANNED = ", ".join(f'"{phrase}"' for phrase in BANNED_PHRASES)

SYSTEM_PROMPT = f"""\
You answer customer-support tickets for Juniper, an online shop, in the house voice. Write \
the reply only, as plain text:
- Start with "Hi <first name>," on its own line.
- Name the order id when the ticket gives one, and the amount or email address the next \
step concerns.
- Say plainly what happens next: a replacement for a damaged item; the ordered item and a \
return label for a wrong one; the tracking page for a late delivery; a refund of the amount \
for a return; a password reset link to their email for a login problem; the refunded extra \
charge for a double charge; the answer itself for a product question; that the order is \
cancelled for a cancellation.
- Never write {_BANNED}.
- At most {MAX_WORDS} words.
- End with the line "{SIGN_OFF}"."""

# The fine-tuned model's system turn: the voice in one line; the rules are learnt from the rows.
TRAINED_SYSTEM_PROMPT = (f"Reply to the customer-support ticket in Juniper's house voice: greet the customer by "
                         f"first name, name the order, say what happens next, at most {MAX_WORDS} words, and end "
                         f'with "{SIGN_OFF}".')


def house_checks(first_name: str, order: str | None, mention: list[str],
                 fields: list[tuple[str, str]] = ()) -> list[dict]:
    """The checks every house reply carries, in the order the guidelines list them."""
    checks = [{"kind": "names_field", "field": "customer_name", "value": first_name}]
    if order is not None:
        checks.append({"kind": "names_field", "field": "order_id", "value": order})
    checks += [{"kind": "names_field", "field": field, "value": value} for field, value in fields]
    checks += [{"kind": "must_mention", "terms": mention, "mode": "all"},
               {"kind": "must_not_say", "terms": list(BANNED_PHRASES)},
               {"kind": "max_words", "limit": MAX_WORDS},
               {"kind": "matches_pattern", "pattern": SIGN_OFF_PATTERN}]
    return checks


def _label(reply: str, checks: list[dict]) -> dict:
    return TextReference.model_validate({"reply": reply, "checks": checks}).model_dump(mode="json")


FEW_SHOT = (
    ("From: Ingrid Vale\nOrder: A-310944\nSubject: Teapot lid chipped\n\nThe ceramic teapot came with a chip out of "
     "the lid. Can I get a new one?",
     _label("Hi Ingrid,\n\nThank you for telling us, and sorry that order A-310944 reached you chipped. A "
            "replacement teapot leaves our warehouse today, free, and you can keep or recycle the old one.\n\n"
            + SIGN_OFF,
            house_checks("Ingrid", "A-310944", ["replacement"]))),
    ("From: Ravi Menon <ravi.menon@example.com>\nSubject: Password reset\n\nThe reset email never arrives. Help?",
     _label("Hi Ravi,\n\nA fresh reset link is waiting at ravi.menon@example.com; use it within a day, and look "
            "in spam if it hides.\n\n" + SIGN_OFF,
            house_checks("Ravi", None, ["reset link"], [("email", "ravi.menon@example.com")]))),
    ("From: Clara Bos\nOrder: A-528113\nSubject: Please cancel\n\nI ordered two water bottles by mistake, please "
     "cancel the order.",
     _label("Hi Clara,\n\nNo problem. We stopped order A-528113 before it left us, so it's cancelled and nothing "
            "will be charged for the water bottles.\n\n" + SIGN_OFF, house_checks("Clara", "A-528113", ["cancelled"]))),
)


@dataclass(frozen=True)
class GeneratedTicket:
    text: str  # the ticket
    label: dict  # TextReference: the house reply and its checks
    template_id: str  # "<issue>/<phrasing number>"


def _rendered(source: str, slots: dict) -> str:
    return render(Template("support_reply/label", source), slots)


def generate_tickets(count: int, seed: int) -> list[GeneratedTicket]:
    """`count` tickets with their house reply and checks, phrasings dealt evenly; the same
    (count, seed) always gives the same list."""
    tickets = []
    for ticket in generate_from_templates(TICKET_TEMPLATES, VOCABULARY, count, seed):
        issue = ISSUES_BY_NAME[ticket.template_id.split("/")[0]]
        # Every phrasing of an issue names the slots its reply and terms use; one that did
        # not would raise here (StrictUndefined), not render an empty name.
        slots = ticket.slots
        checks = house_checks(slots["customer"].first, slots["order"] if issue.has_order else None,
                              [_rendered(term, slots) for term in issue.must_mention],
                              [(field, _rendered(value, slots)) for field, value in issue.fields])
        tickets.append(GeneratedTicket(ticket.text, _label(_rendered(issue.reply, slots), checks), ticket.template_id))
    return tickets


TASK = Task(
    name="support_reply",
    version="1",
    answer_format="text",
    answer_schema=TextReference,  # the label: a reference reply and the checks every reply is scored on
    system_prompt=SYSTEM_PROMPT,
    trained_system_prompt=TRAINED_SYSTEM_PROMPT,
    few_shot=FEW_SHOT,
    generate=generate_tickets,
    compare=failed_checks,  # a reply against a label: the kinds of the checks it fails
    compare_labels=differing_checks,  # two labelers' labels: whether they hold the same checks
    input_description=("a ticket a customer sends to an online shop's support team: a From: line with their name, "
                       "an Order: line with an order id like A-204518 when it concerns an order, a Subject: line, "
                       "then the message"),
    topics=tuple(f"a ticket about {issue.name.replace('_', ' ')}" for issue in ISSUES),
    judge_rubric=(
        "Judge only what code cannot check: the greeting, the order id, the next step's key words, banned phrases, "
        "length and sign-off are verified elsewhere. The reply must answer this customer's actual problem, promise "
        "nothing the shop's rules do not (no invented discounts, dates or policies), stay warm and plain without "
        "filler or repeated apologies, and read as one short note from a person. 9-10: answers the problem "
        "exactly, friendly, concise. 5-8: right next step but vague, stiff or padded. 1-4: misreads the ticket, "
        "invents facts, or talks around the problem."
    ),
    # The 135M teacher often writes the shop's reply instead of the customer's ticket.
    self_instruct_rejected_phrases=("Juniper Support", "your order", "we're sending", "we've sent"),
    # Generated replies are 147-254 characters (2,000 tickets, seed 0); a rambling teacher or a
    # second reply after the first is cut.
    max_answer_chars=1000,
)
