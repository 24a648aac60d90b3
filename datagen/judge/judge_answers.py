"""LLM-as-judge labels for answers that no code verifier can fully check.

Two ways to ask, both after MT-Bench (Zheng et al. 2023, "Judging LLM-as-a-Judge with
MT-Bench and Chatbot Arena", arXiv:2306.05685); the prompts, the reading of replies
and the gold-set guard are in `judge_prompts.py`:

- `score_answers`: each answer alone, scored on `scale` against the task's
  `judge_rubric`. Output: one `JudgeScore` per answer, in input order.
- `compare_pairwise`: two answers to the same prompt, asked in both orders (position
  swap). Output: one `PairwiseVerdict` per pair, in input order.

Every answer gets an outcome: a reply that cannot be read, or a request that failed after
retries, is a `JudgeScore` / `PairwiseVerdict` with no verdict and a `reason`. Requests go
through `TeacherClient.ask`, so they are cached, rate-limited, retried and resumable like
a teacher's; a stop (Ctrl-C, SIGTERM or the budget) raises `TeacherStopped` once the
requests in flight finish, and the next run pays only for what was not answered.

The judge never sees a gold row: both entry points call `refuse_gold` first.

The judge's known biases are measured, not assumed away: `length_bias` and
`length_score_correlation` for verbosity bias (MT-Bench §3.3), `family_warning` for
self-preference (Panickssery et al. 2024, "LLM Evaluators Recognize and Favor Their Own
Generations", arXiv:2404.13076).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Mapping

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Teacher
from datagen.foundation.task import Task
from datagen.judge.judge_prompts import (
    PAIRWISE_FORMAT,
    GoldPromptIndex,
    pairwise_messages,
    read_choice,
    read_score,
    refuse_gold,
    score_format,
    score_messages,
    shown_input,
)
from datagen.serving.client import Endpoint, NotSent, RequestFailed, TeacherClient
from datagen.serving.endpoint import EndpointConfig, SamplingParams
from datagen.serving.request_batch import Progress, StopRule, TeacherStopped, run_requests
from datagen.serving.response_cache import CachedResponse, ResponseCache

Choice = Literal["a", "b", "tie"]


class JudgeConfig(BaseModel):
    """The judge model, how it samples, its scale, and what it may spend.

    `endpoint` is reached, limited, retried and priced exactly like a teacher;
    `base_url: null` is the embedded SmolLM2-135M-Instruct, which exercises the path
    end to end but is far too small for its verdicts to mean much. Its sampling is set in
    `sampling` below, with a judge's defaults, not in `endpoint.sampling`.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointConfig = EndpointConfig()
    sampling: SamplingParams = Field(
        SamplingParams(temperature=0.0, top_p=1.0, max_tokens=256),
        description="greedy, as MT-Bench's judges: the same answer gets the same verdict on a "
        "rerun; 256 tokens hold a two-sentence rationale and the verdict",
    )
    scale: tuple[int, int] = Field((1, 10), description="MT-Bench's single-answer grading scale")
    min_margin: int = Field(
        2, ge=1, description="score gap for `winner_by_scores` to prefer one answer: a one-point "
        "gap on a 10-point scale is within what a judge changes when the prompt is reworded "
        "(our choice, not a published number)",
    )
    budget_usd: float | None = Field(None, gt=0, description="stop gracefully once spent")

    @model_validator(mode="after")
    def _judge_settings_in_one_place(self) -> "JudgeConfig":
        if self.scale[0] >= self.scale[1]:
            raise ValueError(f"scale {self.scale}: the lowest score must be below the highest")
        misplaced = sorted({"sampling", "weight"} & self.endpoint.model_fields_set)
        if misplaced:
            raise ValueError(f"endpoint.{misplaced[0]} does not apply to a judge; its sampling is `sampling`")
        return self


@dataclass(frozen=True)
class JudgeScore:
    answer_id: str
    score: int | None  # None: no verdict, and `reason` says why
    rationale: str | None
    raw: str | None  # the judge's reply as received; None when no reply came
    reason: str | None  # an unreadable reply or a failed request
    judge: Teacher


@dataclass(frozen=True)
class PairwiseVerdict:
    a_id: str
    b_id: str
    winner: Choice | None  # None: one order gave no verdict, and `reason` says why
    first_verdict: str | None  # raw reply with a shown as "Answer A"
    swapped_verdict: str | None  # raw reply with b shown as "Answer A"
    first_rationale: str | None
    swapped_rationale: str | None
    position_disagreement: bool
    reason: str | None
    judge: Teacher


def _check_answers(task: Task, answers: Iterable[Example]) -> None:
    if not task.judge_rubric.strip():
        raise ValueError(f"task {task.name} declares no judge_rubric for the judge to score against")
    for answer in answers:
        if answer.task != task.name or answer.response is None:
            raise ValueError(f"answer {answer.id} is not an answered {task.name} example")


def _judge(endpoint: Endpoint, sampling: dict) -> Teacher:
    return Teacher(endpoint.identity, endpoint.model, canonical_json(sampling), 0)


async def _ask_all(
    requests: list[tuple[list[dict], dict | None]], config: JudgeConfig, endpoint: Endpoint,
    cache: ResponseCache, on_progress: Callable[[Progress], None], should_stop: Callable[[], str | None],
) -> list[CachedResponse | RequestFailed]:
    """Send every (messages, response_format) once, concurrently; results in request order."""
    client = TeacherClient(endpoint, config.endpoint.limits(), cache)
    stop = StopRule([client], config.budget_usd, should_stop)
    sampling = config.sampling.model_dump()
    results: list[CachedResponse | RequestFailed | None] = [None] * len(requests)
    counts = {"done": 0, "failed": 0}

    async def ask(slot: int, messages: list[dict], response_format: dict | None) -> None:
        try:
            results[slot] = await client.ask(messages, sampling, 0, response_format, may_send=lambda: not stop())
            counts["done"] += 1
        except NotSent:
            return
        except RequestFailed as failure:
            results[slot] = failure
            counts["failed"] += 1
        on_progress(Progress.of([client], counts["done"], len(requests), counts["failed"]))

    await run_requests([ask(slot, messages, fmt) for slot, (messages, fmt) in enumerate(requests)], [client], stop)
    if stop.reason:
        raise TeacherStopped(
            f"stopped: {stop.reason}; {counts['done']} of {len(requests)} judge requests are answered "
            "and cached, run the same command again to resume"
        )
    return results


def _failed(failure: RequestFailed) -> str:
    return f"request failed after {failure.attempts} attempts: {failure.reason}"


async def score_answers(
    answers: list[Example], task: Task, config: JudgeConfig, endpoint: Endpoint, cache: ResponseCache,
    *, on_progress: Callable[[Progress], None] = lambda progress: None,
    should_stop: Callable[[], str | None] = lambda: None, gold: GoldPromptIndex,
) -> list[JudgeScore]:
    """Score each answer alone on `config.scale` against `task.judge_rubric`."""
    refuse_gold(answers, gold)
    _check_answers(task, answers)
    response_format = score_format(config.scale) if config.endpoint.structured_output == "json_schema" else None
    requests = [(score_messages(task, shown_input(a), a.response, config.scale), response_format) for a in answers]
    outcomes = await _ask_all(requests, config, endpoint, cache, on_progress, should_stop)
    judge = _judge(endpoint, config.sampling.model_dump())
    scores = []
    for answer, outcome in zip(answers, outcomes, strict=True):
        if isinstance(outcome, RequestFailed):
            scores.append(JudgeScore(answer.id, None, None, None, _failed(outcome), judge))
            continue
        score, rationale, why = read_score(outcome.content, outcome.finish_reason, config.scale)
        scores.append(JudgeScore(answer.id, score, rationale, outcome.content, why or None, judge))
    return scores


def _read_order(outcome: CachedResponse | RequestFailed, a_shown_first: bool):
    """(choice in terms of a and b, rationale, raw reply, why there is no choice)."""
    if isinstance(outcome, RequestFailed):
        return None, None, None, _failed(outcome)
    shown, rationale, why = read_choice(outcome.content, outcome.finish_reason)
    meaning = {"A": "a", "B": "b", "tie": "tie"} if a_shown_first else {"A": "b", "B": "a", "tie": "tie"}
    return meaning.get(shown), rationale, outcome.content, why


async def compare_pairwise(
    items: list[tuple[Example, Example]], task: Task, config: JudgeConfig, endpoint: Endpoint,
    cache: ResponseCache, *, on_progress: Callable[[Progress], None] = lambda progress: None,
    should_stop: Callable[[], str | None] = lambda: None, gold: GoldPromptIndex,
) -> list[PairwiseVerdict]:
    """Judge which of two answers to the same prompt is better, asking in both orders.

    LLM judges favour a position (most often the first) regardless of content. Zheng et
    al. 2023 (arXiv:2306.05685, §3.3-3.4) ask each pair twice, the second time with the
    answers swapped, and call a win only when both orders agree: when they disagree the
    verdict is a tie and `position_disagreement` is True. When either order gives no
    verdict (unreadable reply, failed request), `winner` is None and `reason` says why.
    """
    refuse_gold([answer for pair in items for answer in pair], gold)
    _check_answers(task, [answer for pair in items for answer in pair])
    for a, b in items:
        if (a.prompt, a.context) != (b.prompt, b.context) or a.id == b.id:
            raise ValueError(f"pair ({a.id}, {b.id}): two different answers to one prompt are compared")
    response_format = PAIRWISE_FORMAT if config.endpoint.structured_output == "json_schema" else None
    requests = [
        (pairwise_messages(task, shown_input(a), first.response, second.response), response_format)
        for a, b in items for first, second in ((a, b), (b, a))
    ]
    outcomes = await _ask_all(requests, config, endpoint, cache, on_progress, should_stop)
    judge = _judge(endpoint, config.sampling.model_dump())
    verdicts = []
    for (a, b), first, swapped in zip(items, outcomes[::2], outcomes[1::2], strict=True):
        choice_1, rationale_1, raw_1, why_1 = _read_order(first, a_shown_first=True)
        choice_2, rationale_2, raw_2, why_2 = _read_order(swapped, a_shown_first=False)
        reasons = [f"{order}: {why}" for order, why in (("first order", why_1), ("swapped order", why_2)) if why]
        disagree = not reasons and choice_1 != choice_2
        if reasons:
            winner = None
        elif disagree:
            winner = "tie"
            reasons = [f"position disagreement: {choice_1} with a shown first, {choice_2} with b shown first"]
        else:
            winner = choice_1
        verdicts.append(PairwiseVerdict(a.id, b.id, winner, raw_1, raw_2, rationale_1, rationale_2, disagree,
                                        "; ".join(reasons) or None, judge))
    return verdicts


def winner_by_scores(a: JudgeScore, b: JudgeScore, min_margin: int) -> Choice | None:
    """Which of two scored answers to prefer: only by at least `min_margin` points, else a
    tie; None when either has no score."""
    if a.score is None or b.score is None:
        return None
    if abs(a.score - b.score) < min_margin:
        return "tie"
    return "a" if a.score > b.score else "b"


# ---- bias checks -------------------------------------------------------------------


def _length(answer: Example) -> int:
    return len(answer.response.split())  # words: what a reader perceives as "longer"


@dataclass(frozen=True)
class LengthBias:
    compared: int  # verdicts with a winner (not a tie) whose answers differ in length
    longer_won: int
    longer_won_fraction: float | None  # None when nothing was compared


def length_bias(verdicts: Iterable[PairwiseVerdict], answers_by_id: Mapping[str, Example]) -> LengthBias:
    """How often the longer answer (in words) wins. Well above 0.5 suggests verbosity bias
    (Zheng et al. 2023, §3.3), or that longer answers really were better here: compare a
    sample of verdicts with human labels before trusting either reading."""
    compared = longer_won = 0
    for verdict in verdicts:
        if verdict.winner not in ("a", "b"):
            continue
        a_words, b_words = _length(answers_by_id[verdict.a_id]), _length(answers_by_id[verdict.b_id])
        if a_words != b_words:
            compared += 1
            longer_won += (verdict.winner == "a") == (a_words > b_words)
    return LengthBias(compared, longer_won, round(longer_won / compared, 4) if compared else None)


@dataclass(frozen=True)
class LengthScoreCorrelation:
    scored: int  # answers with a score
    spearman: float | None  # None with fewer than 3 scores, or when lengths or scores are all equal
    pearson: float | None


def length_score_correlation(
    scores: Iterable[JudgeScore], answers_by_id: Mapping[str, Example]
) -> LengthScoreCorrelation:
    """Correlation of answer length (words) with score: the pointwise view of verbosity bias."""
    rows = [(float(_length(answers_by_id[s.answer_id])), float(s.score)) for s in scores if s.score is not None]
    if len(rows) < 3:
        return LengthScoreCorrelation(len(rows), None, None)
    frame = pl.DataFrame(rows, schema={"length": pl.Float64, "score": pl.Float64}, orient="row")
    spearman, pearson = frame.select(
        pl.corr("length", "score", method="spearman").alias("spearman"),
        pl.corr("length", "score").alias("pearson"),
    ).row(0)
    # polars gives NaN when a column is constant: no correlation can be measured.
    measured = [None if value != value else round(value, 4) for value in (spearman, pearson)]
    return LengthScoreCorrelation(len(rows), *measured)


# A family is the model name up to its size, variant or date: "HuggingFaceTB/SmolLM2-135M-
# Instruct" -> "smollm2", "Qwen/Qwen2.5-7B-Instruct" -> "qwen2.5", "meta-llama/Meta-Llama-3-8B"
# -> "llama-3", "gpt-4o-mini-2024-07-18" -> "gpt-4o". Its lineage drops the version digits
# ("llama", "qwen", "gpt"): Qwen2 and Qwen2.5 share a tokenizer and much training data.
# Limits: names are all this sees. A fine-tune renamed "triage-bot", a merge, or a model
# distilled from another family's outputs (common for open models) shares that family's
# style under a different name and is missed; so are families whose names differ (Mistral,
# Mixtral). A shared prefix is not always a shared maker either (GPT-2, GPT-NeoX): a
# warning asks for a look, and no warning is not evidence of independence.
_NOT_FAMILY = re.compile(
    r"\d+(\.\d+)?[bmk]|\d+x\d+(\.\d+)?[bmk]|a\d+(\.\d+)?b|\d{4,}"
    r"|instruct|chat|it|base|hf|mini|nano|turbo|preview|latest|gguf"
)


def model_family(model: str) -> str:
    name = model.rsplit("/", 1)[-1].split(":")[0].lower()
    tokens = [t for t in re.split(r"[-_ ]", name) if t]
    if tokens and tokens[0] == "meta":  # "Meta-Llama-3" is Llama's own prefix
        tokens = tokens[1:]
    family = []
    for token in tokens:
        if family and _NOT_FAMILY.fullmatch(token):
            break
        family.append(token)
    return "-".join(family)


def _lineage(family: str) -> str:
    return re.match(r"[a-z]*", family).group(0) or family  # a name without letters is its own lineage


def family_warning(judge_model: str, teacher_models: list[str]) -> str | None:
    """A warning when the judge shares a model family or lineage with a teacher whose
    answers it judges: judges favour their own generations (Panickssery et al. 2024,
    arXiv:2404.13076). None when no teacher's name relates to the judge's."""
    family = model_family(judge_model)
    same = sorted({t for t in teacher_models if model_family(t) == family})
    lineage = _lineage(family)
    related = sorted({t for t in teacher_models if t not in same and _lineage(model_family(t)) == lineage})
    if not same and not related:
        return None
    kinds = ([f"the same family ({family}) as {', '.join(same)}"] if same else []) + (
        [f"the same lineage ({lineage}) as {', '.join(related)}"] if related else [])
    return (
        f"judge {judge_model} is of {' and '.join(kinds)}: judges favour their own family's answers "
        "(Panickssery et al. 2024, arXiv:2404.13076); judge with another family, or check its "
        "verdicts against human labels"
    )
