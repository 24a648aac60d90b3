"""How `gold/sets/general_regression/v2` was made: v1's labeling database restored, a
reviewed change, then the lock.

    python -m gold.demo.general_regression_v2 [--db gold/work/general-regression-v2.sqlite3]
    crucible gold lock general_regression --as adjudicator --db gold/work/general-regression-v2.sqlite3

v1 was locked from a labeling database that was not kept (`gold/work/` is a working
folder, never committed), so this script makes it again before changing anything:

1. the support-triage set first, exactly as `build_demo_sets.py` made it, so that the
   regression records get the numbers v1's rows name (131-220): a version's changelog
   matches rows across versions by that number;
2. the 90 regression rows as v1 locked them: each added with its locked source and
   provenance, labelled by its author with the locked answer and note, approved by the
   adjudicator; then every record is checked, field for field, to lock to v1's row, and
   the script stops if one would not;
3. the change the set's guidelines record (GUIDELINES.md, Changelog, v2): the
   adjudicator, who labelled none of them, reopens each `arithmetic` row and approves it
   with `match: final_number` and a note saying why. Nothing else changes.

Locking is left to `crucible gold lock`, with the signing key the gold root trusts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gold.demo.build_demo_sets import AUTHOR, REGRESSION, REVIEWER, SECOND, TASK_SETS, build_task_set
from gold.gold_root import GoldRoot
from gold.gold_sets import GOLD_ROOT
from gold.labeling_store import LabelingStore
from gold.lock_gold_set import locked_row
from gold.people import add_user

FROM_VERSION = "general_regression/v1"
NOTE = ("v2: final_number, not number: models restate the sum before its result (\"7 + 5 = 12\"), so the first "
        "number is an operand and every model scored 0 (GUIDELINES.md, Changelog)")
ECHO_NOTE = (" Known weakness: the answer 9 is also this prompt's last operand, so an output that only echoes "
             "\"81 / 9\" passes; kept as it is, since a reworded prompt would be a new row.")


def restore_v1(store: LabelingStore, v1_rows: list[dict]) -> None:
    store.create_set("general_regression_v2", REGRESSION, "gold.regression_schema:GENERAL_REGRESSION", 1)
    with store.transaction():
        ids = [store.add_record("general_regression_v2", REGRESSION, row["prompt"], row["source"], row["provenance"],
                                row["synthetic"]) for row in v1_rows]
    for record_id, row in zip(ids, v1_rows):
        if record_id != row["record"]:
            raise SystemExit(f"{FROM_VERSION} row {row['id'][:12]} was record {row['record']}, restored as "
                             f"{record_id}: the support-triage rows before it differ from v1's database")
        store.save_label(AUTHOR, REGRESSION, record_id, answer=row["reference"], note=row["notes"].get("author"),
                         submit=True, base_version=None)
        version = store.record_view(REVIEWER, REGRESSION, record_id)["version"]
        store.approve(REVIEWER, REGRESSION, record_id, answer=row["reference"], base_version=version)
    restored = [locked_row(record) for record in store.approved_records(REGRESSION)]
    for before, now in zip(v1_rows, restored, strict=True):
        if before != now:
            fields = sorted(key for key in before if before[key] != now.get(key))
            raise SystemExit(f"record {before['record']} would not lock as {FROM_VERSION} did: {fields} differ")


def review_arithmetic(store: LabelingStore) -> list[int]:
    """The adjudicator's change: every arithmetic row re-approved with `final_number`."""
    changed = []
    for record in store.approved_records(REGRESSION):
        answer = record["final_answer"]
        if answer["skill"] != "arithmetic":
            continue
        if answer["match"] != "number":
            raise SystemExit(f"record {record['id']} is {answer['match']}, not number: not the change this makes")
        reopened = store.reopen(REVIEWER, REGRESSION, record["id"], base_version=record["version"])
        note = NOTE + (ECHO_NOTE if record["input_text"].startswith("What is 81 / 9?") else "")
        store.approve(REVIEWER, REGRESSION, record["id"], answer=answer | {"match": "final_number"}, note=note,
                      base_version=reopened["version"])
        changed.append(record["id"])
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("gold/work/general-regression-v2.sqlite3"))
    parser.add_argument("--gold-root", type=Path, default=GOLD_ROOT)
    args = parser.parse_args(argv)
    if args.db.exists():
        raise SystemExit(f"{args.db} exists: this script builds a fresh database; move it away first")
    v1 = GoldRoot(args.gold_root, sets=[REGRESSION]).get(FROM_VERSION)  # verified and signed, or raised
    store = LabelingStore(args.db)
    try:
        for user in (AUTHOR, SECOND, REVIEWER):
            add_user(store, "general_regression_v2", user.name, user.role)  # secrets unused: nobody logs in
        build_task_set(store, TASK_SETS[0])  # support_triage: records 1-130, as in v1's database
        restore_v1(store, v1.rows)
        changed = review_arithmetic(store)
    finally:
        store.close()
    print(f"{args.db}: {FROM_VERSION} restored ({len(v1.rows)} rows, each as locked); {len(changed)} arithmetic "
          f"rows reviewed to final_number (records {changed[0]}-{changed[-1]})\n"
          f"lock it: crucible gold lock {REGRESSION} --as {REVIEWER.name} --db {args.db}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
