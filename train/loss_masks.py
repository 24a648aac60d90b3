"""Check, before a single step, that SFT's loss falls on the assistant's tokens only.

A wrong mask is silent: training on the prompt's tokens teaches the model to write
tickets, not triage them, and a row whose answer was cut off by `max_length` trains on
nothing. So the tokenized rows (TRL's `input_ids` and `assistant_masks`) are checked
against the chats they came from, independently of how the mask was made: decoding a
row's supervised tokens must give exactly its assistant turns, each with its
end-of-turn token, in order. Any prompt token supervised adds text, any answer token
left out removes some, and either stops training with the row named.

`mask_sample` shows one row with the supervised spans in «guillemets», for the log.
"""

from __future__ import annotations

from datagen.foundation.tool_calls import message_text

END_OF_TURN = "<|im_end|>"


class LossMaskError(ValueError):
    pass


def supervised_text(tokenizer, input_ids: list[int], mask: list[int]) -> str:
    return tokenizer.decode([token for token, keep in zip(input_ids, mask) if keep])


def expected_supervised_text(messages: list[dict], end_of_turn: str = END_OF_TURN) -> str:
    # An assistant's `tool_calls` are supervised as the text they render to.
    return "".join(message_text(message) + end_of_turn for message in messages if message["role"] == "assistant")


def check_loss_masks(tokenizer, rows: list[dict], tokenized: list[dict], end_of_turn: str = END_OF_TURN) -> dict:
    """`rows` are the chats (`messages`, `id`), `tokenized` TRL's rows in the same order.
    Returns counts of supervised and prompt tokens; raises `LossMaskError` naming the
    first bad row."""
    if len(rows) != len(tokenized):
        raise LossMaskError(f"{len(rows)} chats but {len(tokenized)} tokenized rows: rows were dropped or added")
    supervised = total = 0
    for row, tokens in zip(rows, tokenized):
        mask = tokens.get("assistant_masks") or tokens.get("completion_mask")
        if mask is None:
            raise LossMaskError("the tokenized rows carry no assistant mask: loss would fall on every token")
        got = supervised_text(tokenizer, tokens["input_ids"], mask)
        want = expected_supervised_text(row["messages"], end_of_turn)
        if not any(mask):
            raise LossMaskError(f"row {row.get('id', '?')} has no supervised token (was its answer truncated?)")
        if got != want:
            raise LossMaskError(f"row {row.get('id', '?')}: the supervised tokens are not exactly its assistant "
                                f"turns:\n  supervised: {got!r}\n  expected:   {want!r}")
        supervised += sum(mask)
        total += len(mask)
    return {"rows": len(rows), "supervised_tokens": supervised, "prompt_tokens": total - supervised}


def mask_sample(tokenizer, input_ids: list[int], mask: list[int]) -> str:
    """The row's text with each supervised span in «...»."""
    parts, span, inside = [], [], None
    for token, keep in zip(input_ids, mask):
        if inside is not None and bool(keep) != inside:
            parts.append(_render(tokenizer, span, inside))
            span = []
        inside = bool(keep)
        span.append(token)
    if span:
        parts.append(_render(tokenizer, span, inside))
    return "".join(parts)


def _render(tokenizer, tokens: list[int], supervised: bool) -> str:
    text = tokenizer.decode(tokens)
    return f"«{text}»" if supervised else text
