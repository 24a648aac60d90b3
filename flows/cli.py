"""The `crucible` command: one subcommand per user-facing job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gold.cli import add_gold_parser, run_gold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crucible", description="synthetic data and gated fine-tuning")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="run the dataset build flow on a recipe")
    build.add_argument("--recipe", type=Path, required=True)
    build.add_argument("--run-id", default=None)

    train = commands.add_parser("train", help="LoRA SFT then DPO on an export, behind the gold gate")
    train.add_argument("--recipe", type=Path, required=True)
    preflight = commands.add_parser(
        "preflight", help="baselines, pilot, ablations, evals on the locked gold sets, one verdict per fine-tune")
    preflight.add_argument("--recipe", type=Path, required=True)

    commands.add_parser(
        "prepare-model", help="convert the embedded SmolLM2 GGUF into a cached trainable checkpoint"
    )
    add_audit_parser(commands)
    add_dedupe_parser(commands)
    add_gold_parser(commands)
    args = parser.parse_args(argv)

    if args.command == "build":
        from flows.build_dataset import main as build_main

        forwarded = ["--recipe", str(args.recipe)] + (["--run-id", args.run_id] if args.run_id else [])
        return build_main(forwarded)
    if args.command == "train":
        from flows.train_sft_dpo import main as train_main

        return train_main(["--recipe", str(args.recipe)])
    if args.command == "preflight":
        from flows.preflight import main as preflight_main

        return preflight_main(["--recipe", str(args.recipe)])
    if args.command == "prepare-model":
        from datagen.embedded_model import embedded_model_dir

        print(embedded_model_dir())
        return 0
    if args.command == "audit":
        return run_audit(args)
    if args.command == "dedupe":
        return run_dedupe(args)
    if args.command == "gold":
        return run_gold(args)
    return 2


# ---- `crucible audit`: is any gold row in a training set? (evals/contamination_audit.py) ----

FLAGGED_SHOWN = 20  # gold rows named on the terminal; overlap.json has them all


def add_audit_parser(commands) -> None:
    audit = commands.add_parser(
        "audit", help="look for gold rows in a training set; writes overlap.json and overlap.html, "
        "exits 1 if any gold row is found, 2 on unreadable input"
    )
    audit.add_argument("--gold", type=Path, required=True,
                       help="a locked, signed gold set version: gold/sets/<set>/v<N> or its records.jsonl")
    audit.add_argument("--train", type=Path, required=True,
                       help="a .jsonl or .parquet file (crucible export, TRL, Alpaca, ShareGPT or plain "
                       "prompt/response rows) or a crucible export folder")
    audit.add_argument("--out", type=Path, required=True, help="folder for overlap.json and overlap.html")
    audit.add_argument("--no-embedding", action="store_true",
                       help="skip the paraphrase check, the slow one (a sentence model on CPU)")


def run_audit(args: argparse.Namespace) -> int:
    from evals.audit_inputs import AuditInputError, read_gold, read_train, train_files
    from evals.contamination_audit import AuditConfig, audit
    from evals.overlap_report import write_overlap_report

    config = AuditConfig()
    if args.no_embedding:
        config = config.model_copy(update={"methods": [m for m in config.methods if m != "embedding"]})
    unread = []
    try:
        locked, gold = read_gold(args.gold)
        files = train_files(args.train)
        result = audit(gold, (row for path in files for row in read_train(path, unread)), config)
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


# ---- `crucible dedupe`: exact and near-duplicate rows of one file (datagen/dedupe_files.py) ----

# The MinHash config field each option sets, to name the option in a validation error.
DEDUPE_OPTIONS = {"ngram": "--ngram", "num_perm": "--num-perm", "threshold": "--threshold", "keep": "--keep"}


def add_dedupe_parser(commands) -> None:
    dedupe = commands.add_parser(
        "dedupe", help="remove exact and near-duplicate rows of a JSONL or parquet file; writes "
        "DIR/kept, DIR/removed (with duplicate_of, similarity, method), DIR/broken and DIR/summary.json",
    )
    dedupe.add_argument("input", type=Path, metavar="IN", help="a .jsonl, .ndjson or .parquet file")
    dedupe.add_argument("--text-field", required=True, metavar="FIELD", help="the field holding the text")
    dedupe.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    dedupe.add_argument("--ngram", type=int, default=5, help="words (or characters) per shingle (default 5)")
    dedupe.add_argument("--num-perm", type=int, default=128, help="MinHash signature length (default 128)")
    dedupe.add_argument("--threshold", type=float, default=0.8,
                        help="estimated Jaccard at which two rows are near duplicates (default 0.8)")
    dedupe.add_argument("--shingle", choices=["word", "char"], default="word", help="word or character n-grams")
    dedupe.add_argument("--keep", choices=["first", "longest", "quality"], default="first",
                        help="which row of a cluster stays (default first)")
    dedupe.add_argument("--score-field", default=None, help="the numeric field --keep quality keeps the highest of")
    dedupe.add_argument("--id-field", default=None,
                        help="the field duplicate_of names rows by (default: line number or row index)")
    dedupe.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")


def run_dedupe(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from datagen.dedupe_files import DedupeFileConfig, dedupe_file
    from datagen.minhash_dedup import MinhashDedupConfig

    try:
        minhash = MinhashDedupConfig(shingle=args.shingle, ngram=args.ngram, num_perm=args.num_perm,
                                     threshold=args.threshold, keep=args.keep)
        config = DedupeFileConfig(text_field=args.text_field, id_field=args.id_field,
                                  score_field=args.score_field, minhash=minhash)
        summary = dedupe_file(args.input, args.out, config, processes=args.processes)
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


if __name__ == "__main__":
    sys.exit(main())
