"""What a gold set is on disk, and how its labels are shaped.

A gold set is a folder `gold/sets/<set>/`: its `GUIDELINES.md` (what labelers follow)
and, once locked, immutable versions `v1/`, `v2/`, ... (`lock_gold_set.py`). Labels in
progress live in the labeling database (`labeling_store.py`), not here.

A set has a purpose, chosen when it is created and kept for good: `eval` (rows that
measure fine-tunes and are never trained on) or `seed` (rows that seed a build: the
teacher's few-shot turns, self-generation's seed inputs, SFT anchor rows; see
`seed_sets.py`). Versions locked before sets had a purpose are eval sets.

A set's labels follow a task's answer schema: the set names the task by import path
(`datagen.tasks.support_triage:TASK`), and anything with `name`, `answer_schema` (a
pydantic model) and `compare(answer, reference) -> [fields that differ]` will do. The
labelers' form is built from the schema and agreement is judged by `compare`, the same
function that scores models against the gold answer, so "two labelers agree" and "the
model is right" mean the same thing. A text task (`Task.answer_format`) is the exception:
its labels are a reference reply and checks, a model's reply is scored by the checks, and
two labels are compared by `Task.compare_labels` (do they hold the same checks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, get_args

from pydantic import BaseModel

from datagen.foundation.task import Task, import_task

GOLD_ROOT = Path("gold/sets")
# The layout of a set folder: the guidelines labelers follow, one folder per locked
# version (each holding the three files below), and the signed list of versions.
GUIDELINES = "GUIDELINES.md"
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
SIGNED_VERSIONS = "versions.json"
VERSION_FOLDER = re.compile(r"^v(\d+)$")
# Lowercase, digits, `_` and `-`: a set name becomes a folder name and part of URLs, so
# nothing that could climb out of the gold root (`..`, `/`) or need quoting is allowed.
SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
Purpose = Literal["eval", "seed"]
PURPOSES: tuple[str, ...] = get_args(Purpose)
EVAL, SEED = PURPOSES


class GoldSetError(ValueError):
    """A gold set that cannot be used as asked; the message names the set or file."""


def check_set_name(name: str) -> str:
    if not SET_NAME.match(name):
        raise GoldSetError(f"{name!r} is not a gold set name: use lowercase letters, digits, '_' and '-' "
                           "(at most 64, starting with a letter or digit)")
    return name


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise GoldSetError(f"{purpose!r} is not a gold set purpose: use {' or '.join(PURPOSES)}")
    return purpose


def manifest_purpose(manifest: dict) -> str:
    """A locked version's purpose; a manifest written before sets had one is an eval set's."""
    return manifest.get("purpose", EVAL)


def set_dir(gold_root: Path, name: str) -> Path:
    return Path(gold_root) / check_set_name(name)


def version_folders(set_folder: Path) -> list[tuple[int, Path]]:
    """Every `v<N>` folder of a set, oldest first (locked or not: verification says)."""
    if not Path(set_folder).is_dir():
        return []
    return sorted((int(match.group(1)), path) for path in Path(set_folder).iterdir()
                  if path.is_dir() and (match := VERSION_FOLDER.match(path.name)))


@dataclass(frozen=True)
class LabelSchema:
    """What labeling needs of a task; `datagen.foundation.task.Task` is one."""

    name: str
    answer_schema: type[BaseModel]
    compare: Callable[[dict, dict], list[str]]


def load_label_schema(path: str) -> LabelSchema:
    try:
        task = import_task(path)
    except ValueError as error:
        raise GoldSetError(f"task {path}: {error}") from None
    missing = [name for name in ("name", "answer_schema", "compare") if not hasattr(task, name)]
    if missing:
        raise GoldSetError(f"task {path} has no {', '.join(missing)}: a gold set's task needs a name, "
                           "an answer_schema and a compare function")
    compare = task.compare_labels if isinstance(task, Task) and task.compare_labels is not None else task.compare
    return LabelSchema(task.name, task.answer_schema, compare)


@dataclass(frozen=True)
class FormField:
    """One field of the labelers' form, chosen from the schema's JSON type."""

    name: str
    title: str
    kind: Literal["select", "checkbox", "text", "json", "longtext", "checks"]
    options: tuple[str, ...] = ()
    nullable: bool = False  # an empty text box means null
    description: str = ""

    @property
    def categorical(self) -> bool:
        """Fields that Cohen's kappa is computed for: a fixed set of values."""
        return self.kind in ("select", "checkbox")


# The editors a field may ask for by its schema's `x-form` (`text_checks.TextReference`):
# a text area for a reply, and the checks editor, a row of inputs per check.
FORM_HINTS = ("longtext", "checks")


def form_fields(answer_schema: type[BaseModel]) -> list[FormField]:
    """A select for an enum, a checkbox for a bool, a text box for a (nullable) string, the
    editor a field's `x-form` names, and a JSON editor for anything else."""
    schema = answer_schema.model_json_schema()
    fields = []
    for name, spec in schema["properties"].items():
        choices = spec.get("anyOf", [spec])
        types = [choice for choice in choices if choice.get("type") != "null"]
        nullable = len(types) < len(choices)
        title, description = spec.get("title", name), spec.get("description", "")
        only = _resolve(types[0], schema) if len(types) == 1 else {}
        if spec.get("x-form") in FORM_HINTS:
            fields.append(FormField(name, title, spec["x-form"], description=description))
        elif "enum" in only:
            options = tuple(str(value) for value in only["enum"])
            fields.append(FormField(name, title, "select", options, nullable, description))
        elif only.get("type") == "boolean" and not nullable:
            fields.append(FormField(name, title, "checkbox", description=description))
        elif only.get("type") == "string":
            fields.append(FormField(name, title, "text", nullable=nullable, description=description))
        else:
            fields.append(FormField(name, title, "json", nullable=nullable, description=description))
    return fields


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    # Enums of a named type are `$ref`s into `$defs`.
    ref = spec.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else spec
