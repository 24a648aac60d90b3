"""Canonical hashing: the one way crucible turns values, texts and files into ids.

- `canonical_json`: sorted keys, no whitespace, so equal values give equal strings;
- `content_id`: the sha256 of a record's content parts, which is every record's `id`;
- `normalize_text` / `normalized_hash`: Unicode NFKC, case folding and collapsed
  whitespace, then sha256: two texts that differ only in those ways are the same text
  (exact dedupe, the judge's gold guard, the audit's exact match);
- `file_sha256`: a file's digest, streamed.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

_SPACE = re.compile(r"\s+")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_id(*parts: str | None) -> str:
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()


def normalize_text(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalized_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
