"""Agreement on the checks of a text set's labels (`datagen/foundation/text_checks.py`).

Two labelers of a text task write two different replies, and that is fine: the reply
shows what good looks like, and the checks are what scores a model. So agreement on a
text set is measured on the checks, three ways:

- `checks`: the share of label pairs on a record holding the same checks (the task's
  `compare_labels`: order, case and spacing of terms do not count), like any field;
- `checks.<kind>`, one per check kind: the label's checks of that kind as one value (say
  `must_mention all: refund` or `none`), so `agreement.py` gives each kind its agreement
  and Cohen's kappa like any categorical field: which kind of check the labelers write
  differently. A kind every label writes the same way (`max_words: 80` on every row) has
  agreement 1 and no kappa, which is undefined for a pair that used one value;
- `cross_pass`, overall and per kind: the share of (reply, other label) on a record where
  one labeler's reference reply passes the checks the other labeler wrote (all of them,
  or those of one kind). Each reply passes its own checks (the label is refused
  otherwise), so a miss is a check the other labeler's good reply fails: a check too
  strict, or a reply that missed a rule. It is the labelers' agreement on pass and fail.

Input: the submitted labels (`LabelingStore.submitted_labels`) and the form fields.
Output: the labels and fields with the per-kind values added, and the cross-pass share.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations, permutations
from typing import Callable

from datagen.foundation.text_checks import CHECK_KINDS, canonical_checks, check_results
from gold.gold_sets import FormField


def kind_fields(fields: list[FormField]) -> list[FormField]:
    """One categorical field per check kind of each checks field: `checks.must_mention`, ..."""
    return [FormField(f"{field.name}.{kind}", f"{field.title}: {kind}", "select",
                      description=f"the label's {kind} checks")
            for field in fields if field.kind == "checks" for kind in CHECK_KINDS]


def _kind_value(checks: list[tuple], kind: str) -> str:
    ours = [" ".join(map(str, check[1:])) for check in checks if check[0] == kind]
    return " | ".join(ours) if ours else "none"


def _with_kinds(answer: dict | None, checks_fields: list[FormField]) -> dict | None:
    if answer is None:
        return None
    added = {}
    for field in checks_fields:
        checks = canonical_checks({"reply": answer["reply"], "checks": answer[field.name]})
        added |= {f"{field.name}.{kind}": _kind_value(checks, kind) for kind in CHECK_KINDS}
    return answer | added


def with_check_kinds(labels: list[dict], fields: list[FormField], compare: Callable[[dict, dict], list[str]]
                     ) -> tuple[list[dict], list[FormField], Callable[[dict, dict], list[str]]]:
    """The labels, fields and comparison of `agreement.py`, with a field per check kind
    added; unchanged when no field is a checks field."""
    checks_fields = [field for field in fields if field.kind == "checks"]
    if not checks_fields:
        return labels, fields, compare
    added = kind_fields(checks_fields)
    names = {field.name for field in added}

    def compare_with_kinds(answer: dict, other: dict) -> list[str]:
        plain = compare({k: v for k, v in answer.items() if k not in names},
                        {k: v for k, v in other.items() if k not in names})
        return plain + [name for name in sorted(names) if answer.get(name) != other.get(name)]

    expanded = [label | {"answer": _with_kinds(label["answer"], checks_fields),
                         "final_answer": _with_kinds(label.get("final_answer"), checks_fields)} for label in labels]
    return expanded, fields + added, compare_with_kinds


def cross_pass(labels: list[dict]) -> dict[str, float | None]:
    """`all` and each check kind: the share of (one label's reply, another label on the same
    record) where the reply passes the other label's checks (of that kind); None where no
    record is labelled twice or no label has a check of the kind."""
    by_record: dict[int, list[dict]] = defaultdict(list)
    for label in labels:
        if label["answer"] is not None and not label.get("discard_reason"):
            by_record[label["record_id"]].append(label["answer"])
    hits: dict[str, list[bool]] = defaultdict(list)
    for answers in by_record.values():
        for pair in combinations(answers, 2):
            for mine, theirs in permutations(pair):
                results = check_results(mine["reply"], theirs)
                hits["all"].append(all(result.passed for result in results))
                for kind in {result.kind for result in results}:
                    hits[kind].append(all(result.passed for result in results if result.kind == kind))
    return {name: round(sum(hits[name]) / len(hits[name]), 4) if hits[name] else None
            for name in ("all", *CHECK_KINDS)}
