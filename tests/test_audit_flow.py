"""The audit flow, sharded on threads or on a Dask LocalCluster, finds what one audit
of the whole training set finds."""

import json

import pytest

from evals.audit_inputs import read_gold, read_train
from evals.contamination_audit import AuditConfig, audit
from flows.audit_flow import audit_flow
from flows.task_runners import task_runner
from tests.locked_gold import lock_gold_rows

pytestmark = pytest.mark.usefixtures("prefect_harness")

GOLD = [
    "My standing desk arrived with a cracked leg and the wobble makes it unusable for work.",
    "I was charged twice for the same pair of running shoes on my card this week.",
]
TRAIN_NOISE = [f"Ticket {i}: my parcel number {i} has not arrived and I would like an update soon." for i in range(30)]


@pytest.mark.parametrize("dask", [None, "local"])
def test_sharded_audit_flags_what_a_whole_audit_flags(tmp_path, dask):
    gold = lock_gold_rows(tmp_path / "sets", "audit", "gold.regression_schema:GENERAL_REGRESSION",
                          [(p, {"answer": "-", "match": "contains", "skill": "facts"}) for p in GOLD])
    rows = TRAIN_NOISE[:12] + ["  " + GOLD[0].upper()] + TRAIN_NOISE[12:] + [
        "Hello team, " + GOLD[1] + " Please refund one of the two charges."]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": r, "response": "ok"}) + "\n" for r in rows))
    config = AuditConfig(methods=["exact", "ngram", "minhash"])
    whole = audit(read_gold(gold)[1], list(read_train(train, [])), config)

    flow = audit_flow.with_options(task_runner=task_runner(dask, 2))
    summary = flow(gold, train, tmp_path / "out", config, shard_rows=7)

    assert summary["train_rows"] == len(rows) == whole.train_rows
    assert summary["flagged_gold_rows"] == 2 == len(whole.flagged)
    report = json.loads((tmp_path / "out" / "overlap.json").read_text())
    assert report["summary"]["flagged_train_rows"] == len(whole.flagged_train) == 2
    assert (tmp_path / "out" / "overlap.html").exists()
