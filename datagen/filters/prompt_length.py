"""Prompts too long for a teacher are rejected before any request, with reason `too_long`.

A request is the task's system prompt and few-shot turns, the prompt, and room for the
answer (`sampling.max_tokens`), and all of it must fit the model's context window. A
prompt that does not is refused by the server (HTTP 400, which stops the build:
`teacher_client.py`) or cut short by it, and a hosted API bills a 5 MB prompt in full.
So every prompt, generated, self-generated or imported, is measured before dedupe, and
one over the bound goes to the `unique_prompts` stage's rejects, counted in the summary.

The bound for each model that will be asked (every teacher; the student, without
few-shot turns): `distill.max_prompt_tokens` when the recipe sets it, else
`context_tokens - max_tokens - the tokens of the request around the prompt`. Tokens are
counted with the model's own tokenizer where crucible has it (the embedded model, whose
context is read from its config: 8192 for SmolLM2), else estimated at `CHARS_PER_TOKEN`
characters a token, with `teacher.DEFAULT_CONTEXT_TOKENS` when the recipe gives no context.

A conversation's earlier turns are sent with its prompt, so they are measured with it:
every turn's text, and `TOKENS_PER_TURN` for each earlier turn's template.

Input: Examples with a `prompt`. Output: those that fit every bound, and the others with
their reason, e.g. `too_long: 1250000 tokens > 7637 (SmolLM2-135M-Instruct tokenizer)`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from datagen.foundation.records import Example
from datagen.foundation.task import Task
from datagen.serving.embedded_model import embedded_model_dir
from datagen.serving.endpoint import DEFAULT_CONTEXT_TOKENS, EndpointConfig

# English averages about 4 characters a token with the BPE tokenizers of the Llama, GPT
# and SmolLM families; 3 leaves room for code, numbers and accented text, so an estimate
# errs towards rejecting a prompt rather than sending one that overflows. Text in
# scripts with fewer characters a token (Chinese, Japanese: 1-2) needs
# `distill.max_prompt_tokens` set to the estimate's units accordingly.
CHARS_PER_TOKEN = 3
# What a chat template adds around each turn (ChatML: `<|im_start|>role\n`, `<|im_end|>\n`).
TOKENS_PER_TURN = 5


@dataclass(frozen=True)
class TokenCounter:
    name: str  # how tokens are counted, for the reason: "SmolLM2-135M-Instruct tokenizer"
    count: Callable[[str], int]
    count_turns: Callable[[list[dict]], int]  # a whole chat, as the model's template lays it out
    longest_token_chars: int | None  # a text longer than bound * this is over, uncounted


def _estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimated_tokens() -> TokenCounter:
    return TokenCounter(
        f"estimate at {CHARS_PER_TOKEN} characters a token", _estimate,
        lambda chat: sum(_estimate(turn["content"]) + TOKENS_PER_TURN for turn in chat) + TOKENS_PER_TURN, None,
    )


def tokenizer_tokens(model_dir: Path) -> TokenCounter:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return TokenCounter(
        f"{Path(model_dir).name} tokenizer",
        lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
        lambda chat: len(tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=True)["input_ids"]),
        max(len(piece) for piece in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))),
    )


@dataclass(frozen=True)
class PromptBound:
    max_tokens: int
    counter: TokenCounter

    def reason_if_over(self, prompt: str, earlier_turns: int = 0) -> str | None:
        """`prompt`: the text sent (a conversation's every turn); `earlier_turns`: how many of
        its turns came before the last, each with its template's tokens."""
        counter = self.counter
        if counter.longest_token_chars and len(prompt) > (self.max_tokens + 1) * counter.longest_token_chars:
            # At most `longest_token_chars` characters a token: over for sure, and not
            # worth tokenizing (6 s for 5 MB here).
            shown = f"at least {math.ceil(len(prompt) / counter.longest_token_chars)}"
        else:
            tokens = counter.count(prompt) + TOKENS_PER_TURN * earlier_turns
            if tokens <= self.max_tokens:
                return None
            shown = str(tokens)
        return f"too_long: {shown} tokens > {self.max_tokens} ({counter.name})"


def prompt_bound(task: Task, teacher: EndpointConfig, *, few_shot: bool, max_prompt_tokens: int | None) -> PromptBound:
    """The longest prompt `teacher` can be sent, asked as `few_shot` says."""
    context = teacher.context_tokens
    if teacher.base_url is None:
        model_dir = embedded_model_dir()
        counter = tokenizer_tokens(model_dir)
        context = context or json.loads((model_dir / "config.json").read_text())["max_position_embeddings"]
    else:
        counter = estimated_tokens()
        context = context or DEFAULT_CONTEXT_TOKENS
    if max_prompt_tokens is not None:
        return PromptBound(max_prompt_tokens, counter)
    around = counter.count_turns(task.messages("", few_shot=few_shot))
    room = context - teacher.sampling.max_tokens - around
    if room <= 0:
        raise ValueError(f"teacher {teacher.model or 'embedded'}: context of {context} tokens has no room for a prompt "
                         f"after max_tokens {teacher.sampling.max_tokens} and {around} tokens of system and few-shot turns")
    return PromptBound(room, counter)


def split_too_long(prompts: list[Example], bounds: list[PromptBound]) -> tuple[list[Example], list[tuple[Example, str]]]:
    """The prompts within every bound, and the others with the first bound's reason."""
    kept, rejected = [], []
    for prompt in prompts:
        text, earlier = prompt.conversation_text(), len(prompt.context)
        reason = next((r for r in (b.reason_if_over(text, earlier) for b in bounds) if r is not None), None)
        if reason is None:
            kept.append(prompt)
        else:
            rejected.append((prompt, reason))
    return kept, rejected


def prompt_bounds(task: Task, teachers: list[EndpointConfig], student: EndpointConfig | None,
                  max_prompt_tokens: int | None) -> list[PromptBound]:
    """The longest prompt each model that will be asked can take: the teachers with
    their few-shot turns, the student without."""
    asked = [(teacher, True) for teacher in teachers] + ([(student, False)] if student is not None else [])
    return [prompt_bound(task, model, few_shot=few_shot, max_prompt_tokens=max_prompt_tokens)
            for model, few_shot in asked]
