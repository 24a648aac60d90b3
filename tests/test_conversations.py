"""Conversations through every stage, on literal inputs: the record and its id, the demo
conversation task's labels, the teacher answering the last turn with the history, prompt
length and dedupe over every turn, the filters on earlier answers, the exports in each
format, on-policy prompts from exported chats, the target eval asking with the history, and
the judge reading it."""

import asyncio
import hashlib
import json
import random

import polars as pl
import pytest

from datagen.dedupe.prompt_dedupe import PromptDedupeConfig, dedupe_prompts
from datagen.exports.formats import alpaca_rows, dpo_conversations, sft_messages, sharegpt_rows
from datagen.exports.sft_examples import SftSelectionConfig, sft_rows
from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers
from datagen.filters.prompt_length import PromptBound, TOKENS_PER_TURN, estimated_tokens, split_too_long
from datagen.foundation.records import (
    Example,
    PreferencePair,
    Teacher,
    Turn,
    examples_from_frame,
    examples_to_frame,
    pairs_from_frame,
    pairs_to_frame,
)
from datagen.judge.judge_prompts import GoldSetError, refuse_gold, shown_input
from datagen.serving.client import Endpoint
from datagen.serving.response_cache import ResponseCache
from datagen.tasks import support_conversation
from datagen.tasks.support_conversation import TASK, follow_up
from datagen.teacher.distill import DistillConfig, answer_prompts
from datagen.teacher.on_policy import prompts_from_sft_rows
from evals.eval_candidates import Candidate, target_chats
from evals.target_eval import score_target_outputs
from tests.scripted_teacher import ScriptedTeacher
from tests.test_eval_scoring import locked

TICKET = "My blender A-204518 arrived with a cracked jug."
LABEL = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
         "needs_human": True, "summary": "Blender arrived with a cracked jug."}
FIRST = TASK.render_answer(LABEL)
FOLLOW_UP = "If this isn't sorted by Friday I'm disputing the charge with my bank."
AFTER = dict(LABEL, priority="urgent", summary="Blender arrived with a cracked jug; threatens a chargeback.")
HISTORY = (Turn("user", TICKET), Turn("assistant", FIRST, written_by="m at http://teacher"))


def conversation(response: str | None = None, **fields) -> Example:
    return Example(task=TASK.name, prompt=FOLLOW_UP, response=response, source="gen@1", run_id="r",
                   reference=json.dumps(AFTER), context=HISTORY, **fields)


# ---- the record -------------------------------------------------------------------------


def test_a_single_turn_rows_id_is_what_it_was_and_the_history_is_content():
    single = Example(task="t", prompt="hello", response="world", source="s", run_id="r")
    assert single.id == hashlib.sha256(b'["t","hello","world"]').hexdigest()
    turns = (Turn("user", "hi"), Turn("assistant", "yes?"))
    talk = Example(task="t", prompt="hello", response="world", source="s", run_id="r", context=turns)
    assert talk.id == hashlib.sha256(b'["t","hello","world","[[\\"user\\",\\"hi\\"],[\\"assistant\\",\\"yes?\\"]]"]'
                                     ).hexdigest()
    # Who wrote a turn is provenance, not content.
    relabelled = (Turn("user", "hi", written_by="x"), Turn("assistant", "yes?", written_by="y"))
    assert Example(task="t", prompt="hello", response="world", source="s", run_id="r", context=relabelled).id == talk.id
    pair = PreferencePair(task="t", prompt="hello", chosen="a", rejected="b", strategy="s", evidence="e",
                          source="s", run_id="r")
    assert pair.id == hashlib.sha256(b'["t","hello","a","b"]').hexdigest()
    assert PreferencePair(**{**pair.__dict__, "id": "", "context": turns}).id != pair.id


@pytest.mark.parametrize("roles", [("user",), ("assistant", "user"), ("user", "user"), ("user", "assistant", "user"),
                                   ("system", "assistant")])
def test_a_history_out_of_order_is_refused(roles):
    with pytest.raises(ValueError, match="must alternate user, assistant from a user turn to an assistant turn"):
        Example(task="t", prompt="p", source="s", run_id="r", context=tuple(Turn(role, "x") for role in roles))


def test_conversations_round_trip_and_a_table_from_before_turns_reads_as_single_turn(tmp_path):
    rows = [conversation(FIRST, teacher=Teacher("u", "m", "{}", 0)),
            Example(task="t", prompt="p", source="s", run_id="r")]
    examples_to_frame(rows).write_parquet(tmp_path / "e.parquet")
    assert examples_from_frame(pl.read_parquet(tmp_path / "e.parquet")) == rows
    pair = PreferencePair(task="t", prompt=FOLLOW_UP, chosen="a", rejected="b", strategy="s", evidence="e",
                          source="s", run_id="r", context=HISTORY)
    assert pairs_from_frame(pairs_to_frame([pair])) == [pair]
    old = examples_to_frame(rows[1:]).drop("context")  # a stage written before records had turns
    assert examples_from_frame(old) == rows[1:]
    assert pairs_from_frame(pairs_to_frame([]).drop("context")) == []


# ---- the demo task ----------------------------------------------------------------------


def test_each_follow_up_changes_the_label_by_its_rule():
    rng = random.Random(0)
    assert follow_up("threatens_chargeback", LABEL, rng)[1] == dict(
        LABEL, priority="urgent", summary="Blender arrived with a cracked jug; threatens a chargeback.")
    calm = dict(LABEL, category="product_question", priority="low", needs_human=False, order_id=None)
    assert follow_up("angry", calm, rng)[1] == dict(calm, priority="high",
                                                    summary="Blender arrived with a cracked jug; customer is angry.")
    assert follow_up("angry", AFTER, rng)[1]["priority"] == "urgent"  # urgent stays urgent
    assert follow_up("asks_for_person", calm, rng)[1]["needs_human"] is True
    text, given = follow_up("gives_order_id", calm, rng)
    assert given["order_id"] in text and given == dict(calm, order_id=given["order_id"])
    assert follow_up("thanks", calm, rng)[1] == calm


def test_generated_conversations_are_labelled_alternating_turns_the_same_for_a_seed():
    made = TASK.generate(24, 5)
    assert made == TASK.generate(24, 5)
    for generated in made:
        TASK.answer_schema.model_validate(generated.label)
        roles = [turn.role for turn in generated.context]
        assert roles in (["user", "assistant"], ["user", "assistant"] * 2)
        # Every earlier assistant turn is the label of the conversation up to there.
        kinds = generated.template_id.split(">")[1:]
        assert len(kinds) == len(roles) // 2 and set(kinds) <= set(support_conversation.FOLLOW_UPS)
        assert "thanks" not in kinds[:-1]
    last = {generated.template_id.split(">")[-1] for generated in made}
    assert last == set(support_conversation.FOLLOW_UPS)  # dealt evenly: every kind is answered


# ---- the teacher answers the last turn with the history -----------------------------------


def test_the_teacher_answers_the_last_turn_given_the_history(tmp_path):
    with ScriptedTeacher(lambda prompt, k: json.dumps(AFTER)) as server:
        config = DistillConfig(teachers=[{"base_url": server.base_url, "model": "m"}], samples_per_prompt=1,
                               cache_path=tmp_path / "c.sqlite")
        result = asyncio.run(answer_prompts([conversation()], TASK, config, [Endpoint(server.base_url, "m", "k")],
                                            ResponseCache(tmp_path / "c.sqlite"), "r"))
        (sent,) = server.requests
    assert [m["content"] for m in sent["messages"][-3:]] == [TICKET, FIRST, FOLLOW_UP]
    assert sent["messages"][:-3] == TASK.messages("", few_shot=True)[:-1]  # system and few-shot turns first
    (answer,) = result.answers
    assert (answer.prompt, answer.context, answer.response) == (FOLLOW_UP, HISTORY, json.dumps(AFTER))
    assert answer.parent_ids == (conversation().id,)


# ---- prompt length, dedupe and filters over every turn -------------------------------------


def test_prompt_length_counts_every_turn_of_a_conversation():
    words = "word " * 30  # 150 characters: 50 estimated tokens a turn
    talk = Example(task="t", prompt=words, source="s", run_id="r",
                   context=(Turn("user", words), Turn("assistant", words)))
    bound = PromptBound(100, estimated_tokens())
    kept, rejected = split_too_long([talk, Example(task="t", prompt=words, source="s", run_id="r")], [bound])
    assert [k.context for k in kept] == [()]  # 50 tokens alone
    # Three turns of 150 characters and two blank lines: 152 tokens, and the two earlier turns' templates.
    assert TOKENS_PER_TURN == 5
    assert rejected == [(talk, "too_long: 162 tokens > 100 (estimate at 3 characters a token)")]


def test_dedupe_compares_whole_conversations():
    def talk(first: str, last: str) -> Example:
        return Example(task="t", prompt=last, source="s", run_id="r",
                       context=(Turn("user", first), Turn("assistant", "{}")))

    same_end = [talk("My kettle arrived with a dent in the side.", "Can I speak to an actual person please?"),
                talk("I was charged twice for my order of garden chairs.", "Can I speak to an actual person please?")]
    again = talk("My kettle arrived with a dent in the side.", "can I speak to an  ACTUAL person please?")
    kept, removed = dedupe_prompts([*same_end, again, Example(task="t", prompt="Can I speak to an actual person "
                                                                            "please?", source="s", run_id="r")],
                                   PromptDedupeConfig())
    assert [k.context[0].content for k in kept[:2]] == [t.context[0].content for t in same_end] and len(kept) == 3
    assert [(r[0].id, r[1], r[3]) for r in removed] == [(again.id, same_end[0].id, "exact")]


def test_an_earlier_answer_is_held_to_the_label_free_checks_and_the_label_to_the_last():
    right = conversation(json.dumps(AFTER), finish_reason="stop", teacher=Teacher("u", "m", "{}", 0))
    def after(first_answer: str) -> Example:
        return Example(**{**right.__dict__, "id": "", "context": (Turn("user", TICKET), Turn("assistant", first_answer))})

    broken, refusing = after("Sure! Here:"), after("I'm sorry, but I cannot help with that.")
    stale = Example(**{**right.__dict__, "id": "", "response": FIRST})  # the first turn's label, not the last's
    kept, rejected = filter_answers([right, broken, refusing, stale], TASK, AnswerFilterConfig())
    assert kept == [right]
    assert [reason for _, reason in rejected] == [
        "earlier_turn: unparseable: not a single JSON object (assistant turn 1 of 2)",
        "earlier_turn: refusal_phrase: I'm sorry, but (assistant turn 1 of 2)",
        "wrong_fields: priority",
    ]


def test_a_prompt_never_answered_right_is_filled_with_its_label_and_keeps_its_history():
    prompt = conversation()
    (row,) = sft_rows([], [prompt], TASK, SftSelectionConfig())
    assert (row.context, row.prompt, json.loads(row.response)) == (HISTORY, FOLLOW_UP, AFTER)


# ---- exports -----------------------------------------------------------------------------


def test_every_format_carries_every_turn():
    row = conversation(TASK.render_answer(AFTER))
    pair = PreferencePair(task=TASK.name, prompt=FOLLOW_UP, chosen=TASK.render_answer(AFTER), rejected=FIRST,
                          strategy="verifier_ranked", evidence="rejected is wrong_fields: priority", source="s",
                          run_id="r", context=HISTORY)
    system = TASK.training_system_prompt
    assert sft_messages([row], TASK).to_dicts() == [{"id": row.id, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": TICKET},
        {"role": "assistant", "content": FIRST}, {"role": "user", "content": FOLLOW_UP},
        {"role": "assistant", "content": TASK.render_answer(AFTER)}]}]
    assert sharegpt_rows([row], TASK).to_dicts() == [{"id": row.id, "conversations": [
        {"from": "system", "value": system}, {"from": "human", "value": TICKET}, {"from": "gpt", "value": FIRST},
        {"from": "human", "value": FOLLOW_UP}, {"from": "gpt", "value": TASK.render_answer(AFTER)}]}]
    assert dpo_conversations([pair], TASK).to_dicts() == [{
        "id": pair.id,
        "prompt": [{"role": "system", "content": system}, {"role": "user", "content": TICKET},
                   {"role": "assistant", "content": FIRST}, {"role": "user", "content": FOLLOW_UP}],
        "chosen": [{"role": "assistant", "content": TASK.render_answer(AFTER)}],
        "rejected": [{"role": "assistant", "content": FIRST}]}]
    single = Example(task=TASK.name, prompt=TICKET, response=FIRST, source="s", run_id="r")
    # Alpaca: LLaMA-Factory's history column once a set has conversations; none before.
    assert alpaca_rows([single], TASK).columns == ["id", "instruction", "input", "output"]
    assert alpaca_rows([row, single], TASK).to_dicts() == [
        {"id": row.id, "instruction": system, "input": FOLLOW_UP, "output": TASK.render_answer(AFTER),
         "history": [[TICKET, FIRST]]},
        {"id": single.id, "instruction": system, "input": TICKET, "output": FIRST, "history": []}]


def test_on_policy_prompts_from_exported_chats_keep_the_history():
    row = {"id": "sft-1", "messages": sft_messages([conversation(TASK.render_answer(AFTER))], TASK).to_dicts()[0][
        "messages"]}
    (prompt,) = prompts_from_sft_rows([row], TASK, "round-1")
    assert (prompt.context, prompt.prompt, json.loads(prompt.reference)) == (
        (Turn("user", TICKET), Turn("assistant", FIRST)), FOLLOW_UP, AFTER)


# ---- evals and the judge -----------------------------------------------------------------


def test_the_target_eval_asks_the_last_turn_with_the_history_and_scores_that_answer():
    context = [{"role": "user", "content": TICKET}, {"role": "assistant", "content": FIRST}]
    gold = locked(TASK.name, [{"prompt": FOLLOW_UP, "reference": AFTER, "context": context},
                              {"prompt": TICKET, "reference": LABEL}])
    trained = Candidate("sft", "fine-tune", "trained", "the adapter")
    chats = target_chats(TASK, trained, gold.rows)
    assert chats[0] == [{"role": "system", "content": TASK.training_system_prompt}, *context,
                        {"role": "user", "content": FOLLOW_UP}]
    assert chats[1] == TASK.messages(TICKET, few_shot=False, trained=True)
    rows, summary = score_target_outputs(TASK, gold, [FIRST, FIRST], seed=0)
    # The first turn's triage answers the first row's last turn wrongly: the chargeback made it urgent.
    assert [(row["exact"], row["wrong_fields"]) for row in rows] == [(False, ["priority"]), (True, [])]
    assert rows[0]["context"] == context and "context" not in rows[1]
    with pytest.raises(ValueError, match="must alternate"):
        target_chats(TASK, trained, [{"prompt": "p", "context": context[:1]}])


class _Gold:
    def __init__(self, prompt: str):
        self.prompt = prompt

    def find(self, prompt: str, row_id: str | None = None):
        return ("prompt", "gold/sets/x/v1 line 3") if prompt == self.prompt else None


def test_the_judge_reads_the_conversation_and_never_one_with_a_gold_turn():
    assert shown_input(conversation()) == f"User: {TICKET}\n\nAssistant: {FIRST}\n\nUser: {FOLLOW_UP}"
    single = Example(task="t", prompt=TICKET, source="s", run_id="r")
    assert shown_input(single) == TICKET
    refuse_gold([conversation()], _Gold("not in it"))
    with pytest.raises(GoldSetError, match="has the prompt of gold/sets/x/v1 line 3"):
        refuse_gold([conversation()], _Gold(TICKET))  # the gold ticket is the conversation's first turn


def test_a_conversation_that_goes_on_from_another_is_not_its_near_duplicate():
    ticket = ("My order A-552190 of two garden chairs arrived today and one of them has a cracked leg, so it "
              "cannot be used at all. I would like a replacement chair sent as soon as possible please.")
    seed = Example(task="t", prompt=ticket, source="s", run_id="r")
    follow = Example(task="t", prompt="Can someone call me?", source="s", run_id="r",
                     context=(Turn("user", ticket), Turn("assistant", "{}")))
    kept, removed = dedupe_prompts([seed, follow], PromptDedupeConfig())
    assert (kept, removed) == ([seed, follow], [])
