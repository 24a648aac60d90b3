"""Verify locked gold sets, and read them only once they verify.

`verify_version` checks one `gold/sets/<set>/v<N>/` against its manifest and returns
every problem, each naming the file, line and record: the whole file's sha256, the count,
each line's sha256 and id (the id is recomputed from prompt and reference, so an edit
that also rewrote the id is caught), the guidelines copy, no extra or missing files, and
the previous version's hashes, so an older version cannot be swapped underneath. A
`v<N>` folder without a manifest is an unlocked set: a problem too.

Every consumer of gold rows (the evals, the training gate, the audit) reads them through
`read_locked_set`, which refuses a set that does not verify: nothing measures against,
or gates with, a gold set nobody approved.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from datagen.records import canonical_json, content_id
from datagen.run_store import file_sha256
from gold.gold_sets import GUIDELINES

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
_VERSION = re.compile(r"^v(\d+)$")
_MANIFEST_KEYS = ("set", "version", "task", "records", "sha256", "record_sha256", "guidelines_sha256", "previous")


class GoldSetTampered(RuntimeError):
    """A locked gold set that does not verify, or a gold set that was never locked."""


def locked_versions(set_folder: Path) -> list[tuple[int, Path]]:
    """Every `v<N>` folder of a set, oldest first (locked or not: `verify_version` says)."""
    if not Path(set_folder).is_dir():
        return []
    return sorted((int(match.group(1)), path) for path in Path(set_folder).iterdir()
                  if path.is_dir() and (match := _VERSION.match(path.name)))


def verify_version(version: Path) -> list[str]:
    """Every way `version` differs from its manifest; empty when it verifies."""
    version = Path(version)
    manifest_path, records_path = version / MANIFEST, version / RECORDS
    if not manifest_path.is_file():
        return [f"{version}: not locked (no {MANIFEST}); lock it with `crucible gold lock`"]
    try:
        manifest = json.loads(manifest_path.read_text())
        missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return [f"{manifest_path}: not a JSON manifest ({error})"]
    if missing:
        return [f"{manifest_path}: missing {', '.join(missing)}"]
    problems = []
    if manifest["set"] != version.parent.name or f"v{manifest['version']}" != version.name:
        problems.append(f"{manifest_path}: says {manifest['set']}/v{manifest['version']}, but lies in "
                        f"{version.parent.name}/{version.name}")
    extra = sorted({path.name for path in version.iterdir()} - {MANIFEST, RECORDS, GUIDELINES})
    if extra:
        problems.append(f"{version}: files that are not part of the locked set: {', '.join(extra)}")
    guidelines = version / GUIDELINES
    if not guidelines.is_file() or file_sha256(guidelines) != manifest["guidelines_sha256"]:
        problems.append(f"{guidelines}: missing or changed since the lock")
    if not records_path.is_file():
        return problems + [f"{records_path}: missing"]
    body = records_path.read_bytes()
    if hashlib.sha256(body).hexdigest() != manifest["sha256"]:
        problems.append(f"{records_path}: sha256 differs from the manifest's")
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    expected = manifest["record_sha256"]
    if len(lines) != manifest["records"] or len(expected) != manifest["records"]:
        problems.append(f"{records_path}: {len(lines)} lines, the manifest lists {manifest['records']} records")
    for number, (line, listed) in enumerate(zip(lines, expected), start=1):
        problems += _line_problems(records_path, number, line, listed)
    problems += _previous_problems(version, manifest)
    return problems


def _line_problems(path: Path, number: int, line: bytes, listed: dict) -> list[str]:
    where = f"{path} line {number} (record {listed['id'][:12]})"
    problems = []
    if hashlib.sha256(line + b"\n").hexdigest() != listed["sha256"]:
        problems.append(f"{where}: changed since the lock (sha256 differs)")
    try:
        row = json.loads(line)
        recomputed = content_id(row["prompt"], canonical_json(row["reference"]))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        return problems + [f"{where}: not a gold row ({error!r})"]
    if row.get("id") != listed["id"] or recomputed != listed["id"]:
        problems.append(f"{where}: id does not match its prompt and reference")
    return problems


def _previous_problems(version: Path, manifest: dict) -> list[str]:
    previous = manifest["previous"]
    if previous is None:
        return [] if manifest["version"] == 1 else [f"{version}/{MANIFEST}: names no previous version"]
    before = version.parent / f"v{previous['version']}"
    if not (before / MANIFEST).is_file():
        return [f"{before}: the previous version is missing"]
    # The manifest's own hash first: a manifest that matches it is the JSON this version was
    # built on, and one that does not (not even JSON, say) is reported, not parsed.
    if (file_sha256(before / MANIFEST) != previous["manifest_sha256"]
            or json.loads((before / MANIFEST).read_text()).get("sha256") != previous["sha256"]):
        return [f"{before}: differs from the version {version.name} was built on"]
    return []


def verify_gold_root(gold_root: Path) -> dict[str, list[str]]:
    """Problems per version folder of every set under `gold_root`."""
    if not Path(gold_root).is_dir():
        raise GoldSetTampered(f"{gold_root}: no such folder of gold sets")
    return {str(path): verify_version(path)
            for set_folder in sorted(p for p in Path(gold_root).iterdir() if p.is_dir())
            for _, path in locked_versions(set_folder)}


@dataclass(frozen=True)
class LockedGoldSet:
    path: Path  # gold/sets/<set>/v<N>
    manifest: dict
    rows: list[dict]

    @property
    def name(self) -> str:
        return f"{self.manifest['set']}/v{self.manifest['version']}"


def read_locked_set(version: Path) -> LockedGoldSet:
    """The rows of a locked gold set version, after verifying it; `GoldSetTampered` names
    every problem otherwise. `version` may also be its `records.jsonl`."""
    version = Path(version)
    if version.name == RECORDS:
        version = version.parent
    problems = verify_version(version)
    if problems:
        raise GoldSetTampered(f"gold set {version} does not verify, so it is not used:\n  " + "\n  ".join(problems))
    manifest = json.loads((version / MANIFEST).read_text())
    rows = [json.loads(line) for line in (version / RECORDS).read_text().splitlines()]
    return LockedGoldSet(version, manifest, rows)


def _manifest_task(version: Path) -> str | None:
    try:
        return json.loads((version / MANIFEST).read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return None


def newest_locked_sets(gold_root: Path, task: str | None = None) -> list[LockedGoldSet]:
    """The newest version of every gold set (of `task`, when given), each verified; a
    newest version that does not verify raises rather than falling back to an older one."""
    found = []
    root = Path(gold_root)
    for set_folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        versions = locked_versions(set_folder)
        if not versions:
            continue
        newest = versions[-1][1]
        if task is not None and _manifest_task(newest) not in (task, None):
            continue  # another task's set; an unreadable manifest is verified (and refused) below
        found.append(read_locked_set(newest))
    return found
