"""Rejected answers made by rule from a correct one, each differing on one named axis.

A pair teaches the difference between its two sides and nothing else, so the rejected
side is the chosen answer with exactly one thing wrong, and each maker checks that it
is: a pair that differs on more (or on nothing) is not made, and why not is said
(`NoRejection`), for the pair report to count.

- `broken_format`: the same object in Python literal syntax (single quotes, `None`,
  `False`), the most common way a small model's "JSON" fails to parse. Checked: it does
  not parse as JSON, and `ast.literal_eval` gives back the chosen object.
- `needless_preamble`: the same JSON after a chatty opening line ("Sure! Here is the
  triage:"). Checked: the strict parser rejects it, and removing the preamble gives the
  chosen text exactly.
- `one_wrong_field`: one field set to another value a model could plausibly give,
  rendered the same way. Checked: the rejected answer fits the schema, and the task's own
  verifier names exactly that field. Where the values come from:
  - a closed set (enum, Literal, bool): its other values. When the schema has closed-set
    fields, only they are changed: each other value is a valid label, as plausible as the
    right one (and the triage demo's pairs stay as they were before other kinds counted);
  - otherwise, by rule: null for a nullable field; a number misread (decimal point moved
    one place, or one more); a list with its last element left out;
  - and whatever the task declares (`Task.plausible_wrong_values`): another vendor, the
    due date for the issue date, the query sorted the other way.
  A task with no field that any of these can make wrong gets no pair on this axis, with
  the reason, never an error.
- `wrong_arguments` (tasks with tools, `datagen/foundation/tool_calls.py`): the same call with
  one argument wrong: a required one left out, one the tool does not declare added, or one
  value changed (another value of an enum, by rule; the task's `plausible_wrong_values` for
  `arguments`: a misread number, a swapped digit). Checked: the call names the same tool and
  differs in that one argument, and the task rejects it on `arguments` alone (the schema, or
  the verifier). A wrong tool is `one_wrong_field`'s: `name` is a closed set.

Which preamble, field and value is picked by a hash of the chosen answer, so a run is
reproducible and the picks spread evenly over the choices.
"""

from __future__ import annotations

import ast
import hashlib
import json
from typing import Any, Literal

from datagen.foundation.hashing import canonical_json
from datagen.foundation.task import Task, label_fields, parse_json_answer, schema_errors
from datagen.foundation.tool_calls import tool_parameters

Axis = Literal["broken_format", "needless_preamble", "one_wrong_field", "wrong_arguments"]

PREAMBLES = (
    "Sure! Here is the answer:\n\n",
    "Here's the JSON you asked for:\n",
    "Of course. Based on the message, here is my analysis:\n\n",
    "Certainly! ",
)


class NoRejection(Exception):
    """No rejected answer can be made on this axis from this chosen answer; the message
    (`axis: why`) is what the pair report counts."""


def _pick(key: str, salt: str, count: int) -> int:
    return int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:8], 16) % count


def _misread_numbers(number: int | float) -> list[int | float]:
    # The decimal point one place off either way, or the last digit one more: how a number
    # goes wrong when it is copied from a document rather than computed.
    if isinstance(number, int):
        return [number * 10, number + 1]
    return [round(number * 10, 10), round(number / 10, 10), round(number + 1, 10)]


def _wrong_values_by_rule(value: Any, closed: list[Any] | None) -> list[Any]:
    if closed is not None:
        return closed
    made: list[Any] = [None]  # kept only where the schema allows null
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        made += _misread_numbers(value)
    if isinstance(value, list) and len(value) > 1:
        made.append(value[:-1])
    return made


def wrong_values(task: Task, chosen: dict, name: str, closed: list[Any] | None) -> list[Any]:
    """The values of field `name` that make `chosen` wrong on that field alone: in the
    schema, and named (alone) by the task's verifier. In the order they were made, without
    repeats."""
    made = _wrong_values_by_rule(chosen[name], closed)
    if task.plausible_wrong_values is not None:
        made += task.plausible_wrong_values(name, chosen)
    found: dict[str, Any] = {}
    for wrong in made:
        key = canonical_json(wrong)
        if key in found or wrong == chosen[name]:
            continue
        rejected = dict(chosen, **{name: wrong})
        if not schema_errors(task.answer_schema, rejected) and task.compare(rejected, chosen) == [name]:
            found[key] = wrong
    return list(found.values())


def _one_wrong_field(chosen_text: str, chosen: dict, task: Task) -> tuple[str, str, str]:
    if schema_errors(task.answer_schema, chosen):
        raise NoRejection("one_wrong_field: the chosen answer does not fit the schema")
    closed = label_fields(task.answer_schema)
    names = sorted(closed) or sorted(task.answer_schema.model_fields)
    usable = {name: values for name in names if (values := wrong_values(task, chosen, name, closed.get(name)))}
    if not usable:
        raise NoRejection(f"one_wrong_field: no value of {', '.join(names)} makes the answer wrong on that "
                          "field alone")
    name = sorted(usable)[_pick(chosen_text, "field", len(usable))]
    wrong = usable[name][_pick(chosen_text, "value", len(usable[name]))]
    rejected_answer = dict(chosen, **{name: wrong})
    evidence = f"rejected sets {name}: {json.dumps(chosen[name])} -> {json.dumps(wrong)}"
    return task.render_answer(chosen), task.render_answer(rejected_answer), evidence


def _argument_mistakes(task: Task, call: dict) -> list[dict]:
    # Rule-made first: each required argument left out, each other value of an enum.
    parameters = tool_parameters(task.tools)[call["name"]]
    arguments = call["arguments"]
    made = [{k: v for k, v in arguments.items() if k != name} for name in parameters.get("required", ())
            if name in arguments]
    for name, schema in parameters.get("properties", {}).items():
        made += [dict(arguments, **{name: value}) for value in schema.get("enum", ()) if name in arguments]
    if task.plausible_wrong_values is not None:
        made += task.plausible_wrong_values("arguments", call)
    return made


def _one_argument_apart(chosen: dict, rejected: dict) -> str | None:
    """The evidence when `rejected` differs from `chosen` in exactly one argument, else None."""
    missing, added = chosen.keys() - rejected.keys(), rejected.keys() - chosen.keys()
    changed = [name for name in chosen.keys() & rejected.keys() if canonical_json(chosen[name]) !=
               canonical_json(rejected[name])]
    if len(missing) + len(added) + len(changed) != 1:
        return None
    if missing:
        return f"rejected leaves out the argument {missing.pop()}"
    if added:
        name = added.pop()
        return f"rejected adds the argument {name}: {json.dumps(rejected[name])}"
    name = changed[0]
    return f"rejected sets arguments.{name}: {json.dumps(chosen[name])} -> {json.dumps(rejected[name])}"


def _wrong_arguments(chosen_text: str, chosen: dict, task: Task) -> tuple[str, str, str]:
    if not task.tools:
        raise NoRejection("wrong_arguments: the task declares no tools")
    if schema_errors(task.answer_schema, chosen):
        raise NoRejection("wrong_arguments: the chosen answer does not fit the schema")
    chosen = task.answer_schema.model_validate(chosen).model_dump(mode="json")  # arguments in declared order
    usable: dict[str, tuple[dict, str]] = {}
    for arguments in _argument_mistakes(task, chosen):
        rejected = {"name": chosen["name"], "arguments": arguments}
        evidence = _one_argument_apart(chosen["arguments"], arguments)
        errors = schema_errors(task.answer_schema, rejected)
        rejected_on_arguments = (all(error.startswith("arguments:") for error in errors) if errors
                                 else task.compare(rejected, chosen) == ["arguments"])
        if evidence and rejected_on_arguments:
            usable.setdefault(canonical_json(arguments), (rejected, evidence))
    if not usable:
        raise NoRejection(f"wrong_arguments: no argument of {chosen['name']} can be made wrong alone")
    rejected, evidence = list(usable.values())[_pick(chosen_text, "arguments", len(usable))]
    # Laid out as render_answer lays out the chosen side, which a schema-invalid call cannot go through.
    return task.render_answer(chosen), json.dumps(rejected), evidence


def make_axis_rejection(chosen_text: str, axis: Axis, task: Task) -> tuple[str, str, str]:
    """(chosen text, rejected text, evidence) differing on `axis` only; raises NoRejection
    saying why when none can be made. The chosen text is `chosen_text` itself, except for
    `one_wrong_field`, where both sides are rendered by the task so that layout cannot
    differ either."""
    chosen = parse_json_answer(chosen_text)
    if chosen is None:
        raise NoRejection(f"{axis}: the chosen answer is not a JSON object")
    if axis == "broken_format":
        rejected = repr(chosen)
        if parse_json_answer(rejected) is not None or ast.literal_eval(rejected) != chosen:
            raise NoRejection("broken_format: the answer in Python syntax is still the same JSON")
        return chosen_text, rejected, "rejected is the same object in Python syntax, not JSON"
    if axis == "needless_preamble":
        preamble = PREAMBLES[_pick(chosen_text, "preamble", len(PREAMBLES))]
        rejected = preamble + chosen_text
        if parse_json_answer(rejected) is not None or rejected[len(preamble):] != chosen_text:
            raise NoRejection("needless_preamble: the answer after a preamble still parses")
        return chosen_text, rejected, f"rejected opens with {preamble.strip()!r} before the JSON"
    if axis == "wrong_arguments":
        return _wrong_arguments(chosen_text, chosen, task)
    return _one_wrong_field(chosen_text, chosen, task)


def axis_rejection(chosen_text: str, axis: Axis, task: Task) -> tuple[str, str, str] | None:
    """`make_axis_rejection`, or None where it names a reason: for a caller that does not
    count the reasons."""
    try:
        return make_axis_rejection(chosen_text, axis, task)
    except NoRejection:
        return None
