"""Preference pairs whose two answers are both plausible and differ where it matters.

Strategies, tried in the recipe's order for each prompt until it has
`max_pairs_per_prompt` pairs:

- `verifier_ranked`: `chosen` is a teacher answer that passed every filter, including
  agreement with the known label; `rejected` is another sample for the same prompt that
  is valid JSON in the right schema but wrong on named fields.
- `minimal_correction`: `rejected` is such a plausible wrong sample, and `chosen` is the
  same answer with only the wrong fields set to the known label, both rendered the same
  way: the sides differ on exactly the wrong fields, not on wording, length or layout.
  This is how pairs are made when the teacher rarely gets a whole answer right.
- `axis_targeted`: `chosen` is the prompt's SFT answer and `rejected` the same answer
  wrong on one named axis (`axis_rejections.py`: broken format, needless preamble, one
  wrong field), made by rule and checked to differ on that axis only. An axis that cannot
  be made from a prompt's answer is skipped for the next one, and the reason counted.
- `judge_ranked`: made by `judge_pairs.py` for prompts with no known label, where an
  LLM judge's scores and its pairwise verdict in both orders agree.
- `teacher_vs_student`: `chosen` is the prompt's SFT answer, `rejected` the base student
  model's own answer to the same prompt (no few-shot turns, as it will be asked after
  training) when the filters reject it: the pair teaches exactly what SFT must fix.
- `check_targeted` (text tasks): `chosen` is the prompt's SFT reply, which passes every
  check of its label, and `rejected` the same reply changed by rule to fail exactly one of
  them (`check_rejections.py`): the name misread, the next step left out, a banned phrase
  added. A label with no check that can be failed alone is skipped, and the reason counted.

`minimal_correction` and `axis_targeted` rewrite fields of a JSON answer, and
`check_targeted` a reply against its checks: a recipe may use only those that fit its
task's answer format (`unfit_strategies` says which do not).

A prompt with no plausible wrong sample yields no `verifier_ranked` or
`minimal_correction` pair: an unparseable rejected answer teaches "emit JSON", which the
`broken_format` axis teaches on purpose and in isolation.

After the strategies, pairs whose sides are the same answer (equal after whitespace and
case normalization, or the same JSON object) are dropped, and when the recipe bounds the
share of pairs whose chosen side is longer, pairs are dropped until it holds: a pair set
where the longer answer nearly always wins teaches length (Singhal et al. 2023, "A Long
Way to Go: Investigating Length Correlations in RLHF", arXiv:2310.03716).

Input: verified answers; rejects as (answer, reason); the SFT rows; the student's
answers that the filters rejected, as (answer, reason). Output: kept PreferencePairs with
`strategy`, `axis`, `margin` and `evidence`, the dropped ones with their reason, and how
often each reason to skip an axis came up. `parent_ids = (chosen id, rejected id)`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from datagen.filters.answer_filters import reason_kind, wrong_fields_of
from datagen.foundation.hashing import normalize_text
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.task import Task, parse_json_answer
from datagen.pairs.axis_rejections import Axis, NoRejection, make_axis_rejection
from datagen.pairs.check_rejections import NoCheckRejection, check_rejection

SOURCE = "datagen.preference_pairs@3"

Strategy = Literal["verifier_ranked", "minimal_correction", "axis_targeted", "teacher_vs_student", "judge_ranked",
                   "check_targeted"]
JSON_ONLY: tuple[Strategy, ...] = ("minimal_correction", "axis_targeted")
TEXT_ONLY: tuple[Strategy, ...] = ("check_targeted",)


def unfit_strategies(strategies: list[str], task: Task) -> list[str]:
    """The strategies that cannot make pairs of `task`'s answer format: [] when all can."""
    unfit = JSON_ONLY if task.answer_format == "text" else TEXT_ONLY
    return [strategy for strategy in strategies if strategy in unfit]


class PreferencePairConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategies: list[Strategy] = Field(
        ["verifier_ranked", "minimal_correction"], min_length=1,
        description="tried in this order for each prompt",
    )
    max_pairs_per_prompt: int = Field(
        1, ge=1, description="more pairs per prompt over-weight the prompts a teacher "
        "finds hard; one keeps the prompt distribution of the SFT set",
    )
    axes: list[Axis] = Field(
        ["one_wrong_field", "broken_format", "needless_preamble"], min_length=1,
        description="for axis_targeted: each prompt gets one, spread evenly by a hash",
    )
    max_chosen_longer_fraction: float | None = Field(
        None, ge=0, le=1, description="drop pairs whose chosen side is longer until at most "
        "this share remains; null reports the share without bounding it",
    )


@dataclass
class PairSources:
    """What the strategies draw from, for one run."""

    verified: list[Example]
    rejects: list[tuple[Example, str]]
    sft_rows: list[Example] = field(default_factory=list)
    student_rejects: list[tuple[Example, str]] = field(default_factory=list)
    judged: list[PreferencePair] = field(default_factory=list)  # `judge_pairs.py`, already ranked


def _pair(chosen: Example, rejected: Example, chosen_text: str, rejected_text: str, strategy: str,
          evidence: str, axis: str | None, margin: float | None) -> PreferencePair:
    return PreferencePair(
        task=rejected.task,
        prompt=rejected.prompt,
        chosen=chosen_text,
        rejected=rejected_text,
        strategy=strategy,
        evidence=evidence,
        source=SOURCE,
        run_id=rejected.run_id,
        chosen_teacher=chosen.teacher,
        rejected_teacher=rejected.teacher,
        parent_ids=(chosen.id, rejected.id),
        axis=axis,
        margin=margin,
        context=rejected.context,
    )


class _Candidates:
    """Every strategy's candidate pairs for one prompt, indexed once per run."""

    def __init__(self, sources: PairSources, task: Task, config: PreferencePairConfig):
        self.task, self.config = task, config
        self.wrong: dict[str, list[tuple[Example, str]]] = {}
        for answer, reason in sources.rejects:
            if reason_kind(reason) == "wrong_fields":
                self.wrong.setdefault(answer.parent_ids[0], []).append((answer, reason))
        self.verified: dict[str, Example] = {}
        for answer in sources.verified:
            self.verified.setdefault(answer.parent_ids[0], answer)
        self.sft = {row.parent_ids[0]: row for row in sources.sft_rows}
        self.student = {answer.parent_ids[0]: (answer, reason) for answer, reason in sources.student_rejects}
        self.skipped: Counter[str] = Counter()  # axis_ and check_targeted: why none was made

    def prompt_ids(self) -> list[str]:
        return list(dict.fromkeys([*self.sft, *self.wrong, *self.student]))

    def of(self, strategy: Strategy, prompt_id: str) -> Iterator[PreferencePair]:
        # judge_ranked pairs come ranked from the judge stage, for prompts none of these cover
        return iter(()) if strategy == "judge_ranked" else getattr(self, strategy)(prompt_id)

    def verifier_ranked(self, prompt_id: str) -> Iterator[PreferencePair]:
        chosen = self.verified.get(prompt_id)
        for rejected, reason in self.wrong.get(prompt_id, []) if chosen else []:
            yield _pair(chosen, rejected, chosen.response, rejected.response, "verifier_ranked",
                        "rejected is " + reason, None, len(wrong_fields_of(reason)))

    def minimal_correction(self, prompt_id: str) -> Iterator[PreferencePair]:
        for rejected, reason in self.wrong.get(prompt_id, []):
            fields = wrong_fields_of(reason)
            said = parse_json_answer(rejected.response)
            truth = json.loads(rejected.reference)
            corrected = dict(said, **{name: truth[name] for name in fields})
            evidence = "chosen corrects " + ", ".join(
                f"{name}: {said[name]!r} -> {truth[name]!r}" for name in fields
            )
            yield _pair(rejected, rejected, self.task.render_answer(corrected),
                        self.task.render_answer(said), "minimal_correction", evidence, None, len(fields))

    def axis_targeted(self, prompt_id: str) -> Iterator[PreferencePair]:
        chosen = self.sft.get(prompt_id)
        if chosen is None:
            return
        axes = self.config.axes
        start = int(hashlib.sha256(prompt_id.encode()).hexdigest()[:8], 16) % len(axes)
        for axis in axes[start:] + axes[:start]:
            try:
                chosen_text, rejected_text, evidence = make_axis_rejection(chosen.response, axis, self.task)
            except NoRejection as skip:
                self.skipped[str(skip)] += 1
                continue
            yield _pair(chosen, chosen, chosen_text, rejected_text, "axis_targeted", evidence, axis, 1.0)

    def check_targeted(self, prompt_id: str) -> Iterator[PreferencePair]:
        chosen = self.sft.get(prompt_id)
        if chosen is None or chosen.reference is None:
            return
        try:
            rejected_text, kind, evidence = check_rejection(chosen.response, json.loads(chosen.reference), prompt_id)
        except NoCheckRejection as skip:
            self.skipped[f"check_targeted {skip}"] += 1
            return
        yield _pair(chosen, chosen, chosen.response, rejected_text, "check_targeted", evidence, kind, 1.0)

    def teacher_vs_student(self, prompt_id: str) -> Iterator[PreferencePair]:
        chosen = self.sft.get(prompt_id)
        if chosen is None or prompt_id not in self.student:
            return
        rejected, reason = self.student[prompt_id]
        margin = len(wrong_fields_of(reason)) if reason_kind(reason) == "wrong_fields" else None
        yield _pair(chosen, rejected, chosen.response, rejected.response, "teacher_vs_student",
                    "the base student's answer is " + reason, reason_kind(reason), margin)


def same_answer(pair: PreferencePair) -> bool:
    """Both sides say the same thing: equal when normalized, or the same JSON object."""
    if normalize_text(pair.chosen) == normalize_text(pair.rejected):
        return True
    chosen, rejected = parse_json_answer(pair.chosen), parse_json_answer(pair.rejected)
    return chosen is not None and chosen == rejected


def bound_chosen_longer(
    pairs: list[PreferencePair], limit: float
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Drop chosen-longer pairs, in an order fixed by their ids, until at most `limit` of
    what remains has the longer chosen side. Returns (kept, dropped)."""
    longer = sorted((p for p in pairs if len(p.chosen) > len(p.rejected)), key=lambda p: p.id)
    excess = len(longer) - limit * len(pairs)
    if excess <= 0:
        return pairs, []
    # (L - d) / (n - d) <= limit  <=>  d >= (L - limit * n) / (1 - limit)
    # (rounded first: 1.0000000002 must not become 2)
    count = len(longer) if limit == 0 else min(len(longer), math.ceil(round(excess / (1 - limit), 9)))
    dropped_ids = {p.id for p in longer[:count]}
    return [p for p in pairs if p.id not in dropped_ids], longer[:count]


class PairSet(NamedTuple):
    pairs: list[PreferencePair]
    dropped: list[tuple[PreferencePair, str]]  # (pair, why it was dropped)
    skipped: dict[str, int]  # `axis: why` no axis_targeted pair was made -> how often


def build_pairs(sources: PairSources, task: Task, config: PreferencePairConfig) -> PairSet:
    candidates = _Candidates(sources, task, config)
    pairs: list[PreferencePair] = []
    dropped: list[tuple[PreferencePair, str]] = []
    for prompt_id in candidates.prompt_ids():
        made: list[PreferencePair] = []
        for strategy in config.strategies:
            for pair in candidates.of(strategy, prompt_id):
                if len(made) == config.max_pairs_per_prompt:
                    break
                if same_answer(pair):
                    dropped.append((pair, "identical: both sides give the same answer"))
                elif all(pair.rejected != p.rejected for p in made):
                    made.append(pair)
        pairs += made
    if "judge_ranked" in config.strategies:
        pairs += sources.judged
    if config.max_chosen_longer_fraction is not None:
        pairs, too_long = bound_chosen_longer(pairs, config.max_chosen_longer_fraction)
        dropped += [
            (p, f"length_balance: chosen-longer share above {config.max_chosen_longer_fraction}")
            for p in too_long
        ]
    return PairSet(pairs, dropped, dict(candidates.skipped))
