"""Rebuild the demo gold sets' labeling database and lock them: the record of how
`gold/sets/{support_triage,invoice_extraction,text_to_sql,general_regression}/v1`, the
seed set `gold/sets/support_triage_seed/v1` and the free-text set `gold/sets/support_reply/v1`
were made.

    python -m gold.demo.build_demo_sets [--db gold/work/demo-labeling.sqlite3] [--sets NAME ...] [--lock]

    # the seed set: built here, locked by crucible, which proves it disjoint from the eval sets
    python -m gold.demo.build_demo_sets --db gold/work/seed-labeling.sqlite3 --sets support_triage_seed
    crucible gold lock support_triage_seed --as adjudicator --db gold/work/seed-labeling.sqlite3

The inputs, all in this folder, written by hand for the demo (not by the template
generators), for each task's set:
- `<rows file>`: the inputs, each with its author's label and a note for hard cases:
  `support_triage_tickets.jsonl` (130 tickets), `invoice_extraction_documents.jsonl` (44
  invoices and receipts), `text_to_sql_questions.jsonl` (48 questions about the shop),
  `support_triage_seed_tickets.jsonl` (38 tickets for the triage seed set, written after
  and apart from the eval tickets, spread over every category, priority, needs_human and
  the order-id decoys), `support_reply_tickets.jsonl` (34 tickets, each labelled with a
  reply in the house voice and its checks: `datagen/foundation/text_checks.py`);
- `<set>_second_labels.jsonl`: a second labeler's labels of the same inputs, made from the
  set's guidelines alone without seeing the author's;
- `<set>_adjudications.jsonl` (when there are any): the reviewer's decision on every input
  whose two labels disagree (`{"index", "answer", "note"}` or `{"index", "discard":
  reason}`); the triage labelers agreed on every ticket, so it has none;

and `general_regression_rows.jsonl`: 90 general prompts with checkable answers.

Everything goes through the same store calls as the web page (import, two submitted
labels per ticket, review by a third person who labeled none of them), so the manifest's
agreement figures are the measured agreement of the two labelers.

A seed set (`purpose: seed`, `gold/seed_sets.py`) is created and labeled the same way,
but this script does not lock it: gold sits below the contamination audit that must
prove a seed set disjoint from the task's eval sets before it is locked, and `crucible
gold lock` is what hands that audit in. The seed tickets' two label passes were written
by one author session, the second from the text and the guidelines alone; they
disagreed on one product, adjudicated in `support_triage_seed_adjudications.jsonl`.

The free-text set's two passes were written the same way, one author session, the second
reply and checks from the ticket and the guidelines alone. Their replies differ on every
ticket, as two good replies do; a label pair goes to review when its checks differ (the
task's `compare_labels`), which six did, adjudicated in `support_reply_adjudications.jsonl`.
It was locked with `crucible gold lock support_reply --as adjudicator --db <its db>`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gold.gold_sets import EVAL, GOLD_ROOT, SEED
from gold.import_records import import_records
from gold.labeling_store import LabelingStore, User
from gold.lock_gold_set import lock_gold_set
from gold.people import add_user
from gold.signing import default_key_path, load_signing_key

HERE = Path(__file__).parent
AUTHOR, SECOND, REVIEWER = User("author", "labeler"), User("second-labeler", "labeler"), User("adjudicator", "reviewer")
REGRESSION = "general_regression"


@dataclass(frozen=True)
class TaskSet:
    """One task's demo gold set: its name, its task, and the file of its authored rows."""

    name: str
    task_path: str
    rows: str
    source: str  # where the texts came from, as the store records it
    purpose: str = EVAL  # or SEED: rows builds take as few-shot turns, seeds and anchors


TASK_SETS = (
    TaskSet("support_triage", "datagen.tasks.support_triage:TASK", "support_triage_tickets.jsonl",
            "handwritten-demo-tickets"),
    TaskSet("invoice_extraction", "datagen.tasks.invoice_extraction:TASK", "invoice_extraction_documents.jsonl",
            "handwritten-demo-invoices"),
    TaskSet("text_to_sql", "datagen.tasks.text_to_sql:TASK", "text_to_sql_questions.jsonl",
            "handwritten-demo-questions"),
    TaskSet("support_triage_seed", "datagen.tasks.support_triage:TASK", "support_triage_seed_tickets.jsonl",
            "handwritten-demo-seed-tickets", SEED),
    TaskSet("support_reply", "datagen.tasks.support_reply:TASK", "support_reply_tickets.jsonl",
            "handwritten-demo-reply-tickets"),
)
DEFAULT_SETS = ("support_triage", "invoice_extraction", "text_to_sql", REGRESSION)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _import_texts(store: LabelingStore, gold_set: str, texts: list[str], source: str) -> list[int]:
    # Import only the text: the author's label must not ride along in the provenance.
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        handle.writelines(json.dumps({"text": text, "written_for": "crucible demo gold set"}) + "\n" for text in texts)
    result = import_records(store, "build_demo_sets", gold_set, Path(handle.name), source=source)
    Path(handle.name).unlink()
    if result.rejected:
        raise SystemExit(f"{gold_set}: {len(result.rejected)} rows not imported: {result.rejected[:3]}")
    return result.imported


def build_task_set(store: LabelingStore, task_set: TaskSet) -> None:
    """Import the inputs, submit both labels of each, and review: agreed labels are approved
    as the author's, disagreements as the adjudication says (one is required for each)."""
    name = task_set.name
    authored = _lines(HERE / task_set.rows)
    second = {row["index"]: row for row in _lines(HERE / f"{name}_second_labels.jsonl")}
    adjudications = HERE / f"{name}_adjudications.jsonl"
    decisions = {row["index"]: row for row in _lines(adjudications)} if adjudications.is_file() else {}
    store.create_set("build_demo_sets", name, task_set.task_path, 2, task_set.purpose)
    ids = _import_texts(store, name, [row["text"] for row in authored], task_set.source)
    for index, (record_id, row) in enumerate(zip(ids, authored)):
        store.save_label(AUTHOR, name, record_id, answer=row["label"], note=row["note"], submit=True,
                         base_version=None)
        store.save_label(SECOND, name, record_id, answer=second[index]["label"], note=second[index]["note"],
                         submit=True, base_version=None)
        record = store.record_view(REVIEWER, name, record_id)
        decision = decisions.get(index)
        if record["status"] == "in_review" and decision is None:
            raise SystemExit(f"{name} row {index} needs an adjudication ({record['review_reason']})")
        if decision and decision.get("discard"):
            store.discard(REVIEWER, name, record_id, reason=decision["discard"], base_version=record["version"])
        elif decision:
            store.approve(REVIEWER, name, record_id, answer=decision["answer"], note=decision.get("note"),
                          base_version=record["version"])
        else:  # both labels agree on every compared field; the author's wording is kept (a summary, a query)
            store.approve(REVIEWER, name, record_id, answer=row["label"], base_version=record["version"])


def build_regression(store: LabelingStore) -> None:
    rows = _lines(HERE / "general_regression_rows.jsonl")
    store.create_set("build_demo_sets", REGRESSION, "gold.regression_schema:GENERAL_REGRESSION", 1)
    ids = _import_texts(store, REGRESSION, [row["prompt"] for row in rows], "handwritten-regression-prompts")
    for record_id, row in zip(ids, rows):
        store.save_label(AUTHOR, REGRESSION, record_id, answer=row["reference"], note=row["note"], submit=True,
                         base_version=None)
        version = store.record_view(REVIEWER, REGRESSION, record_id)["version"]
        store.approve(REVIEWER, REGRESSION, record_id, answer=row["reference"], base_version=version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("gold/work/demo-labeling.sqlite3"))
    parser.add_argument("--gold-root", type=Path, default=GOLD_ROOT)
    parser.add_argument("--sets", nargs="+", choices=[s.name for s in TASK_SETS] + [REGRESSION],
                        default=list(DEFAULT_SETS), help="the sets to build (default: the eval sets)")
    parser.add_argument("--lock", action="store_true", help="lock the sets built as their next version")
    parser.add_argument("--key", type=Path, default=None,
                        help="the signing key to lock with (default: as `crucible gold lock`); the gold root must "
                        "trust it")
    args = parser.parse_args(argv)
    seeds = [s.name for s in TASK_SETS if s.name in args.sets and s.purpose == SEED]
    if args.lock and seeds:
        raise SystemExit(f"{', '.join(seeds)}: a seed set is locked by `crucible gold lock NAME --as "
                         f"{REVIEWER.name} --db {args.db}`, which proves it disjoint from the eval sets first")
    key = load_signing_key(args.key or default_key_path(), REVIEWER.name) if args.lock else None
    if args.db.exists():
        raise SystemExit(f"{args.db} exists: this script builds a fresh database; move it away first")
    store = LabelingStore(args.db)
    for user in (AUTHOR, SECOND, REVIEWER):
        add_user(store, "build_demo_sets", user.name, user.role)  # secrets unused: nobody logs in
    for task_set in TASK_SETS:
        if task_set.name in args.sets:
            build_task_set(store, task_set)
    if REGRESSION in args.sets:
        build_regression(store)
    for name in args.sets:
        print(name, json.dumps(store.progress(name)["by_status"]))
        if args.lock:
            print("locked", lock_gold_set(store, REVIEWER, name, args.gold_root, key))
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
