"""The contamination audit: `crucible audit`, on this machine or sharded over Dask.

    crucible audit --gold gold/sets/<set>/v<N> --train TRAIN --out DIR [--dask local|ADDRESS]
    (or python -m flows.audit_flow with the same options)

Without `--dask` the audit runs here in one process. With it, the training rows are cut into shards of `shard_rows`; each shard is audited against the
whole gold set as one Prefect task (on the thread pool, or on a Dask cluster's workers,
each of which builds the gold index and loads the embedder once), and the shard results
are merged: every gold row keeps its highest-risk matches over all shards
(`evals/contamination/audit.py`'s `merge_results`). Either way the report is
`overlap.json` and `overlap.html` in `--out`.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from prefect import flow, task

from datagen.generation.imports import ImportReject
from evals.contamination.audit import AuditConfig, AuditResult, audit, merge_results
from evals.contamination.audit_inputs import AuditInputError, AuditRow, read_gold, read_train, train_files
from evals.contamination.overlap_report import write_overlap_report
from flows.job_main import job_main
from flows.task_runners import task_runner


@task
def audit_shard(gold: list[AuditRow], shard: list[AuditRow], config: AuditConfig) -> AuditResult:
    return audit(gold, shard, config)


@flow(name="contamination-audit")
def audit_flow(gold: list[AuditRow], train: list[Path], config: AuditConfig,
               shard_rows: int = 20_000) -> tuple[AuditResult, list[ImportReject]]:
    """Every training row of `train` audited against `gold`, in shards of `shard_rows` as
    Prefect tasks; the shards' results merged; and the rows that could not be read."""
    unread: list[ImportReject] = []
    rows = (row for path in train for row in read_train(path, unread))
    futures = []
    while shard := list(itertools.islice(rows, shard_rows)):
        futures.append(audit_shard.submit(gold, shard, config))
    return merge_results([future.result() for future in futures], config), unread


FLAGGED_SHOWN = 20  # gold rows named on the terminal; overlap.json has them all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `crucible audit` and `python -m flows.audit_flow`, which are one job."""
    parser.add_argument("--gold", type=Path, required=True,
                        help="a locked, signed gold set version: gold/sets/<set>/v<N> or its records.jsonl")
    parser.add_argument("--train", type=Path, required=True,
                        help="a .jsonl or .parquet file (crucible export, TRL, Alpaca, ShareGPT or plain "
                        "prompt/response rows) or a crucible export folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for overlap.json and overlap.html")
    parser.add_argument("--no-embedding", action="store_true",
                        help="skip the paraphrase check, the slow one (a sentence model on CPU)")
    parser.add_argument("--dask", default=None,
                        help="audit shards of the training rows as Prefect tasks on a Dask cluster: 'local' for a "
                        "LocalCluster, or a scheduler address")
    parser.add_argument("--workers", type=int, default=None, help="with --dask local: worker processes")
    parser.add_argument("--shard-rows", type=int, default=20_000, help="training rows per shard with --dask")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when clean, 1 when a gold row is found (the rows are printed), 2 on input that
    cannot be audited (an unlocked or tampered gold set, an unreadable training file)."""
    config = AuditConfig()
    if args.no_embedding:
        config = config.model_copy(update={"methods": [m for m in config.methods if m != "embedding"]})
    try:
        locked, gold = read_gold(args.gold)
        files = train_files(args.train)
        if args.dask is None:
            unread: list[ImportReject] = []
            result = audit(gold, (row for path in files for row in read_train(path, unread)), config)
        else:
            flow_ = audit_flow.with_options(task_runner=task_runner(args.dask, args.workers))
            result, unread = flow_(gold, files, config, args.shard_rows)
    except AuditInputError as error:
        print(f"crucible audit: {error}", file=sys.stderr)
        return 2
    if result.train_rows == 0:
        first = f"; line {unread[0].line}: {unread[0].reason}" if unread else ""
        print(f"crucible audit: {args.train}: no training row could be read{first}", file=sys.stderr)
        return 2
    written = write_overlap_report(args.out, result, locked.label, [str(p) for p in files], unread)
    print(f"audited {result.train_rows} training rows against {len(result.gold)} gold rows in "
          f"{result.seconds:.1f} s; wrote {written[0]} and {written[1]}")
    if unread:
        print(f"warning: {len(unread)} training rows could not be read and were not audited "
              f"(first: line {unread[0].line}: {unread[0].reason})", file=sys.stderr)
    if not result.flagged:
        print("clean: no gold row was found in the training data")
        return 0
    flagged = sorted(result.flagged, key=lambda row: -row.risk)
    print(f"CONTAMINATED: {len(flagged)} of {len(result.gold)} gold rows are in the training data "
          f"({len(result.flagged_train)} training rows):")
    for row in flagged[:FLAGGED_SHOWN]:
        print(f"  {row.gold.id} ({row.gold.where}): {', '.join(row.flagged_by)}; "
              f"closest {row.matches[0].train.where}")
    if len(flagged) > FLAGGED_SHOWN:
        print(f"  ... and {len(flagged) - FLAGGED_SHOWN} more in {written[0]}")
    return 1


main = job_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
