"""The `crucible` command: one subcommand per user-facing job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crucible", description="synthetic data and gated fine-tuning")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="run the dataset build flow on a recipe")
    build.add_argument("--recipe", type=Path, required=True)
    build.add_argument("--run-id", default=None)

    commands.add_parser(
        "prepare-model", help="convert the embedded SmolLM2 GGUF into a cached trainable checkpoint"
    )
    args = parser.parse_args(argv)

    if args.command == "build":
        from flows.build_dataset import main as build_main

        forwarded = ["--recipe", str(args.recipe)] + (["--run-id", args.run_id] if args.run_id else [])
        return build_main(forwarded)
    if args.command == "prepare-model":
        from datagen.embedded_model import embedded_model_dir

        print(embedded_model_dir())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
