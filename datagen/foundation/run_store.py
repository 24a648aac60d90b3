"""The run store: `runs/<run_id>/<stage>/` holds one stage's tables and its manifest.

A stage is written into a hidden temporary folder and renamed into place only when its
tables and manifest are complete, so the existence of `runs/<run_id>/<stage>/manifest.json`
means the stage finished (nanochat's rule: the manifest is written last). A crashed stage
leaves at most a `.<stage>.partial-*` folder, which is never read and is cleared on the
next attempt; a re-run of the same run id skips every finished stage.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import polars as pl

from datagen.foundation.hashing import file_sha256

MANIFEST = "manifest.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path: Path, directory: bool = False) -> None:
    """Give a temporary file or folder the mode a plain `open` or `mkdir` would have:
    `tempfile` makes them private (0600, 0700), and reports and run folders are for a
    team's auditors too."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file under a temporary name and rename it, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    usual_mode(Path(tmp))
    os.replace(tmp, path)


@dataclass(frozen=True)
class RunStore:
    root: Path  # usually `runs/`
    run_id: str

    @property
    def run_dir(self) -> Path:
        return self.root / self.run_id

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    def is_complete(self, stage: str) -> bool:
        return (self.stage_dir(stage) / MANIFEST).exists()

    def manifest(self, stage: str) -> dict[str, Any]:
        path = self.stage_dir(stage) / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"stage {stage!r} of run {self.run_id} has not completed ({path})")
        return json.loads(path.read_text())

    def read(self, stage: str, table: str = "part") -> pl.DataFrame:
        """Read one table of a completed stage; tables are `<table>-00000.parquet`."""
        self.manifest(stage)  # refuse to read a stage that did not finish
        return pl.read_parquet(self.stage_dir(stage) / f"{table}-00000.parquet")

    def write_stage(
        self,
        stage: str,
        tables: dict[str, pl.DataFrame],
        config: dict[str, Any],
        inputs: list[str],
        summary: dict[str, Any] | None = None,
        write_files: Callable[[Path], None] | None = None,
    ) -> dict[str, Any]:
        """Write a stage's tables and manifest atomically and return the manifest.

        `inputs` names the stages this one read; their manifests' hashes are recorded so a
        later reader can tell which exact inputs produced these outputs. `write_files`,
        if given, writes further files (exports) into the stage folder before it is sealed.
        """
        if self.is_complete(stage):
            raise FileExistsError(f"stage {stage!r} of run {self.run_id} is already complete")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob(f".{stage}.partial-*"):
            shutil.rmtree(stale)
        partial = Path(tempfile.mkdtemp(dir=self.run_dir, prefix=f".{stage}.partial-"))
        usual_mode(partial, directory=True)
        outputs = {}
        for name, frame in tables.items():
            path = partial / f"{name}-00000.parquet"
            frame.write_parquet(path)
            outputs[path.name] = {"rows": frame.height, "sha256": file_sha256(path)}
        if write_files is not None:
            write_files(partial)
            for path in sorted(p for p in partial.rglob("*") if p.is_file()):
                name = path.relative_to(partial).as_posix()
                outputs.setdefault(name, {"sha256": file_sha256(path)})
        manifest = {
            "stage": stage,
            "run_id": self.run_id,
            "completed_at": datetime.now(timezone.utc).isoformat(),
            "counts": {name: frame.height for name, frame in tables.items()},
            "outputs": outputs,
            "inputs": {name: self.manifest_sha256(name) for name in inputs},
            "config": config,
            "summary": summary or {},
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        os.replace(partial, self.stage_dir(stage))
        return manifest

    def remove_stage(self, stage: str) -> list[str]:
        """Remove a completed stage and every completed stage made from it, directly or
        through others (their manifests' `inputs`), so that a re-run makes them again;
        return their names, `stage` last. Dependents go first: a removal cut short leaves
        no stage whose input is gone, only stages the next removal still finds."""
        inputs = {
            path.parent.name: set(json.loads(path.read_text())["inputs"])
            for path in self.run_dir.glob(f"*/{MANIFEST}")
        }
        removed: list[str] = []

        def after_its_dependents(name: str) -> None:
            for other in sorted(other for other, read in inputs.items() if name in read):
                if other not in removed:
                    after_its_dependents(other)
            removed.append(name)

        after_its_dependents(stage)
        for name in removed:
            retired = Path(tempfile.mkdtemp(dir=self.run_dir, prefix=f".{name}.removed-"))
            os.replace(self.stage_dir(name), retired / name)
            shutil.rmtree(retired)
        return removed

    def manifest_sha256(self, stage: str) -> str:
        path = self.stage_dir(stage) / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"input stage {stage!r} of run {self.run_id} has not completed")
        return file_sha256(path)
