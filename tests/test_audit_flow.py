"""The audit flow, sharded on threads or on a Dask LocalCluster, finds what one audit
of the whole training set finds."""

import json

import pytest

from evals.contamination.audit import AuditConfig, audit
from evals.contamination.audit_inputs import read_gold, read_train
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
    sharded, unread = flow(read_gold(gold)[1], [train], config, shard_rows=7)

    assert sharded.train_rows == len(rows) == whole.train_rows and unread == []
    assert len(sharded.flagged) == 2 == len(whole.flagged)
    assert len(sharded.flagged_train) == len(whole.flagged_train) == 2
    assert {row.gold.id: row.flagged_by for row in sharded.flagged} == {row.gold.id: row.flagged_by
                                                                        for row in whole.flagged}
