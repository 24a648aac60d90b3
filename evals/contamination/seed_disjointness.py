"""Is a seed set disjoint from the eval sets? The contamination audit, seed rows against eval rows.

A seed set's rows are trained on (`gold/seed_sets.py`), so none may come close to a row
that measures the result. This runs the audit (`audit.py`: exact normalized prompt, a
shared run of 13 words, MinHash Jaccard of word 3-grams, embedding cosine, at the
thresholds the gate uses) with each eval version as the gold side and the seed rows as
the training side, and lists every flagged pair, not only each eval row's closest few:
seed sets are small (tens of rows), so every pair is kept.

The seed rows' prompts are compared, not their answers: an answer is the label of its
prompt, and two different tickets with the same category, priority and empty fields
share a run of 13 words of JSON by construction. A seed row that copies or rephrases an
eval row is caught by its prompt; its answer says nothing more.

Input: the seed set's name, its rows as (where, gold row) and the eval versions (verified,
from `gold/gold_root.py`). Output: `gold.seed_sets.SeedDisjointness`; with `report_dir`,
an overlap report per eval version (`overlap_report.py`) for the auditor. It is the
`SeedCheck` that `crucible gold lock` and the build hand to gold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from evals.contamination.audit import AuditConfig, Embed, audit
from evals.contamination.audit_inputs import AuditRow, locked_gold_rows
from evals.contamination.overlap_report import write_overlap_report
from gold.gold_root import LockedGoldSet
from gold.seed_sets import SeedDisjointness, SeedOverlap, eval_set_ref


def seed_disjointness(seed: str, seed_rows: Sequence[tuple[str, dict]], eval_sets: Sequence[LockedGoldSet],
                      config: AuditConfig = AuditConfig(), embed: Embed | None = None,
                      report_dir: Path | None = None) -> SeedDisjointness:
    """Every (seed row, eval row) pair the audit flags, by measure, over every eval version."""
    if not seed_rows:
        raise ValueError(f"seed set {seed} has no rows: nothing to prove disjoint")
    rows = [AuditRow(row["id"], where, row["prompt"], "") for where, row in seed_rows]
    config = config.model_copy(update={"top_k": len(rows)})
    overlaps, reports = [], []
    for locked in eval_sets:
        result = audit(locked_gold_rows(locked), rows, config, embed)
        overlaps += [SeedOverlap(match.train.where, locked.name, f"{gold.gold.where} (id {gold.gold.id[:12]})",
                                 match.flagged_by)
                     for gold in result.gold for match in gold.matches if match.flagged_by]
        if report_dir is not None:
            _, page = write_overlap_report(Path(report_dir) / locked.name.replace("/", "-"), result,
                                           str(locked.path), [f"seed set {seed}"], [])
            reports.append(str(page))
    return SeedDisjointness(seed, tuple(eval_set_ref(locked) for locked in eval_sets), tuple(config.methods),
                            tuple(overlaps), tuple(reports))
