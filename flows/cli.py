"""The `crucible` command: one subcommand per user-facing job, each job's options its own.

Every job module owns its argument parser (`add_arguments`) and its command (`run`), and
`python -m <module>` takes exactly the options `crucible <job>` does: nothing here
redeclares them. A job's module is imported only when its command runs, since some
import torch and take seconds to load.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType, SimpleNamespace
from typing import Callable


def _build() -> ModuleType:
    from flows import build_dataset

    return build_dataset


def _train() -> ModuleType:
    from flows import train_sft_dpo

    return train_sft_dpo


def _preflight() -> ModuleType:
    from flows import preflight

    return preflight


def _audit() -> ModuleType:
    from flows import audit_flow

    return audit_flow


def _dedupe() -> ModuleType:
    from flows import dedupe_flow

    return dedupe_flow


def _push() -> ModuleType:
    from flows import push_export

    return push_export


def _gold() -> SimpleNamespace:
    from gold import cli

    def seed_check(*check):
        # gold sits below evals: the lock of a seed set is handed the audit that proves it
        # disjoint from the eval sets (gold/seed_sets.py), imported only when one is locked.
        from evals.contamination.seed_disjointness import seed_disjointness

        return seed_disjointness(*check)

    return SimpleNamespace(add_arguments=cli.add_arguments, run=lambda args: cli.run(args, seed_check))


def _prepare_model() -> SimpleNamespace:
    def run(args: argparse.Namespace) -> int:
        from datagen.serving.embedded_model import embedded_model_dir

        print(embedded_model_dir())
        return 0

    return SimpleNamespace(add_arguments=lambda parser: None, run=run)


JOBS: dict[str, tuple[str, Callable[[], ModuleType | SimpleNamespace]]] = {
    "build": ("run the dataset build flow on a recipe", _build),
    "train": ("LoRA SFT then DPO on an export, behind the gold gate", _train),
    "preflight": ("baselines, pilot, ablations, evals on the locked gold sets, one verdict per fine-tune",
                  _preflight),
    "audit": ("look for gold rows in a training set; writes overlap.json and overlap.html, exits 1 if any gold "
              "row is found, 2 on unreadable input", _audit),
    "dedupe": ("remove exact and near-duplicate rows of a JSONL or parquet file; writes DIR/kept, DIR/removed "
               "(with duplicate_of, similarity, method), DIR/broken and DIR/summary.json", _dedupe),
    "push": ("verify an export whole and upload it with its dataset card to a Hugging Face Hub dataset repo "
             "(or --to-folder, --dry-run)", _push),
    "gold": ("the gold sets: labelers' page, review, lock and verify", _gold),
    "prepare-model": ("convert the embedded SmolLM2 GGUF into a cached trainable checkpoint", _prepare_model),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="crucible", description="synthetic data and gated fine-tuning")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (about, _) in JOBS.items():
        commands.add_parser(name, help=about, add_help=False)
    chosen = parser.parse_args(argv[:1]).command
    about, load = JOBS[chosen]
    job = load()
    job_parser = argparse.ArgumentParser(prog=f"crucible {chosen}", description=about)
    job.add_arguments(job_parser)
    return job.run(job_parser.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
