"""Self-generation: rounds, filters, the collapse guard and resume, against the scripted
teacher on loopback (tests/scripted_teacher.py), whose answers the test chooses."""

import asyncio
import random
import re
from collections import Counter

import pytest

from datagen.foundation.records import Example
from datagen.generation.self_instruct import (
    SelfInstructConfig,
    clean_candidate,
    distinct_n,
    has_no_placeholders,
    has_no_rejected_phrase,
    is_not_meta_text,
    normalized_entropy,
    self_instruct,
    within_word_bounds,
)
from datagen.serving.client import Endpoint
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.request_batch import TeacherStopped
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_triage import TASK
from tests.scripted_teacher import ScriptedTeacher

SEEDS = [
    Example(task="support_triage", prompt=text, source="test", run_id="r")
    for text in (
        "My parcel 1234 has not arrived after two weeks, where is it?",
        "I was charged twice for the desk lamp on my card this morning.",
        "Please cancel my subscription before the next renewal date.",
    )
]
WORDS = [f"w{i}" for i in range(400)]


def word_salad(prompt: str, k: int) -> str:
    """A different 20-word text for every request: near-duplicates are vanishingly rare."""
    rng = random.Random(f"{prompt}|{k}")
    return " ".join(rng.sample(WORDS, 20))


def run(server, tmp_path, config, should_stop=lambda: None):
    async def go():
        cache = ResponseCache(tmp_path / "cache.sqlite")
        try:
            return await self_instruct(
                SEEDS, TASK, config, [EndpointConfig(base_url=server.base_url, model="m")],
                [Endpoint(server.base_url, "m", "no-key")], cache, "run-1", should_stop=should_stop,
            )
        finally:
            cache.close()

    return asyncio.run(go())


def topic_of(prompt: str) -> str:
    return re.fullmatch(r"Write a new message about (.*)\.", prompt).group(1)


def test_distinct_n_counts_distinct_over_all_ngrams_across_texts():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a b", "A  b"], 2) == 0.5  # normalized: case and spacing
    assert distinct_n(["single"], 2) == 0.0


def test_normalized_entropy_is_one_when_even_and_zero_for_one_category():
    assert normalized_entropy(Counter({"a": 2, "b": 2}), 2) == pytest.approx(1.0)
    assert normalized_entropy(Counter({"a": 4}), 2) == 0.0
    assert normalized_entropy(Counter({"a": 1, "b": 1}), 4) == pytest.approx(0.5)
    assert normalized_entropy(Counter({"a": 3}), 1) == 1.0


def test_candidate_cleaning_and_filters_give_exact_reasons():
    config = SelfInstructConfig(min_words=3, max_words=6)
    assert clean_candidate('Message 4:\n "Where is my order?" ') == "Where is my order?"
    assert within_word_bounds("too short", "stop", config) == (False, "too_short: 2 words < 3")
    assert within_word_bounds("one two three four five six seven", "stop", config) == (
        False, "too_long: 7 words > 6")
    assert has_no_placeholders("Hi [Customer Name], sorry", "stop", config) == (
        False, "placeholder: [Customer Name]")
    assert has_no_placeholders("Order [2] is late", "stop", config) == (True, "")
    assert is_not_meta_text("Here's a new email: hi", "stop", config) == (
        False, "meta_text: starts with \"here's\"")
    assert is_not_meta_text("Hi, my order is late", "stop", config) == (True, "")
    voice = SelfInstructConfig(rejected_phrases=["your order", "assist you"])
    assert has_no_rejected_phrase("Happy to ASSIST you today", "stop", voice) == (
        False, "rejected_phrase: assist you")
    assert has_no_rejected_phrase("Where is my order? Your orderly site is slow", "stop", voice) == (True, "")


def test_rounds_spread_topics_show_pool_examples_and_resume_from_the_cache(tmp_path):
    config = SelfInstructConfig(rounds=2, requests_per_round=4, topics=["apples", "pears"],
                                generated_examples_per_request=1, min_distinct_2=0.5)
    with ScriptedTeacher(word_salad) as server:
        result = run(server, tmp_path, config)
        sent = len(server.requests)
        again = run(server, tmp_path, config)
        assert len(server.requests) == sent  # the second run paid for nothing
    assert sent == 8
    assert [e.id for e in again.kept] == [e.id for e in result.kept]
    assert result.stop_reason == "ran all 2 rounds"
    assert [r.kept for r in result.rounds] == [4, 4]
    first = result.rounds[0]
    assert first.topic_shares == {"apples": 0.5, "pears": 0.5}
    assert first.topic_entropy == 1.0
    assert first.near_duplicate_rate == 0.0
    assert first.distinct_2 == 1.0
    # Round 1 shows two seeds; round 2 shows two seeds and one input round 1 kept.
    seed_ids = {s.id for s in SEEDS}
    round_1_ids = {e.id for e in result.kept[:4]}
    assert all(len(e.parent_ids) == 2 and set(e.parent_ids) <= seed_ids for e in result.kept[:4])
    assert all(len(e.parent_ids) == 3 and len(set(e.parent_ids) & round_1_ids) == 1 for e in result.kept[4:])
    assert [e.template_id for e in result.kept[:2]] == ["self_instruct/round-1/apples", "self_instruct/round-1/pears"]
    assert {topic_of(r["messages"][-1]["content"]) for r in server.requests} == {"apples", "pears"}
    assert all(e.reference is None and e.teacher.model == "m" for e in result.kept)


def test_a_teacher_that_repeats_itself_collapses_the_round_and_stops(tmp_path):
    same = "I ordered a blue kettle last week and it still has not shipped, please help."
    config = SelfInstructConfig(rounds=3, requests_per_round=4, topics=["a", "b"])
    with ScriptedTeacher(lambda prompt, k: same) as server:
        result = run(server, tmp_path, config)
        assert len(server.requests) == 4  # rounds 2 and 3 were never asked for
    assert result.kept == []
    assert result.stop_reason == "round 1 not kept: near-duplicate rate 0.75 > 0.5"
    assert Counter(r.split(":")[0] for _, r in result.rejected) == {"near_duplicate": 3, "collapsed_round": 1}
    assert result.rounds[0].near_duplicates == 3


def test_copies_of_the_examples_and_scaffolding_are_rejected_with_reasons(tmp_path):
    answers = iter([
        SEEDS[0].prompt,  # copies a seed
        "Hi [Name], your order is on its way and will arrive soon enough.",
        "Here is a new message about pears for your dataset, as requested.",
        "Too short.",
    ])
    config = SelfInstructConfig(rounds=1, requests_per_round=4, topics=["pears"], min_words=4)
    with ScriptedTeacher(lambda prompt, k: next(answers)) as server:
        result = run(server, tmp_path, config)
    reasons = sorted(reason.split(":")[0] for _, reason in result.rejected)
    # The three filtered candidates never reach the duplicate check: only one passed,
    # and it was a duplicate, so the round kept nothing.
    assert reasons == ["meta_text", "near_duplicate", "placeholder", "too_short"]
    copy = next(r for _, r in result.rejected if r.startswith("near_duplicate"))
    assert copy == f"near_duplicate: of {SEEDS[0].id} (jaccard 1.00)"
    assert result.stop_reason == "round 1 not kept: no new input passed the filters and the duplicate check"


def test_a_stop_request_ends_generation_with_everything_received_cached(tmp_path):
    config = SelfInstructConfig(rounds=2, requests_per_round=4, topics=["a"])
    with ScriptedTeacher(word_salad) as server:
        with pytest.raises(TeacherStopped, match="SIGINT during self-generation round 1"):
            run(server, tmp_path, config, should_stop=lambda: "SIGINT" if server.requests else None)
        sent = len(server.requests)
        result = run(server, tmp_path, config)
        # A request already sent when the stop came was answered and cached: no repeats.
        assert len(server.requests) == 8
        assert len({(r["messages"][-1]["content"], r["seed"]) for r in server.requests}) == 8
    assert 1 <= sent < 8
    assert result.stop_reason == "ran all 2 rounds"


def test_the_tasks_rejected_phrases_apply_unless_the_recipe_names_its_own(tmp_path):
    reply = "Thanks for waiting, let me check where your package is right now and call you back."
    with ScriptedTeacher(lambda prompt, k: reply) as server:
        result = run(server, tmp_path, SelfInstructConfig(rounds=1, requests_per_round=1, topics=["pears"]))
    assert [reason for _, reason in result.rejected] == ["rejected_phrase: your package"]
    with ScriptedTeacher(lambda prompt, k: reply) as server:
        result = run(server, tmp_path / "own", SelfInstructConfig(rounds=1, requests_per_round=1, topics=["pears"],
                                                                  rejected_phrases=[]))
    assert result.rejected == [] and [e.prompt for e in result.kept] == [reply]
