"""The contamination audit as a Prefect flow, on this machine or sharded over Dask.

    python -m flows.audit_flow --gold gold/sets/<set>/v<N> --train TRAIN --out DIR [--dask local|ADDRESS]

The training rows are cut into shards of `shard_rows`; each shard is audited against the
whole gold set as one Prefect task (on the thread pool, or on a Dask cluster's workers,
each of which builds the gold index and loads the embedder once), and the shard results
are merged: every gold row keeps its highest-risk matches over all shards
(`contamination_audit.merge_results`). The report is the same `overlap.json` and
`overlap.html` as `crucible audit` writes.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from prefect import flow, task

from evals.audit_inputs import AuditInputError, AuditRow, read_gold, read_train, train_files
from evals.contamination_audit import AuditConfig, AuditResult, audit, merge_results
from evals.overlap_report import summary, write_overlap_report
from flows.task_runners import task_runner


@task
def audit_shard(gold: list[AuditRow], shard: list[AuditRow], config: AuditConfig) -> AuditResult:
    return audit(gold, shard, config)


@flow(name="contamination-audit")
def audit_flow(gold: Path, train: Path, out: Path, config: AuditConfig, shard_rows: int = 20_000) -> dict:
    locked, gold_rows = read_gold(gold)
    files = train_files(train)
    unread = []
    rows = (row for path in files for row in read_train(path, unread))
    futures = []
    while shard := list(itertools.islice(rows, shard_rows)):
        futures.append(audit_shard.submit(gold_rows, shard, config))
    result = merge_results([future.result() for future in futures], config)
    write_overlap_report(out, result, locked.label, [str(p) for p in files], unread)
    return summary(result, unread)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gold", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-embedding", action="store_true")
    parser.add_argument("--shard-rows", type=int, default=20_000)
    parser.add_argument("--dask", default=None, help="'local' for a LocalCluster, or a scheduler address")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    config = AuditConfig()
    if args.no_embedding:
        config = config.model_copy(update={"methods": [m for m in config.methods if m != "embedding"]})
    flow_ = audit_flow.with_options(task_runner=task_runner(args.dask, args.workers))
    try:
        result = flow_(args.gold, args.train, args.out, config, args.shard_rows)
    except AuditInputError as error:  # an unlocked, unsigned or tampered gold set; unreadable input
        print(f"audit: {error}", file=sys.stderr)
        return 2
    print(result)
    return 1 if result.get("flagged_gold_rows") else 0


if __name__ == "__main__":
    sys.exit(main())
