"""Dedupe a JSONL or parquet file by one text field, streaming: exact, then near duplicates.

Input: IN, `.jsonl`/`.ndjson` (one JSON object a line) or `.parquet`, with a text field,
or a chat field (TRL `messages` of `role`/`content`, ShareGPT `conversations` of
`from`/`value`), whose text is every turn but the system turns, in order: two
conversations are the same when all their turns are, and the system prompt a whole set
shares would make every short chat look alike.
Output in DIR, written into a temporary folder beside it and moved in only when every
file is complete, `summary.json` last (its existence means the run completed); a run that
fails (a corrupt parquet file, say) leaves no DIR behind:

- `kept.<ext>`: the rows that stay, unchanged (JSONL: the original lines, byte for byte).
- `removed.<ext>`: every other row with `duplicate_of` (the kept row of its cluster: its
  `id_field`, or without one its position in IN: JSONL line number from 1, parquet row
  index from 0), `similarity` (estimated Jaccard to it, 1.0 for exact) and `method`
  (`exact`: the same text after `exact_dedup.normalize_text`; `near`: MinHash,
  `minhash_dedup.py`).
- `broken.<ext>`: rows that could not be read, with their position and `reason`: a
  JSONL line that is not a JSON object, a text that is missing or not a string, an id
  or (keep=quality) score that is missing or of the wrong type. Reported, never fatal;
  only a file where no row at all can be read is an error.
- `summary.json`: counts (rows, kept, removed by method, broken), the cluster-size
  histogram, the config, what `duplicate_of` holds, and timings.

Exact and near duplicates form one set of clusters (an exact pair is a cluster edge
too), so the keep policy picks one row per cluster whatever joined it.

Two passes over IN keep memory bounded: the first reads it in batches that worker
processes fingerprint (a 64-bit key of the normalized text for exact duplicates, the
top 32 bits of each MinHash slot, the length and score), holding about
4*num_perm + 40 bytes a row (~550 B at 128 slots), never the texts; the second streams
IN again to write the outputs (parquet: a polars streaming join on the row index).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import xxhash
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.dedupe.minhash_dedup import MinhashDedupConfig, cluster_near_duplicates
from datagen.dedupe.minhash_signatures import batch_signatures, candidate_pairs, map_in_processes, normalized_words
from datagen.foundation.row_files import JSONL_SUFFIXES
from datagen.foundation.run_store import usual_mode


class DedupeFileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_field: str
    id_field: str | None = Field(None, description="field that names a row in `duplicate_of`; "
                                 "without it, the row's position in the input")
    score_field: str | None = Field(None, description="numeric field that keep='quality' keeps the highest of")
    minhash: MinhashDedupConfig = Field(
        MinhashDedupConfig(ngram=5), description="word 5-grams: documents, not short tickets"
    )
    batch_size: int = Field(2000, ge=1, description="rows a worker fingerprints at once: "
                            "about 1 MB of signatures, enough to amortize a round trip")

    @model_validator(mode="after")
    def _score_only_for_quality(self) -> DedupeFileConfig:
        if (self.minhash.keep == "quality") != (self.score_field is not None):
            raise ValueError("keep='quality' needs a score_field, and a score_field is read only by keep='quality'")
        return self


@dataclass
class Fingerprints:
    """One batch's readable rows (position in IN, signature top bits, exact key, length,
    score, id) and its broken rows as (position, reason, raw line or None)."""

    rows: np.ndarray
    signatures: np.ndarray
    exact_keys: np.ndarray
    lengths: np.ndarray
    scores: np.ndarray
    ids: list[Any]
    broken: list[tuple[int, str, str | None]]


_CONTENT_KEYS = ("content", "value")  # TRL's, ShareGPT's
_SYSTEM_ROLES = ("system",)


def chat_text(turns: list) -> str | None:
    """The text of a chat's turns, system turns left out; None if `turns` is not a chat."""
    texts = []
    for turn in turns:
        if not isinstance(turn, dict):
            return None
        content = next((turn[key] for key in _CONTENT_KEYS if key in turn), None)
        if not isinstance(content, str):
            return None
        if turn.get("role", turn.get("from")) not in _SYSTEM_ROLES:
            texts.append(content)
    return "\n\n".join(texts)


def field_text(value: Any) -> str | None:
    return chat_text(value) if isinstance(value, list) else value if isinstance(value, str) else None


def _field_problem(record: Any, config: DedupeFileConfig) -> str | None:
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    text = record.get(config.text_field)
    if text is None:
        return f"no text in field {config.text_field!r}"
    if isinstance(text, list) and field_text(text) is None:
        return f"field {config.text_field!r} is a list but not a chat of role/content or from/value turns"
    if not isinstance(text, (str, list)):
        return f"field {config.text_field!r} is {type(text).__name__}, not text"
    if config.id_field is not None and record.get(config.id_field) is None:
        return f"no id in field {config.id_field!r}"
    if config.score_field is not None:
        score = record.get(config.score_field)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            return f"field {config.score_field!r} is {type(score).__name__}, not a number"
    return None


def fingerprint(rows: list[int], texts: list[str], scores: list[float] | None, ids: list[Any],
                broken: list[tuple[int, str, str | None]], config: DedupeFileConfig) -> Fingerprints:
    # 64 bits of the normalized text: two distinct texts collide with probability 2^-64.
    exact_keys = np.fromiter(
        (xxhash.xxh3_64_intdigest(" ".join(normalized_words(text)).encode()) for text in texts), np.uint64, len(texts)
    )
    # The top 32 bits of each slot: half the memory; unequal slots then collide with
    # probability 2^-32, which moves an estimated Jaccard by about 3e-8.
    compact = (batch_signatures(texts, config.minhash) >> np.uint64(32)).astype(np.uint32)
    return Fingerprints(
        np.array(rows, np.int64), compact, exact_keys, np.array([len(t) for t in texts], np.int64),
        np.array(scores if scores is not None else [0.0] * len(texts), np.float64), ids, broken,
    )


def fingerprint_jsonl_lines(lines: list[tuple[int, bytes]], config: DedupeFileConfig) -> Fingerprints:
    rows, texts, scores, ids, broken = [], [], [], [], []
    for number, line in lines:
        try:
            record = json.loads(line)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
            broken.append((number, f"not JSON: {error}", line.decode(errors="replace").rstrip("\n")))
            continue
        problem = _field_problem(record, config)
        if problem is not None:
            broken.append((number, problem, line.decode(errors="replace").rstrip("\n")))
            continue
        rows.append(number)
        texts.append(field_text(record[config.text_field]))
        scores.append(record[config.score_field] if config.score_field else 0.0)
        ids.append(record[config.id_field] if config.id_field else number)
    return fingerprint(rows, texts, scores, ids, broken, config)


def fingerprint_parquet_rows(batch: tuple[int, list[str | None], list[float | None] | None],
                             config: DedupeFileConfig) -> Fingerprints:
    start, column, score_column = batch
    rows, texts, scores, broken = [], [], [], []
    for offset, value in enumerate(column):
        score = score_column[offset] if score_column is not None else 0.0
        text = None if value is None else field_text(value)
        if value is None:
            broken.append((start + offset, f"no text in field {config.text_field!r}", None))
        elif text is None:
            broken.append((start + offset, f"field {config.text_field!r} is not a chat of role/content or "
                                           "from/value turns", None))
        elif score is None:
            broken.append((start + offset, f"no score in field {config.score_field!r}", None))
        else:
            rows.append(start + offset)
            texts.append(text)
            scores.append(score)
    return fingerprint(rows, texts, scores, rows, broken, config)


def jsonl_batches(path: Path, batch_size: int) -> Iterator[list[tuple[int, bytes]]]:
    """Non-blank lines with their 1-based numbers, `batch_size` at a time."""
    batch = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                batch.append((number, line))
                if len(batch) == batch_size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def check_parquet_columns(path: Path, config: DedupeFileConfig) -> None:
    schema = pl.read_parquet_schema(path)
    wanted = [(config.text_field, "text", lambda t: t == pl.String or _is_chat(t)),
              (config.score_field, "score", lambda t: t.is_numeric()),
              (config.id_field, "id", lambda t: True)]
    for name, role, fits in wanted:
        if name is None:
            continue
        if name not in schema:
            raise ValueError(f"{path}: no {role} column {name!r}; its columns are {', '.join(schema)}")
        if not fits(schema[name]):
            raise ValueError(f"{path}: {role} column {name!r} is {schema[name]}, not {role}")


def _is_chat(dtype: pl.DataType) -> bool:
    return (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)
            and any(field.name in _CONTENT_KEYS and field.dtype == pl.String for field in dtype.inner.fields))


def parquet_batches(path: Path, config: DedupeFileConfig) -> Iterator[tuple[int, list, list | None]]:
    columns = [config.text_field] + ([config.score_field] if config.score_field else [])
    start = 0
    for frame in pl.scan_parquet(path).select(columns).collect_batches(chunk_size=config.batch_size):
        scores = frame[config.score_field].to_list() if config.score_field else None
        yield start, frame[config.text_field].to_list(), scores
        start += frame.height


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _write_jsonl_outputs(path: Path, out: Path, removed: dict[int, dict], broken_lines: set[int]) -> None:
    kept_path, removed_path = out / "kept.jsonl", out / "removed.jsonl"
    with path.open("rb") as lines, _temporary(kept_path).open("wb") as kept, \
            _temporary(removed_path).open("w") as removed_file:
        for number, line in enumerate(lines, 1):
            if not line.strip() or number in broken_lines:
                continue
            if number in removed:
                removed_file.write(json.dumps({**json.loads(line), **removed[number]}, ensure_ascii=False) + "\n")
            else:
                kept.write(line if line.endswith(b"\n") else line + b"\n")
    os.replace(_temporary(kept_path), kept_path)
    os.replace(_temporary(removed_path), removed_path)


def _write_parquet_outputs(path: Path, out: Path, decisions: pl.DataFrame, broken: pl.DataFrame,
                           config: DedupeFileConfig) -> None:
    source = pl.scan_parquet(path).with_row_index("__row").with_columns(pl.col("__row").cast(pl.Int64))
    decisions = decisions.lazy()
    if config.id_field is not None:
        representatives = source.select(pl.col("__row").alias("__keeper"), pl.col(config.id_field).alias("duplicate_of"))
        decisions = decisions.join(representatives, on="__keeper", how="left", maintain_order="left")
    else:
        decisions = decisions.with_columns(duplicate_of=pl.col("__keeper"))
    decisions = decisions.select("__row", "duplicate_of", "similarity", "method")
    set_aside = pl.concat([decisions.select("__row"), broken.lazy().select("__row")])
    outputs = {
        "kept": source.join(set_aside, on="__row", how="anti", maintain_order="left"),
        "removed": source.join(decisions, on="__row", how="inner", maintain_order="left"),
        "broken": source.join(broken.lazy(), on="__row", how="inner", maintain_order="left"),
    }
    for name, frame in outputs.items():
        target = out / f"{name}.parquet"
        frame.drop("__row").sink_parquet(_temporary(target))
        os.replace(_temporary(target), target)


def dedupe_file(path: Path, out: Path, config: DedupeFileConfig, processes: int | None = None,
                map_batches: Callable[[Callable, Iterator], Iterator] | None = None) -> dict:
    """Dedupe IN into DIR as the module docstring describes; return the summary.

    `map_batches(work, batches)` yields `work(batch)` for every batch, in order: by
    default this machine's processes; `flows/dedupe_flow.py` passes one that runs them as
    Prefect tasks, on a Dask cluster when asked."""
    path, out = Path(path), Path(out)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() not in JSONL_SUFFIXES + (".parquet",):
        raise ValueError(f"{path}: expected a .jsonl, .ndjson or .parquet file")
    missing = [folder for folder in [out.parent, *out.parent.parents] if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        summary = _dedupe_into(path, partial_dir, config, processes, map_batches)
    except BaseException as error:
        shutil.rmtree(partial_dir, ignore_errors=True)
        for folder in missing:  # innermost first: the folders made for DIR, now empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, pl.exceptions.PolarsError):
            raise ValueError(f"{path}: cannot read as parquet: {str(error).splitlines()[0]}") from None
        raise
    usual_mode(partial_dir, directory=True)
    _move_outputs(partial_dir, out)
    return summary


def _move_outputs(partial_dir: Path, out: Path) -> None:
    """A new DIR is the temporary folder renamed; into an existing one the files are moved
    one by one, summary.json last."""
    if not out.exists():
        os.replace(partial_dir, out)
        return
    for name in sorted(os.listdir(partial_dir), key=lambda name: name == "summary.json"):
        os.replace(partial_dir / name, out / name)
    partial_dir.rmdir()


def _dedupe_into(path: Path, out: Path, config: DedupeFileConfig, processes: int | None,
                 map_batches: Callable[[Callable, Iterator], Iterator] | None) -> dict:
    is_jsonl = path.suffix.lower() in JSONL_SUFFIXES
    started = time.perf_counter()

    if is_jsonl:
        work = partial(fingerprint_jsonl_lines, config=config)
        batches = jsonl_batches(path, config.batch_size)
    else:
        check_parquet_columns(path, config)
        work = partial(fingerprint_parquet_rows, config=config)
        batches = parquet_batches(path, config)
    parts, broken = [], []
    broken_path = out / f"broken.{'jsonl' if is_jsonl else 'parquet'}"
    # JSONL's broken lines are written as they come; parquet's are copied whole in the second pass.
    with _temporary(broken_path).open("w") if is_jsonl else contextlib.nullcontext() as broken_file:
        mapped = map_batches(work, batches) if map_batches else map_in_processes(work, batches, processes)
        for part in mapped:
            parts.append(part)
            broken += [(row, reason) for row, reason, _ in part.broken]
            for line, reason, raw in part.broken if is_jsonl else ():
                broken_file.write(json.dumps({"line": line, "reason": reason, "raw": raw}, ensure_ascii=False) + "\n")
    rows = np.concatenate([p.rows for p in parts]) if parts else np.empty(0, np.int64)
    if not len(rows) and broken:
        _temporary(broken_path).unlink(missing_ok=True)
        position, reason = broken[0]
        raise ValueError(f"{path}: no row has a readable text field {config.text_field!r}; "
                         f"{'line' if is_jsonl else 'row'} {position}: {reason}")
    if is_jsonl:
        os.replace(_temporary(broken_path), broken_path)
    fingerprinted = time.perf_counter()

    exact_keys = np.concatenate([p.exact_keys for p in parts]) if parts else np.empty(0, np.uint64)
    signatures = (np.concatenate([p.signatures for p in parts]) if parts
                  else np.empty((0, config.minhash.num_perm), np.uint32))
    priority = None
    if config.minhash.keep == "longest" and parts:
        priority = np.concatenate([p.lengths for p in parts])
    elif config.minhash.keep == "quality" and parts:
        priority = np.concatenate([p.scores for p in parts])
    found = cluster_near_duplicates(signatures, config.minhash, priority, candidate_pairs(exact_keys[:, None]))
    removed = found.removed
    keepers = found.representative[removed]
    methods = np.where(exact_keys[removed] == exact_keys[keepers], "exact", "near")
    clustered = time.perf_counter()

    if is_jsonl:
        ids = [i for p in parts for i in p.ids]
        decisions = {
            int(rows[r]): {"duplicate_of": ids[k], "similarity": round(float(found.similarity[r]), 4), "method": str(m)}
            for r, k, m in zip(removed, keepers, methods)
        }
        _write_jsonl_outputs(path, out, decisions, {row for row, _ in broken})
    else:
        decisions = pl.DataFrame({
            "__row": rows[removed], "__keeper": rows[keepers],
            "similarity": found.similarity[removed].round(4), "method": methods.astype(str),
        }, schema={"__row": pl.Int64, "__keeper": pl.Int64, "similarity": pl.Float64, "method": pl.String})
        broken_frame = pl.DataFrame({"__row": [r for r, _ in broken], "reason": [why for _, why in broken]},
                                    schema={"__row": pl.Int64, "reason": pl.String})
        _write_parquet_outputs(path, out, decisions, broken_frame, config)
    finished = time.perf_counter()

    keeper_sizes = found.cluster_size[found.representative == np.arange(len(rows))]
    summary = {
        "input": str(path),
        "rows": int(len(rows) + len(broken)),
        "kept": int(len(rows) - len(removed)),
        "removed": {"exact": int((methods == "exact").sum()), "near": int((methods == "near").sum())},
        "broken": len(broken),
        "clusters": {
            "with_duplicates": int((keeper_sizes > 1).sum()),
            "size_histogram": {str(size): count for size, count in sorted(Counter(keeper_sizes[keeper_sizes > 1].tolist()).items())},
        },
        "duplicate_of": (f"field {config.id_field!r} of the kept row" if config.id_field
                         else "line number of the kept row in the input (from 1)" if is_jsonl
                         else "row index of the kept row in the input (from 0)"),
        "lsh": dict(zip(("bands", "rows"), config.minhash.bands())),
        "config": config.model_dump(mode="json"),
        "timings_s": {"fingerprint": round(fingerprinted - started, 3), "cluster": round(clustered - fingerprinted, 3),
                      "write": round(finished - clustered, 3), "total": round(finished - started, 3)},
        "rows_per_s": round(len(rows) / max(finished - started, 1e-9), 1),
    }
    summary_path = out / "summary.json"
    _temporary(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(_temporary(summary_path), summary_path)
    return summary
