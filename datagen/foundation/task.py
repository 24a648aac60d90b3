"""What a task is: everything crucible needs to know about one kind of example.

A task is declared in one file under `datagen/tasks/` as a module-level `TASK = Task(...)`
and a recipe names it by import path (`datagen.tasks.support_triage:TASK`). Adding a
task is adding a file; no shared code branches on task names.

An answer is one of two formats (`answer_format`): `json`, one object of the answer schema
(every task before text answers), or `text`, a reply in prose, whose label is a reference
reply and the checks code scores it on (`text_checks.py`). A stage that reads or writes
an answer asks the task (`parse_answer`, `answer_errors`, `render_answer`); only what
scores or pairs answers in another way for prose looks at `answer_format` itself (the
target eval, the pair strategies, the preflight's metric, the request's response format).
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, Sequence

from pydantic import BaseModel, ValidationError

from datagen.foundation.records import Turn, context_messages
from datagen.foundation.text_checks import TextReference
from datagen.foundation.tool_calls import check_tools, system_with_tools, unwrap_tool_call

# What every filter returns: keep or not, and the reason (`kind: detail`) when not.
Verdict = tuple[bool, str]
AnswerFormat = Literal["json", "text"]


@dataclass(frozen=True)
class FieldRule:
    """A rule one answer field is held to on its own (a validator of the answer schema), which
    the preflight report shows as a column: the share of parsed answers whose field keeps it."""

    field: str
    title: str  # the column's header, e.g. "summary ≤ 20 words"


@dataclass(frozen=True)
class LabellingRule:
    """One of the rules a task's labels follow (which category wins in a mixed ticket, what
    makes a ticket urgent), and the answer field it decides. The build counts the rows that
    exercise each rule and the preflight scores that field on the gold rows it decides, so a
    user sees which rule a model has not learnt."""

    name: str  # stable: recorded in build summaries and eval reports
    field: str  # the answer field the rule decides
    title: str  # the rule in a few words, for a report's row


class LabelledPrompt(Protocol):
    """What a task's generator yields: a prompt whose correct answer is known. A generator
    of conversations gives its prompts a `context` too, the turns before `text`
    (`records.Turn`s); `text` is then the latest user turn and `label` its answer."""

    text: str
    label: dict
    template_id: str


@dataclass(frozen=True)
class Task:
    name: str
    version: str  # bump when the schema, prompt or generator changes meaningfully
    answer_schema: type[BaseModel]
    system_prompt: str
    few_shot: tuple[tuple[str, dict], ...]  # (user prompt, correct answer) shown to teachers
    generate: Callable[[int, int], list[LabelledPrompt]]  # (count, seed) -> prompts
    compare: Callable[[dict, dict], list[str]]  # (answer, reference) -> fields that differ
    # For self-generation (datagen/generation/self_instruct.py): what one input is, in words a teacher
    # can follow, and the topics to spread new inputs over. A task without them cannot be
    # self-generated.
    input_description: str = ""
    topics: tuple[str, ...] = ()
    # For the LLM judge (datagen/judge/judge_answers.py): what a good answer is, in words a judge model
    # scores against. Tasks with a code verifier need it only for free-text fields.
    judge_rubric: str = ""
    # What the fine-tuned model is told: the system turn of training rows, and of a trained
    # adapter at eval time. Short, because the rules are learnt from the rows, and a long
    # prompt repeated on every row is most of the training cost (the demo task's 330-token
    # rules were 87% of each row). Empty: training rows carry `system_prompt` too.
    trained_system_prompt: str = ""
    # For `one_wrong_field` pairs (datagen/pairs/axis_rejections.py): given a field and the
    # right answer, values a careless model could give instead (another vendor, the due date
    # for the issue date, the query sorted the other way). Closed sets, numbers, lists and
    # nullable fields get wrong values by rule as well; a free-text field gets only these.
    plausible_wrong_values: Callable[[str, dict], list[Any]] | None = None
    # The preflight report's columns beyond parse, schema, exact match and macro-F1: the
    # fields whose own rule is worth watching (a summary's length, a date's format).
    field_rules: tuple[FieldRule, ...] = ()
    # The labelling rules (`LabellingRule`) and the function naming those that decide one row:
    # (prompt, label, template_id, note) -> rule names. `template_id` is the generator's ("" for
    # a gold row), `note` the labelers' notes of a gold row ("" for a generated one). It must be
    # deterministic: the same row always gets the same rules.
    labelling_rules: tuple[LabellingRule, ...] = ()
    rules_of: Callable[[str, dict, str, str], tuple[str, ...]] | None = None
    # The default of `answer_filters.max_answer_chars` (datagen/filters/answer_filters.py):
    # about twice this task's longest complete answer, so that only rambling or extra text is
    # cut. 600 is the triage demo's (its answers are ~250-350 characters).
    max_answer_chars: int = 600
    # The default of `self_instruct.rejected_phrases` (datagen/generation/self_instruct.py):
    # whole words that show a teacher wrote the wrong kind of input for this task.
    self_instruct_rejected_phrases: tuple[str, ...] = ()
    # Tools in OpenAI's format (`datagen/foundation/tool_calls.py`): the answer is then one call,
    # `{"name", "arguments"}`, with `call_schema(tools)` as its schema. Every chat this task
    # makes lists them in its system turn; TRL exports carry them in a `tools` column instead.
    tools: tuple[dict, ...] = ()
    # `text`: the answer is a reply in prose; `answer_schema` is then its label
    # (`text_checks.TextReference`: a reference reply and checks), `compare` scores a reply
    # against a label (`text_checks.failed_checks`) and `compare_labels` two labelers' labels
    # (`text_checks.differing_checks`). `json`: the answer is one object of `answer_schema`,
    # and `compare` serves both, so "two labelers agree" and "the model is right" mean the same.
    answer_format: AnswerFormat = "json"
    compare_labels: Callable[[dict, dict], list[str]] | None = None

    def __post_init__(self) -> None:
        if self.answer_format == "text" and not (issubclass(self.answer_schema, TextReference)
                                                 and self.compare_labels is not None):
            raise ValueError(f"task {self.name}: a text task's answer_schema is a TextReference (a reference reply "
                             "and its checks) and it gives compare_labels")
        unknown = [rule.field for rule in self.field_rules if rule.field not in self.answer_schema.model_fields]
        if unknown:
            raise ValueError(f"task {self.name}: field_rules name {', '.join(unknown)}, not fields of "
                             f"{self.answer_schema.__name__}")
        unknown = [rule.field for rule in self.labelling_rules if rule.field not in self.answer_schema.model_fields]
        if unknown:
            raise ValueError(f"task {self.name}: labelling_rules decide {', '.join(unknown)}, not fields of "
                             f"{self.answer_schema.__name__}")
        if bool(self.labelling_rules) != (self.rules_of is not None):
            raise ValueError(f"task {self.name}: labelling_rules and rules_of come together")
        if self.tools:
            check_tools(self.tools)
            declared = [tool["function"]["name"] for tool in self.tools]
            if label_fields(self.answer_schema).get("name") != declared:
                raise ValueError(f"task {self.name}: declares tools {declared}, but its answer schema is not "
                                 "their call_schema (datagen/foundation/tool_calls.py)")

    def rule_names(self, prompt: str, label: dict, template_id: str = "", note: str = "") -> tuple[str, ...]:
        """The labelling rules that decide this row (none for a task without rules); a name
        the task does not declare is the task's bug, raised here."""
        if self.rules_of is None:
            return ()
        names = self.rules_of(prompt, label, template_id, note)
        declared = {rule.name for rule in self.labelling_rules}
        if undeclared := [name for name in names if name not in declared]:
            raise ValueError(f"task {self.name}: rules_of named {undeclared}, not among its labelling_rules")
        return names

    @property
    def training_system_prompt(self) -> str:
        """The system turn of training rows and trained models."""
        return self.trained_system_prompt or self.system_prompt

    @property
    def system_prompts(self) -> tuple[str, ...]:
        """Every system turn this task's rows may carry."""
        prompts = (self.system_prompt, self.training_system_prompt)
        with_tools = tuple(system_with_tools(prompt, self.tools) for prompt in prompts) if self.tools else ()
        return tuple(dict.fromkeys(prompts + with_tools))

    def system_turn(self, *, trained: bool = False, tools_in_system: bool = True) -> str:
        """The system turn's text: with the task's tools listed, unless they travel apart
        (a TRL row's `tools` column, a request's `tools`)."""
        system = self.training_system_prompt if trained else self.system_prompt
        return system_with_tools(system, self.tools) if self.tools and tools_in_system else system

    def render_answer(self, answer: dict) -> str:
        """An answer as the model should write it: JSON in schema field order, the same
        layout the few-shot turns show, so every answer crucible writes looks alike; for a
        text task, the reply itself (of a label, its reference reply)."""
        if self.answer_format == "text":
            if not isinstance(answer.get("reply"), str) or not answer["reply"].strip():
                raise ValueError(f"task {self.name}: a text answer is a non-blank reply, got {answer!r:.80}")
            return answer["reply"]
        return json.dumps(self.answer_schema.model_validate(answer).model_dump(mode="json"))

    def parse_answer(self, text: str) -> dict | None:
        """A model's output as an answer, None if it is none: the JSON object
        (`parse_json_answer`), or for a text task `{"reply": text}` unless it is blank."""
        if self.answer_format == "text":
            return {"reply": text.strip()} if text.strip() else None
        return parse_json_answer(text)

    def answer_errors(self, answer: dict) -> list[str]:
        """What is wrong with a parsed answer's form: its schema errors. A reply has no
        schema: what it must say is its label's checks, which `compare` runs."""
        return [] if self.answer_format == "text" else schema_errors(self.answer_schema, answer)

    @functools.cached_property
    def _few_shot_turns(self) -> tuple[dict[str, str], ...]:
        # Rendered once: every teacher request carries them, and rendering validates.
        turns = []
        for shot_prompt, shot_answer in self.few_shot:
            turns.append({"role": "user", "content": shot_prompt})
            turns.append({"role": "assistant", "content": self.render_answer(shot_answer)})
        return tuple(turns)

    def messages(self, prompt: str, *, few_shot: bool, trained: bool = False,
                 context: Sequence[Turn] = (), tools_in_system: bool = True) -> list[dict[str, str]]:
        """The chat for one prompt. Teachers see the few-shot turns; training rows do not,
        because the fine-tuned model must produce the format without them. `trained`: the
        chat of a training row or a trained model, with `trained_system_prompt`. `context`:
        the conversation's earlier turns (`Example.context`), after the few-shot turns and
        before `prompt`, the turn to answer. `tools_in_system`: see `system_turn`."""
        chat = [{"role": "system", "content": self.system_turn(trained=trained, tools_in_system=tools_in_system)}]
        if few_shot:
            chat += [dict(turn) for turn in self._few_shot_turns]
        chat += context_messages(tuple(context))
        chat.append({"role": "user", "content": prompt})
        return chat


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_json_answer(text: str) -> dict | None:
    """The answer's JSON object, tolerating a Markdown code fence or the `<tool_call>` tags
    of Hermes and Qwen chat templates around it; None if none. (Tags around another task's
    answer are as harmless: its schema and verifier decide.)

    Anything else around the object (prose before or after) makes it unparseable: a
    training row must teach the bare format.
    """
    stripped = unwrap_tool_call(text.strip())
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def schema_errors(schema: type[BaseModel], value: dict) -> list[str]:
    """Human-readable schema violations, e.g. `priority: Input should be 'low', ...`."""
    try:
        schema.model_validate(value)
    except ValidationError as error:
        return [
            f"{'.'.join(str(p) for p in item['loc']) or '<root>'}: {item['msg']}"
            for item in error.errors()
        ]
    return []


def label_fields(schema: type[BaseModel]) -> dict[str, list[Any]]:
    """The answer fields whose values form a closed set (Literal, Enum, bool, optionally
    null), with those values in declared order; read from the JSON schema so that any
    task's schema works."""
    json_schema = schema.model_json_schema()
    fields = {}
    for name, field in json_schema["properties"].items():
        values = _closed_values(field, json_schema.get("$defs", {}))
        if values is not None:
            fields[name] = values
    return fields


def _closed_values(field: dict, definitions: dict) -> list[Any] | None:
    values = []
    for branch in field.get("anyOf", [field]):
        if "$ref" in branch:
            branch = definitions[branch["$ref"].rsplit("/", 1)[1]]
        if "enum" in branch:
            values += branch["enum"]
        elif "const" in branch:
            values.append(branch["const"])
        elif branch.get("type") == "boolean":
            values += [True, False]
        elif branch.get("type") == "null":
            values.append(None)
        else:
            return None  # free text, numbers, objects: not a label to count
    return values if any(value is not None for value in values) else None


def label_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)  # true, false, null, 3


def import_task(path: str) -> Any:
    """The object at `package.module:NAME`, as recipes and gold sets name tasks."""
    module_name, colon, attribute = path.partition(":")
    if not colon or not attribute:
        raise ValueError(f"{path!r} is not of the form 'package.module:NAME'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name}: {error}") from None
    if not hasattr(module, attribute):
        raise ValueError(f"{module_name} has no attribute {attribute!r}")
    return getattr(module, attribute)
