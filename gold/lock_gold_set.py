"""Lock a gold set: its approved records become a new immutable version on disk.

`lock_gold_set` writes `gold/sets/<set>/v<N>/`:

- `records.jsonl`: one approved record per line, in record order, as canonical JSON:
  `id` (sha256 of prompt and reference), `prompt`, `reference` (the approved answer),
  `notes` (the reviewer's and labelers' notes), `labelers`, `reviewer`, `source`,
  `provenance`, `synthetic`, `record` (the labeling database's id, which ties versions
  together in the changelog);
- `GUIDELINES.md`: the guidelines the records were labeled under, copied;
- `manifest.json`: the set's purpose (`eval` or `seed`), the sha256 of every line and of
  the whole file, counts per label value, labelers and reviewers, agreement figures
  (`agreement.py`), the previous version's hashes and a changelog against it; for a seed
  set, its proof of disjointness from the task's eval sets (`seed_sets.py`: a seed set
  that overlaps one is not locked);

and then signs the set's list of versions, `gold/sets/<set>/versions.json`, with the
locker's private key, which the gold root must trust (`signed_versions.py`, `signing.py`).

The version is built in a temporary folder and renamed into place, so a crash never
leaves a `v<N>` that looks whole; its files are made read-only. The signed list is
written right after: a crash between the two leaves a version that verifies as
unsigned, which `crucible gold sign` settles. The files are meant to be committed: a
new version is a reviewable diff. `gold_root.py` checks them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from datagen.foundation.hashing import canonical_json, content_id, file_sha256
from datagen.foundation.run_store import usual_mode
from gold.agreement import agreement
from gold.gold_root import GoldRoot, GoldSetTampered, NoGoldSet
from gold.gold_sets import (
    GUIDELINES,
    MANIFEST,
    RECORDS,
    SEED,
    SIGNED_VERSIONS,
    GoldSetError,
    form_fields,
    manifest_purpose,
    set_dir,
    version_folders,
)
from gold.labeling_store import LabelingStore, User
from gold.seed_sets import SeedCheck, SeedDisjointness, prove_disjoint
from gold.signed_versions import read_signed_versions, version_entry, write_signed_versions
from gold.signing import SigningKey, read_trusted_keys
from gold.verify_gold_set import verify_version


def gold_row_id(prompt: str, reference: dict) -> str:
    """A gold row's id: the sha256 of its prompt and approved answer."""
    return content_id(prompt, canonical_json(reference))


def locked_row(record: dict) -> dict:
    """The line a lock writes for an approved record (`LabelingStore.approved_records`)."""
    prompt = record["final_input"] or record["input_text"]
    notes = {"reviewer": record["review_note"]} if record["review_note"] else {}
    notes |= {label["labeler"]: label["note"] for label in record["labels"] if label["note"]}
    return {
        "id": gold_row_id(prompt, record["final_answer"]), "prompt": prompt, "reference": record["final_answer"],
        "notes": notes, "labelers": record["labelers"], "reviewer": record["reviewer"], "source": record["source"],
        "provenance": record["provenance"], "synthetic": record["synthetic"], "record": record["id"],
    }


def _count_key(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)  # true, not True


def _changelog(rows: list[dict], previous_rows: list[dict]) -> dict:
    before = {row["record"]: row for row in previous_rows}
    after = {row["record"]: row for row in rows}
    return {
        "added": [after[key]["id"] for key in after if key not in before],
        "removed": [before[key]["id"] for key in before if key not in after],
        "changed": [{"record": key, "from": before[key]["id"], "to": after[key]["id"]}
                    for key in after if key in before and before[key]["id"] != after[key]["id"]],
    }


def _check_trusted(gold_root: Path, key: SigningKey) -> None:
    if key.id not in read_trusted_keys(gold_root):
        raise GoldSetError(f"key {key.id} ({key.owner}) is not in {Path(gold_root) / 'trusted_keys.json'}: "
                           "add its public key (crucible gold keygen --trust-only) in a reviewed commit first")


def _seed_disjointness(gold_root: Path, gold_set: dict, rows: list[dict],
                       seed_check: SeedCheck | None) -> SeedDisjointness:
    """A seed set's rows proven disjoint from the newest version of every eval set of its task."""
    name = gold_set["name"]
    refused = f"seed set {name} is not locked"
    if seed_check is None:
        raise GoldSetError(f"{refused}: a seed set is locked only once the contamination audit proves it disjoint "
                           "from the task's eval sets; lock it with `crucible gold lock`")
    try:
        eval_sets = GoldRoot(gold_root).newest(gold_set["task"])
    except NoGoldSet:
        eval_sets = []
    return prove_disjoint(seed_check, name, [(f"{name} record {row['record']} (id {row['id'][:12]})", row)
                                             for row in rows], eval_sets, refused)


def lock_gold_set(store: LabelingStore, user: User, name: str, gold_root: Path, key: SigningKey,
                  seed_check: SeedCheck | None = None) -> Path:
    """Write the approved records of gold set `name` as its next version, signed with `key`;
    returns its folder. A seed set needs `seed_check`, and is locked only when it proves
    the rows disjoint from every eval set of the task (`seed_sets.py`)."""
    if not user.reviews:
        raise GoldSetError(f"{user.name} is a {user.role}: only a reviewer or admin locks a gold set")
    gold_set = store.gold_set(name)
    folder = set_dir(gold_root, name)
    _check_trusted(gold_root, key)
    guidelines = folder / GUIDELINES
    if not guidelines.is_file():
        raise GoldSetError(f"{guidelines} is missing: a gold set is locked with the guidelines it was labeled under")
    records = store.approved_records(name)
    if not records:
        raise GoldSetError(f"gold set {name} has no approved records to lock")
    rows = [locked_row(record) for record in records]
    lines = [canonical_json(row) + "\n" for row in rows]
    body = "".join(lines).encode()

    versions = version_folders(folder)
    previous = None
    previous_rows: list[dict] = []
    if versions:
        number, last = versions[-1]
        try:
            GoldRoot(gold_root, sets=[name])
        except GoldSetTampered as error:
            raise GoldSetTampered(f"{folder} does not verify, so no version is built on it: {error}") from None
        last_manifest = json.loads((last / MANIFEST).read_text())
        if last_manifest["sha256"] == hashlib.sha256(body).hexdigest():
            raise GoldSetError(f"nothing changed since {last}: no new version written")
        if manifest_purpose(last_manifest) != gold_set["purpose"]:
            raise GoldSetError(f"{last} was locked with purpose {manifest_purpose(last_manifest)}, and this "
                               f"database gives {name} purpose {gold_set['purpose']}: a set keeps its purpose; "
                               "create a new set for the other")
        previous = {"version": number, "sha256": last_manifest["sha256"],
                    "manifest_sha256": file_sha256(last / MANIFEST)}
        previous_rows = [json.loads(line) for line in (last / RECORDS).read_text().splitlines()]
    version = (versions[-1][0] + 1) if versions else 1
    disjointness = _seed_disjointness(gold_root, gold_set, rows, seed_check) if gold_set["purpose"] == SEED else None

    schema = store.label_schema(name)
    fields = form_fields(schema.answer_schema)
    counts = {field.name: dict(sorted(Counter(_count_key(row["reference"][field.name]) for row in rows).items()))
              for field in fields if field.categorical}
    # A text set's checks: how many of each kind its rows hold, as an enum field's values are counted.
    counts |= {field.name: dict(sorted(Counter(check["kind"] for row in rows for check in row["reference"][field.name]
                                               ).items())) for field in fields if field.kind == "checks"}
    figures = agreement(store.submitted_labels(name), fields, schema.compare)
    progress = store.progress(name)
    manifest = {
        "set": name, "version": version, "purpose": gold_set["purpose"], "task": gold_set["task"],
        "task_path": gold_set["task_path"],
        "locked_at": store.now(), "locked_by": user.name,
        "records": len(rows), "sha256": hashlib.sha256(body).hexdigest(),
        "record_sha256": [{"id": row["id"], "sha256": hashlib.sha256(line.encode()).hexdigest()}
                          for row, line in zip(rows, lines)],
        "guidelines_sha256": file_sha256(guidelines),
        "label_counts": counts,
        "labelers": dict(sorted(Counter(name_ for row in rows for name_ in row["labelers"]).items())),
        "reviewers": dict(sorted(Counter(row["reviewer"] for row in rows).items())),
        "labels_per_record": gold_set["labels_per_record"],
        "agreement": {part: figures[part] for part in ("labels", "label_pairs", "fields", "labelers", "pairs")},
        "synthetic_records": sum(row["synthetic"] for row in rows),
        "sources": dict(sorted(Counter(row["source"] for row in rows).items())),
        "left_out": {status: n for status, n in progress["by_status"].items() if status != "approved" and n},
        "previous": previous,
        "changelog": _changelog(rows, previous_rows),
    }
    if disjointness is not None:
        manifest["disjoint_from_eval_sets"] = disjointness.as_dict()

    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".v{version}."))
    try:
        (staging / RECORDS).write_bytes(body)
        shutil.copyfile(guidelines, staging / GUIDELINES)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        for path in staging.iterdir():
            os.chmod(path, 0o444)
        usual_mode(staging, directory=True)
        target = folder / f"v{version}"
        entries = [version_entry(path) for _, path in versions] + [version_entry(staging, version)]
        os.rename(staging, target)  # fails if another lock took this version first
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_signed_versions(folder, entries, key)
    with store.transaction():
        store.log(user.name, "lock", name, None, None,
                  {"version": version, "purpose": gold_set["purpose"], "sha256": manifest["sha256"],
                   "records": len(rows), "signed_by": key.id})
    return target


def sign_gold_set(gold_root: Path, name: str, key: SigningKey) -> Path:
    """Sign the versions a set already has: for a set locked before versions were signed,
    or a lock interrupted between its version and its signature. Every version must pass
    its own checks (`verify_version`), and an existing signed list must verify and list
    every version but perhaps the newest: a key holder vouches for what is there, but
    nothing here re-blesses a version that was changed after it was signed."""
    folder = set_dir(gold_root, name)
    _check_trusted(gold_root, key)
    versions = version_folders(folder)
    if not versions:
        raise GoldSetError(f"{folder}: no locked version to sign")
    problems = [problem for _, path in versions for problem in verify_version(path)]
    if problems:
        raise GoldSetTampered(f"{folder} does not verify, so it is not signed:\n  " + "\n  ".join(problems))
    current = [version_entry(path) for _, path in versions]
    if (folder / SIGNED_VERSIONS).exists():
        signed, _, problems = read_signed_versions(folder, read_trusted_keys(gold_root))
        if problems:
            raise GoldSetTampered("\n".join(problems))
        if signed != current[:len(signed)] or len(current) - len(signed) > 1:
            raise GoldSetTampered(f"{folder}: the signed versions differ from the folders; only a newest "
                                  "version the signed list does not name yet can be signed")
    return write_signed_versions(folder, current, key)
