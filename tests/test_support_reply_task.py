"""The free-text demo family (datagen/tasks/support_reply.py) through curation, on literal
replies: its generator, the text filters and the checks as the verifier, the pairs made
by the checks and by the judge (position swap, length bias, never a gold row), and the
recipes that refuse what does not fit text."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter

import pytest
import yaml

from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers
from datagen.filters.text_filters import LanguageConfig, RefusalConfig, RepetitionConfig
from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Teacher
from datagen.foundation.text_checks import check_results, input_errors
from datagen.judge.judge_answers import JudgeConfig, length_bias
from datagen.judge.judge_pairs import judge_ranked_pairs
from datagen.judge.judge_prompts import GoldSetError
from datagen.pairs.preference_pairs import PairSources, PreferencePairConfig, build_pairs
from datagen.serving.client import Endpoint
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_reply import TASK, generate_tickets
from datagen.teacher.distill import response_format_for
from flows.build_dataset import BuildDatasetRecipe
from flows.preflight import PreflightRecipe
from flows.recipe import RecipeError
from flows.train_sft_dpo import TrainRecipe
from gold.gold_root import GoldRoot
from tests.scripted_teacher import ScriptedTeacher

TICKET = ("From: Maya Schultz\nOrder: A-553789\nSubject: Wrong item\n\nI ordered the bluetooth speaker but the box "
          "had a wireless earbuds in it.")
REPLY = ("Hi Maya,\n\nOur packing team mixed up order A-553789, sorry about that. Your bluetooth speaker goes out "
         "today. Please send the wireless earbuds back with the free return label in your inbox."
         "\n\n— Juniper Support")
BANNED = ["we apologize for any inconvenience", "unfortunately", "as per our policy", "valued customer", "kindly"]
LABEL = {"reply": REPLY, "checks": [
    {"kind": "names_field", "field": "customer_name", "value": "Maya"},
    {"kind": "names_field", "field": "order_id", "value": "A-553789"},
    {"kind": "must_mention", "terms": ["return label", "bluetooth speaker"], "mode": "all"},
    {"kind": "must_not_say", "terms": BANNED},
    {"kind": "max_words", "limit": 80},
    {"kind": "matches_pattern", "pattern": r"Juniper Support\s*$"}]}
# The recipe's filters (flows/recipes/support_reply.yaml).
FILTERS = AnswerFilterConfig(refusal=RefusalConfig(phrases=["As an AI", "as a language model"]),
                             repetition=RepetitionConfig(), language=LanguageConfig(expected=["en"]))


def test_a_fixed_seed_gives_this_ticket_and_label():
    (ticket,) = generate_tickets(1, seed=1)

    assert (ticket.template_id, ticket.text, ticket.label) == ("wrong_item/1", TICKET, LABEL)


def test_every_generated_label_passes_its_checks_and_names_only_what_its_ticket_holds():
    tickets = generate_tickets(160, seed=3)

    assert tickets == generate_tickets(160, seed=3)
    assert Counter(t.template_id for t in tickets) == {f"{issue}/{n}": 10 for issue in (
        "damaged_item", "wrong_item", "shipping_delay", "refund_request", "account_access", "billing_error",
        "product_question", "cancellation") for n in (1, 2)}
    for ticket in tickets:
        assert all(result.passed for result in check_results(ticket.label["reply"], ticket.label))
        assert input_errors(ticket.text, ticket.label) == []


def test_no_generated_ticket_or_reply_comes_close_to_a_committed_gold_row():
    """The gold replies are the labelers' own words: a generated reply that shared a 13-word
    run with one (a stock sentence of the house voice, say) would stop every build at the
    contamination gate, as it did before the generator's replies were reworded."""
    from evals.contamination.audit import AuditConfig, audit
    from evals.contamination.audit_inputs import AuditRow, locked_gold_rows

    gold = GoldRoot("gold/sets").get("support_reply")
    rows = [AuditRow(str(n), str(n), ticket.text, ticket.label["reply"])
            for n, ticket in enumerate(generate_tickets(96, seed=0))]

    result = audit(locked_gold_rows(gold), rows, AuditConfig(methods=["exact", "ngram", "minhash"]))

    assert result.flagged_train == {}


def answer(response: str, sample: int = 0, reference: dict | None = LABEL, prompt: str = TICKET) -> Example:
    # The prompt id picks the check `check_targeted` breaks first: ticket-2's is the order id.
    return Example(task="support_reply", prompt=prompt, response=response, source="test", run_id="r",
                   reference=None if reference is None else canonical_json(reference),
                   teacher=Teacher("http://teacher", "teacher-m", "{}", sample), finish_reason="stop",
                   parent_ids=("ticket-2",))


REJECTED = {
    "": "unparseable: a blank reply",
    "As an AI, I can't see your order.": "refusal_phrase: As an AI",
    ("Hi Maya, the speaker ships today. " * 12).strip(): "top_2gram_char_fraction: 0.231 > 0.200",
    ("Bonjour Maya, nous sommes désolés pour l'erreur de commande. Le haut-parleur part aujourd'hui avec une "
     "étiquette de retour."): "wrong_language: fr",
    "Hi Maya, " + "very " * 250 + "sorry.": "too_long: 1265 chars > 1000",
    ("Hi Maya,\n\nUnfortunately we sent the wrong item. The bluetooth speaker ships today with a return label.\n\n"
     "— Juniper Support"): "wrong_fields: names_field, must_not_say",
}


def test_the_text_filters_apply_and_the_checks_verify_what_they_leave():
    answers = [answer(REPLY)] + [answer(text, sample) for sample, text in enumerate(REJECTED, 1)]

    kept, rejected = filter_answers(answers, TASK, FILTERS)

    assert [a.response for a in kept] == [REPLY]
    assert {a.response: reason for a, reason in rejected}.keys() == REJECTED.keys()
    for a, reason in rejected:
        assert reason.startswith(REJECTED[a.response]), (reason, REJECTED[a.response])


def test_a_self_generated_ticket_with_no_label_is_checked_for_form_only():
    kept, rejected = filter_answers([answer("Hi there, we'll sort it.", reference=None)], TASK, FILTERS)

    assert (len(kept), rejected) == (1, [])


def test_pairs_come_from_a_failed_check_and_from_checks_broken_by_rule():
    verified = answer(REPLY)
    wrong = answer("Hi Maya,\n\nThe speaker ships today with a return label.\n\n— Juniper Support", sample=1)
    reference_row = Example(task="support_reply", prompt=TICKET, response=REPLY, source="ref", run_id="r",
                            reference=canonical_json(LABEL), parent_ids=("ticket-2",))
    sources = PairSources([verified], [(wrong, "wrong_fields: names_field, must_mention")], sft_rows=[reference_row])

    pairs, dropped, skipped = build_pairs(sources, TASK, PreferencePairConfig(
        strategies=["verifier_ranked", "check_targeted"], max_pairs_per_prompt=2))

    ranked, targeted = pairs
    assert (ranked.strategy, ranked.chosen, ranked.rejected, ranked.margin) == ("verifier_ranked", REPLY,
                                                                                wrong.response, 2)
    assert (targeted.strategy, targeted.axis, targeted.chosen) == ("check_targeted", "names_field", REPLY)
    assert targeted.rejected == REPLY.replace("A-553789", "A-553798")
    assert targeted.evidence == "rejected fails names_field: order_id: A-553789 -> A-553798"
    assert [r.kind for r in check_results(targeted.rejected, LABEL) if not r.passed] == ["names_field"]
    assert (dropped, skipped) == ([], {})


@pytest.mark.parametrize("check, rejected, evidence", [
    ({"kind": "must_mention", "terms": ["return label"]},
     "Hi Maya,\n\nOur packing team mixed up order A-553789, sorry about that. Your bluetooth speaker goes out today."
     "\n\n— Juniper Support",
     "the sentences saying 'return label' left out"),
    ({"kind": "must_not_say", "terms": BANNED},
     REPLY.replace("inbox.\n\n", "inbox. We apologize for any inconvenience.\n\n"),
     "adds 'We apologize for any inconvenience.'"),
    ({"kind": "matches_pattern", "pattern": r"Juniper Support\s*$"}, REPLY.replace("\n\n— Juniper Support", ""),
     "the sentences matching 'Juniper Support\\\\s*$' left out"),
    ({"kind": "names_field", "field": "customer_name", "value": "Maya"}, REPLY.replace("Hi Maya,\n\n", ""),
     "customer_name: the sentences naming 'Maya' left out"),
])
def test_each_check_kind_is_broken_alone_by_rule(check, rejected, evidence):
    from datagen.pairs.check_rejections import check_rejection

    made, kind, said = check_rejection(REPLY, {"reply": REPLY, "checks": [check, {"kind": "max_words", "limit": 80}]},
                                       key="ticket-1")

    assert (made, kind, said) == (rejected, check["kind"], f"rejected fails {check['kind']}: {evidence}")


def test_a_padded_reply_fails_max_words_alone():
    from datagen.pairs.check_rejections import check_rejection

    made, kind, said = check_rejection(REPLY, {"reply": REPLY, "checks": [{"kind": "max_words", "limit": 40}]}, "k")

    assert (kind, said) == ("max_words", "rejected fails max_words: 46 words, at most 40")
    assert made.startswith(REPLY.removesuffix("\n\n— Juniper Support")) and made.endswith("\n\n— Juniper Support")


# ---- the judge, on replies that pass every check ---------------------------------------

def shown(question: str, label: str) -> str:
    return re.search(rf"\[{label}\]\n(.*?)\n\[End of {label}\]", question, re.DOTALL | re.IGNORECASE).group(1)


WARM = REPLY
STIFF = ("Hi Maya,\n\nOrder A-553789: the bluetooth speaker ships today. A prepaid return label is attached for the "
         "wireless earbuds.\n\n— Juniper Support")
SCORES = {WARM: 9, STIFF: 5}


def judge_script(question: str, k: int) -> str:
    if "[Answer A]" not in question:
        return json.dumps({"rationale": "scored", "score": SCORES[shown(question, "Answer")]})
    first = shown(question, "Answer A")
    winner = "A" if SCORES[first] > SCORES[shown(question, "Answer B")] else "B"
    return json.dumps({"rationale": "warmer", "winner": winner})


def test_the_judge_ranks_two_replies_that_pass_every_check_in_both_orders(tmp_path):
    gold = GoldRoot("gold/sets").prompt_index()
    replies = [answer(WARM, 0), answer(STIFF, 1)]
    assert all(r.passed for text in (WARM, STIFF) for r in check_results(text, LABEL))

    async def rank(server):
        cache = ResponseCache(tmp_path / "judge.sqlite")
        try:
            config = JudgeConfig(endpoint=EndpointConfig(base_url=server.base_url, model="judge-m"))
            return await judge_ranked_pairs(replies, TASK, config, Endpoint(server.base_url, "judge-m", "k"), cache,
                                            gold=gold)
        finally:
            cache.close()

    with ScriptedTeacher(judge_script) as server:
        ranking = asyncio.run(rank(server))
        asked = [request["messages"][-1]["content"] for request in server.requests]

    (pair,) = ranking.pairs
    assert (pair.chosen, pair.rejected, pair.margin) == (WARM, STIFF, 4.0)
    (verdict,) = ranking.verdicts
    assert (verdict.winner, verdict.position_disagreement) == ("a", False)
    assert [shown(q, "Answer A") for q in asked if "[Answer A]" in q] == [WARM, STIFF]  # both orders
    assert TASK.judge_rubric in asked[0]
    bias = length_bias(ranking.verdicts, {r.id: r for r in replies})
    assert (bias.compared, bias.longer_won, bias.longer_won_fraction) == (1, 1, 1.0)


def test_the_judge_is_never_shown_a_gold_ticket(tmp_path):
    gold_root = GoldRoot("gold/sets")
    ticket = gold_root.get("support_reply").rows[0]["prompt"]
    replies = [answer(WARM, 0, prompt=ticket), answer(STIFF, 1, prompt=ticket)]
    config = JudgeConfig(endpoint=EndpointConfig(base_url="http://127.0.0.1:9", model="judge-m"))

    with pytest.raises(GoldSetError, match=r"gold set support_reply/v1 line 1"):
        asyncio.run(judge_ranked_pairs(replies, TASK, config, Endpoint("http://127.0.0.1:9", "judge-m", "k"),
                                       ResponseCache(tmp_path / "judge.sqlite"), gold=gold_root.prompt_index()))


# ---- what does not fit text is refused before any work -----------------------------------

def test_a_reply_is_never_sent_a_json_schema():
    assert response_format_for(TASK, EndpointConfig(base_url="http://x", model="m",
                                                    structured_output="json_schema")) is None


def test_recipes_refuse_what_cannot_work_on_text_and_check_targeted_on_json():
    build = yaml.safe_load(open("flows/recipes/support_reply.yaml"))
    with pytest.raises(ValueError, match="pairs.strategies: minimal_correction, axis_targeted cannot make pairs of "
                                         "support_reply's text answers"):
        BuildDatasetRecipe.model_validate(build | {"pairs": {"strategies": ["minimal_correction", "axis_targeted"]}})
    invoice = yaml.safe_load(open("flows/recipes/invoice_extraction.yaml"))
    with pytest.raises(ValueError, match="check_targeted cannot make pairs of invoice_extraction's json answers"):
        BuildDatasetRecipe.model_validate(invoice | {"pairs": {"strategies": ["check_targeted"]}})
    train = yaml.safe_load(open("flows/recipes/train_support_reply.yaml"))
    with pytest.raises(ValueError, match="drop on_policy"):
        TrainRecipe.model_validate(train | {"on_policy": {}})
    flight = yaml.safe_load(open("flows/recipes/preflight_support_reply.yaml"))
    with pytest.raises(RecipeError, match="metric: field_accuracy does not score support_reply's text answers"):
        PreflightRecipe.model_validate(flight | {"metric": "field_accuracy"}).pilot()
    with pytest.raises(RecipeError, match="constrained_baseline: support_reply answers in text"):
        PreflightRecipe.model_validate(flight | {"constrained_baseline": True}).pilot()
    with pytest.raises(RecipeError, match="fine_tune_decoding: support_reply answers in text"):
        PreflightRecipe.model_validate(flight | {"fine_tune_decoding": "both"}).pilot()
