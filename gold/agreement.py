"""How far independent labels agree, per field, per labeler and per set.

Input: the submitted labels of a set (`LabelingStore.submitted_labels`: record, labeler,
answer, and the approved final answer where there is one) and the task's form fields and
`compare`. Output, for every field:

- `agreement`: the share of label pairs on the same record that agree under the task's
  own `compare` (the rule that scores models too: "earbuds" agrees with "wireless
  earbuds"); a free-text field the task does not compare always agrees by that rule,
  so `identical` is given beside it;
- `identical`: the share of pairs with exactly equal values;
- `kappa`: for categorical fields (enum, bool), Cohen's kappa (scikit-learn's
  `cohen_kappa_score`) per pair of labelers over the records both labeled, and for the
  set their mean weighted by shared records. Kappa corrects agreement for chance: 0.8 and
  above is the usual bar for a reliable label (Landis & Koch 1977 call 0.61-0.80
  substantial, 0.81-1 almost perfect). It is None where undefined (a pair that only ever
  used one value).

Per labeler: the same figures over the pairs they are in, and `vs_final`, the share of
their labels that match the reviewer's approved answer, field by field. Labels that
propose discarding a record have no answer and are left out.

A text set's checks field (`check_agreement.py`) adds a field per check kind
(`checks.must_mention`: the label's checks of that kind), with agreement and kappa like
any categorical field, and `cross_pass` beside the checks field's and each kind's figures:
how often one labeler's reply passes the checks the other wrote.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Callable

from sklearn.metrics import cohen_kappa_score

from gold.check_agreement import cross_pass, with_check_kinds
from gold.gold_sets import FormField


def _share(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def _kappa(left: list[str], right: list[str]) -> float | None:
    if not left:
        return None
    value = cohen_kappa_score(left, right) if len(set(left) | set(right)) > 1 else math.nan
    return None if math.isnan(value) else round(float(value), 4)


def _weighted_mean(values: list[tuple[float | None, int]]) -> float | None:
    known = [(value, weight) for value, weight in values if value is not None]
    total = sum(weight for _, weight in known)
    return round(sum(value * weight for value, weight in known) / total, 4) if total else None


def agreement(labels: list[dict], fields: list[FormField], compare: Callable[[dict, dict], list[str]]) -> dict:
    checks_fields = [field.name for field in fields if field.kind == "checks"]
    crossed = cross_pass(labels) if checks_fields else None
    labels, fields, compare = with_check_kinds(labels, fields, compare)
    answered = [label for label in labels if label["answer"] is not None and not label.get("discard_reason")]
    by_record: dict[int, list[dict]] = defaultdict(list)
    for label in answered:
        by_record[label["record_id"]].append(label)

    agree: dict[str, list[bool]] = defaultdict(list)
    same: dict[str, list[bool]] = defaultdict(list)
    mine_agree: dict[tuple[str, str], list[bool]] = defaultdict(list)
    mine_same: dict[tuple[str, str], list[bool]] = defaultdict(list)
    pair_values: dict[tuple[str, str], dict[str, tuple[list, list]]] = defaultdict(lambda: defaultdict(lambda: ([], [])))
    pair_records: dict[tuple[str, str], int] = defaultdict(int)
    for record_labels in by_record.values():
        for a, b in combinations(sorted(record_labels, key=lambda label: label["labeler"]), 2):
            differ = set(compare(a["answer"], b["answer"]))
            pair = (a["labeler"], b["labeler"])
            pair_records[pair] += 1
            for field in fields:
                left, right = a["answer"].get(field.name), b["answer"].get(field.name)
                hit, identical = field.name not in differ, left == right
                agree[field.name].append(hit)
                same[field.name].append(identical)
                for labeler in pair:
                    mine_agree[labeler, field.name].append(hit)
                    mine_same[labeler, field.name].append(identical)
                if field.categorical:
                    pair_values[pair][field.name][0].append(str(left))
                    pair_values[pair][field.name][1].append(str(right))

    pairs = []
    for pair, count in sorted(pair_records.items()):
        kappas = {field.name: _kappa(*pair_values[pair][field.name]) for field in fields if field.categorical}
        pairs.append({"labelers": list(pair), "records": count, "kappa": kappas})

    def kappa_over(selected: list[dict], field: str) -> float | None:
        return _weighted_mean([(pair["kappa"][field], pair["records"]) for pair in selected])

    set_fields = {}
    for field in fields:
        set_fields[field.name] = {"agreement": _share(agree[field.name]), "identical": _share(same[field.name])}
        if field.categorical:
            set_fields[field.name]["kappa"] = kappa_over(pairs, field.name)
    for name in checks_fields:
        set_fields[name]["cross_pass"] = crossed["all"]
        for kind, share in crossed.items():
            if kind != "all":
                set_fields[f"{name}.{kind}"]["cross_pass"] = share

    labelers = {}
    for name in sorted({label["labeler"] for label in answered}):
        theirs = [label for label in answered if label["labeler"] == name]
        final = [label for label in theirs if label.get("final_answer")]
        their_pairs = [pair for pair in pairs if name in pair["labelers"]]
        per_field = {}
        for field in fields:
            per_field[field.name] = {
                "agreement": _share(mine_agree[name, field.name]),
                "identical": _share(mine_same[name, field.name]),
                "vs_final": _share([field.name not in compare(label["answer"], label["final_answer"])
                                    for label in final]),
            }
            if field.categorical:
                per_field[field.name]["kappa"] = kappa_over(their_pairs, field.name)
        labelers[name] = {"labels": len(theirs), "fields": per_field}

    return {
        "labels": len(answered),
        "records_with_several_labels": sum(1 for labels_ in by_record.values() if len(labels_) > 1),
        "label_pairs": sum(pair_records.values()),
        "fields": set_fields,
        "labelers": labelers,
        "pairs": pairs,
    }
