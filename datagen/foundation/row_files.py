"""The one reader of row files (`.jsonl`, `.ndjson`, `.parquet`): every row with its line
number, and for a line that is not a JSON object, the reason, never a silent skip.

`read_rows` streams `(number, raw text or None, row or None, reason)`: a JSONL line that
is not UTF-8, not JSON or not an object comes back with `row` None and a reason such as
`invalid_json: ... at column 7`, so the caller keeps it as a reject with its line; blank
lines are skipped. A file that cannot be read at all (a missing file, a corrupt parquet
file, an unknown suffix) raises `RowFileError` naming it. Parquet rows are numbered from
0 (their index) and carry no raw text: rendering it for every row would cost more than
the few rejects need.

`read_objects` is the strict form for files crucible itself ships or writes (replay
prompts, say): the first bad line is an error naming the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl

JSONL_SUFFIXES = (".jsonl", ".ndjson")

# (line number, raw text or None, parsed row or None, reason it could not be parsed)
Row = tuple[int, str | None, dict | None, str]


class RowFileError(ValueError):
    """A row file that cannot be read at all; the message names it."""


def json_type(value: object) -> str:
    """The JSON name of a Python value's type, for messages about input."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with open(path, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            try:
                raw = data.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                shown = data.decode("utf-8", "replace").rstrip("\r\n")
                yield number, shown, None, f"invalid_utf8: at byte {error.start + 1}"
                continue
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                yield number, raw, None, f"invalid_json: {error.msg} at column {error.colno}"
                continue
            if isinstance(value, dict):
                yield number, raw, value, ""
            else:
                yield number, raw, None, f"not_an_object: line is a JSON {json_type(value)}"


def _parquet_rows(path: Path) -> Iterator[Row]:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise RowFileError(f"{path}: cannot read as parquet: {error}") from None
    for index, row in enumerate(frame.iter_rows(named=True)):
        yield index, None, row, ""


def read_rows(path: Path) -> Iterator[Row]:
    path = Path(path)
    if path.suffix == ".parquet":
        return _parquet_rows(path)
    if path.suffix in JSONL_SUFFIXES:
        return _jsonl_rows(path)
    kind = path.suffix or "suffix-less"
    raise RowFileError(f"{path}: cannot import a {kind} file; use .jsonl or .parquet")


def where(path: Path) -> str:
    """What a row's number counts in this file: lines of JSONL, rows of parquet."""
    return "row" if Path(path).suffix == ".parquet" else "line"


def read_objects(path: Path, required: tuple[str, ...], what: str) -> list[dict]:
    """Every row of a JSONL file, each a JSON object with the `required` keys; the first
    that is not is a `RowFileError` naming the file and line (`what` names the row kind)."""
    rows = []
    try:
        for number, _, row, reason in read_rows(path):
            if row is None:
                raise RowFileError(f"{path} line {number}: {reason}")
            missing = [key for key in required if key not in row]
            if missing:
                raise RowFileError(f"{path} line {number}: {what} is a JSON object with {', '.join(missing)}")
            rows.append(row)
    except OSError as error:
        raise RowFileError(f"{path}: cannot read: {error.strerror}") from None
    return rows
