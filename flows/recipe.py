"""Load a YAML recipe into its pydantic model, with errors that name the file and field.

A recipe is the user's whole intent for one build. It is checked completely before any
work starts: a typo in a field name, a wrong type or an impossible value stops the run
with `<file>: <field.path>: <reason>` rather than failing an hour later.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class RecipeError(ValueError):
    pass


def load_recipe(path: Path, model: type[M]) -> M:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RecipeError(f"{path}: cannot read recipe: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise RecipeError(f"{path}: not a YAML text file: byte 0x{data[error.start]:02x} at line {line}, "
                          f"column {column} is not UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "<recipe>"
            got = f" (got {item['input']!r})" if item["type"] != "missing" and not isinstance(item["input"], dict) else ""
            problems.append(f"{path}: {field}: {item['msg']}{got}")
        raise RecipeError("invalid recipe\n" + "\n".join(problems)) from None
