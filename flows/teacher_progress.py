"""Teacher progress where people look: a live bar on the terminal, a Prefect progress
artifact in the UI, and a log line every tenth of the way for the run's log file.

The bar shows done/total, cached, failed, tokens in and out, cost, and the requests the
endpoints allow in flight against their ceiling (lower while a server shows overload:
datagen/serving/adaptive_concurrency.py). It is drawn only
when stderr is a terminal: in CI, under a Prefect worker or piped to a file, the log
lines carry the same numbers without filling the log with redraws.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from datagen.serving.request_batch import Progress


def _numbers(progress: Progress) -> str:
    return (
        f"{progress.cached} cached, {progress.failed} failed, {progress.prompt_tokens} tokens in, "
        f"{progress.completion_tokens} out, ${progress.cost_usd:.4f}, "
        f"concurrency {progress.concurrency}/{progress.concurrency_ceiling}"
    )


@contextlib.contextmanager
def teacher_progress(what: str, artifact_key: str) -> Iterator[Callable[[Progress], None]]:
    """Yield the `on_progress` callback for one batch of teacher requests, e.g.
    `what="teacher answers"`."""
    logger = get_run_logger()
    artifact_id = create_progress_artifact(0.0, key=artifact_key, description=what)
    last_decile = [-1]
    live = sys.stderr.isatty()
    bar = Bar(
        TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[numbers]}"),
        TimeElapsedColumn(), console=Console(stderr=True), disable=not live,
    )
    row = bar.add_task(what, total=None, numbers="")

    def on_progress(progress: Progress) -> None:
        settled = progress.done + progress.failed
        bar.update(row, completed=settled, total=progress.total, numbers=_numbers(progress))
        decile = 10 * settled // progress.total
        if decile > last_decile[0]:
            last_decile[0] = decile
            logger.info("%s: %d/%d done (%s)", what, progress.done, progress.total, _numbers(progress))
            update_progress_artifact(artifact_id, 100.0 * settled / progress.total, _sync=True)

    with bar:
        yield on_progress
