"""Score a model's output against a regression-set reference (`gold/regression_schema.py`).

The match kinds, exactly as the set's guidelines state them:

- `exact`: equal after stripping, dropping one trailing `.` or `!`, collapsing whitespace
  and casefolding;
- `number`: the first number in the output (optional minus, digits with optional
  thousands commas, optional decimals) equals the answer;
- `final_number`: the number the output ends its working with equals the answer: the
  first number after the last `=` that has one after it, else the last number. Models
  restate a sum before its result ("7 + 5 = 12", "9 times 9 is 81"), so the first number
  is an operand; `=` outranks position so that a remark after the result ("12 * 3 = 36.
  That is 1 example") does not override it. This is the "flexible extract" of
  lm-evaluation-harness's GSM8K task (the last number) with the `=` of shown working
  preferred. Its known weakness: an output that only echoes the question passes when the
  answer is its last operand ("81 / 9" for 9);
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
    return None if found is None else _value(found)


def _value(found: re.Match) -> float:
    return float(found.group().replace(",", ""))


def final_number(text: str) -> float | None:
    """The first number after the last `=` followed by one; without such an `=`, the last number."""
    for equals in reversed([at for at, char in enumerate(text) if char == "="]):
        found = _NUMBER.search(text, equals + 1)
        if found is not None:
            return _value(found)
    numbers = list(_NUMBER.finditer(text))
    return _value(numbers[-1]) if numbers else None


def matches(output: str, reference: dict) -> bool:
    answer, kind = reference["answer"], reference["match"]
    if kind == "exact":
        return _normalized(output) == _normalized(answer)
    if kind == "number":
        number = first_number(output)
        return number is not None and number == float(answer)
    if kind == "final_number":
        number = final_number(output)
        return number is not None and number == float(answer)
    if kind == "contains":
        return answer.casefold() in output.casefold()
    if kind == "regex":
        return re.fullmatch(answer, output.strip()) is not None
    raise ValueError(f"unknown match kind {kind!r}")
