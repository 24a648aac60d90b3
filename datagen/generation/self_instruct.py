"""Self-generation: the teacher writes new task inputs, round by round, with a guard
against mode collapse.

The method is Self-Instruct's (Wang et al. 2023, arXiv:2212.10560): each request shows
the teacher a few inputs sampled from the pool (the seeds plus what earlier rounds kept;
Self-Instruct shows 6 human-written and 2 generated) and asks for a new one on a topic. Every new
input is filtered and checked against everything kept so far *before* anyone pays a
teacher to answer it. Self-Instruct drops a candidate whose ROUGE-L with a kept one
exceeds 0.7; we use estimated Jaccard over word 3-grams at 0.7 (`minhash_dedup.py`),
which scales to large pools and is the measure the rest of crucible dedupes with.

To spread inputs over the task's label space, request i of a round asks for topic
i mod len(topics) (a task declares one topic per label: `Task.topics`), so the share
of kept inputs per topic is the label distribution a collapse would skew.

Diversity is measured on each round's kept inputs:

- distinct-n (Li et al. 2016, arXiv:1510.03055): distinct word n-grams / all n-grams;
- near-duplicate rate: the share of candidates that passed the filters but were near
  or exact duplicates of an input already kept (the symptom of a teacher repeating
  itself or its examples);
- topic shares and their normalized entropy (1 = even, 0 = a single topic).

A round that crosses a threshold is not kept: its inputs go to the rejects with reason
`collapsed_round: ...` and generation stops, with the reason in the round report. An
earlier round's inputs stay kept.

Input: seed Examples (any prompts; their labels are not used): the build's generated
prompts, or a locked seed set's human-written rows (`seed_examples.py`). Output: new Examples with
`prompt` only (no reference: nobody knows their label), `teacher` = who wrote it,
`parent_ids` = the inputs shown, `template_id` = `self_instruct/round-R/<topic>`.
Every request goes through the response cache, and a round's requests depend only on the
seeds and earlier rounds, so a stopped or crashed run resumes without paying twice.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from datagen.dedupe.minhash_dedup import MinhashDedupConfig, NearDuplicateIndex
from datagen.foundation.hashing import canonical_json, normalize_text
from datagen.foundation.records import Example, Teacher
from datagen.foundation.task import Task, Verdict
from datagen.serving.client import Endpoint, NotSent, RequestFailed, TeacherClient, TeacherError, TeacherUsage
from datagen.serving.endpoint import EndpointConfig, SamplingParams
from datagen.serving.request_batch import Progress, StopRule, TeacherStopped, run_until_stopped
from datagen.serving.response_cache import ResponseCache
from datagen.teacher.distill import FailedRequest, pick_teacher, request_seed, usage_key

SOURCE = "datagen.self_instruct@1"
TEMPLATE_PREFIX = "self_instruct/"  # every self-generated input's `template_id`, and its answers', begins so


class SelfInstructConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(3, ge=1)
    requests_per_round: int = Field(16, ge=1, description="each asks for one new input")
    seed_examples_per_request: int = Field(
        2, ge=1, description="seeds shown per request (Self-Instruct: 6); a small teacher "
        "copies long contexts, so the default is short",
    )
    generated_examples_per_request: int = Field(
        1, ge=0, description="earlier rounds' inputs shown per request (Self-Instruct: 2)"
    )
    topics: list[str] | None = Field(None, description="default: the task's own topics")
    sampling: SamplingParams = SamplingParams(temperature=1.0, max_tokens=160)
    min_words: int = Field(8, ge=1, description="shorter is not a ticket, it is a fragment")
    rejected_phrases: list[str] | None = Field(
        None, description="whole words, any case, that show the teacher wrote the wrong thing: "
        "for the demo, a support agent's reply (\"assist you\", \"your order\") instead of the "
        "customer's message. Default: the task's own (`Task.self_instruct_rejected_phrases`)",
    )
    max_words: int = Field(200, ge=1)
    near_duplicate: MinhashDedupConfig = MinhashDedupConfig(threshold=0.7)
    min_distinct_2: float = Field(
        0.5, ge=0, le=1, description="distinct word bigrams / all bigrams of a round's kept "
        "inputs. It falls as a set grows: the demo's template tickets score 0.91 over 16 "
        "and 0.70 over 40, so the bar suits rounds of about 16",
    )
    max_near_duplicate_rate: float = Field(0.5, ge=0, le=1)
    min_topic_entropy: float = Field(
        0.5, ge=0, le=1, description="normalized entropy of the kept inputs' topics; "
        "0.5 is about half the requested topics evenly, or all of them badly skewed",
    )
    budget_usd: float | None = Field(None, gt=0, description="stop gracefully once spent")


@dataclass
class RoundReport:
    round: int
    requested: int
    failed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason kind
    near_duplicates: int = 0
    kept: int = 0
    distinct_1: float = 0.0
    distinct_2: float = 0.0
    near_duplicate_rate: float = 0.0
    topic_shares: dict[str, float] = field(default_factory=dict)
    topic_entropy: float = 0.0
    collapsed: str | None = None  # why the round was not kept


@dataclass
class SelfInstructResult:
    kept: list[Example]
    rejected: list[tuple[Example, str]]
    rounds: list[RoundReport]
    stop_reason: str  # why generation ended: "ran all N rounds" or a collapse
    failures: list[FailedRequest]
    usage: dict[str, TeacherUsage] = field(default_factory=dict)  # by `usage_key`


# ---- diversity measures ----------------------------------------------------------


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams, across `texts` (0.0 when there are none)."""
    grams = [
        tuple(words[i : i + n])
        for words in (normalize_text(t).split() for t in texts)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def normalized_entropy(counts: Counter, categories: int) -> float:
    """Shannon entropy of `counts` divided by its maximum, log(categories); with one
    category every count is as even as it can be."""
    total = sum(counts.values())
    if total == 0:
        return 0.0
    if categories < 2:
        return 1.0
    entropy = -sum(c / total * math.log(c / total) for c in counts.values() if c)
    return entropy / math.log(categories)


# ---- filters on a candidate input ---------------------------------------------------

_LABEL = re.compile(r"^\s*(?:message|example|ticket|email)\s*\d*\s*:\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[A-Za-z][^\]\n]{0,40}\]")
_META_OPENINGS = ("here is", "here's", "sure", "certainly", "as an ai", "i'm sorry", "this is a new",
                  "new message", "rewritten", "a customer")


def clean_candidate(text: str) -> str:
    """The input without the scaffolding we showed: a leading `Message 2:` label, quotes."""
    text = _LABEL.sub("", text.strip()).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text


def finished_normally(text: str, finish_reason: str | None, config: SelfInstructConfig) -> Verdict:
    if finish_reason == "stop":
        return True, ""
    if finish_reason == "length":
        return False, "truncated: hit max_tokens"
    return False, f"finish_reason: {finish_reason}"


def within_word_bounds(text: str, finish_reason: str | None, config: SelfInstructConfig) -> Verdict:
    words = len(text.split())
    if words < config.min_words:
        return False, f"too_short: {words} words < {config.min_words}"
    if words > config.max_words:
        return False, f"too_long: {words} words > {config.max_words}"
    return True, ""


def has_no_placeholders(text: str, finish_reason: str | None, config: SelfInstructConfig) -> Verdict:
    found = _PLACEHOLDER.search(text)
    return (False, f"placeholder: {found.group(0)}") if found else (True, "")


def is_not_meta_text(text: str, finish_reason: str | None, config: SelfInstructConfig) -> Verdict:
    """Talk about the message ("Here's a new email...") instead of the message itself."""
    opening = text.casefold().lstrip("\"'*# ")
    for phrase in _META_OPENINGS:
        if opening.startswith(phrase):
            return False, f"meta_text: starts with {phrase!r}"
    return True, ""


def has_no_rejected_phrase(text: str, finish_reason: str | None, config: SelfInstructConfig) -> Verdict:
    folded = text.replace("\u2019", "'").casefold()
    for phrase in config.rejected_phrases:
        if re.search(rf"(?<!\w){re.escape(phrase.casefold())}(?!\w)", folded):
            return False, f"rejected_phrase: {phrase}"
    return True, ""


CANDIDATE_FILTERS = (
    finished_normally, within_word_bounds, has_no_placeholders, is_not_meta_text, has_no_rejected_phrase,
)


# ---- the rounds ---------------------------------------------------------------------


def request_messages(task: Task, shown: list[Example], topic: str) -> list[dict[str, str]]:
    """The examples as earlier turns of the chat, the teacher's own answers to "write a new
    one", then the request for this topic. Shown in one user message with a "write another"
    instruction, the 135M teacher mostly talked about the examples (13 of 16 requests ran
    past 160 tokens in the demo); as turns, it mostly writes one short message."""
    chat = [{
        "role": "system",
        "content": f"You write realistic examples of {task.input_description}. Reply with the "
        "message only: no title, no explanation, no placeholders like [Name].",
    }]
    for example in shown:
        chat += [{"role": "user", "content": "Write a new message."},
                 {"role": "assistant", "content": example.prompt}]
    chat.append({"role": "user", "content": f"Write a new message about {topic}."})
    return chat


def round_verdict(report: RoundReport, config: SelfInstructConfig) -> str | None:
    """Why this round's inputs must not be kept, or None."""
    if report.kept == 0:
        return "no new input passed the filters and the duplicate check"
    if report.near_duplicate_rate > config.max_near_duplicate_rate:
        return f"near-duplicate rate {report.near_duplicate_rate:.2f} > {config.max_near_duplicate_rate}"
    if report.distinct_2 < config.min_distinct_2:
        return f"distinct-2 {report.distinct_2:.2f} < {config.min_distinct_2}"
    if report.topic_entropy < config.min_topic_entropy:
        return f"topic entropy {report.topic_entropy:.2f} < {config.min_topic_entropy}"
    return None


async def self_instruct(
    seeds: list[Example],
    task: Task,
    config: SelfInstructConfig,
    teachers: list[EndpointConfig],
    endpoints: list[Endpoint],
    cache: ResponseCache,
    run_id: str,
    *,
    on_progress=lambda progress: None,
    should_stop=lambda: None,
) -> SelfInstructResult:
    """Run up to `config.rounds` rounds; `endpoints[i]` is where `teachers[i]` is reached."""
    topics = config.topics or list(task.topics)
    if config.rejected_phrases is None:
        config = config.model_copy(update={"rejected_phrases": list(task.self_instruct_rejected_phrases)})
    if not task.input_description or not topics:
        raise ValueError(f"task {task.name} declares no input_description or topics to self-generate from")
    clients = [TeacherClient(e, t.limits(), cache) for e, t in zip(endpoints, teachers, strict=True)]
    stop = StopRule(clients, config.budget_usd, should_stop)
    index = NearDuplicateIndex(config.near_duplicate)
    for seed in seeds:
        index.add(seed.id, seed.prompt)
    kept: list[Example] = []
    rejected: list[tuple[Example, str]] = []
    failures: list[FailedRequest] = []
    reports: list[RoundReport] = []
    total = config.rounds * config.requests_per_round
    sent = [0]

    async def ask(number: int, shown: list[Example], topic: str):
        teacher_index = pick_teacher(f"self-instruct:{number}", [t.weight for t in teachers])
        client = clients[teacher_index]
        sampling = config.sampling.model_dump()
        sampling["seed"] = request_seed(config.sampling.seed, "self-instruct", number)
        try:
            response = await client.ask(request_messages(task, shown, topic), sampling, number,
                                        may_send=lambda: not stop())
        except NotSent:
            return None
        except RequestFailed as failure:
            failures.append(FailedRequest(f"self-instruct:{number}", number, client.endpoint.model,
                                          client.endpoint.identity, failure.reason, failure.attempts))
            return None
        finally:
            sent[0] += 1
            on_progress(Progress.of(clients, sent[0] - len(failures), total, len(failures)))
        return response, sampling, client.endpoint

    try:
        for round_number in range(1, config.rounds + 1):
            report = RoundReport(round=round_number, requested=config.requests_per_round)
            requests = []
            for i in range(config.requests_per_round):
                number = (round_number - 1) * config.requests_per_round + i
                rng = random.Random(request_seed(config.sampling.seed, "self-instruct-shown", number))
                shown = rng.sample(seeds, min(config.seed_examples_per_request, len(seeds)))
                shown += rng.sample(kept, min(config.generated_examples_per_request, len(kept)))
                requests.append((number, shown, topics[i % len(topics)]))
            failed_before = len(failures)
            pending = await run_until_stopped([ask(*request) for request in requests], stop)
            if stop():
                raise TeacherStopped(
                    f"stopped: {stop.reason} during self-generation round {round_number}; every "
                    "response received is cached, run the same command again to resume"
                )
            report.failed = len(failures) - failed_before
            round_kept: list[Example] = []
            passed = 0
            # Results are handled in request order, never completion order, so a resumed
            # run rebuilds the same pool and sends the same (cached) requests.
            for (number, shown, topic), done in zip(requests, pending):
                if done.result() is None:
                    continue
                response, sampling, endpoint = done.result()
                candidate = Example(
                    task=task.name,
                    prompt=clean_candidate(response.content),
                    source=SOURCE,
                    run_id=run_id,
                    template_id=f"{TEMPLATE_PREFIX}round-{round_number}/{topic}",
                    seed=sampling["seed"],
                    teacher=Teacher(endpoint.identity, endpoint.model, canonical_json(sampling), number),
                    parent_ids=tuple(e.id for e in shown),
                )
                reason = next(
                    (r for keep, r in (f(candidate.prompt, response.finish_reason, config)
                                       for f in CANDIDATE_FILTERS) if not keep),
                    None,
                )
                if reason is None:
                    passed += 1
                    match = index.closest(candidate.prompt)
                    if match is not None:
                        report.near_duplicates += 1
                        reason = f"near_duplicate: of {match[0]} (jaccard {match[1]:.2f})"
                if reason is not None:
                    rejected.append((candidate, reason))
                    kind = reason.split(":", 1)[0]
                    report.rejected[kind] = report.rejected.get(kind, 0) + 1
                    continue
                index.add(candidate.id, candidate.prompt)
                round_kept.append(candidate)
            texts = [e.prompt for e in round_kept]
            topic_counts = Counter(e.template_id.split("/", 2)[2] for e in round_kept)
            report.kept = len(round_kept)
            report.distinct_1 = round(distinct_n(texts, 1), 4)
            report.distinct_2 = round(distinct_n(texts, 2), 4)
            report.near_duplicate_rate = round(report.near_duplicates / passed, 4) if passed else 0.0
            report.topic_shares = {t: round(c / len(round_kept), 4) for t, c in topic_counts.items()}
            report.topic_entropy = round(
                normalized_entropy(topic_counts, min(len(topics), config.requests_per_round)), 4
            )
            report.collapsed = round_verdict(report, config)
            reports.append(report)
            if report.collapsed:
                rejected += [(e, f"collapsed_round: {report.collapsed}") for e in round_kept]
                return SelfInstructResult(kept, rejected, reports, f"round {round_number} not kept: "
                                          f"{report.collapsed}", failures, usage(clients))
            kept += round_kept
    except* TeacherError as refused:
        raise refused.exceptions[0] from None
    finally:
        for client in clients:
            await client.close()
    return SelfInstructResult(kept, rejected, reports, f"ran all {config.rounds} rounds", failures,
                              usage(clients))


def usage(clients: list[TeacherClient]) -> dict[str, TeacherUsage]:
    return {usage_key(c.endpoint): c.usage for c in clients}
