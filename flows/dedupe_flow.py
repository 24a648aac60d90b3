"""The dedupe job as a Prefect flow, on this machine or sharded over a Dask cluster.

    crucible dedupe IN --text-field text --out DIR [--dask local|tcp://host:8786]
    (or python -m flows.dedupe_flow with the same options)

Without `--dask` the job runs on this machine's cores with no Prefect server (about
21,500 rows/s here); with it, as the Prefect flow below.

Fingerprinting (normalized-text keys and MinHash signatures, `datagen/dedupe/dedupe_files.py`)
is the costly part and runs as one Prefect task per batch of rows: on the default
thread pool, or with `--dask` on a Dask cluster through prefect-dask (`local` starts a
`LocalCluster` with one worker process per core; an address joins a running scheduler,
whose workers must have crucible installed). Batches are submitted a few windows ahead,
never all at once, so memory stays bounded however large IN is. Clustering the
fingerprints (band keys, candidate pairs, similarity checks in numpy) then runs in this
process: it holds about 550 bytes a row, 55 MB for 100k rows.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

from prefect import flow, task

from datagen.dedupe.dedupe_files import DedupeFileConfig, dedupe_file
from datagen.dedupe.minhash_dedup import MinhashDedupConfig
from flows.job_main import job_main
from flows.task_runners import task_runner


@task
def fingerprint_batch(work: Callable, batch):
    return work(batch)


def prefect_mapper(window: int) -> Callable[[Callable, Iterator], Iterator]:
    """`map_batches` for `dedupe_file`: each batch a Prefect task, `window` in flight."""

    def map_batches(work: Callable, batches: Iterator) -> Iterator:
        pending = deque()
        for batch in batches:
            pending.append(fingerprint_batch.submit(work, batch))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    return map_batches


@flow(name="dedupe-file")
def dedupe_file_flow(path: Path, out: Path, config: DedupeFileConfig, window: int = 4) -> dict:
    # One process per task: the batches already run in parallel as tasks.
    return dedupe_file(path, out, config, processes=1, map_batches=prefect_mapper(window))


# The MinHash config field each option sets, to name the option in a validation error.
DEDUPE_OPTIONS = {"ngram": "--ngram", "num_perm": "--num-perm", "threshold": "--threshold", "keep": "--keep"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `crucible dedupe` and `python -m flows.dedupe_flow`, which are one job."""
    parser.add_argument("input", type=Path, metavar="IN", help="a .jsonl, .ndjson or .parquet file")
    parser.add_argument("--text-field", required=True, metavar="FIELD", help="the field holding the text, or a chat "
                        "(TRL messages, ShareGPT conversations) whose turns but the system turn are the text")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    parser.add_argument("--ngram", type=int, default=5, help="words (or characters) per shingle (default 5)")
    parser.add_argument("--num-perm", type=int, default=128, help="MinHash signature length (default 128)")
    parser.add_argument("--threshold", type=float, default=0.8,
                        help="estimated Jaccard at which two rows are near duplicates (default 0.8)")
    parser.add_argument("--shingle", choices=["word", "char"], default="word", help="word or character n-grams")
    parser.add_argument("--keep", choices=["first", "longest", "quality"], default="first",
                        help="which row of a cluster stays (default first)")
    parser.add_argument("--score-field", default=None, help="the numeric field --keep quality keeps the highest of")
    parser.add_argument("--id-field", default=None,
                        help="the field duplicate_of names rows by (default: line number or row index)")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes on this machine (default: one per core); not with --dask")
    parser.add_argument("--dask", default=None,
                        help="fingerprint as Prefect tasks on a Dask cluster: 'local' for a LocalCluster, or a "
                        "scheduler address")
    parser.add_argument("--workers", type=int, default=None, help="with --dask local: worker processes")


def run(args: argparse.Namespace) -> int:
    """On this machine's cores by default; with `--dask`, the Prefect flow on a cluster."""
    from pydantic import ValidationError

    try:
        minhash = MinhashDedupConfig(shingle=args.shingle, ngram=args.ngram, num_perm=args.num_perm,
                                     threshold=args.threshold, keep=args.keep)
        config = DedupeFileConfig(text_field=args.text_field, id_field=args.id_field,
                                  score_field=args.score_field, minhash=minhash)
        if args.dask is None:
            summary = dedupe_file(args.input, args.out, config, processes=args.processes)
        else:
            flow_ = dedupe_file_flow.with_options(task_runner=task_runner(args.dask, args.workers))
            summary = flow_(args.input, args.out, config)
    except ValidationError as error:
        for problem in error.errors():
            option = DEDUPE_OPTIONS.get(str(problem["loc"][-1]) if problem["loc"] else "", "--keep/--score-field")
            print(f"crucible dedupe: {option}: {problem['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"crucible dedupe: {error}", file=sys.stderr)
        return 2
    removed = summary["removed"]
    print(f"{summary['rows']} rows: kept {summary['kept']}, removed {removed['exact']} exact and "
          f"{removed['near']} near duplicates, {summary['broken']} broken; written to {args.out}")
    return 0


main = job_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
