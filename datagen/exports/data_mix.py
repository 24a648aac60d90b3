"""Data mixing: what share of the SFT and preference sets each source makes up.

A recipe's `mix:` section states the share of each source in each set, with caps and a
seed:

    mix:
      seed: 0
      sft: {shares: {template: 0.5, teacher: 0.3, seed: 0.2}, caps: {teacher: 200}}
      preference: {shares: {teacher: 0.7, template: 0.3}, total: 120, on_shortfall: rescale}

A row's source is read from its own provenance (`mix_source`):

- `seed`: a locked seed set's row (`source` `gold-seed:...`), a human answer;
- `imported`: the user's own row (`source` `import:...`);
- `template`: the task generator's known label as the answer (`sft_examples.REFERENCE_SOURCE`);
- `self_generated`: a teacher's answer to an input self-generation wrote (`template_id`
  `self_instruct/...`);
- `teacher`: a teacher's answer to any other prompt.

A pair is of the source of the answer its chosen side was made from (`parent_ids[0]`: for
`minimal_correction` the teacher answer it corrects); an imported pair is `imported`.

Replay is not one of them: the trainer mixes it in (`train/replay_mix.py`), after the
build, as `replay.share` of the final SFT set, so each share here is of the task's rows
and becomes share x (1 - replay.share) of what is trained on (`REPLAY_NOTE`).

The mix leaves rows out; it never makes or repeats one. When a source has fewer rows than
its share needs (`on_shortfall`):

- `reduce_total` (the default; `datasets.interleave_datasets`' "first_exhausted"): every
  share holds, and the set is as large as the scarcest source for its share allows;
- `rescale`: the set keeps its `total`; a source short of its share gives all it has and
  the rows it lacks go to the others in proportion to their shares.

Within a source, the rows kept are those whose sha256 of (seed, row id) is lowest: the
choice depends on the seed and the rows, not on their order. Every row left out is kept
with its reason (`not_in_shares`, `over_cap`, `over_share`), and the report gives per set
and source the share asked and achieved, rows available, taken and left out, and why the
achieved share differs from the one asked.

Input: the SFT rows, the pairs, and the answers the pairs were made from. Output: the
mixed sets, the rows left out with reasons, and the report.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datagen.exports.sft_examples import REFERENCE_SOURCE
from datagen.foundation.records import Example, PreferencePair
from datagen.generation.imports import SOURCE_PREFIX as IMPORT_PREFIX
from datagen.generation.seed_examples import SOURCE_PREFIX as SEED_PREFIX
from datagen.generation.self_instruct import TEMPLATE_PREFIX as SELF_INSTRUCT_PREFIX

MixSource = Literal["template", "teacher", "self_generated", "imported", "seed"]
Row = TypeVar("Row", Example, PreferencePair)

REPLAY_NOTE = ("replay rows are not in this export: the trainer adds them (train/replay_mix.py) as replay.share of "
               "the final SFT set, so each SFT share here becomes share x (1 - replay.share) of what is trained on")
SHARE_TOLERANCE = 1e-6  # shares written as decimals (0.1 + 0.2 + 0.7) need not add to exactly 1


class MixError(ValueError):
    """A mix that cannot be made from these rows; the message says which and why."""


class SetMix(BaseModel):
    """The mix of one set (`mix.sft` or `mix.preference`)."""

    model_config = ConfigDict(extra="forbid")

    shares: dict[MixSource, Annotated[float, Field(ge=0)]] = Field(
        description="each source's share of the set, adding up to 1; a source not named here is left out")
    caps: dict[MixSource, Annotated[int, Field(ge=0)]] = Field(
        {}, description="at most this many rows of a source, whatever its share")
    total: int | None = Field(None, ge=1, description="rows in the set; none: as many as the shares allow")
    on_shortfall: Literal["reduce_total", "rescale"] = Field(
        "reduce_total", description="a source too small for its share: reduce_total keeps every share and lowers "
        "the total; rescale keeps the total and gives the missing rows to the other sources (needs a total)")

    @field_validator("shares", "caps", mode="before")
    @classmethod
    def _no_replay(cls, value):
        if isinstance(value, dict) and "replay" in value:
            raise ValueError("replay is mixed in by the trainer, not the build: set replay.share in the train "
                             "recipe (train/replay_mix.py); the shares here are of the task's own rows")
        return value

    @field_validator("shares")
    @classmethod
    def _shares_add_up(cls, shares: dict[str, float]) -> dict[str, float]:
        if abs(sum(shares.values()) - 1) > SHARE_TOLERANCE:
            raise ValueError(f"the shares add up to {sum(shares.values()):g}, not 1: {shares}")
        return shares

    @model_validator(mode="after")
    def _rescale_needs_a_total(self) -> "SetMix":
        if self.on_shortfall == "rescale" and self.total is None:
            raise ValueError("on_shortfall: rescale keeps the set's total, so it needs total: the rows the set "
                             "should have")
        return self


class DataMixConfig(BaseModel):
    """The recipe's `mix:` section. Without it the build keeps every row it made."""

    model_config = ConfigDict(extra="forbid")

    sft: SetMix | None = None
    preference: SetMix | None = None
    seed: int = Field(0, description="which rows a source gives when it has more than its share")

    @model_validator(mode="after")
    def _mixes_a_set(self) -> "DataMixConfig":
        if self.sft is None and self.preference is None:
            raise ValueError("mix names neither sft nor preference: nothing to mix")
        return self


def mix_source(row: Example) -> MixSource:
    """Where an SFT row (or the answer a pair was made from) came from, by its provenance."""
    if row.source.startswith(SEED_PREFIX):
        return "seed"
    if row.source.startswith(IMPORT_PREFIX):
        return "imported"
    if row.source == REFERENCE_SOURCE:
        return "template"
    if row.teacher is not None:
        return "self_generated" if (row.template_id or "").startswith(SELF_INSTRUCT_PREFIX) else "teacher"
    raise MixError(f"row {row.id} has source {row.source!r}, which is none of the mix's sources "
                   "(seed, imported, template, self_generated, teacher)")


def pair_mix_source(pair: PreferencePair, answers: dict[str, Example]) -> MixSource:
    """The source of the answer a pair's chosen side was made from; `answers` by id."""
    if pair.source.startswith(IMPORT_PREFIX):
        return "imported"
    made_from = answers.get(pair.parent_ids[0]) if pair.parent_ids else None
    if made_from is None:
        raise MixError(f"pair {pair.id} ({pair.strategy}) was made from {pair.parent_ids[:1]}, which is not among "
                       "the run's answers and SFT rows")
    return mix_source(made_from)


@dataclass
class MixedSet:
    kept: list
    left_out: list[tuple[object, str]]  # (row, reason)
    report: dict


@dataclass
class MixResult:
    sft: MixedSet
    pairs: MixedSet
    report: dict


def mix_sets(sft: list[Example], pairs: list[PreferencePair], answers: Iterable[Example],
             config: DataMixConfig) -> MixResult:
    """Both sets mixed as `config` says; a set it does not name is kept whole."""
    by_id = {answer.id: answer for answer in answers} | {row.id: row for row in sft}
    mixed_sft = mix_one(sft, mix_source, config.sft, config.seed, "sft")
    mixed_pairs = mix_one(pairs, lambda pair: pair_mix_source(pair, by_id), config.preference, config.seed,
                          "preference")
    report = {"seed": config.seed, "sets": {"sft": mixed_sft.report, "preference": mixed_pairs.report},
              "replay": REPLAY_NOTE}
    return MixResult(mixed_sft, mixed_pairs, report)


def mix_one(rows: Sequence[Row], source_of, config: SetMix | None, seed: int, name: str) -> MixedSet:
    if config is None:
        return MixedSet(list(rows), [], {"mixed": False, "rows_before": len(rows), "rows": len(rows)})
    sources = [source_of(row) for row in rows]
    available = Counter(sources)
    counts, limiting = planned_counts(config, available)
    if not sum(counts.values()) and rows:
        short = ", ".join(f"{s} ({available[s]} rows for {_percent(config.shares[s])})" for s in limiting)
        raise MixError(f"mix.{name}: the shares leave no rows: {short}; lower its share, drop it from "
                       f"mix.{name}.shares, or use on_shortfall: rescale with a total")
    by_source: dict[str, list[int]] = {}
    for index, (row, source) in enumerate(zip(rows, sources)):
        by_source.setdefault(source, []).append(index)
    keep: set[int] = set()
    reasons: dict[int, str] = {}
    for source, indexes in by_source.items():
        ranked = sorted(indexes, key=lambda i: (_rank(seed, rows[i].id), i))
        taken = counts.get(source, 0)
        keep.update(ranked[:taken])
        cap = config.caps.get(source)
        for position, index in enumerate(ranked[taken:], start=taken):
            reasons[index] = _left_out_reason(source, position, cap, config, taken, name)
    kept = [row for i, row in enumerate(rows) if i in keep]
    left_out = [(rows[i], reasons[i]) for i in sorted(reasons)]
    return MixedSet(kept, left_out, set_report(config, available, counts, limiting, len(rows), name))


def _rank(seed: int, row_id: str) -> str:
    return hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()


def _left_out_reason(source: str, position: int, cap: int | None, config: SetMix, taken: int, name: str) -> str:
    if config.shares.get(source, 0) == 0:
        return f"not_in_shares: {source} has no share in mix.{name}.shares"
    if cap is not None and position >= cap:
        return f"over_cap: {source} is capped at {cap} rows (mix.{name}.caps)"
    return f"over_share: {source}'s {_percent(config.shares[source])} share is {taken} rows"


def largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """`total` split in proportion to `weights` in whole rows that add up to `total`
    (Hamilton's method: floors first, then one more to the largest remainders; ties by name)."""
    weight = sum(weights.values())
    exact = {source: total * w / weight for source, w in weights.items()}
    counts = {source: math.floor(value + 1e-9) for source, value in exact.items()}
    by_remainder = sorted(exact, key=lambda source: (counts[source] - exact[source], source))
    for source in by_remainder[: total - sum(counts.values())]:
        counts[source] += 1
    return counts


def planned_counts(config: SetMix, available: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """Rows to take of each source in the shares, and the sources that bound the mix: the
    scarcest for their share (reduce_total) or those that gave all they have (rescale)."""
    shares = {source: share for source, share in config.shares.items() if share > 0}
    usable = {source: min(available.get(source, 0), config.caps.get(source, math.inf)) for source in shares}
    if config.on_shortfall == "reduce_total":
        allows = {source: math.floor(usable[source] / share + 1e-9) for source, share in shares.items()}
        total = min(min(allows.values()), config.total or math.inf)
        while total > 0 and any(n > usable[s] for s, n in largest_remainder(total, shares).items()):
            total -= 1
        limiting = [source for source, n in allows.items() if n == min(allows.values())]
        return largest_remainder(total, shares), limiting
    target = min(config.total, sum(usable.values()))
    given_all: dict[str, int] = {}
    while True:
        rest = {source: share for source, share in shares.items() if source not in given_all}
        counts = largest_remainder(target - sum(given_all.values()), rest) if rest else {}
        short = [source for source, n in counts.items() if n > usable[source]]
        if not short:
            return given_all | counts, sorted(given_all)
        given_all |= {source: usable[source] for source in short}


def set_report(config: SetMix, available: dict[str, int], counts: dict[str, int], limiting: list[str],
               rows_before: int, name: str) -> dict:
    total = sum(counts.values())
    sources = []
    for source in [*config.shares, *sorted(set(available) - set(config.shares))]:
        share, has, taken = config.shares.get(source, 0.0), available.get(source, 0), counts.get(source, 0)
        if not share and not has:
            continue
        sources.append({
            "source": source, "asked": share, "achieved": round(taken / total, 4) if total else 0.0,
            "available": has, "cap": config.caps.get(source), "taken": taken, "left_out": has - taken,
            "why": _why(source, config, has, taken, total, limiting, name),
        })
    return {"mixed": True, "on_shortfall": config.on_shortfall, "total_asked": config.total,
            "rows_before": rows_before, "rows": total, "left_out": rows_before - total,
            "total_why": _total_why(config, available, total, limiting), "sources": sources}


def _bound(source: str, config: SetMix, has: int, name: str) -> str:
    cap = config.caps.get(source)
    if cap is not None and cap < has:
        return f"capped at {cap} rows by mix.{name}.caps ({has} available)"
    return f"only {has} {source} {'rows reached the SFT set' if name == 'sft' else 'pairs were made'}" + (
        f" ({SHORT_SFT_SOURCE[source]})" if name == "sft" else "")


# Why an SFT set holds only so many rows of a source: where those rows come from.
SHORT_SFT_SOURCE = {
    "template": "the generator's label answers only prompts with no verified teacher answer",
    "teacher": "teacher answers that passed every filter, one per prompt",
    "self_generated": "answers to self-generated inputs join the SFT set only with sft.use_unlabelled",
    "imported": "imported answers that passed the filters",
    "seed": "the seed set's rows, with seed.sft_anchors",
}


def _why(source: str, config: SetMix, has: int, taken: int, total: int, limiting: list[str], name: str) -> str:
    share = config.shares.get(source, 0.0)
    if not share:
        return f"not in mix.{name}.shares: all {has} left out"
    achieved = taken / total if total else 0.0
    asked_got = f"asked {_percent(share)}, got {_percent(achieved)}"
    if abs(taken - share * total) >= 1:  # more than rounding to whole rows can explain
        if achieved < share:
            return f"{asked_got}: {_bound(source, config, has, name)}"
        short = " and ".join(s for s in limiting if s != source)
        return f"{asked_got}: took rows {short} could not give, in proportion to its share"
    rounded = " (rounded to whole rows)" if taken != share * total else ""
    if source in limiting and config.on_shortfall == "reduce_total":
        return f"as asked{rounded}; it bounds the total: {_bound(source, config, has, name)}"
    if taken < has:
        return f"as asked{rounded}; {has - taken} of {has} rows left out"
    return f"as asked{rounded}"


def _total_why(config: SetMix, available: dict[str, int], total: int, limiting: list[str]) -> str:
    if config.on_shortfall == "reduce_total":
        scarce = ", ".join(f"{s} ({min(available.get(s, 0), config.caps.get(s, math.inf))} rows for "
                           f"{_percent(config.shares[s])})" for s in limiting)
        if config.total is not None and total == config.total:
            return f"the {total} rows asked"
        asked = f"asked for {config.total}, reduced to {total}" if config.total else "as many as the shares allow"
        return f"{asked}: the scarcest source for its share is {scarce}"
    if total == config.total:
        return f"the {total} rows asked" + (f"; {', '.join(limiting)} fell short, the others rescaled"
                                            if limiting else "")
    return f"asked for {config.total}, got {total}: the sources in the shares have no more rows"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".rstrip("0").rstrip(".") + "%"


def sets_in_order(report: dict) -> list[tuple[str, dict]]:
    """(name, report) of each set, SFT first: a manifest's JSON has its keys sorted."""
    return [(name, report["sets"][name]) for name in ("sft", "preference")]


def set_line(name: str, mixed: dict) -> str:
    """One set's outcome in a sentence: rows kept of rows made, and why that many."""
    title = "SFT set" if name == "sft" else "preference set"
    if not mixed["mixed"]:
        return f"{title}: not mixed, all {mixed['rows']} rows kept"
    return f"{title}: {mixed['rows']} of {mixed['rows_before']} rows ({mixed['on_shortfall']}: {mixed['total_why']})"


def mix_markdown(report: dict) -> str:
    """The mix as asked and achieved, per set and source, for the summary and the card."""
    lines = [f"**data mix** (seed {report['seed']})", ""]
    for name, mixed in sets_in_order(report):
        lines += [set_line(name, mixed), ""]
        if mixed["mixed"]:
            lines += ["| " + " | ".join(MIX_HEADER) + " |", "|---" + "|---:" * 6 + "|---|"]
            lines += ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |"
                      for row in mix_table_rows(mixed)] + [""]
    return "\n".join(lines + [f"Replay: {report['replay']}."])


MIX_HEADER = ["source", "asked", "achieved", "available", "cap", "taken", "left out", "why"]


def mix_table_rows(mixed: dict) -> list[list[object]]:
    """One set's report as table rows under `MIX_HEADER`."""
    return [[s["source"], _percent(s["asked"]), _percent(s["achieved"]), s["available"], s["cap"], s["taken"],
             s["left_out"], s["why"]] for s in mixed["sources"]]
