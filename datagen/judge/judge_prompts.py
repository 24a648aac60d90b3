"""What the LLM judge is shown, what it is asked, how its replies are read, and what it
must never be shown: a gold row (`refuse_gold`).

The prompts follow MT-Bench's judge prompts (Zheng et al. 2023, arXiv:2306.05685,
appendix): the judge is told to be impartial, to ignore the order, length and style of
the answers, and to explain itself *before* it gives the verdict, so the score is
conditioned on the reasoning rather than rationalised after it. Instead of MT-Bench's
`[[8]]` markers we ask for one JSON object with the rationale as its first key: crucible
already reads JSON answers, and endpoints that enforce a schema can enforce this one.

A reply is read into a verdict or into the reason it could not be: a judge that talks
around its JSON, gives a score off the scale or runs out of tokens is recorded as such,
never dropped.

The gold guard lives here, beside the prompts, because it is a condition on the judge's
input: `judge.py` calls it before building a single prompt.
"""

from __future__ import annotations

import json
from typing import Iterable, Protocol

from datagen.foundation.records import Example
from datagen.foundation.task import Task


class GoldPromptIndex(Protocol):
    """What the judge needs of the gold sets: whether a prompt (or row id) is a gold row.
    `gold/gold_root.py` builds the real one from verified versions; gold sits above
    datagen, so the judge is handed an index and never imports gold."""

    def find(self, prompt: str, row_id: str | None = None) -> tuple[str, str] | None: ...

SYSTEM_PROMPT = (
    "You are an impartial judge of answers to a task. Judge only by the rubric. Do not let "
    "the length of an answer, its style or its position sway you. Reply with exactly one JSON "
    "object and nothing else."
)


def shown_input(example: Example) -> str:
    """What the judge reads as the input: the prompt, or a conversation's every turn before
    the answer, each named by its speaker."""
    if not example.context:
        return example.prompt
    turns = example.chat()[: len(example.context) + 1]
    return "\n\n".join(f"{'User' if turn['role'] == 'user' else 'Assistant'}: {turn['content']}" for turn in turns)


def _shown(task: Task, prompt: str) -> str:
    return f"Rubric:\n{task.judge_rubric}\n\n[Input]\n{prompt}\n[End of input]\n\n"


def score_messages(task: Task, prompt: str, answer: str, scale: tuple[int, int]) -> list[dict[str, str]]:
    low, high = scale
    question = (
        f"{_shown(task, prompt)}[Answer]\n{answer}\n[End of answer]\n\n"
        f"Rate the answer by the rubric from {low} (worst) to {high} (best). Reply as "
        f'{{"rationale": "<one or two sentences>", "score": <integer from {low} to {high}>}}'
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def pairwise_messages(task: Task, prompt: str, first: str, second: str) -> list[dict[str, str]]:
    question = (
        f"{_shown(task, prompt)}[Answer A]\n{first}\n[End of answer A]\n\n"
        f"[Answer B]\n{second}\n[End of answer B]\n\n"
        "Which answer is better by the rubric? Reply as "
        '{"rationale": "<one or two sentences>", "winner": "A" or "B" or "tie"}'
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def _format(name: str, verdict_schema: dict) -> dict:
    # `rationale` first in `properties` and `required`: schema-constrained decoders emit
    # keys in that order, which keeps the reasoning before the verdict.
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"rationale": {"type": "string"}, **verdict_schema},
                "required": ["rationale", *verdict_schema],
                "additionalProperties": False,
            },
        },
    }


def score_format(scale: tuple[int, int]) -> dict:
    return _format("judge_score", {"score": {"type": "integer", "minimum": scale[0], "maximum": scale[1]}})


PAIRWISE_FORMAT = _format("judge_pairwise", {"winner": {"type": "string", "enum": ["A", "B", "tie"]}})


def _verdict_object(reply: str, finish_reason: str | None) -> tuple[dict | None, str | None, str]:
    """(the first JSON object in the reply, its rationale, "") or (None, None, why not).
    Prose or a code fence around the object is tolerated; a missing rationale is not."""
    start = reply.find("{")
    value = None
    if start >= 0:
        try:
            value, _ = json.JSONDecoder().raw_decode(reply[start:])
        except json.JSONDecodeError:
            pass
    if not isinstance(value, dict):
        cut = " (cut off at max_tokens)" if finish_reason == "length" else ""
        return None, None, f"no JSON object in the reply{cut}"
    rationale = value.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        return None, None, "no rationale"
    return value, rationale, ""


def read_score(
    reply: str, finish_reason: str | None, scale: tuple[int, int]
) -> tuple[int | None, str | None, str]:
    """(score, rationale, "") from a judge's reply, or (None, rationale or None, why not)."""
    value, rationale, why = _verdict_object(reply, finish_reason)
    if why:
        return None, None, why
    score = value.get("score")
    # bool is an int to Python, and `true` is no score.
    if not isinstance(score, int) or isinstance(score, bool):
        return None, rationale, f"score is not an integer: {json.dumps(score)}"
    if not scale[0] <= score <= scale[1]:
        return None, rationale, f"score {score} is off the scale {scale[0]}-{scale[1]}"
    return score, rationale, ""


def read_choice(reply: str, finish_reason: str | None) -> tuple[str | None, str | None, str]:
    """("A" | "B" | "tie", rationale, "") from a judge's reply, or (None, rationale or None, why not)."""
    value, rationale, why = _verdict_object(reply, finish_reason)
    if why:
        return None, None, why
    winner = value.get("winner")
    choice = {"a": "A", "b": "B", "tie": "tie"}.get(winner.strip().lower()) if isinstance(winner, str) else None
    if choice is None:
        return None, rationale, f"winner is not A, B or tie: {json.dumps(winner)}"
    return choice, rationale, ""


# ---- what the judge must never be shown ---------------------------------------------


def _gold_turn(example: Example, gold: GoldPromptIndex) -> tuple[str, str] | None:
    earlier = (turn.content for turn in example.context if turn.role == "user")
    return gold.find(example.prompt, example.id) or next(filter(None, (gold.find(text) for text in earlier)), None)


class GoldSetError(RuntimeError):
    """An example is a gold row. The gold sets are human-labelled and held out to measure
    the trained model: a judge that labels them turns the yardstick into training signal."""


def refuse_gold(examples: Iterable[Example], gold: GoldPromptIndex) -> None:
    """Raise `GoldSetError` if any example's prompt (after `normalize_text`), any earlier user
    turn of a conversation, or its content id is a row of any locked gold version, naming
    the set, version and line.

    `gold` is the prompt index of a gold root opened and verified by the flow
    (`gold/gold_root.py`): a missing or tampered root has already stopped it there, so a
    mistyped path never passes this check by finding nothing.
    """
    if gold is None:
        raise GoldSetError("the judge checks every example against the gold sets: pass the verified gold index")
    hits = [(example, found) for example in examples if (found := _gold_turn(example, gold))]
    if hits:
        example, (kind, where) = hits[0]
        raise GoldSetError(
            f"example {example.id} has the {kind} of {where}; {len(hits)} example(s) in all are gold rows. "
            "The judge never labels gold rows: remove them first"
        )
