"""Wrong queries a model could plausibly write instead of a right one, for `one_wrong_field`
pairs (`datagen/pairs/axis_rejections.py`).

Each is the right query with one slip of the kind a model makes while reading the question
right in outline: the sort turned round, the limit one more, a bound made inclusive or
exclusive, DISTINCT, a condition or the GROUP BY dropped, NOT IN made IN, SUM and AVG or
MIN and MAX swapped, a shop value ('Austin', 'kitchen', 'shipped', a price bound) replaced
by another of its kind, a date literal a year off. They are made from the text of the
query, so a query written in a style these patterns do not meet has none; whether a slip
really changes the rows is for the task's verifier to say, which runs both.
"""

from __future__ import annotations

import functools
import re

from datagen.tasks.text_to_sql_questions import slot_vocabulary

_SLIPS = (
    (r"\s+DESC\b", ""),  # the sort turned round...
    (r"\bASC\b", "DESC"),
    (r"(\bORDER\s+BY\s+[\w.]+\b)(?!\s*(?:ASC|DESC)\b)", r"\1 DESC"),  # ...either way
    (r"\bDISTINCT\s+", ""),
    (r"\bNOT\s+IN\b", "IN"),
    (r"<(?![=>])", "<="),
    (r"<=", "<"),
    (r">(?!=)", ">="),
    (r">=", ">"),
    (r"\bSUM\(", "AVG("),
    (r"\bAVG\(", "SUM("),
    (r"\bMIN\(", "MAX("),
    (r"\bMAX\(", "MIN("),
    (r"\s+AND\s+[\w.]+\s*(?:=|LIKE)\s*'[^']*'", ""),  # a condition forgotten
    (r"\s+GROUP\s+BY\s+[\w.]+", ""),  # one total instead of one per group
)


@functools.lru_cache(maxsize=1)
def _others_of_its_kind() -> dict[str | int, list[str | int]]:
    # Every city, category, customer, product, status and price bound the questions use,
    # with the other values of its kind: the shop's values, so each swapped query runs.
    others: dict[str | int, list[str | int]] = {}
    for values in slot_vocabulary().values():
        plain = [value for value in values if isinstance(value, (str, int))]
        others.update({value: [other for other in plain if other != value] for value in plain})
    return others


def _slips(sql: str) -> list[str]:
    made = [re.sub(pattern, replacement, sql, count=1, flags=re.IGNORECASE) for pattern, replacement in _SLIPS]
    made.append(re.sub(r"\bLIMIT\s+(\d+)", lambda m: f"LIMIT {int(m.group(1)) + 1}", sql, count=1,
                       flags=re.IGNORECASE))
    made.append(re.sub(r"'(\d{4})-", lambda m: f"'{int(m.group(1)) - 1}-", sql, count=1))
    others = _others_of_its_kind()
    for literal in dict.fromkeys(re.findall(r"'([^']*)'", sql)):
        made += [sql.replace(f"'{literal}'", f"'{other}'", 1) for other in others.get(literal, [])]
    for bound in re.finditer(r"([<>]=?\s*)(\d+)\b", sql):
        made += [sql[:bound.start(2)] + str(other) + sql[bound.end(2):] for other in others.get(int(bound.group(2)), [])]
    return [query for query in dict.fromkeys(made) if query != sql]


def plausible_wrong_queries(field: str, answer: dict) -> list[str]:
    """The `sql` of `answer` with one slip each, in the order of the slips above."""
    return _slips(answer["sql"]) if field == "sql" else []
