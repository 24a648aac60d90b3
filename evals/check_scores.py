"""Score a text task's replies against the checks of its gold rows, by code only.

A text task's gold label is a reference reply and checks (`datagen/foundation/text_checks.py`);
the reference shows what good looks like, and the checks are what a reply is scored on.
Every check of every gold row is run on the candidate's reply, and kept:

- per row: each check's kind, verdict and detail, and the row score `check_share`, the
  share of the row's checks the reply passes: the per-row metric the preflight's verdict
  compares (`evals/candidate_verdicts.py`, metric `check_share`). A blank reply passes
  nothing: an empty reply says nothing banned and is short, and must not score for it.
  `exact` is every check passed; `wrong_fields` the kinds of the checks failed, as a JSON
  task's records name their wrong fields;
- in the summary: the replies given (`parse_rate`, non-blank), `exact`, `check_share` with
  a bootstrap 95% interval (`target_scores.rate`'s), and the pass rate of each check kind
  over every check of that kind on the gold rows, with its Wilson 95% interval: a kind
  is on 20 to 130 rows of a small set, where a share near 0 or 1 needs Wilson's interval
  (see `rule_scores.py` for why, and the same function).

No LLM ever scores a gold row: a check is code applied to what labelers wrote.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from datagen.foundation.text_checks import CHECK_KINDS, check_results
from evals.rule_scores import share_with_interval
from evals.target_scores import bootstrap_interval, rate


def score_reply(output: str, reference: dict) -> dict[str, Any]:
    """One gold row's record of a reply: every check, its score, and the kinds it failed."""
    given = bool(output.strip())
    results = [{"kind": result.kind, "passed": given and result.passed,
                "detail": result.detail if given else "no reply"} for result in check_results(output, reference)]
    passed = sum(result["passed"] for result in results)
    return {"parsed": given, "schema_valid": given, "exact": passed == len(results),
            "check_share": round(passed / len(results), 4), "checks": results,
            "wrong_fields": list(dict.fromkeys(result["kind"] for result in results if not result["passed"]))}


def pass_rates(rows: list[dict]) -> dict[str, dict]:
    """Per check kind on these rows: passed/checks, the share and its Wilson 95% interval."""
    verdicts: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        for result in row["checks"]:
            verdicts[result["kind"]].append(result["passed"])
    return {kind: share_with_interval(sum(verdicts[kind]), len(verdicts[kind]))
            for kind in CHECK_KINDS if verdicts[kind]}


def summarize_checks(rows: list[dict], seed: int = 0) -> dict[str, Any]:
    shares = np.array([row["check_share"] for row in rows], dtype=float)
    all_checks = [result["passed"] for row in rows for result in row["checks"]]
    return {
        "rows": len(rows),
        "parse_rate": rate([row["parsed"] for row in rows], seed),
        "schema_valid_rate": rate([row["schema_valid"] for row in rows], seed),
        "exact": rate([row["exact"] for row in rows], seed),
        "check_share": {"value": round(float(shares.mean()), 4), "ci95": bootstrap_interval(shares, np.mean, seed),
                        "n": len(rows)} if len(rows) else {"value": None, "ci95": None, "n": 0},
        "checks_passed": share_with_interval(sum(all_checks), len(all_checks)),
        "check_pass_rate": pass_rates(rows),
    }
