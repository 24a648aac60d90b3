"""Tool calls: answers that call one of a set of declared tools.

A task with `tools` (`task.py`) declares them in OpenAI's format, `{"type": "function",
"function": {"name", "description", "parameters": <JSON schema>}}`, and its answer is one
call written as one JSON object, `{"name": ..., "arguments": {...}}` (the form of Llama
3's JSON tool calling), so every stage that reads a JSON answer reads a call unchanged.
`task.parse_json_answer` also takes the object inside the `<tool_call>...</tool_call>`
tags of Hermes and Qwen templates (`unwrap_tool_call`), and a teacher's OpenAI `tool_calls`
become the same text (`message_text`, as `serving/response_cache.py` stores them).

Verified by code: `call_schema(tools)` is the task's answer schema; it holds `name` to
the declared tools and `arguments` to that tool's JSON schema (the `jsonschema` library,
Draft 2020-12), so a missing or undeclared argument is a `schema_invalid` reject like any
other task's; `compare_calls` then names `name` and `arguments` where they differ from
the reference.

What a model sees: SmolLM2's chat template ignores `tools=` (TRL's
`supports_tool_calling` says False), so crucible renders them into the system turn itself
(`system_with_tools`, in the words of Qwen 2.5's template), and its training template
(`train/chat_template.py`) renders TRL's `tools` column and assistant `tool_calls` into
exactly that text and `message_text`, which `pin_chat_template` checks before training.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, ValidationInfo, WithJsonSchema, create_model, field_validator

# OpenAI's rule for a function's name.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Around the tools in the system turn; `train/chat_template.py` builds its template from these.
TOOLS_HEADER = ("\n\n# Tools\n\nYou may call one of these functions. Their signatures are within "
                "<tools></tools> XML tags:\n<tools>")
TOOLS_FOOTER = "\n</tools>"
_TAGGED = re.compile(r"^<tool_call>\s*(.*?)\s*</tool_call>$", re.DOTALL)


def check_tools(tools: tuple[dict, ...]) -> None:
    """Raise ValueError naming the tool unless every tool is an OpenAI function tool with a
    valid JSON schema of an object for its parameters, and names are unique."""
    names = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise ValueError(f"tools[{index}] is not {{'type': 'function', 'function': {{...}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise ValueError(f"tools[{index}]: name {name!r} is not 1-64 letters, digits, _ or -")
        parameters = function.get("parameters")
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            raise ValueError(f"tool {name}: parameters must be a JSON schema of type object")
        try:
            Draft202012Validator.check_schema(parameters)
        except SchemaError as error:
            raise ValueError(f"tool {name}: parameters are not a valid JSON schema: {error.message}") from None
        names.append(name)
    if len(set(names)) != len(names):
        raise ValueError(f"tool names must be unique, got {names}")


def tool_parameters(tools: tuple[dict, ...]) -> dict[str, dict]:
    """Each tool's parameters schema, by tool name, in declared order."""
    return {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}


def argument_errors(parameters: dict, arguments: dict) -> list[str]:
    """Where `arguments` break the tool's JSON schema, e.g. `'order_id' is a required
    property` or `amount: -3 is less than or equal to the minimum of 0`."""
    errors = sorted(Draft202012Validator(parameters).iter_errors(arguments), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.path))}: {e.message}" if e.path else e.message for e in errors]


def call_schema(tools: tuple[dict, ...]) -> type[BaseModel]:
    """The answer schema of a tool task: `name`, one of the tools (a closed set, which the
    reports count and macro-F1 scores); `arguments`, valid against that tool's parameters
    and kept in their declared order, so a rendered call reads like the tool's signature."""
    check_tools(tools)
    parameters = tool_parameters(tools)

    def arguments_fit_the_tool(cls, arguments: dict, info: ValidationInfo) -> dict:
        name = info.data.get("name")
        if name is None:  # the name's own error is reported
            return arguments
        errors = argument_errors(parameters[name], arguments)
        if errors:
            raise ValueError("; ".join(errors))
        declared = list(parameters[name].get("properties", {}))
        return dict(sorted(arguments.items(), key=lambda item: declared.index(item[0]) if item[0] in declared
                           else len(declared)))

    return create_model(
        "ToolCall",
        __config__=ConfigDict(extra="forbid"),
        __validators__={"arguments_fit_the_tool": field_validator("arguments")(arguments_fit_the_tool)},
        name=(Literal[tuple(parameters)], ...),
        # Any tool's arguments, for a response_format or a grammar; which tool's is the validator's.
        arguments=(Annotated[dict[str, Any], WithJsonSchema({"anyOf": list(parameters.values())})], ...),
    )


def _same_value(said: Any, truth: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (said, truth))
    return math.isclose(said, truth, rel_tol=0, abs_tol=1e-9) if numbers else said == truth


def compare_calls(answer: dict, reference: dict, free_text: Mapping[str, Collection[str]] | None = None) -> list[str]:
    """`name` when the tool differs; `arguments` when the answer's arguments are not the
    reference's: the same names, each value equal (numbers within float noise, 3 == 3.0;
    strings exactly: an order number or a postcode is looked up as written). An argument
    in `free_text[tool]` (a summary in the model's own words) is not compared: the
    reference cannot know its wording, only the schema holds it."""
    wrong = [] if answer["name"] == reference["name"] else ["name"]
    free_text = free_text or {}
    skip = set(free_text.get(reference["name"], ())) | set(free_text.get(answer["name"], ()))
    said = {k: v for k, v in answer["arguments"].items() if k not in skip}
    truth = {k: v for k, v in reference["arguments"].items() if k not in skip}
    if said.keys() != truth.keys() or not all(_same_value(said[k], truth[k]) for k in truth):
        wrong.append("arguments")
    return wrong


def system_with_tools(system: str, tools: tuple[dict, ...]) -> str:
    """The system turn with the tools listed after it, one JSON object a line, as Qwen 2.5's
    template lists them; `json.dumps(ensure_ascii=False)` is the chat template's `tojson`."""
    listed = "".join("\n" + json.dumps(tool, ensure_ascii=False) for tool in tools)
    return system + TOOLS_HEADER + listed + TOOLS_FOOTER


def call_text(name: str, arguments: str | dict) -> str:
    """One call as the model writes it. `arguments` as a JSON string (OpenAI's and crucible's
    exports) is written as it is; as an object, as the chat template's `tojson` writes it."""
    written = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return '{"name": ' + json.dumps(name) + ', "arguments": ' + written + "}"


def message_text(message: Mapping[str, Any]) -> str:
    """An assistant message as the model writes it: its text, then each of its `tool_calls`
    (OpenAI's `{"function": {"name", "arguments"}}` or a bare `{"name", "arguments"}`) on a
    line of its own. One call and no text is exactly the call's JSON, a task's answer;
    anything more does not parse as one answer and is rejected as such."""
    parts = [message["content"]] if message.get("content") else []
    for call in message.get("tool_calls") or ():
        function = call.get("function", call)
        parts.append(call_text(function["name"], function["arguments"]))
    return "\n".join(parts)


def tool_call_message(answer: dict) -> dict:
    """A TRL assistant message calling `answer`'s tool. Its arguments are a JSON string,
    as OpenAI writes them: an object column would be unified across rows by Arrow (every
    tool's argument names on every call, as nulls). The chat template renders the message
    back to `json.dumps(answer)`, the text `Task.render_answer` writes."""
    return {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": answer["name"], "arguments": json.dumps(answer["arguments"])}}]}


def is_call(answer: object) -> bool:
    """Whether a parsed answer has the shape of one call (right or wrong)."""
    return (isinstance(answer, dict) and answer.keys() == {"name", "arguments"} and isinstance(answer["name"], str)
            and isinstance(answer["arguments"], dict))


def unwrap_tool_call(text: str) -> str:
    """The inside of one `<tool_call>...</tool_call>` pair filling `text`, else `text`."""
    tagged = _TAGGED.match(text)
    return tagged.group(1) if tagged else text
