"""The one way into the gold sets: open a gold root, verify everything, then read.

Everything that uses gold rows (the judge's guard, the audit, the build's export gate,
the training gate, the evals, the preflight) opens the root with `GoldRoot(path)` once
per flow and is handed the verified sets; nobody else reads `records.jsonl`. Opening
fails closed, naming the path and the reason:

- the root is not a folder (a mistyped `gold_root` must not read as "no gold");
- any version of any set does not verify: a file changed since it was signed, a manifest
  that does not match its records (`verify_gold_set.py`), a version missing from or
  absent in the signed list, a signature by a key `trusted_keys.json` does not trust
  (`signed_versions.py`, `signing.py`), a `v<N>` folder never locked.

Then `newest(task)` gives the newest version of every eval set of a task, and raises when
there is none (a gate with nothing to check against is not a pass); `seed_set(name, task)`
a seed set's version; `get("set/v2")` or `get("set")` one version of any set;
`prompt_index()` every prompt and id of every version, for the judge's guard.
`LockedGoldSet.ref()` is what a run manifest records of a version it used.

Purposes (`gold_sets.py`, `seed_sets.py`) decide who sees which set:

- eval sets are what `newest(task)` returns: what the contamination gate checks every
  training row against and what the evals and the preflight score on. A seed set never
  comes back from `newest`: its rows are trained on (SFT anchors), so gating training rows
  against it would refuse the anchors, and scoring a model on rows it was trained on
  measures memory.
- seed sets come only from `seed_set`, by name, for a build that asks for one; the
  build proves the seed set disjoint from the task's eval sets first (and the lock did).
- every set, seed included, is in `prompt_index()`: no human-labelled row, seed or eval,
  is ever shown to an LLM judge to be scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from datagen.foundation.hashing import normalized_hash
from gold.gold_sets import (
    EVAL,
    MANIFEST,
    RECORDS,
    SEED,
    SIGNED_VERSIONS,
    GoldSetError,
    manifest_purpose,
    version_folders,
)
from gold.signed_versions import entry_digest, signed_version_problems
from gold.signing import read_trusted_keys
from gold.verify_gold_set import verify_version


class GoldSetTampered(GoldSetError):
    """A gold version that does not verify, or one that was never locked or signed."""


class NoGoldSet(GoldSetError):
    """No locked gold set where one is required; the message names the root and the task."""


@dataclass(frozen=True)
class LockedGoldSet:
    """One verified locked version: its folder, manifest, rows, and the signed digest."""

    path: Path  # gold/sets/<set>/v<N>
    manifest: dict
    rows: list[dict]
    digest: str  # sha256 of this version's entry in the signed list
    key_id: str  # the trusted key that signed it

    @property
    def name(self) -> str:
        return f"{self.manifest['set']}/v{self.manifest['version']}"

    @property
    def label(self) -> str:
        """The name with the signed digest, for reports: which approved version this was."""
        return f"{self.name} (digest {self.digest[:16]})"

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def purpose(self) -> str:
        """`eval` or `seed`; a version locked before sets had a purpose is an eval set's."""
        return manifest_purpose(self.manifest)

    def ref(self) -> dict:
        """What a run manifest records of a gold version it used."""
        return {"set": self.name, "task": self.task, "records": self.manifest["records"],
                "sha256": self.manifest["sha256"], "digest": self.digest, "signed_by": self.key_id,
                "path": str(self.path)}


def gold_root_problems(root: Path, sets: list[str] | None = None) -> dict[str, list[str]]:
    """Problems per set and version folder under `root` (or of the named `sets`), for
    `crucible gold verify`; `GoldSetError` when the root itself is unusable."""
    root = Path(root)
    if not root.is_dir():
        where = "" if root.is_absolute() else f" (relative to {Path.cwd()})"
        raise GoldSetError(f"{root}{where}: no such folder of gold sets")
    folders = [root / name for name in sets] if sets is not None else sorted(
        path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    trusted = {}
    if any(version_folders(folder) or (folder / SIGNED_VERSIONS).exists() for folder in folders):
        trusted = read_trusted_keys(root)  # raises: versions exist, and nothing could vouch for them
    results: dict[str, list[str]] = {}
    for folder in folders:
        if not folder.is_dir():
            raise NoGoldSet(f"{folder}: no such gold set")
        versions = version_folders(folder)
        if not versions and not (folder / SIGNED_VERSIONS).exists():
            continue  # a set being labelled, never locked
        signed, _, problems = signed_version_problems(folder, versions, trusted)
        for _, path in versions:
            results[str(path)] = verify_version(path)
        # Each signature problem is shown under the version it concerns; one about the list
        # itself (missing, forged, untrusted) concerns every version, none of which is signed.
        for problem in problems:
            owners = [path for _, path in versions if problem.startswith(f"{path}/") or problem.startswith(f"{path}:")]
            missing = [number for number in signed if problem.startswith(f"{folder / f'v{number}'}:")]
            if missing:
                results.setdefault(str(folder / f"v{missing[0]}"), []).append(problem)
            for path in owners or ([] if missing else [path for _, path in versions] or [folder]):
                results.setdefault(str(path), []).append(problem)
    return results


class GoldRoot:
    """Every locked version under one folder, verified when opened (see module doc)."""

    def __init__(self, root: Path, sets: list[str] | None = None) -> None:
        self.path = Path(root)
        problems = {where: found for where, found in gold_root_problems(self.path, sets).items() if found}
        if problems:
            listed = "\n  ".join(f"{problem}" for found in problems.values() for problem in found)
            raise GoldSetTampered(f"gold sets under {self.path} do not verify, so none is used:\n  {listed}")
        trusted = read_trusted_keys(self.path) if self._set_folders(sets) else {}
        self.versions: dict[str, list[LockedGoldSet]] = {}
        for folder in self._set_folders(sets):
            signed, key, _ = signed_version_problems(folder, version_folders(folder), trusted)
            self.versions[folder.name] = [
                LockedGoldSet(path, json.loads((path / MANIFEST).read_text()),
                              [json.loads(line) for line in (path / RECORDS).read_text().splitlines()],
                              entry_digest(signed[number]), key)
                for number, path in version_folders(folder)]

    def _set_folders(self, sets: list[str] | None) -> list[Path]:
        folders = [self.path / name for name in sets] if sets is not None else sorted(
            path for path in self.path.iterdir() if path.is_dir() and not path.name.startswith("."))
        return [folder for folder in folders if version_folders(folder)]

    def newest(self, task: str) -> list[LockedGoldSet]:
        """The newest version of every eval set of `task`; `NoGoldSet` when there is none.
        Seed sets are not among them (see the module doc)."""
        found = [versions[-1] for versions in self.versions.values()
                 if versions[-1].task == task and versions[-1].purpose == EVAL]
        if not found:
            raise NoGoldSet(f"no locked gold set of task {task} under {self.path} to evaluate on (a seed set is not "
                            "one): lock an eval set (crucible gold lock) first; without it nothing can check the "
                            "data or tell whether a fine-tune helped")
        return found

    def seed_set(self, name: str, task: str) -> LockedGoldSet:
        """Seed set `name` (`set` for its newest version, or `set/v<N>`) of `task`; raises
        `NoGoldSet` naming the set when it is missing, of another task, or an eval set."""
        locked = self.get(name)
        if locked.purpose != SEED:
            raise NoGoldSet(f"{locked.path}: {locked.name} is not a seed set (purpose {locked.purpose}): its rows "
                            "measure fine-tunes and are never trained on; name a set created with --purpose seed")
        if locked.task != task:
            raise NoGoldSet(f"{locked.path}: seed set {locked.name} is of task {locked.task}, not {task}")
        return locked

    def get(self, name: str) -> LockedGoldSet:
        """`set/v<N>`, or `set` for its newest version."""
        set_name, _, version = name.partition("/")
        versions = self.versions.get(set_name)
        if not versions:
            raise NoGoldSet(f"no locked gold set {set_name!r} under {self.path}")
        if not version:
            return versions[-1]
        for locked in versions:
            if locked.path.name == version:
                return locked
        raise NoGoldSet(f"{self.path / set_name / version}: no such locked version")

    def every_version(self) -> list[LockedGoldSet]:
        return [locked for versions in self.versions.values() for locked in versions]

    def prompt_index(self) -> GoldPromptIndex:
        return GoldPromptIndex(self.path, self.every_version())


class GoldPromptIndex:
    """Every prompt (normalized) and row id of every locked version: what must never be
    shown to an LLM judge."""

    def __init__(self, root: Path, versions: list[LockedGoldSet]) -> None:
        self.root = root
        self.sets = [locked.name for locked in versions]
        self._where: dict[str, str] = {}
        for locked in versions:
            for number, row in enumerate(locked.rows, 1):
                where = f"gold set {locked.name} line {number} ({locked.path / RECORDS})"
                self._where.setdefault("prompt:" + normalized_hash(row["prompt"]), where)
                self._where.setdefault("id:" + row["id"], where)

    def find(self, prompt: str, row_id: str | None = None) -> tuple[str, str] | None:
        """("content id" or "prompt", where) of the gold row this is, or None."""
        if row_id is not None and "id:" + row_id in self._where:
            return "content id", self._where["id:" + row_id]
        key = "prompt:" + normalized_hash(prompt)
        return ("prompt", self._where[key]) if key in self._where else None


def open_version(version: Path) -> LockedGoldSet:
    """One locked version given by its folder (or its `records.jsonl`), verified with the
    rest of its set under the gold root it lies in."""
    version = Path(version)
    if version.name == RECORDS:
        version = version.parent
    if not version.is_dir():
        raise NoGoldSet(f"{version}: no such gold set version (expected <gold root>/<set>/v<N>)")
    if not (version / MANIFEST).is_file():
        raise GoldSetTampered(f"{version}: not locked (no {MANIFEST}); only a locked, signed version is used")
    set_folder = version.parent
    return GoldRoot(set_folder.parent, sets=[set_folder.name]).get(f"{set_folder.name}/{version.name}")
