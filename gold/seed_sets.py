"""Seed sets: a few human-labelled rows that seed a build and keep it honest.

The data path crucible follows puts a small human-labelled gold *seed* set in its middle:
it "both seeds the process and keeps it honest", and it is a different thing from the
locked eval set. A seed set is made like an eval set (imported, labeled twice, reviewed,
locked and signed) but created with `crucible gold create-set --purpose seed` (or marked
so on the labelers' page before its first lock), and its manifest says `purpose: seed`
under the signature. A build that names it (the recipe's `seed:` section) takes from it
the teacher's few-shot turns, self-generation's seed inputs and SFT anchor rows, each
carrying `gold-seed:<set>/v<N>@<digest>` and the gold row's id
(`datagen/generation/seed_examples.py`).

Its rows are trained on, so they must share nothing with the rows that measure the
result. A seed set is proven disjoint from the newest version of every eval set of its
task by the contamination audit's four measures (exact, 13-word runs, MinHash,
embedding): when it is locked, and again by every build that uses it, since an eval set
locked later may come close to it. Any overlap refuses the lock or the build, naming the
seed row, the eval row and the measures; so does a task with no eval set to prove it
against. The result (sets, digests, measures, verdict) goes into the seed version's
manifest and the build's.

The audit lives in `evals/contamination/`, above gold, so the check is handed in as a
`SeedCheck` (`evals/contamination/seed_disjointness.py`) by what wires the two:
`crucible gold lock` (flows/cli.py) and the build flow. Without one, no seed set is locked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from gold.gold_root import LockedGoldSet
from gold.gold_sets import RECORDS, GoldSetError

SHOWN_OVERLAPS = 10  # pairs named in a refusal; the recorded result lists them all


class SeedOverlapError(GoldSetError):
    """A seed set comes too close to an eval set of its task; the message names the rows."""


@dataclass(frozen=True)
class SeedOverlap:
    """A seed row too close to an eval row, and the measures that say so."""

    seed_row: str  # where it was read, with its id
    eval_set: str  # `<set>/v<N>`
    eval_row: str  # where it was read, with its id
    measures: tuple[str, ...]  # of exact, ngram, minhash, embedding


@dataclass(frozen=True)
class SeedDisjointness:
    """One check of a seed set against eval sets: which versions, which measures, what was found."""

    seed: str  # the seed set: a locked version's label, or the set about to be locked
    eval_sets: tuple[dict, ...]  # `eval_set_ref` of each eval version checked against
    methods: tuple[str, ...]
    overlaps: tuple[SeedOverlap, ...]
    reports: tuple[str, ...] = ()  # overlap reports written for an auditor, if any

    @property
    def verdict(self) -> str:
        return "overlap" if self.overlaps else "disjoint"

    def as_dict(self) -> dict:
        return {"seed": self.seed, "verdict": self.verdict, "eval_sets": list(self.eval_sets),
                "methods": list(self.methods), "overlaps": [dataclasses.asdict(o) for o in self.overlaps],
                "reports": list(self.reports)}


# (the seed set's name, its rows as (where, gold row), the eval versions) -> the result
SeedCheck = Callable[[str, list[tuple[str, dict]], list[LockedGoldSet]], SeedDisjointness]


def eval_set_ref(locked: LockedGoldSet) -> dict:
    """What a seed check records of an eval version: enough to tell it again, no local path."""
    return {"set": locked.name, "digest": locked.digest, "sha256": locked.manifest["sha256"],
            "records": locked.manifest["records"]}


def locked_seed_rows(locked: LockedGoldSet) -> list[tuple[str, dict]]:
    """A locked seed version's rows, each named by file, line and id."""
    return [(f"{locked.path / RECORDS} line {number} (id {row['id'][:12]})", row)
            for number, row in enumerate(locked.rows, 1)]


def prove_disjoint(check: SeedCheck, seed: str, rows: list[tuple[str, dict]],
                   eval_sets: list[LockedGoldSet], refused: str) -> SeedDisjointness:
    """Run `check`; raise `SeedOverlapError` (its message starting with `refused`) on any
    overlap, or when there is no eval set to prove the seed set disjoint from."""
    if not eval_sets:
        raise SeedOverlapError(f"{refused}: its task has no locked eval set to prove it disjoint from; lock the "
                               "eval set first")
    result = check(seed, rows, eval_sets)
    if result.overlaps:
        listed = "\n".join(f"  seed row {o.seed_row} ~ eval row {o.eval_row} of {o.eval_set}: {', '.join(o.measures)}"
                           for o in result.overlaps[:SHOWN_OVERLAPS])
        more = (f"\n  ... and {len(result.overlaps) - SHOWN_OVERLAPS} more"
                if len(result.overlaps) > SHOWN_OVERLAPS else "")
        evidence = f"\nevidence: {', '.join(result.reports)}" if result.reports else ""
        raise SeedOverlapError(
            f"{refused}: it comes too close to eval rows in {len(result.overlaps)} pairs "
            f"(measured by {', '.join(result.methods)}):\n{listed}{more}{evidence}\nrewrite or discard those seed rows in "
            "review and lock a new version: eval rows are never trained on")
    return result
