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

import re

CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

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


def pin_chat_template(tokenizer, template: str = CHATML_TRAINING_TEMPLATE) -> str:
    """Set `template` on `tokenizer` after checking that, markers aside, it renders the
    probe chats exactly as the tokenizer's own template does; returns the template."""
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
    tokenizer.chat_template = template
    return template
