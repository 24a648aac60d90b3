"""Rebuild the demo gold sets' labeling database and lock them: the record of how
`gold/sets/support_triage/v1` and `gold/sets/general_regression/v1` were made.

    python -m gold.demo.build_demo_sets [--db gold/work/demo-labeling.sqlite3] [--lock]

The inputs, all in this folder:
- `support_triage_tickets.jsonl`: 130 tickets written by hand for the demo (not by the
  template generator), each with its author's label and a note for hard cases;
- `support_triage_second_labels.jsonl`: a second labeler's labels of the same tickets,
  made from the guidelines alone without seeing the author's;
- `support_triage_adjudications.jsonl` (when there are any): the reviewer's decision on
  every ticket whose two labels disagree (`{"index", "answer", "note"}` or
  `{"index", "discard": reason}`); the demo's two labelers agreed on every ticket, so
  there is none;
- `general_regression_rows.jsonl`: 90 general prompts with checkable answers.

Everything goes through the same store calls as the web page (import, two submitted
labels per ticket, review by a third person who labeled none of them), so the manifest's
agreement figures are the measured agreement of the two labelers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from gold.gold_sets import GOLD_ROOT
from gold.import_records import import_records
from gold.labeling_store import LabelingStore, User
from gold.lock_gold_set import lock_gold_set
from gold.people import add_user
from gold.signing import default_key_path, load_signing_key

HERE = Path(__file__).parent
AUTHOR, SECOND, REVIEWER = User("author", "labeler"), User("second-labeler", "labeler"), User("adjudicator", "reviewer")
TRIAGE, REGRESSION = "support_triage", "general_regression"


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


def build_triage(store: LabelingStore) -> None:
    tickets = _lines(HERE / "support_triage_tickets.jsonl")
    second = {row["index"]: row for row in _lines(HERE / "support_triage_second_labels.jsonl")}
    adjudications = HERE / "support_triage_adjudications.jsonl"
    decisions = {row["index"]: row for row in _lines(adjudications)} if adjudications.is_file() else {}
    store.create_set("build_demo_sets", TRIAGE, "datagen.tasks.support_triage:TASK", 2)
    ids = _import_texts(store, TRIAGE, [ticket["text"] for ticket in tickets], "handwritten-demo-tickets")
    for index, (record_id, ticket) in enumerate(zip(ids, tickets)):
        store.save_label(AUTHOR, TRIAGE, record_id, answer=ticket["label"], note=ticket["note"], submit=True,
                         base_version=None)
        store.save_label(SECOND, TRIAGE, record_id, answer=second[index]["label"], note=second[index]["note"],
                         submit=True, base_version=None)
        record = store.record_view(REVIEWER, TRIAGE, record_id)
        decision = decisions.get(index)
        if record["status"] == "in_review" and decision is None:
            raise SystemExit(f"ticket {index} needs an adjudication ({record['review_reason']})")
        if decision and decision.get("discard"):
            store.discard(REVIEWER, TRIAGE, record_id, reason=decision["discard"], base_version=record["version"])
        elif decision:
            store.approve(REVIEWER, TRIAGE, record_id, answer=decision["answer"], note=decision.get("note"),
                          base_version=record["version"])
        else:  # both labels agree on every compared field; the author's summary is kept
            store.approve(REVIEWER, TRIAGE, record_id, answer=ticket["label"], base_version=record["version"])


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
    parser.add_argument("--lock", action="store_true", help="lock both sets as their next version")
    parser.add_argument("--key", type=Path, default=None,
                        help="the signing key to lock with (default: as `crucible gold lock`); the gold root must "
                        "trust it")
    args = parser.parse_args(argv)
    key = load_signing_key(args.key or default_key_path(), REVIEWER.name) if args.lock else None
    if args.db.exists():
        raise SystemExit(f"{args.db} exists: this script builds a fresh database; move it away first")
    store = LabelingStore(args.db)
    for user in (AUTHOR, SECOND, REVIEWER):
        add_user(store, "build_demo_sets", user.name, user.role)  # secrets unused: nobody logs in
    build_triage(store)
    build_regression(store)
    for name in (TRIAGE, REGRESSION):
        print(name, json.dumps(store.progress(name)["by_status"]))
        if args.lock:
            print("locked", lock_gold_set(store, REVIEWER, name, args.gold_root, key))
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
