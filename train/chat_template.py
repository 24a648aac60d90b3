"""The chat template training uses, pinned, checked against the base model's own, and
saved with every adapter.

Loss on the assistant's tokens only needs a template that marks them: TRL's
`assistant_only_loss` reads `{% generation %}` ... `{% endgeneration %}` blocks. SmolLM2
(and any ChatML model) ships a template without them, and TRL patches only the
templates it knows. So crucible pins its own: `CHATML_TRAINING_TEMPLATE` renders
exactly what SmolLM2's template renders, with the markers around each assistant turn's
content and its `<|im_end|>` (the model must learn to stop; the newline after it is
the template's, not the answer's).

A template that renders even one character differently from the model's own teaches a
format the model never sees at inference (Axolotl #2089, TRL PR #4201), so
`pin_chat_template` renders a probe conversation with both and refuses to train when
they differ. The pinned template is saved with the adapter (`chat_template.jinja`), so
whoever loads the adapter formats prompts the same way.
"""

from __future__ import annotations

import json
import re

from datagen.foundation.tool_calls import TOOLS_FOOTER, TOOLS_HEADER, message_text, system_with_tools

def _literal(text: str) -> str:
    # A Jinja string literal: Jinja reads JSON's escapes (\n, \", \uXXXX) as Python does.
    return json.dumps(text)


# Tools (TRL's `tools` column) are listed after the first system turn's text, and an
# assistant's `tool_calls` are written as their JSON, exactly as `datagen/foundation/tool_calls.py`
# writes them for every model whose template ignores tools, SmolLM2's among them.
_TOOLS = ("{% if tools %}{{ " + _literal(TOOLS_HEADER) + " }}{% for tool in tools %}{{ '\n' + tool | tojson }}"
          "{% endfor %}{{ " + _literal(TOOLS_FOOTER) + " }}{% endif %}")
_ASSISTANT_TEXT = (
    "{% set answer = namespace(text=message['content'] or '') %}"
    "{% for call in message['tool_calls'] or [] %}"
    "{% set function = call['function'] if call['function'] is defined else call %}"
    "{% set arguments = function['arguments'] if function['arguments'] is string else function['arguments'] | tojson %}"
    "{% set answer.text = answer.text + ('\n' if answer.text else '') + '{\"name\": ' + function['name'] | tojson"
    " + ', \"arguments\": ' + arguments + '}' %}"
    "{% endfor %}"
)
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face' }}" + _TOOLS +
    "{{ '<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}" + _ASSISTANT_TEXT +
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ answer.text + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% elif loop.first and message['role'] == 'system' %}"
    "{{ '<|im_start|>system\n' + message['content'] }}" + _TOOLS + "{{ '<|im_end|>\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A call to a tool with a non-ASCII description: what TRL's `tools` column and an assistant's
# `tool_calls` render to must be what the model sees when crucible writes them as text.
PROBE_TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order (Bestellung prüfen)",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
PROBE_CALL_CHAT = [
    {"role": "system", "content": "You call tools."},
    {"role": "user", "content": "Where is AB-12345?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "AB-12345"}'}}]},
]
# Two turns each side and a system turn: every branch of a chat template renders.
PROBE_CHAT = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "6"},
]
_MARKERS = re.compile(r"{%-?\s*(?:end)?generation\s*-?%}")


class ChatTemplateError(ValueError):
    pass


def without_markers(template: str) -> str:
    return _MARKERS.sub("", template)


def as_text_chat(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """The chat as a model whose template ignores tools sees it: the tools listed in the
    first system turn, each assistant's calls written as text (`datagen/foundation/tool_calls.py`)."""
    chat = [{"role": message["role"], "content": message_text(message)} for message in messages]
    if tools and chat and chat[0]["role"] == "system":
        chat[0]["content"] = system_with_tools(chat[0]["content"], tools)
    return chat


def row_tools(row: dict) -> list[dict] | None:
    """A training row's tools as the chat template takes them; TRL's `tools` column may hold
    their JSON, as crucible's exports do."""
    tools = row.get("tools")
    return json.loads(tools) if isinstance(tools, str) else tools


def pin_chat_template(tokenizer, template: str = CHATML_TRAINING_TEMPLATE, *, with_tools: bool = False) -> str:
    """Set `template` on `tokenizer` after checking that, markers aside, it renders the
    probe chats exactly as the tokenizer's own template does; returns the template.
    `with_tools`: the rows carry tools, and the template must render a chat with tools and
    a call exactly as the tokenizer's own renders that chat written as text (`as_text_chat`)."""
    own = tokenizer.chat_template
    if not own:
        raise ChatTemplateError("the base model's tokenizer has no chat template: train from an instruct model, "
                                "or give the recipe a chat_template that the model was trained with")
    for chat in (PROBE_CHAT, PROBE_CHAT[1:]):
        for generation_prompt in (False, True):
            messages = chat[:-1] if generation_prompt else chat
            theirs = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
            ours = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt,
                                                 chat_template=without_markers(template))
            if ours != theirs:
                raise ChatTemplateError(
                    "the training chat template renders differently from the base model's own, so training would "
                    f"teach a format the model never sees at inference:\n  model's: {theirs!r}\n  training: {ours!r}\n"
                    "give the recipe a chat_template with {% generation %} markers that matches the model's")
    if with_tools:
        theirs = tokenizer.apply_chat_template(as_text_chat(PROBE_CALL_CHAT, PROBE_TOOLS), tokenize=False)
        ours = tokenizer.apply_chat_template(PROBE_CALL_CHAT, tools=PROBE_TOOLS, tokenize=False,
                                             chat_template=without_markers(template))
        if ours != theirs:
            raise ChatTemplateError(
                "the training chat template renders tools and tool calls differently from the text every other "
                f"model is shown (datagen/foundation/tool_calls.py):\n  as text: {theirs!r}\n  training: {ours!r}")
    tokenizer.chat_template = template
    return template
