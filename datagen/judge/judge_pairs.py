"""Judge-ranked preference pairs, for answers no code verifier can rank.

For each prompt with two or more answers that passed the filters but have no known label
(self-generated or imported prompts), or of a text task whose replies all pass their
checks, the judge scores every answer alone
(`judge.score_answers`); the best and the worst become a candidate pair when their scores
differ by at least `min_margin`. The candidate is then put to the judge as a pairwise
comparison in both orders (`judge.compare_pairwise`), and kept only when both orders
prefer the answer the scores preferred. Everything else is dropped with its reason:

    unscored                fewer than two answers got a readable score
    below_margin            the scores differ by less than `min_margin` (a tie)
    position_disagreement   the two orders of the pairwise comparison disagree
    judges_disagree         pairwise prefers the answer the scores put lower
    unreadable              the pairwise reply could not be read

Two independent readings that must agree cost one more request per pair and remove the
pairs a single noisy verdict would have made.

Input: answers (Examples with `response`), the judge. Output: `JudgeRanking` with pairs
(`strategy="judge_ranked"`, `margin` = score gap, `evidence` = scores and rationale),
dropped pairs with reasons, and the scores and verdicts for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.task import Task
from datagen.judge.judge_answers import JudgeConfig, JudgeScore, PairwiseVerdict, compare_pairwise, score_answers
from datagen.judge.judge_prompts import GoldPromptIndex
from datagen.pairs.preference_pairs import SOURCE
from datagen.serving.client import Endpoint
from datagen.serving.response_cache import ResponseCache


@dataclass
class JudgeRanking:
    pairs: list[PreferencePair]
    dropped: list[tuple[str, str]]  # (prompt id, reason)
    scores: list[JudgeScore]
    verdicts: list[PairwiseVerdict]


def _pair(chosen: Example, rejected: Example, margin: int, evidence: str) -> PreferencePair:
    return PreferencePair(
        task=chosen.task, prompt=chosen.prompt, chosen=chosen.response, rejected=rejected.response,
        strategy="judge_ranked", evidence=evidence, source=SOURCE, run_id=chosen.run_id,
        chosen_teacher=chosen.teacher, rejected_teacher=rejected.teacher,
        parent_ids=(chosen.id, rejected.id), axis=None, margin=float(margin), context=chosen.context,
    )


async def judge_ranked_pairs(
    answers: list[Example], task: Task, config: JudgeConfig, endpoint: Endpoint, cache: ResponseCache,
    *, on_progress=lambda progress: None, should_stop=lambda: None, gold: GoldPromptIndex,
) -> JudgeRanking:
    by_prompt: dict[str, list[Example]] = {}
    for answer in answers:
        group = by_prompt.setdefault(answer.parent_ids[0], [])
        if all(answer.response != other.response for other in group):
            group.append(answer)
    groups = {prompt_id: group for prompt_id, group in by_prompt.items() if len(group) >= 2}
    scored = [a for group in groups.values() for a in group]
    scores = await score_answers(scored, task, config, endpoint, cache, on_progress=on_progress,
                                 should_stop=should_stop, gold=gold)
    score_of = {s.answer_id: s for s in scores}
    dropped: list[tuple[str, str]] = []
    candidates: list[tuple[str, Example, Example, int]] = []
    for prompt_id, group in groups.items():
        readable = sorted((a for a in group if score_of[a.id].score is not None),
                          key=lambda a: (-score_of[a.id].score, a.id))
        if len(readable) < 2:
            dropped.append((prompt_id, f"unscored: {len(readable)} of {len(group)} answers got a readable score"))
            continue
        best, worst = readable[0], readable[-1]
        margin = score_of[best.id].score - score_of[worst.id].score
        if margin < config.min_margin:
            dropped.append((prompt_id, f"below_margin: {score_of[best.id].score} vs {score_of[worst.id].score}, "
                                       f"margin {margin} < {config.min_margin}"))
            continue
        candidates.append((prompt_id, best, worst, margin))
    verdicts = await compare_pairwise([(best, worst) for _, best, worst, _ in candidates], task, config,
                                      endpoint, cache, on_progress=on_progress, should_stop=should_stop,
                                      gold=gold) if candidates else []
    pairs = []
    for (prompt_id, best, worst, margin), verdict in zip(candidates, verdicts, strict=True):
        if verdict.winner is None:
            dropped.append((prompt_id, f"unreadable: {verdict.reason}"))
        elif verdict.position_disagreement:
            dropped.append((prompt_id, f"position_disagreement: {verdict.reason}"))
        elif verdict.winner != "a":
            dropped.append((prompt_id, f"judges_disagree: pairwise says {verdict.winner} for scores "
                                       f"{score_of[best.id].score} vs {score_of[worst.id].score}"))
        else:
            evidence = (f"judge scores {score_of[best.id].score} vs {score_of[worst.id].score}; pairwise prefers "
                        f"it in both orders: {verdict.first_rationale or ''}")
            pairs.append(_pair(best, worst, margin, evidence))
    return JudgeRanking(pairs, dropped, scores, verdicts)
