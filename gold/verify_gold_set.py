"""Check one locked gold version against its own manifest, naming file, line and record.

`verify_version` checks one `gold/sets/<set>/v<N>/` against its manifest and returns
every problem: the whole file's sha256, the count, each line's sha256 and id (the id is
recomputed from prompt and reference, so an edit that also rewrote the id is caught),
the guidelines copy, no extra or missing files, a purpose gold knows (none: an eval set
locked before sets had one), and the previous version's hashes, so an older version
cannot be swapped underneath. A `v<N>` folder without a manifest is an
unlocked set: a problem too.

These checks say *where* a version changed; they cannot say whether the manifest itself
was rewritten to match. The signature over every file (`signed_versions.py`) decides
that, and `gold_root.py` runs both before anyone reads a gold row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from datagen.foundation.hashing import canonical_json, content_id, file_sha256
from gold.gold_sets import GUIDELINES, MANIFEST, PURPOSES, RECORDS, manifest_purpose

_MANIFEST_KEYS = ("set", "version", "task", "records", "sha256", "record_sha256", "guidelines_sha256", "previous")


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
    if manifest_purpose(manifest) not in PURPOSES:
        problems.append(f"{manifest_path}: purpose {manifest_purpose(manifest)!r} is not one of {', '.join(PURPOSES)}")
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
