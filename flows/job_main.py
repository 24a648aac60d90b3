"""The `python -m flows.<job>` entry point of a job, made from the job's own parts.

Each flow module owns its options (`add_arguments`) and what it does with them (`run`);
`crucible <job>` (flows/cli.py) assembles the same two, so a job's options are declared
once. This makes the module's own `main` from them, with its docstring's first line as
the description.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def job_main(doc: str | None, add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> Callable[[list[str] | None], int]:
    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
        add_arguments(parser)
        return run(parser.parse_args(argv))

    return main
