"""Score a model's output against a regression-set reference (`gold/regression_schema.py`).

The four match kinds, exactly as the set's guidelines state them:

- `exact`: equal after stripping, dropping one trailing `.` or `!`, collapsing whitespace
  and casefolding;
- `number`: the first number in the output (optional minus, digits with optional
  thousands commas, optional decimals) equals the answer;
- `contains`: the casefolded answer appears in the casefolded output;
- `regex`: the stripped output fully matches the answer (Python `re`, no flags).
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def _normalized(text: str) -> str:
    text = text.strip()
    if text.endswith((".", "!")):
        text = text[:-1]
    return " ".join(text.split()).casefold()


def first_number(text: str) -> float | None:
    found = _NUMBER.search(text)
    return None if found is None else float(found.group().replace(",", ""))


def matches(output: str, reference: dict) -> bool:
    answer, kind = reference["answer"], reference["match"]
    if kind == "exact":
        return _normalized(output) == _normalized(answer)
    if kind == "number":
        number = first_number(output)
        return number is not None and number == float(answer)
    if kind == "contains":
        return answer.casefold() in output.casefold()
    if kind == "regex":
        return re.fullmatch(answer, output.strip()) is not None
    raise ValueError(f"unknown match kind {kind!r}")
