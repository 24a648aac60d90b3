"""Demo task of conversations: triage a support conversation after the customer's latest message.

A conversation starts as a generated support ticket (`support_triage_tickets.py`) and its
triage, the assistant's first turn; then the customer writes once or twice more, and the
triage of the conversation as it stands after their latest message is the answer. Each
follow-up is of one kind, and the generator applies that kind's rule to the label, so the
verifier (support_triage's `compare_answer`) checks the last assistant turn exactly:

- `asks_for_person`: needs_human becomes true;
- `threatens_chargeback`: priority becomes urgent, and so needs_human true;
- `angry`: priority rises to high (an urgent one stays urgent);
- `gives_order_id`: the order id is the one the follow-up gives, which corrects a
  mistyped one or gives one the ticket lacked;
- `thanks`: nothing changes (a model must not re-triage on a polite reply).

A follow-up in the same conversation is not "repeated contact" (which makes a ticket
high): the system prompt says so, since otherwise every conversation would be high.
Category and product never change: a follow-up adds no new request. The summary is the
first turn's, with the follow-up noted where that still fits its 20 words.

The earlier assistant turns are the generator's own labels, as a perfect agent would
have answered; training rows teach them too, so they must be right (they are, by
construction) and the answer filters check them like any answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from datagen.foundation.records import Turn
from datagen.foundation.task import LabellingRule, Task
from datagen.generation.template_generator import dealt_evenly
from datagen.tasks import support_triage
from datagen.tasks.support_triage_tickets import generate_tickets, needs_human_for

PRIORITIES = ("low", "normal", "high", "urgent")

# kind: (the customer's possible follow-ups, the note the summary gets). `{order_id}` is drawn.
FOLLOW_UPS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "asks_for_person": (
        ("Can I speak to an actual person about this please?",
         "I'd rather talk to a human. Can someone call me?",
         "Please pass this on to a real person, I don't want a bot."),
        "asks for a person",
    ),
    "threatens_chargeback": (
        ("If this isn't sorted by Friday I'm disputing the charge with my bank.",
         "Honestly, I'll be talking to my lawyer if I don't hear back today.",
         "I've already started a chargeback with my card company."),
        "threatens a chargeback",
    ),
    "angry": (
        ("This is ridiculous. I've waited long enough and I'm really annoyed now.",
         "Seriously?? I am so fed up with this shop.",
         "I'm losing my patience here, this is unacceptable."),
        "customer is angry",
    ),
    "gives_order_id": (
        ("Sorry, I forgot to say: the order number is {order_id}.",
         "Correction: my order number is {order_id}, I mistyped it before.",
         "In case it helps, it's order {order_id}."),
        None,
    ),
    "thanks": (
        ("Thanks, I'll wait to hear from you.",
         "OK, thank you for looking into it.",
         "Great, thanks."),
        None,
    ),
}
RULES = (
    LabellingRule("follow_up_asks_for_person", "needs_human", "a follow-up asking for a person"),
    LabellingRule("follow_up_threatens_chargeback", "priority", "a follow-up threatening a chargeback"),
    LabellingRule("follow_up_angry", "priority", "an angry follow-up raises priority to high"),
    LabellingRule("follow_up_gives_order_id", "order_id", "a follow-up giving the order id"),
    LabellingRule("follow_up_thanks", "priority", "a polite follow-up changes nothing"),
)

SYSTEM_PROMPT = support_triage.SYSTEM_PROMPT + """
The ticket may be a conversation: after your triage the customer writes again. Triage the \
whole conversation as it stands after the customer's latest message, in the same JSON: a \
follow-up can ask for a person, threaten a chargeback, show anger or give the order id. A \
follow-up in the same conversation is not repeated contact, and category and product stay \
those of the customer's request."""
TRAINED_SYSTEM_PROMPT = support_triage.TRAINED_SYSTEM_PROMPT + (
    " In a conversation, triage it as it stands after the customer's latest message.")


@dataclass(frozen=True)
class GeneratedConversation:
    context: tuple[Turn, ...]  # the ticket, its triage, and any follow-up before the last with its triage
    text: str  # the customer's latest message: the turn to answer
    label: dict  # the triage after it
    template_id: str  # "<ticket template id>><kind>[><kind>]"


def follow_up(kind: str, label: dict, rng: random.Random) -> tuple[str, dict]:
    """A follow-up of `kind` and the label of the conversation after it."""
    texts, note = FOLLOW_UPS[kind]
    order_id = f"A-{rng.randrange(100000, 1000000)}"
    text = rng.choice(texts).format(order_id=order_id)
    after = dict(label)
    asks_for_person = kind == "asks_for_person"
    if kind == "threatens_chargeback":
        after["priority"] = "urgent"
    elif kind == "angry":
        after["priority"] = max(label["priority"], "high", key=PRIORITIES.index)
    elif kind == "gives_order_id":
        after["order_id"] = order_id
    # needs_human only ever turns true: whatever made it true before still holds.
    after["needs_human"] = label["needs_human"] or needs_human_for(after["category"], after["priority"],
                                                                   asks_for_person)
    noted = f"{label['summary'].rstrip('.')}; {note}."
    if note and len(noted.split()) <= support_triage.MAX_SUMMARY_WORDS:
        after["summary"] = noted
    return text, after


def generate_conversations(count: int, seed: int) -> list[GeneratedConversation]:
    """`count` conversations of two or three customer turns; the same (count, seed) always
    gives the same list. The last follow-up's kind is dealt evenly, so every rule has its
    share of answers; an earlier one is drawn from the kinds that change something (a
    conversation does not go on after a thank-you)."""
    rng = random.Random(seed)
    conversations = []
    last_kinds = dealt_evenly(sorted(FOLLOW_UPS), count, rng)
    for ticket, last in zip(generate_tickets(count, seed), last_kinds, strict=True):
        earlier = [kind for kind in sorted(FOLLOW_UPS) if kind not in (last, "thanks")]
        kinds = [rng.choice(earlier), last] if rng.random() < 0.5 else [last]
        turns = [Turn("user", ticket.text)]
        label = ticket.label
        for kind in kinds:
            turns.append(Turn("assistant", support_triage.TASK.render_answer(label)))
            text, label = follow_up(kind, label, rng)
            turns.append(Turn("user", text))
        conversations.append(GeneratedConversation(
            context=tuple(turns[:-1]), text=turns[-1].content, label=label,
            template_id=">".join([ticket.template_id, *kinds])))
    return conversations


def rules_of(prompt: str, label: dict, template_id: str, note: str) -> tuple[str, ...]:
    """The follow-up kinds a generated conversation has; a gold row's ("") has none known."""
    return tuple(f"follow_up_{kind}" for kind in template_id.split(">")[1:])


TASK = Task(
    name="support_conversation",
    version="1",
    answer_schema=support_triage.TriageAnswer,
    system_prompt=SYSTEM_PROMPT,
    trained_system_prompt=TRAINED_SYSTEM_PROMPT,
    few_shot=support_triage.FEW_SHOT,
    generate=generate_conversations,
    compare=support_triage.compare_answer,
    field_rules=support_triage.TASK.field_rules,
    labelling_rules=RULES,
    rules_of=rules_of,
    max_answer_chars=support_triage.TASK.max_answer_chars,
)
