"""The build's tasks that send requests to a model: self-generation, user simulation,
teacher answers, the base student's answers, and the judge. They share one set of servers per build.

Each reads its inputs from the run store and writes one stage; each is skipped by the
flow when its stage is complete, so no server starts for a build that only resumes
curation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers, reason_kind
from datagen.foundation.records import Example, examples_from_frame, examples_to_frame, pairs_to_frame
from datagen.foundation.run_store import RunStore
from datagen.foundation.task import Task
from datagen.generation.self_instruct import SelfInstructConfig, self_instruct
from datagen.judge.judge_answers import JudgeConfig, family_warning, length_bias, length_score_correlation
from datagen.judge.judge_pairs import judge_ranked_pairs
from datagen.judge.judge_prompts import GoldPromptIndex
from datagen.serving.embedded_model import cache_dir
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.model_servers import ModelServers
from datagen.serving.response_cache import ResponseCache
from datagen.teacher.distill import DistillConfig, FailedRequest, answer_prompts, check_failures
from datagen.teacher.simulate_users import UserSimulationConfig, simulate_conversations
from flows.graceful_stop import graceful_stop
from flows.teacher_progress import teacher_progress

STUDENT_SOURCE = "datagen.teacher.answer_prompts@2:student"


def _response_cache(cache_path: Path | None) -> ResponseCache:
    return ResponseCache(cache_path or cache_dir() / "responses.sqlite")


def _log_failures(store: RunStore, failures: list[FailedRequest]) -> Path:
    failed_log = store.run_dir / "logs" / "failed-requests.jsonl"
    if failures:
        failed_log.parent.mkdir(parents=True, exist_ok=True)
        with open(failed_log, "a") as handle:
            for failure in failures:
                handle.write(json.dumps(dataclasses.asdict(failure)) + "\n")
        get_run_logger().warning("%d requests failed after retries; see %s", len(failures), failed_log)
    return failed_log


def rejects_frame(rejected: list[tuple[Example, str]]) -> pl.DataFrame:
    """Rejected rows with their reason kind (counted) and full reason (read)."""
    return examples_to_frame([e for e, _ in rejected]).with_columns(
        reason=pl.Series([reason_kind(r) for _, r in rejected], dtype=pl.String),
        detail=pl.Series([r for _, r in rejected], dtype=pl.String),
    )


@task(cache_policy=NO_CACHE)
def generate_self_instruct(store: RunStore, task_: Task, config: SelfInstructConfig, distill: DistillConfig,
                           servers: ModelServers, seeds_from: str = "prompts") -> None:
    """New inputs written by the teachers, seeded with the rows of stage `seeds_from`: the
    generated prompts, or a seed set's human-written rows (`seed`)."""
    seeds = examples_from_frame(store.read(seeds_from))
    endpoints = [servers.endpoint(t) for t in distill.teachers]
    cache = _response_cache(distill.cache_path)
    try:
        with teacher_progress("self-generated inputs", "self-instruct") as on_progress, graceful_stop() as stop:
            result = asyncio.run(
                self_instruct(seeds, task_, config, distill.teachers, endpoints, cache,
                              store.run_id, on_progress=on_progress, should_stop=stop.requested)
            )
    finally:
        cache.close()
    _log_failures(store, result.failures)
    get_run_logger().info("self-generation kept %d new inputs: %s", len(result.kept), result.stop_reason)
    store.write_stage(
        "self_instruct",
        {"part": examples_to_frame(result.kept), "rejects": rejects_frame(result.rejected)},
        config=config.model_dump(mode="json"),
        inputs=[seeds_from],
        summary={
            "stop_reason": result.stop_reason,
            "rounds": [dataclasses.asdict(r) for r in result.rounds],
            "failed_requests": len(result.failures),
            "usage": {key: dataclasses.asdict(usage) for key, usage in result.usage.items()},
        },
    )


@task(cache_policy=NO_CACHE)
def simulate_users(store: RunStore, task_: Task, config: UserSimulationConfig, distill: DistillConfig,
                   servers: ModelServers) -> None:
    """Conversations from the first `config.seeds` generated prompts: the simulator plays
    the user, the teachers answer each turn; their last user turns join the prompts before
    dedupe, to be answered like any prompt."""
    seeds = examples_from_frame(store.read("prompts"))[: config.seeds]
    endpoints = [servers.endpoint(t) for t in distill.teachers]
    simulator = servers.endpoint(config.simulator)
    cache = _response_cache(distill.cache_path)
    try:
        with graceful_stop() as stop:
            result = asyncio.run(simulate_conversations(seeds, task_, config, distill.teachers, endpoints, simulator,
                                                        cache, store.run_id, should_stop=stop.requested))
    finally:
        cache.close()
    _log_failures(store, result.failures)
    get_run_logger().info("user simulation: %d conversations from %d seeds, ended by %s", len(result.conversations),
                          len(seeds), dict(result.ended_by))
    store.write_stage(
        "conversations",
        {"part": examples_to_frame(result.conversations), "rejects": rejects_frame(result.ended)},
        config=config.model_dump(mode="json"),
        inputs=["prompts"],
        summary={
            "ended_by": dict(result.ended_by),
            "user_turns": dict(Counter(len(c.user_turns()) for c in result.conversations)),
            "rejected_by_reason": dict(Counter(reason_kind(r) for _, r in result.ended)),
            "failed_requests": len(result.failures),
            "usage": {key: dataclasses.asdict(usage) for key, usage in result.usage.items()},
        },
    )


def imported_answers(store: RunStore) -> list[Example]:
    """Imported SFT rows: answers that arrived with their prompt."""
    if not store.is_complete("imported"):
        return []
    return [e for e in examples_from_frame(store.read("imported")) if e.response is not None]


def _answer(store: RunStore, task_: Task, servers: ModelServers, distill: DistillConfig,
            what: str, skip: set[str] = frozenset(), **options):
    prompts = [p for p in examples_from_frame(store.read("unique_prompts")) if p.id not in skip]
    endpoints = [servers.endpoint(t) for t in distill.teachers]
    for endpoint in endpoints:
        get_run_logger().info("%s: %s at %s", what, endpoint.model, endpoint.base_url)
    cache = _response_cache(distill.cache_path)
    try:
        with teacher_progress(what, what.replace(" ", "-")) as on_progress, graceful_stop() as stop:
            result = asyncio.run(
                answer_prompts(prompts, task_, distill, endpoints, cache, store.run_id,
                               on_progress=on_progress, should_stop=stop.requested, **options)
            )
    finally:
        cache.close()
    failed_log = _log_failures(store, result.failures)
    check_failures(result, distill, failed_log)
    summary = {
        "failed_requests": len(result.failures),
        "failed_log": str(failed_log) if result.failures else None,
        "usage": {key: dataclasses.asdict(usage) for key, usage in result.usage.items()},
    }
    return result, summary


@task(cache_policy=NO_CACHE)
def distill_answers(store: RunStore, task_: Task, distill: DistillConfig, servers: ModelServers) -> None:
    """Every unique prompt answered `samples_per_prompt` times by the teachers."""
    # A prompt imported with its answer is not paid for again.
    answered = {a.parent_ids[0] for a in imported_answers(store)}
    result, summary = _answer(store, task_, servers, distill, "teacher answers", skip=answered)
    store.write_stage(
        "answers",
        {"part": examples_to_frame(result.answers)},
        config=distill.model_dump(mode="json"),
        inputs=["unique_prompts"],
        summary=summary,
    )


@task(cache_policy=NO_CACHE)
def ask_student(store: RunStore, task_: Task, student: EndpointConfig, distill: DistillConfig,
                filters: AnswerFilterConfig, servers: ModelServers) -> None:
    """The base student's own answer to every prompt, asked as it will be after training
    (no few-shot turns), and filtered like the teachers': its rejects are the rejected
    side of `teacher_vs_student` pairs."""
    asked = DistillConfig(teachers=[student], samples_per_prompt=1, cache_path=distill.cache_path,
                          max_failed_fraction=distill.max_failed_fraction)
    result, summary = _answer(store, task_, servers, asked, "student answers",
                              few_shot=False, source=STUDENT_SOURCE)
    kept, rejected = filter_answers(result.answers, task_, filters)
    summary["rejected_by_reason"] = dict(Counter(reason_kind(r) for _, r in rejected))
    store.write_stage(
        "student_answers",
        {"part": examples_to_frame(kept), "rejects": rejects_frame(rejected)},
        config=student.model_dump(mode="json"),
        inputs=["unique_prompts"],
        summary=summary,
    )


@task(cache_policy=NO_CACHE)
def judge_answers(store: RunStore, task_: Task, config: JudgeConfig, cache_path: Path | None, servers: ModelServers,
                  gold: GoldPromptIndex) -> None:
    """Judge-ranked pairs for the prompts no verifier can rank: those with no known label,
    and for a text task also replies that pass every check of theirs (checks verify part of
    a reply: which of two that pass them all reads better is the judge's to say); `gold`
    (every locked row, verified) is what the judge must never be shown."""
    to_judge = [a for a in examples_from_frame(store.read("verified"))
                if a.reference is None or task_.answer_format == "text"]
    endpoint = servers.endpoint(config.endpoint)
    teachers = sorted({a.teacher.model for a in to_judge if a.teacher is not None})
    warning = family_warning(endpoint.model, teachers)
    if warning:
        get_run_logger().warning("%s", warning)
    cache = _response_cache(cache_path)
    try:
        with teacher_progress("judge verdicts", "judge-verdicts") as on_progress, graceful_stop() as stop:
            ranking = asyncio.run(judge_ranked_pairs(to_judge, task_, config, endpoint, cache,
                                                     on_progress=on_progress, should_stop=stop.requested,
                                                     gold=gold))
    finally:
        cache.close()
    by_id = {a.id: a for a in to_judge}
    bias = length_bias(ranking.verdicts, by_id)
    correlation = length_score_correlation(ranking.scores, by_id)
    store.write_stage(
        "judge",
        {"part": pairs_to_frame(ranking.pairs)},
        config=config.model_dump(mode="json"),
        inputs=["verified"],
        summary={
            "family_warning": warning,
            "scored": len(ranking.scores),
            "readable_scores": sum(s.score is not None for s in ranking.scores),
            "unreadable_scores": dict(Counter((s.reason or "").split(" (")[0] for s in ranking.scores
                                              if s.score is None)),
            "dropped_by_reason": dict(Counter(reason.split(":", 1)[0] for _, reason in ranking.dropped)),
            "length_bias": dataclasses.asdict(bias),
            "length_score_correlation": dataclasses.asdict(correlation),
        },
    )
