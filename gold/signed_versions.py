"""A gold set's signed list of versions: `gold/sets/<set>/versions.json`.

Every lock rewrites this one file: the set's name and, for each locked version, the
sha256 of each of its files (`manifest.json`, `records.jsonl`, `GUIDELINES.md`), signed
as canonical JSON by a trusted key (`signing.py`). Because the list covers every byte of
every version, and the names and number of versions, checking it catches:

- an edit of any file of any version, the manifest's own fields included;
- a consistent rewrite (records and recomputed manifest hashes) made without the key;
- a deleted version, the newest included, and a version swapped for another;
- a version folder nobody signed.

What no file can catch alone is a rollback of the whole set to an earlier signed state
(the newest version deleted and the previous `versions.json` restored from history):
git history shows it, and every run manifest records the digest of each version it used.

A version's digest is the sha256 of its entry in the list; run manifests cite it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from datagen.foundation.hashing import canonical_json, file_sha256
from datagen.foundation.run_store import write_text_atomic
from gold.gold_sets import GUIDELINES, MANIFEST, RECORDS, SIGNED_VERSIONS
from gold.signing import SigningKey, signature_problem

VERSION_FILES = (MANIFEST, RECORDS, GUIDELINES)


def version_entry(version: Path, number: int | None = None) -> dict:
    """What a signature vouches for about one version folder: its number (by default from
    the folder's name) and every file's sha256."""
    version = Path(version)
    return {"version": number if number is not None else int(version.name.removeprefix("v")),
            "files": {name: file_sha256(version / name) for name in VERSION_FILES}}


def entry_digest(entry: dict) -> str:
    return hashlib.sha256(canonical_json(entry).encode()).hexdigest()


def _payload(set_name: str, entries: list[dict]) -> bytes:
    return canonical_json({"set": set_name, "versions": entries}).encode()


def write_signed_versions(set_folder: Path, entries: list[dict], key: SigningKey) -> Path:
    """Sign `entries` (every version of the set, oldest first) and write `versions.json`."""
    set_folder = Path(set_folder)
    document = {"set": set_folder.name, "versions": entries,
                "signature": key.sign(_payload(set_folder.name, entries))}
    path = set_folder / SIGNED_VERSIONS
    write_text_atomic(path, json.dumps(document, indent=1) + "\n")
    return path


def read_signed_versions(set_folder: Path, trusted: dict) -> tuple[list[dict] | None, dict | None, list[str]]:
    """(entries, signature, []) when `versions.json` is a valid signature by a trusted key of
    this set's list; (None, None, problems) otherwise. Entries are not yet compared with
    the folders: `signed_version_problems` does that."""
    path = Path(set_folder) / SIGNED_VERSIONS
    if not path.is_file():
        return None, None, [f"{path}: missing, so no version of {Path(set_folder).name} is signed"]
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        name, entries, signature = document["set"], document["versions"], document["signature"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        return None, None, [f"{path}: not a signed list of versions ({error!r})"]
    if name != Path(set_folder).name:
        return None, None, [f"{path}: signed for set {name!r}, but lies in {Path(set_folder).name}/"]
    why = signature_problem(_payload(name, entries), signature, trusted)
    if why:
        return None, None, [f"{path}: {why}"]
    return entries, signature, []


def signed_version_problems(
    set_folder: Path, folders: list[tuple[int, Path]], trusted: dict
) -> tuple[dict[int, dict], str | None, list[str]]:
    """({version number: its signed entry}, the signer's key id, problems) for a set's
    `v<N>` folders against its signed list: a file that differs, a listed version that is
    missing, a folder not listed."""
    entries, signature, problems = read_signed_versions(set_folder, trusted)
    if entries is None:
        return {}, None, problems
    signed = {entry["version"]: entry for entry in entries}
    on_disk = {number: path for number, path in folders}
    for number, entry in signed.items():
        if number not in on_disk:
            problems.append(f"{Path(set_folder) / f'v{number}'}: signed as locked, but missing (deleted?)")
            continue
        for name, listed in entry["files"].items():
            path = on_disk[number] / name
            if not path.is_file():
                problems.append(f"{path}: missing; the signed list has it")
            elif file_sha256(path) != listed:
                problems.append(f"{path}: changed since it was signed (sha256 differs from {SIGNED_VERSIONS})")
    for number, path in on_disk.items():
        if number not in signed:
            problems.append(f"{path}: not in the signed list {SIGNED_VERSIONS}; nobody with a trusted key locked it")
    return signed, signature["key_id"], problems
