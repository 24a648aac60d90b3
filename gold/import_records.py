"""Import records to label from a JSONL file (real messages from production logs, say).

Each line is a JSON object with the text to label in `text_field`; every other key is
kept as the record's provenance, and `imported_from` adds the file, its sha256 and the
line number. A line
that is not a JSON object with that text is reported with its line number and kept
aside in the result's `rejected`, never dropped silently; a text the set already holds
is skipped and reported.

Gold rows must not be synthetic: a model graded against its own training generator's
output measures nothing (in the demo, 48% of generated tickets had a template sibling at
cosine >= 0.85). A row is refused as synthetic when it carries crucible's provenance
(`run_id`, `template_id`, `teacher`, `parent_ids`) or when its text is a prompt of any
crucible run under `runs_root` (every stage's parquet `prompt` column, compared after
normalization). `force_synthetic_reason` imports such rows anyway, marked synthetic
with that reason; the lock counts them in the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from datagen.foundation.hashing import file_sha256, normalized_hash
from gold.labeling_store import LabelingStore

CRUCIBLE_PROVENANCE = ("run_id", "template_id", "teacher", "parent_ids")


@dataclass
class ImportResult:
    imported: list[int] = field(default_factory=list)  # record ids
    rejected: list[dict] = field(default_factory=list)  # {"line", "reason", "raw"}
    synthetic: list[int] = field(default_factory=list)  # lines refused (or forced) as synthetic


def run_prompt_hashes(runs_root: Path) -> dict[str, str]:
    """Normalized hash of every prompt in crucible's runs -> the file it is in; a
    conversation's earlier user turns count as prompts too (`Example.context`)."""
    known: dict[str, str] = {}
    for path in sorted(Path(runs_root).glob("*/*/part-*.parquet")) if Path(runs_root).is_dir() else []:
        schema = pl.read_parquet_schema(path)
        if "prompt" not in schema:
            continue
        prompts = pl.read_parquet(path, columns=["prompt"])["prompt"].drop_nulls().to_list()
        if "context" in schema:
            turns = pl.read_parquet(path, columns=["context"])["context"].explode().drop_nulls()
            prompts += [turn["content"] for turn in turns if turn["role"] == "user"]
        for prompt in prompts:
            known.setdefault(normalized_hash(prompt), str(path))
    return known


def _synthetic_reason(row: dict, text: str, known: dict[str, str]) -> str | None:
    carried = [key for key in CRUCIBLE_PROVENANCE if row.get(key) is not None]
    if carried:
        return f"carries crucible provenance ({', '.join(carried)})"
    if normalized_hash(text) in known:
        return f"is a prompt of a crucible run ({known[normalized_hash(text)]})"
    return None


def import_records(store: LabelingStore, who: str, gold_set: str, path: Path, *, text_field: str = "text",
                   source: str | None = None, runs_root: Path = Path("runs"),
                   force_synthetic_reason: str | None = None) -> ImportResult:
    """Add every good line of `path` to `gold_set` as a draft record, in one transaction."""
    store.gold_set(gold_set)
    path = Path(path)
    known = run_prompt_hashes(runs_root)
    present = {normalized_hash(row["input_text"]): row["id"] for row in store.conn.execute(
        "SELECT id, input_text FROM records WHERE gold_set=?", (gold_set,))}
    digest = file_sha256(path)
    result = ImportResult()
    with store.transaction(), open(path, encoding="utf-8", errors="replace") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            reject = {"line": number, "raw": raw.rstrip("\n")}
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as error:
                result.rejected.append(reject | {"reason": f"not JSON: {error.msg} at column {error.colno}"})
                continue
            text = row.get(text_field) if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                result.rejected.append(reject | {"reason": f"no string {text_field!r}"})
                continue
            if normalized_hash(text) in present:
                result.rejected.append(reject | {"reason": f"already in the set as record {present[normalized_hash(text)]}"})
                continue
            synthetic = _synthetic_reason(row, text, known)
            if synthetic and not force_synthetic_reason:
                result.synthetic.append(number)
                result.rejected.append(reject | {"reason": f"synthetic: {synthetic}; gold rows must be real "
                                                 "(import anyway with --force-synthetic REASON)"})
                continue
            provenance = {key: value for key, value in row.items() if key != text_field}
            # Under their own keys, so a row's own `file` or `line` field is kept as it was.
            provenance["imported_from"] = {"file": str(path), "file_sha256": digest, "line": number}
            if synthetic:
                provenance["synthetic_import"] = {"why": synthetic, "forced_because": force_synthetic_reason}
                result.synthetic.append(number)
            record = store.add_record(who, gold_set, text, source or path.name, provenance, bool(synthetic))
            present[normalized_hash(text)] = record
            result.imported.append(record)
    return result
