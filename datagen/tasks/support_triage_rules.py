"""The support-triage labelling rules, and which of them decide one row.

`RULES` are the rules of `support_triage_tickets.py` (the generator) and of the gold set's
GUIDELINES.md (steps 2-6), each with the answer field it decides. `rules_of(prompt, label,
template_id, note)` names the rules that decide a row, deterministically and without a
model, so that a build can count rows per rule and an eval can score each rule's field on
the gold rows it decides:

- **From the label, by the generator's own rule functions** (`priority_for`,
  `needs_human_for`): why the priority is what it is (high by category, high by a signal on
  a category that is otherwise normal or low, low for a plain question, normal otherwise)
  and why needs_human is (urgency, category, asking for a person, or nothing).
- **Urgency's reason** (hazard, compromised account, chargeback or legal threat): the gold
  rows' notes name it ("Smoke is a safety hazard, so urgent"); the keywords are read from
  the note first and from the prompt when the note names none (a generated ticket has no
  note, and its signal sentences carry the generator's keywords verbatim).
- **Category precedence**: a generated ticket is mixed when its template id joins a body
  and an aside (`<body>+<aside>`); a gold row when its note names precedence ("outranks",
  "beats", "wins", "precedence", "secondary intent"). Gold rows without a note get no
  precedence rule: the label alone cannot say a ticket had two intents.
- **Order-id decoys**, from the prompt: an id-like string that is not the label's id (a
  malformed id such as `a-390172`, `A 604552`, `A-45512`, `#305518`, a bare six-digit
  number, a `PO-338120` reference, or a second valid id the request is not about).
"""

from __future__ import annotations

import re

from datagen.foundation.task import LabellingRule
from datagen.tasks.support_triage_tickets import HIGH_PRIORITY_CATEGORIES, NEEDS_HUMAN_CATEGORIES

RULES = (
    LabellingRule("category_precedence", "category", "two intents: the earlier in precedence wins"),
    LabellingRule("urgent_safety_hazard", "priority", "urgent: a safety hazard"),
    LabellingRule("urgent_compromised_account", "priority", "urgent: a hacked account or purchases not made"),
    LabellingRule("urgent_legal_threat", "priority", "urgent: a chargeback or legal threat"),
    LabellingRule("high_by_category", "priority", "high: damaged, wrong item, billing or account category"),
    LabellingRule("high_by_signal", "priority", "high: anger, a deadline or repeated contact"),
    LabellingRule("low_plain_question", "priority", "low: a plain product question"),
    LabellingRule("normal_otherwise", "priority", "normal: nothing raises it"),
    LabellingRule("needs_human_by_urgency", "needs_human", "needs a human: urgent"),
    LabellingRule("needs_human_by_category", "needs_human", "needs a human: refund, billing or damage"),
    LabellingRule("needs_human_asked", "needs_human", "needs a human: a person is asked for"),
    LabellingRule("needs_human_not_called_for", "needs_human", "no human: nothing calls for one"),
    LabellingRule("order_id_as_written", "order_id", "order id copied as written"),
    LabellingRule("order_id_decoy", "order_id", "an id-like string that is not the order id"),
    LabellingRule("order_id_none", "order_id", "no order id: null"),
)

# Keywords of each urgent reason: the generator's signal keywords (support_triage_vocab.py)
# and the words GUIDELINES.md step 3 lists, as the notes and the tickets spell them.
URGENT_REASONS = (
    ("urgent_safety_hazard", ("hazard", "smoke", "smoking", "spark", "burning smell", "overheat", "injur", "choking",
                              "fire", "melting", "scorch", "exposed", "live wire", "electric shock")),
    ("urgent_compromised_account", ("hacked", "hijack", "compromis", "unauthori", "unrecognised sign-in",
                                    "not placed by", "did not make", "someone else", "misuse", "taken over")),
    ("urgent_legal_threat", ("chargeback", "legal", "lawyer", "attorney", "solicitor", "court", "dispute",
                             "as fraud", "suing")),
)
PRECEDENCE_WORDS = re.compile(r"\b(outranks?|beats?|wins|precedence|secondary)\b", re.IGNORECASE)
# A string a careless reader could take for the order id: optional letters (a-, A, PO-), an
# optional "#" or space after a single letter, then five to eight digits.
ID_LIKE = re.compile(r"(?<![\w-])(?:[A-Za-z]{1,4}-#?|[A-Za-z]#?|[Aa] |#)?\d{5,8}(?![\w-])")


def urgent_reasons(note: str, prompt: str) -> tuple[str, ...]:
    """The urgent reasons the note names, else those the prompt shows."""
    for text in (note, prompt):
        lowered = text.lower()
        found = tuple(name for name, keywords in URGENT_REASONS if any(word in lowered for word in keywords))
        if found:
            return found
    return ()


def has_order_id_decoy(prompt: str, order_id: str | None) -> bool:
    return any(match.group() != order_id for match in ID_LIKE.finditer(prompt))


def rules_of(prompt: str, label: dict, template_id: str, note: str) -> tuple[str, ...]:
    """The names of the rules that decide this row, in `RULES` order."""
    category, priority = label["category"], label["priority"]
    found = set()
    if "+" in template_id or PRECEDENCE_WORDS.search(note):
        found.add("category_precedence")
    if priority == "urgent":
        found.update(urgent_reasons(note, prompt))
    elif priority == "high":
        # An aside is always of lower precedence, so a high-priority secondary intent means a
        # high-priority category: high on another category comes from a signal.
        found.add("high_by_category" if category in HIGH_PRIORITY_CATEGORIES else "high_by_signal")
    elif priority == "low":
        found.add("low_plain_question")
    else:
        found.add("normal_otherwise")
    if label["needs_human"]:
        if priority == "urgent":
            found.add("needs_human_by_urgency")
        if category in NEEDS_HUMAN_CATEGORIES:
            found.add("needs_human_by_category")
        if priority != "urgent" and category not in NEEDS_HUMAN_CATEGORIES:
            found.add("needs_human_asked")
    else:
        found.add("needs_human_not_called_for")
    if has_order_id_decoy(prompt, label["order_id"]):
        found.add("order_id_decoy")
    else:
        found.add("order_id_as_written" if label["order_id"] else "order_id_none")
    return tuple(rule.name for rule in RULES if rule.name in found)
