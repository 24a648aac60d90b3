"""Judge-ranked pairs: scores with a margin, confirmed by a pairwise comparison in both
orders, against the scripted teacher as the judge (tests/scripted_teacher.py)."""

import asyncio
import json
import re

from datagen.foundation.records import Example
from datagen.judge.judge_pairs import judge_ranked_pairs
from datagen.serving.client import Endpoint
from datagen.serving.response_cache import ResponseCache
from gold.gold_root import GoldRoot
from tests.locked_gold import trusted_root
from tests.scripted_teacher import ScriptedTeacher
from tests.test_judge import TASK, config, shown


def answer(prompt_id: str, summary: str) -> Example:
    return Example(task="support_triage", prompt=f"ticket {prompt_id}", source="test", run_id="r",
                   response=json.dumps({"category": "damaged_item", "summary": summary}), parent_ids=(prompt_id,))


# The score the scripted judge gives each summary; pairwise it prefers the higher score,
# except on prompt p3, where it always picks whichever answer it is shown first.
SCORES = {"clear": 9, "vague": 4, "fine": 7, "ok": 6, "p3 good": 8, "p3 bad": 2, "p4 good": 8, "p4 bad": 3}


def summary_of(response: str) -> str:
    return json.loads(response)["summary"]


def script(question: str, k: int) -> str:
    if "[Answer A]" not in question:
        return json.dumps({"rationale": "scored", "score": SCORES[summary_of(shown(question, "Answer"))]})
    a, b = (summary_of(shown(question, label)) for label in ("Answer A", "Answer B"))
    if a.startswith("p3"):
        winner = "A"
    elif a.startswith("p4"):
        winner = "A" if SCORES[a] < SCORES[b] else "B"  # prefers the lower score in both orders
    else:
        winner = "A" if SCORES[a] > SCORES[b] else "B"
    return json.dumps({"rationale": f"{winner} says more.", "winner": winner})


def test_only_pairs_that_both_readings_agree_on_are_kept(tmp_path):
    gold = GoldRoot(trusted_root(tmp_path / "gold" / "sets")).prompt_index()
    answers = [
        answer("p1", "clear"), answer("p1", "vague"),    # margin 5: kept
        answer("p2", "fine"), answer("p2", "ok"),        # margin 1 < 2: dropped
        answer("p3 ", "p3 good"), answer("p3 ", "p3 bad"),  # pairwise follows position: dropped
        answer("p4", "p4 good"), answer("p4", "p4 bad"),  # pairwise contradicts the scores: dropped
        answer("p5", "clear"),                          # one answer: no pair
    ]

    async def go():
        cache = ResponseCache(tmp_path / "judge.sqlite")
        try:
            return await judge_ranked_pairs(answers, TASK, config(server), Endpoint(server.base_url, "judge-m", "k"),
                                            cache, gold=gold)
        finally:
            cache.close()

    with ScriptedTeacher(script) as server:
        ranking = asyncio.run(go())
        requests = len(server.requests)
    assert requests == 8 + 2 * 3  # 8 scores; both orders for the 3 pairs past the margin
    (pair,) = ranking.pairs
    assert (summary_of(pair.chosen), summary_of(pair.rejected)) == ("clear", "vague")
    assert (pair.strategy, pair.margin) == ("judge_ranked", 5.0)
    assert pair.evidence == "judge scores 9 vs 4; pairwise prefers it in both orders: A says more."
    reasons = {prompt_id: re.sub(r":.*", "", reason) for prompt_id, reason in ranking.dropped}
    assert reasons == {"p2": "below_margin", "p3 ": "position_disagreement", "p4": "judges_disagree"}
    assert dict(ranking.dropped)["p2"] == "below_margin: 7 vs 6, margin 1 < 2"
