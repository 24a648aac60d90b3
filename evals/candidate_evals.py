"""One candidate evaluated on one locked gold set, kept on disk with what produced it.

`evaluate(...)` asks the candidate every gold row (`eval_candidates.py`), scores the
outputs by code (`target_eval.py` or `regression_eval.py`) and writes the per-row
records (`<folder>/<kind>.jsonl`) and the summary (`<folder>/<kind>.json`, written last,
so its presence means the eval is whole). The summary carries a fingerprint of
everything that produced it (adapter weights, grammar, endpoint, gold set, the chats,
generation settings): a re-run whose fingerprint still holds reads the rows back instead
of generating them again, and any change evaluates afresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from datagen.foundation.hashing import canonical_json, file_sha256
from datagen.foundation.run_store import write_text_atomic
from datagen.foundation.task import Task
from datagen.serving.adapter_servers import AdapterServers
from evals.constrained_decoding import MAX_STRING_CHARS, bounded_strings
from evals.eval_candidates import Candidate, GenerationConfig, candidate_outputs, target_chats
from evals.regression_eval import regression_chats, score_regression_outputs
from evals.target_eval import score_target_outputs
from gold.gold_root import LockedGoldSet

Kind = Literal["target", "regression"]


def fingerprint(candidate: Candidate, gold: LockedGoldSet, chats: list[list[dict]], config: GenerationConfig,
                schema: type[BaseModel] | None) -> str:
    adapter = None if candidate.adapter is None else file_sha256(candidate.adapter / "adapter_model.safetensors")
    grammar = bounded_strings(schema.model_json_schema(), MAX_STRING_CHARS) if candidate.constrained and schema else None
    facts = {"name": candidate.name, "adapter": adapter, "grammar": grammar,
             "endpoint": candidate.endpoint.model_dump() if candidate.endpoint else None,
             "gold": gold.manifest["sha256"], "chats": chats, "generation": config.model_dump()}
    return hashlib.sha256(canonical_json(facts).encode()).hexdigest()


def evaluate(candidate: Candidate, kind: Kind, gold: LockedGoldSet, task: Task, model_dir: Path,
             config: GenerationConfig, folder: Path, servers: AdapterServers | None) -> tuple[list[dict], bool]:
    """(per-row records, whether they were kept from an earlier run); `servers` serve the
    models on the configured engine (None: in process)."""
    if kind == "target":
        chats = target_chats(task, candidate, gold.rows)
        max_new_tokens, schema = config.target_max_new_tokens, task.answer_schema
    else:
        chats, max_new_tokens, schema = regression_chats(gold), config.regression_max_new_tokens, None
    summary_path, rows_path = folder / f"{kind}.json", folder / f"{kind}.jsonl"
    stamp = fingerprint(candidate, gold, chats, config, schema)
    if summary_path.is_file() and json.loads(summary_path.read_text()).get("fingerprint") == stamp:
        return [json.loads(line) for line in rows_path.read_text().splitlines()], True
    started = time.monotonic()
    outputs = candidate_outputs(candidate, model_dir, chats, max_new_tokens=max_new_tokens, config=config,
                                schema=schema, servers=servers)
    seconds = round(time.monotonic() - started, 1)
    if kind == "target":
        rows, summary = score_target_outputs(task, gold, outputs, config.seed)
    else:
        rows, summary = score_regression_outputs(gold, outputs, config.seed)
    summary.update(candidate=candidate.name, fingerprint=stamp, generation_seconds=seconds)
    write_text_atomic(rows_path, "".join(json.dumps(row) + "\n" for row in rows))
    write_text_atomic(summary_path, json.dumps(summary, indent=1))  # last: its presence means the eval is whole
    return rows, False
