"""Rejected answers made by rule from a correct one, each differing on one named axis.

A pair teaches the difference between its two sides and nothing else, so the rejected
side is the chosen answer with exactly one thing wrong, and each maker checks that it
is: a pair that differs on more (or on nothing) is not made.

- `broken_format`: the same object in Python literal syntax (single quotes, `None`,
  `False`), the most common way a small model's "JSON" fails to parse. Checked: it does
  not parse as JSON, and `ast.literal_eval` gives back the chosen object.
- `needless_preamble`: the same JSON after a chatty opening line ("Sure! Here is the
  triage:"). Checked: the strict parser rejects it, and removing the preamble gives the
  chosen text exactly.
- `one_wrong_field`: one enum or boolean field of the schema set to another valid value,
  rendered the same way. Checked: the task's own verifier names exactly that field.

Which preamble, field and value is picked by a hash of the chosen answer, so a run is
reproducible and the picks spread evenly over the choices.
"""

from __future__ import annotations

import ast
import hashlib
import json
from typing import Literal

from datagen.foundation.task import Task, label_fields, parse_json_answer

Axis = Literal["broken_format", "needless_preamble", "one_wrong_field"]

PREAMBLES = (
    "Sure! Here is the answer:\n\n",
    "Here's the JSON you asked for:\n",
    "Of course. Based on the message, here is my analysis:\n\n",
    "Certainly! ",
)


def _pick(key: str, salt: str, count: int) -> int:
    return int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:8], 16) % count


def axis_rejection(chosen_text: str, axis: Axis, task: Task) -> tuple[str, str, str] | None:
    """(chosen text, rejected text, evidence) differing on `axis` only, or None when the
    chosen answer is not a JSON object or the check fails. The chosen text is
    `chosen_text` itself, except for `one_wrong_field`, where both sides are rendered by
    the task so that layout cannot differ either."""
    chosen = parse_json_answer(chosen_text)
    if chosen is None:
        return None
    if axis == "broken_format":
        rejected = repr(chosen)
        if parse_json_answer(rejected) is not None or ast.literal_eval(rejected) != chosen:
            return None
        return chosen_text, rejected, "rejected is the same object in Python syntax, not JSON"
    if axis == "needless_preamble":
        preamble = PREAMBLES[_pick(chosen_text, "preamble", len(PREAMBLES))]
        rejected = preamble + chosen_text
        if parse_json_answer(rejected) is not None or rejected[len(preamble):] != chosen_text:
            return None
        return chosen_text, rejected, f"rejected opens with {preamble.strip()!r} before the JSON"
    fields = label_fields(task.answer_schema)
    names = sorted(fields)
    name = names[_pick(chosen_text, "field", len(names))]
    others = [v for v in fields[name] if v != chosen[name]]
    wrong = others[_pick(chosen_text, "value", len(others))]
    rejected_answer = dict(chosen, **{name: wrong})
    if task.compare(rejected_answer, chosen) != [name]:
        return None
    evidence = f"rejected sets {name}: {json.dumps(chosen[name])} -> {json.dumps(wrong)}"
    return task.render_answer(chosen), task.render_answer(rejected_answer), evidence
