"""The LLM judge: reading verdicts, the position swap, bias checks and the gold guard
against the scripted teacher on loopback (tests/scripted_teacher.py), whose replies the
test chooses; and one run against the real embedded SmolLM2-135M-Instruct."""

import asyncio
import dataclasses
import json
import re
import sqlite3

import pytest
from pydantic import ValidationError

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Teacher
from datagen.judge.judge_answers import (
    JudgeConfig,
    JudgeScore,
    LengthBias,
    LengthScoreCorrelation,
    PairwiseVerdict,
    compare_pairwise,
    family_warning,
    length_bias,
    length_score_correlation,
    model_family,
    score_answers,
    winner_by_scores,
)
from datagen.judge.judge_prompts import GoldSetError, read_choice, read_score, refuse_gold
from datagen.serving.client import Endpoint
from datagen.serving.endpoint import EndpointConfig, SamplingParams
from datagen.serving.request_batch import TeacherStopped
from datagen.serving.response_cache import ResponseCache
from datagen.serving.transformers_server import serve_model, served_model_name
from datagen.tasks import support_triage
from gold.gold_root import GoldPromptIndex, GoldRoot
from gold.gold_sets import GoldSetError as GoldRootError
from tests.locked_gold import lock_gold_rows, trusted_root
from tests.scripted_teacher import Fault, ScriptedTeacher

RUBRIC = "The summary must say only what the ticket says, in few words, naming the product as the customer does."
TASK = dataclasses.replace(support_triage.TASK, judge_rubric=RUBRIC)
LAMP = "My desk lamp from order A-123456 arrived broken."
KETTLE = "Where is my kettle? It was due on Monday."


def answer(prompt: str, summary: str) -> Example:
    response = json.dumps({"category": "damaged_item", "summary": summary})
    return Example(task="support_triage", prompt=prompt, response=response, source="test", run_id="r")


SHORT = answer(LAMP, "Desk lamp arrived broken.")
WORDY = answer(LAMP, "The customer writes to let us know that the desk lamp they ordered has arrived broken.")
WRONG = answer(LAMP, "Customer wants a refund for a chair.")
KETTLE_1 = answer(KETTLE, "Kettle is late.")
KETTLE_2 = answer(KETTLE, "Customer asks where the kettle is.")
SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "seed": 0}


def config(server, **endpoint) -> JudgeConfig:
    return JudgeConfig(endpoint=EndpointConfig(base_url=server.base_url, model="judge-m", **endpoint))


@pytest.fixture
def no_gold(tmp_path):
    """The prompt index of a gold root that exists, verified, with no locked set."""
    return GoldRoot(trusted_root(tmp_path / "gold" / "sets")).prompt_index()


def judge(call, items, server, tmp_path, gold, judge_config=None, **options):
    async def go():
        cache = ResponseCache(tmp_path / "judge.sqlite")
        try:
            endpoint = Endpoint(server.base_url, "judge-m", "no-key")
            return await call(items, TASK, judge_config or config(server), endpoint, cache, gold=gold,
                              **options)
        finally:
            cache.close()

    return asyncio.run(go())


def shown(question: str, label: str) -> str:
    """The answer text the judge was shown under `[label]`."""
    return re.search(rf"\[{label}\]\n(.*)\n\[End of {label}\]", question, re.IGNORECASE).group(1)


def test_scores_are_read_exactly_and_unreadable_replies_keep_their_reason(tmp_path, no_gold):
    replies = {
        SHORT.response: '{"rationale": "Faithful and short.", "score": 9}',
        WORDY.response: '```json\n{"rationale": "Faithful but wordy.", "score": 6}\n```',
        WRONG.response: "I would give it a 2 out of 10.",
        KETTLE_1.response: '{"rationale": "Fine.", "score": 11}',
        KETTLE_2.response: '{"score": "7", "rationale": "Good."}',
    }
    with ScriptedTeacher(lambda question, k: replies[shown(question, "Answer")]) as server:
        answers = [SHORT, WORDY, WRONG, KETTLE_1, KETTLE_2]
        scores = judge(score_answers, answers, server, tmp_path, no_gold)
        question = server.requests[0]["messages"][-1]["content"]
    judge_teacher = Teacher(server.base_url, "judge-m", canonical_json(SAMPLING), 0)
    assert scores == [
        JudgeScore(SHORT.id, 9, "Faithful and short.", replies[SHORT.response], None, judge_teacher),
        JudgeScore(WORDY.id, 6, "Faithful but wordy.", replies[WORDY.response], None, judge_teacher),
        JudgeScore(WRONG.id, None, None, replies[WRONG.response], "no JSON object in the reply", judge_teacher),
        JudgeScore(KETTLE_1.id, None, "Fine.", replies[KETTLE_1.response], "score 11 is off the scale 1-10",
                   judge_teacher),
        JudgeScore(KETTLE_2.id, None, "Good.", replies[KETTLE_2.response], 'score is not an integer: "7"',
                   judge_teacher),
    ]
    assert question.startswith(f"Rubric:\n{RUBRIC}\n\n[Input]\n{LAMP}\n[End of input]\n\n[Answer]\n")
    assert question.endswith('Reply as {"rationale": "<one or two sentences>", "score": <integer from 1 to 10>}')


def test_replies_are_read_around_prose_and_refused_with_a_reason():
    assert read_choice('Sure! {"rationale": "x", "winner": " b "} Hope this helps.', "stop") == ("B", "x", "")
    assert read_choice('{"rationale": "x", "winner": "C"}', "stop") == (
        None, "x", 'winner is not A, B or tie: "C"')
    assert read_choice("A", "stop") == (None, None, "no JSON object in the reply")
    assert read_score('{"rationale": "x", "sc', "length", (1, 10)) == (
        None, None, "no JSON object in the reply (cut off at max_tokens)")
    assert read_score('{"rationale": "x", "score": true}', "stop", (1, 10)) == (
        None, "x", "score is not an integer: true")
    assert read_score('{"rationale": " ", "score": 3}', "stop", (1, 10)) == (None, None, "no rationale")


def test_a_schema_enforcing_judge_is_sent_the_verdict_schema(tmp_path, no_gold):
    reply = lambda question, k: '{"rationale": "Fine.", "score": 7}'
    with ScriptedTeacher(reply) as server:
        schema_config = config(server, structured_output="json_schema")
        [score] = judge(score_answers, [SHORT], server, tmp_path, no_gold, schema_config)
        schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    assert score.score == 7
    assert list(schema["properties"]) == schema["required"] == ["rationale", "score"]
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 10}


def test_a_request_that_fails_after_retries_is_a_score_with_its_reason(tmp_path, no_gold):
    with ScriptedTeacher(lambda question, k: Fault(503, "overloaded")) as server:
        [score] = judge(score_answers, [SHORT], server, tmp_path, no_gold, config(server, max_retries=0))
    assert (score.score, score.raw) == (None, None)
    assert score.reason.startswith("request failed after 1 attempts: HTTP 503:")


def test_pairwise_asks_both_orders_and_calls_a_win_only_when_they_agree(tmp_path, no_gold):
    def script(question: str, k: int) -> str:
        first, second = shown(question, "Answer A"), shown(question, "Answer B")
        if WRONG.response in (first, second):  # a judge that breaks the format in one order
            return '{"winner": "B"}' if first == WRONG.response else '{"rationale": "B is wrong.", "winner": "A"}'
        if LAMP in question:  # a fair judge: the short, faithful summary wins wherever it is
            winner = "A" if first == SHORT.response else "B"
        else:  # a position-biased judge: always the first answer
            winner = "A"
        return json.dumps({"rationale": f"{winner} is better.", "winner": winner})

    items = [(SHORT, WORDY), (KETTLE_1, KETTLE_2), (WRONG, SHORT)]
    with ScriptedTeacher(script) as server:
        verdicts = judge(compare_pairwise, items, server, tmp_path, no_gold)
        asked = [(shown(r["messages"][-1]["content"], "Answer A"), shown(r["messages"][-1]["content"], "Answer B"))
                 for r in server.requests]
    assert sorted(asked) == sorted([(a.response, b.response) for pair in items for a, b in (pair, pair[::-1])])
    judge_teacher = verdicts[0].judge
    assert verdicts == [
        PairwiseVerdict(SHORT.id, WORDY.id, "a", '{"rationale": "A is better.", "winner": "A"}',
                        '{"rationale": "B is better.", "winner": "B"}', "A is better.", "B is better.", False,
                        None, judge_teacher),
        PairwiseVerdict(KETTLE_1.id, KETTLE_2.id, "tie", '{"rationale": "A is better.", "winner": "A"}',
                        '{"rationale": "A is better.", "winner": "A"}', "A is better.", "A is better.", True,
                        "position disagreement: a with a shown first, b with b shown first", judge_teacher),
        PairwiseVerdict(WRONG.id, SHORT.id, None, '{"winner": "B"}',
                        '{"rationale": "B is wrong.", "winner": "A"}', None, "B is wrong.", False,
                        "first order: no rationale", judge_teacher),
    ]


def test_a_stopped_run_resumes_without_asking_anything_twice(tmp_path, no_gold):
    reply = lambda question, k: '{"rationale": "A is better.", "winner": "A"}'
    items = [(SHORT, WORDY), (KETTLE_1, KETTLE_2)]
    with ScriptedTeacher(reply) as server:
        # One request in flight at a time, so the stop lands after exactly one was sent.
        one_at_a_time = config(server, concurrency=1)
        with pytest.raises(TeacherStopped, match="stopped: SIGINT; 1 of 4 judge requests are answered and cached"):
            judge(compare_pairwise, items, server, tmp_path, no_gold, one_at_a_time,
                  should_stop=lambda: "SIGINT" if server.requests else None)
        assert len(server.requests) == 1
        verdicts = judge(compare_pairwise, items, server, tmp_path, no_gold, one_at_a_time)
        assert len(server.requests) == 4
        again = judge(compare_pairwise, items, server, tmp_path, no_gold, one_at_a_time)
        assert len(server.requests) == 4  # everything came from the cache
        questions = [r["messages"][-1]["content"] for r in server.requests]
    assert len(set(questions)) == 4
    assert again == verdicts
    assert [v.winner for v in verdicts] == ["tie", "tie"]


def words(prompt: str, count: int) -> Example:
    return Example(task="support_triage", prompt=prompt, response=" ".join(f"w{i}" for i in range(count)),
                   source="test", run_id="r")


def verdict(a: Example, b: Example, winner) -> PairwiseVerdict:
    return PairwiseVerdict(a.id, b.id, winner, None, None, None, None, False, None, Teacher("u", "m", "{}", 0))


def score(a: Example, value) -> JudgeScore:
    return JudgeScore(a.id, value, None, None, None, Teacher("u", "m", "{}", 0))


def test_length_bias_counts_how_often_the_longer_answer_wins():
    p = [words(f"prompt {i}", n) for i, n in enumerate([3, 10, 10, 25, 4, 4, 7])]
    by_id = {e.id: e for e in p}
    verdicts = [
        verdict(p[0], p[1], "b"),  # longer wins
        verdict(p[2], p[0], "a"),  # longer wins
        verdict(p[3], p[4], "b"),  # shorter wins
        verdict(p[4], p[5], "a"),  # same length: not counted
        verdict(p[1], p[6], "tie"),  # a tie: not counted
        verdict(p[1], p[6], None),  # no verdict: not counted
    ]
    assert length_bias(verdicts, by_id) == LengthBias(compared=3, longer_won=2, longer_won_fraction=0.6667)
    assert length_bias([], by_id) == LengthBias(0, 0, None)


def test_length_score_correlation_is_spearman_and_pearson_over_scored_answers():
    p = [words(f"prompt {i}", n) for i, n in enumerate([3, 10, 10, 25, 4, 9])]
    by_id = {e.id: e for e in p}
    scores = [score(e, s) for e, s in zip(p, [2, 7, 5, 9, 2, None])]
    # scipy.stats.spearmanr and pearsonr give 0.947368 and 0.913321 on these numbers.
    assert length_score_correlation(scores, by_id) == LengthScoreCorrelation(5, 0.9474, 0.9133)
    assert length_score_correlation(scores[:2], by_id) == LengthScoreCorrelation(2, None, None)
    flat = [score(e, 5) for e in p[:3]]
    assert length_score_correlation(flat, by_id) == LengthScoreCorrelation(3, None, None)


def test_winner_by_scores_needs_the_margin():
    a, b = words("x", 1), words("y", 2)
    assert winner_by_scores(score(a, 8), score(b, 6), min_margin=2) == "a"
    assert winner_by_scores(score(a, 6), score(b, 9), min_margin=2) == "b"
    assert winner_by_scores(score(a, 7), score(b, 6), min_margin=2) == "tie"
    assert winner_by_scores(score(a, None), score(b, 6), min_margin=2) is None


def test_model_families_and_the_same_family_warning():
    assert model_family("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2"
    assert model_family("Qwen/Qwen2.5-7B-Instruct") == "qwen2.5"
    assert model_family("qwen2.5:7b") == "qwen2.5"
    assert model_family("meta-llama/Meta-Llama-3-8B-Instruct") == "llama-3"
    assert model_family("meta-llama/Llama-3.1-70B-Instruct") == "llama-3.1"
    assert model_family("gpt-4o-mini-2024-07-18") == "gpt-4o"
    assert model_family("mistralai/Mixtral-8x7B-Instruct-v0.1") == "mixtral"
    assert family_warning("SmolLM2-135M-Instruct", ["HuggingFaceTB/SmolLM2-1.7B-Instruct", "gpt-4o"]) == (
        "judge SmolLM2-135M-Instruct is of the same family (smollm2) as HuggingFaceTB/SmolLM2-1.7B-Instruct: "
        "judges favour their own family's answers (Panickssery et al. 2024, arXiv:2404.13076); judge with "
        "another family, or check its verdicts against human labels"
    )
    assert family_warning("Qwen/Qwen2.5-72B-Instruct", ["Qwen/Qwen2-7B-Instruct", "qwen2.5:7b"]).startswith(
        "judge Qwen/Qwen2.5-72B-Instruct is of the same family (qwen2.5) as qwen2.5:7b and the same lineage "
        "(qwen) as Qwen/Qwen2-7B-Instruct: "
    )
    assert family_warning("gpt-4o", ["Qwen/Qwen2.5-7B-Instruct", "meta-llama/Meta-Llama-3-8B-Instruct"]) is None


def write_gold(root, prompts) -> GoldPromptIndex:
    """`prompts` locked as gold set support_triage (v1), and the index of the verified root."""
    lock_gold_rows(root, "support_triage", "datagen.tasks.support_triage:TASK",
                   [(prompt, TRIAGE_ANSWER) for prompt in prompts])
    return GoldRoot(root).prompt_index()


TRIAGE_ANSWER = {"category": "damaged_item", "priority": "normal", "order_id": None, "product": None,
                 "needs_human": False, "summary": "Something arrived broken."}


def test_the_judge_refuses_gold_rows_by_prompt_or_content_id(tmp_path):
    root = tmp_path / "gold" / "sets"
    gold = write_gold(root, ["Where is my parcel?", "Anything else?",
                             "  my DESK lamp from order A-123456   arrived broken."])
    path = root / "support_triage" / "v1" / "records.jsonl"
    with pytest.raises(GoldSetError, match=re.escape(
        f"example {SHORT.id} has the prompt of gold set support_triage/v1 line 3 ({path}); 2 example(s) in all "
        "are gold rows. The judge never labels gold rows: remove them first"
    )):
        refuse_gold([KETTLE_1, SHORT, WORDY], gold)
    refuse_gold([KETTLE_1], gold)  # not gold: no error

    # A row carrying a gold row's id (the sha256 of its prompt and reference) is that gold row too.
    row = GoldRoot(root).get("support_triage/v1").rows[0]
    assert gold.find("something else", row["id"]) == ("content id", f"gold set support_triage/v1 line 1 ({path})")


def test_every_judge_entry_point_checks_the_gold_sets_before_asking(tmp_path):
    gold = write_gold(tmp_path / "gold" / "sets", [LAMP])
    with ScriptedTeacher(lambda question, k: "never asked") as server:
        with pytest.raises(GoldSetError, match="gold set support_triage/v1 line 1"):
            judge(score_answers, [KETTLE_1, SHORT], server, tmp_path, gold)
        with pytest.raises(GoldSetError, match="gold set support_triage/v1 line 1"):
            judge(compare_pairwise, [(KETTLE_1, KETTLE_2), (SHORT, WORDY)], server, tmp_path, gold)
        with pytest.raises(GoldSetError, match="pass the verified gold index"):
            judge(score_answers, [KETTLE_1], server, tmp_path, None)
        assert server.requests == []
    # A gold root that is not there is not "no gold": the check cannot be skipped by a typo.
    with pytest.raises(GoldRootError, match=f"{tmp_path / 'missing'}: no such folder of gold sets"):
        GoldRoot(tmp_path / "missing")


def test_judge_settings_live_in_one_place():
    with pytest.raises(ValidationError, match="endpoint.sampling does not apply to a judge"):
        JudgeConfig.model_validate({"endpoint": {"sampling": {"temperature": 0.7}}})
    with pytest.raises(ValidationError, match=r"scale \(5, 5\): the lowest score must be below the highest"):
        JudgeConfig(scale=(5, 5))
    assert JudgeConfig().sampling.temperature == 0.0


@pytest.mark.slow
def test_the_embedded_model_judges_through_the_openai_path(tmp_path, no_gold, embedded_model):
    """The real SmolLM2-135M-Instruct as judge: every request gets an outcome, and the swap
    asks both orders. Its verdicts are not asserted: a 135M judge is mostly noise."""
    judge_config = JudgeConfig(sampling=SamplingParams(temperature=0.0, top_p=1.0, max_tokens=96))
    log = tmp_path / "judge-server.log"
    progress = []
    with serve_model(embedded_model, log) as base_url:
        endpoint = Endpoint(base_url, served_model_name(embedded_model), "no-key", "embedded-judge-test")

        async def go():
            cache = ResponseCache(tmp_path / "judge.sqlite")
            try:
                scores = await score_answers([SHORT, WRONG], TASK, judge_config, endpoint, cache,
                                             on_progress=progress.append, gold=no_gold)
                verdicts = await compare_pairwise([(SHORT, WORDY), (KETTLE_1, KETTLE_2)], TASK, judge_config,
                                                  endpoint, cache, on_progress=progress.append, gold=no_gold)
                return scores, verdicts
            finally:
                cache.close()

        scores, verdicts = asyncio.run(go())
    for outcome in scores + verdicts:
        print(outcome)
    assert all((s.score is not None) != (s.reason is not None) for s in scores)
    assert all(s.raw is not None for s in scores)
    assert all((v.winner is not None) or v.reason for v in verdicts)
    # Both orders of each pair were asked and answered: two replies per verdict, six in the cache.
    assert all(v.first_verdict is not None and v.swapped_verdict is not None for v in verdicts)
    with sqlite3.connect(tmp_path / "judge.sqlite") as db:
        assert db.execute("SELECT count(*) FROM responses").fetchone()[0] == 6
    assert progress[-1].done == 4 and progress[-1].cached == 0 and progress[-1].completion_tokens > 0
    assert log.stat().st_size > 0
