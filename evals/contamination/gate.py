"""The contamination gate: no training row may come close to a locked gold row.

Before rows are exported for training (and before the trainer starts), they are audited
(`contamination_audit.py`) against every locked gold set of their task: the newest
`gold/sets/<set>/v<N>/` whose manifest names the task, as opened and verified once per
flow by `gold_sets_to_gate` (`gold/gold_root.py`), and against every set of another task
the recipe names in `also_against`: the regression set the preflight evaluates on, which
replay rows (general prompts, like its own) could otherwise copy. A gold root that is not a folder, or
any version that does not verify or is not signed, stops the flow before any work: no
gate passes against a tampered or unlocked set. No gold set of the task stops it too,
since a gate with nothing to check against is no gate, unless the recipe says
`without_gold_reason: "..."` (at least ten characters), which is recorded with the
verdict. When a row crosses the audit's thresholds the gate, by the recipe's choice:

- `refuse` (the default): stops, naming the offending training rows and the gold rows
  they match, and pointing at the overlap report;
- `remove`: drops the offending rows and reports each removal.

An override lets contaminated rows through only with an explicit reason
(`override_reason`, or `--allow-contamination REASON` on the command line); the reason and
the rows it let through are recorded in the stage manifest and the overlap report.

`gate_rows` is the gate as the build's export and the trainer use it: groups of rows
(`{"sft": [...], "pairs": [...]}`), each row read as (id, prompt, answer), audited
together; under `remove` the flagged ones are dropped from their group. Each row is named
`<group>:<id>` in the verdict and the reports. Output: the groups that pass, and the
`GateResult`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.run_store import write_text_atomic
from evals.contamination.audit import AuditConfig, audit
from evals.contamination.audit_inputs import AuditRow, locked_gold_rows
from evals.contamination.overlap_report import write_overlap_report
from gold.gold_root import GoldRoot, GoldSetError, LockedGoldSet, NoGoldSet

T = TypeVar("T")


class ContaminationGateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gold_root: Path = Field(Path("gold/sets"), description="where locked gold sets live")
    audit: AuditConfig = AuditConfig()
    on_contamination: Literal["refuse", "remove"] = "refuse"
    override_reason: str | None = Field(
        None, min_length=10, description="let contaminated rows through anyway, for this "
        "stated reason; recorded with the rows it let through",
    )
    without_gold_reason: str | None = Field(
        None, min_length=10, description="build or train although no locked gold set of the task exists, for "
        "this stated reason; recorded in the manifest. Without it, no gold set is an error",
    )
    also_against: list[str] = Field(
        [], description="gold sets of other tasks every row is checked against too, by name (`set` for its "
        "newest version, or `set/v<N>`): the regression set the preflight scores forgetting on, so that no "
        "replay row teaches its answers. Each must be locked and verify; the preflight adds its own "
        "regression_set here",
    )


class ContaminationError(RuntimeError):
    """Training rows come too close to gold rows; the message names them."""


def gold_sets_to_gate(config: ContaminationGateConfig, task: str) -> tuple[GoldRoot, list[LockedGoldSet]]:
    """The gold root opened (every version verified; raises `GoldSetError` naming the path
    and reason) and what the gate checks against: the newest locked eval sets of `task`,
    then each set `also_against` names. No set of the task is an error unless
    `without_gold_reason` states why that is fine; a named set that is missing always is."""
    root = GoldRoot(config.gold_root)
    try:
        found = root.newest(task)
    except NoGoldSet:
        if not config.without_gold_reason:
            raise NoGoldSet(f"no locked gold set of task {task} under {config.gold_root}: lock one (crucible gold "
                            "lock), or set contamination_gate.without_gold_reason to say why this data needs none "
                            "(recorded in the manifest)") from None
        found = []
    # A named set that is missing raises (`GoldRoot.get`): no reason excuses it, since the
    # recipe asked for it by name.
    for name in config.also_against:
        locked = root.get(name)
        if locked.name not in {gold.name for gold in found}:
            found.append(locked)
    return root, found


@dataclass
class GateResult:
    status: Literal["clean", "without_gold", "removed", "overridden"]
    gold_sets: list[dict]  # LockedGoldSet.ref() of each set checked against: name, digest, signer
    flagged: dict[str, list[str]] = field(default_factory=dict)  # training row -> gold row ids
    override_reason: str | None = None
    reports: list[str] = field(default_factory=list)
    without_gold_reason: str | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, "gold_sets": self.gold_sets, "flagged": self.flagged,
                "override_reason": self.override_reason, "without_gold_reason": self.without_gold_reason,
                "reports": self.reports}

    @property
    def names(self) -> list[str]:
        return [ref["set"] for ref in self.gold_sets]


def run_gate(rows: list[AuditRow], gold_sets: list[LockedGoldSet], config: ContaminationGateConfig,
             report_dir: Path) -> GateResult:
    """Audit `rows` against `gold_sets` (verified, from `gold_sets_to_gate`); raise
    `ContaminationError` when refusing. Overlap reports go to `report_dir/<set>-v<N>/`, and
    the verdict, with any override reason and the rows it let through, to
    `report_dir/gate.json`."""
    try:
        result = _gate(rows, gold_sets, config, report_dir)
    except (ContaminationError, GoldSetError) as refused:
        write_text_atomic(report_dir / "gate.json", json.dumps({"status": "refused", "error": str(refused)}, indent=1))
        raise
    write_text_atomic(report_dir / "gate.json", json.dumps(result.as_dict(), indent=1))
    return result


def _gate(rows: list[AuditRow], gold_sets: list[LockedGoldSet], config: ContaminationGateConfig,
          report_dir: Path) -> GateResult:
    if not gold_sets:
        if not config.without_gold_reason:
            raise NoGoldSet(f"no gold set to gate against under {config.gold_root}, and no without_gold_reason")
        return GateResult("without_gold", [], without_gold_reason=config.without_gold_reason)
    flagged: dict[str, list[str]] = {}
    reports = []
    for gold in gold_sets:
        name = gold.name.replace("/", "-")
        result = audit(locked_gold_rows(gold), rows, config.audit)
        for where, gold_ids in result.flagged_train.items():
            flagged.setdefault(where, []).extend(f"{name}:{gold_id}" for gold_id in gold_ids)
        _, html = write_overlap_report(report_dir / name, result, str(gold.path), ["rows to export"], [])
        reports.append(str(html))
    names = [gold.name for gold in gold_sets]
    refs = [gold.ref() for gold in gold_sets]
    if not flagged:
        return GateResult("clean", refs, reports=reports)
    if config.override_reason:
        return GateResult("overridden", refs, flagged, config.override_reason, reports)
    if config.on_contamination == "remove":
        return GateResult("removed", refs, flagged, reports=reports)
    listed = "\n".join(f"  {where} matches {', '.join(ids)}" for where, ids in list(flagged.items())[:10])
    more = f"\n  ... and {len(flagged) - 10} more" if len(flagged) > 10 else ""
    raise ContaminationError(
        f"{len(flagged)} training rows come too close to gold rows of {', '.join(names)}:\n{listed}{more}\n"
        f"evidence: {', '.join(reports)}\nremove them (contamination_gate.on_contamination: remove) or "
        "override with a stated reason (--allow-contamination REASON)"
    )


def gate_rows(groups: dict[str, list[T]], texts: Callable[[T], tuple[str, str, str]], gold_sets: list[LockedGoldSet],
              config: ContaminationGateConfig, report_dir: Path) -> tuple[dict[str, list[T]], GateResult]:
    """Audit every row of every group (`texts(row)` is its id, prompt and answer) against
    `gold_sets`; refuse (raise), or under `remove` return the groups without the flagged rows."""
    named = {group: [(f"{group}:{texts(row)[0]}", row) for row in rows] for group, rows in groups.items()}
    audited = [AuditRow(where, where, *texts(row)[1:]) for rows in named.values() for where, row in rows]
    gate = run_gate(audited, gold_sets, config, report_dir)
    if gate.status != "removed":
        return groups, gate
    return {group: [row for where, row in rows if where not in gate.flagged] for group, rows in named.items()}, gate
