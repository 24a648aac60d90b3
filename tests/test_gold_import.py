"""Importing records to label from JSONL (gold/import_records.py, `crucible gold import`):
provenance kept, bad lines reported by number and kept aside, synthetic rows refused."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from flows.cli import main
from gold.import_records import import_records
from gold.labeling_store import LabelingStore, NotFound
from tests.gold_fixtures import NOW, RITA, TRIAGE, triage_set

REFUSED_SYNTHETIC = "; gold rows must be real (import anyway with --force-synthetic REASON)"


@pytest.fixture
def store(tmp_path):
    store = LabelingStore(tmp_path / "work" / "labeling.sqlite3", now=lambda: NOW)
    triage_set(store, tickets=())
    yield store
    store.close()


@pytest.fixture
def runs(tmp_path):
    """A crucible run whose generated prompts must never become gold rows."""
    folder = tmp_path / "runs" / "r1" / "prompts"
    folder.mkdir(parents=True)
    pl.DataFrame({"prompt": ["  Does the Standing desk come   with a cable tray? ", None],
                  "template_id": ["t1", "t2"]}).write_parquet(folder / "part-00000.parquet")
    other = tmp_path / "runs" / "r1" / "scores"
    other.mkdir()
    pl.DataFrame({"score": [0.5]}).write_parquet(other / "part-00000.parquet")  # no prompt column: skipped
    return tmp_path / "runs"


def write_lines(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def inputs(store) -> list[tuple]:
    return [tuple(row) for row in store.conn.execute(
        "SELECT id, input_text, source, synthetic, status FROM records ORDER BY id")]


def test_good_lines_are_imported_with_their_provenance(store, tmp_path, runs):
    path = write_lines(tmp_path / "tickets.jsonl",
                       '{"text": "Where is my order A-100200?", "customer": "c-17", "channel": "email"}',
                       '{"text": "The lamp arrived broken.", "customer": "c-18"}')

    result = import_records(store, "cli:rita", "triage", path, runs_root=runs)

    assert (result.imported, result.rejected, result.synthetic) == ([1, 2], [], [])
    assert inputs(store) == [(1, "Where is my order A-100200?", "tickets.jsonl", 0, "draft"),
                             (2, "The lamp arrived broken.", "tickets.jsonl", 0, "draft")]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    record = store.record_view(RITA, "triage", 1)
    assert record["provenance"] == {"customer": "c-17", "channel": "email",
                                    "imported_from": {"file": str(path), "file_sha256": digest, "line": 1}}
    assert record["synthetic"] is False
    assert store.audit_entries("triage", 2)[0] | {"seq": None} == {
        "seq": None, "at": NOW, "who": "cli:rita", "action": "import", "gold_set": "triage", "record_id": 2,
        "before": None, "after": {"input_text": "The lamp arrived broken.", "source": "tickets.jsonl",
                                  "provenance": {"customer": "c-18", "imported_from": {
                                      "file": str(path), "file_sha256": digest, "line": 2}}, "synthetic": False}}


def test_text_field_and_source_are_chosen_by_the_caller(store, tmp_path, runs):
    path = write_lines(tmp_path / "export.jsonl", '{"message": "Cancel my order please.", "text": "ignored"}')

    import_records(store, "cli:rita", "triage", path, text_field="message", source="zendesk 2026-11",
                   runs_root=runs)

    assert inputs(store) == [(1, "Cancel my order please.", "zendesk 2026-11", 0, "draft")]
    assert store.record_view(RITA, "triage", 1)["provenance"]["text"] == "ignored"


def test_bad_lines_are_reported_with_their_line_numbers_and_kept(store, tmp_path, runs):
    path = write_lines(tmp_path / "tickets.jsonl",
                       '{"text": "Where is my order A-100200?"}',
                       '{not json',
                       '',
                       '["a list", "not an object"]',
                       '{"body": "no text key"}',
                       '{"text": "   "}',
                       '{"text": "The lamp arrived broken."}')

    result = import_records(store, "cli:rita", "triage", path, runs_root=runs)

    assert result.imported == [1, 2]
    assert result.rejected == [
        {"line": 2, "raw": "{not json",
         "reason": "not JSON: Expecting property name enclosed in double quotes at column 2"},
        {"line": 4, "raw": '["a list", "not an object"]', "reason": "no string 'text'"},
        {"line": 5, "raw": '{"body": "no text key"}', "reason": "no string 'text'"},
        {"line": 6, "raw": '{"text": "   "}', "reason": "no string 'text'"},
    ]
    assert store.record_view(RITA, "triage", 2)["provenance"]["imported_from"]["line"] == 7


def test_a_row_with_crucible_provenance_is_refused_as_synthetic(store, tmp_path, runs):
    path = write_lines(tmp_path / "tickets.jsonl",
                       '{"text": "Where is my order A-100200?"}',
                       '{"text": "My parcel is late.", "run_id": "2026-11-01-demo", "template_id": "late-3"}')

    result = import_records(store, "cli:rita", "triage", path, runs_root=runs)

    assert (result.imported, result.synthetic) == ([1], [2])
    assert result.rejected == [{
        "line": 2, "raw": '{"text": "My parcel is late.", "run_id": "2026-11-01-demo", "template_id": "late-3"}',
        "reason": "synthetic: carries crucible provenance (run_id, template_id)" + REFUSED_SYNTHETIC}]
    assert [row[1] for row in inputs(store)] == ["Where is my order A-100200?"]


def test_a_forced_synthetic_row_is_imported_marked_with_the_reason(store, tmp_path, runs):
    path = write_lines(tmp_path / "tickets.jsonl", '{"text": "My parcel is late.", "run_id": "2026-11-01-demo"}')

    result = import_records(store, "cli:rita", "triage", path, runs_root=runs,
                            force_synthetic_reason="no real refund tickets yet")

    assert (result.imported, result.synthetic, result.rejected) == ([1], [1], [])
    record = store.record_view(RITA, "triage", 1)
    assert record["synthetic"] is True
    assert record["provenance"]["run_id"] == "2026-11-01-demo"
    assert record["provenance"]["synthetic_import"] == {"why": "carries crucible provenance (run_id)",
                                                 "forced_because": "no real refund tickets yet"}


def test_a_prompt_of_a_crucible_run_is_refused_even_reworded_in_case_and_spacing(store, tmp_path, runs):
    path = write_lines(tmp_path / "tickets.jsonl",
                       '{"text": "does the standing desk come with a cable tray?"}',
                       '{"text": "Does the standing desk come with a monitor arm?"}')

    result = import_records(store, "cli:rita", "triage", path, runs_root=runs)

    assert result.imported == [1]
    assert result.rejected == [{
        "line": 1, "raw": '{"text": "does the standing desk come with a cable tray?"}',
        "reason": f"synthetic: is a prompt of a crucible run ({runs / 'r1' / 'prompts' / 'part-00000.parquet'})"
                  + REFUSED_SYNTHETIC}]


def test_an_earlier_turn_of_a_runs_conversation_is_refused_too(store, tmp_path, runs):
    from datagen.foundation.records import Example, Turn, examples_to_frame

    talk = Example(task="t", prompt="Thanks!", source="s", run_id="r",
                   context=(Turn("user", "My kettle leaks from the base."), Turn("assistant", "{}")))
    folder = runs / "r2" / "prompts"
    folder.mkdir(parents=True)
    examples_to_frame([talk]).write_parquet(folder / "part-00000.parquet")
    path = write_lines(tmp_path / "tickets.jsonl", '{"text": "my kettle leaks from the base."}')
    result = import_records(store, "cli:rita", "triage", path, runs_root=runs)
    assert (result.imported, result.rejected[0]["reason"]) == (
        [], f"synthetic: is a prompt of a crucible run ({folder / 'part-00000.parquet'})" + REFUSED_SYNTHETIC)


def test_a_text_already_in_the_set_is_skipped(store, tmp_path, runs):
    first = write_lines(tmp_path / "monday.jsonl", '{"text": "The lamp arrived broken."}')
    second = write_lines(tmp_path / "tuesday.jsonl", '{"text": "the lamp  arrived BROKEN."}',
                         '{"text": "Refund please."}', '{"text": "Refund  please."}')
    import_records(store, "cli:rita", "triage", first, runs_root=runs)

    result = import_records(store, "cli:rita", "triage", second, runs_root=runs)

    assert result.imported == [2]
    assert [(reject["line"], reject["reason"]) for reject in result.rejected] == [
        (1, "already in the set as record 1"), (3, "already in the set as record 2")]


def test_importing_into_an_unknown_set_fails(store, tmp_path, runs):
    path = write_lines(tmp_path / "tickets.jsonl", '{"text": "Refund please."}')

    with pytest.raises(NotFound, match="no gold set refunds"):
        import_records(store, "cli:rita", "refunds", path, runs_root=runs)


def test_the_command_imports_and_exits_1_keeping_rejected_lines_aside(tmp_path, runs, capsys):
    db = tmp_path / "work" / "labeling.sqlite3"
    path = write_lines(tmp_path / "tickets.jsonl", '{"text": "Refund please."}', '{oops',
                       '{"text": "My parcel is late.", "run_id": "r1"}')
    assert main(["gold", "create-set", "triage", "--task", TRIAGE, "--db", str(db)]) == 0

    code = main(["gold", "import", "triage", str(path), "--db", str(db), "--runs", str(runs)])

    assert code == 1
    aside = tmp_path / "work" / "import-rejected-triage-tickets.jsonl"
    assert [json.loads(line) for line in aside.read_text().splitlines()] == [
        {"line": 2, "raw": "{oops",
         "reason": "not JSON: Expecting property name enclosed in double quotes at column 2"},
        {"line": 3, "raw": '{"text": "My parcel is late.", "run_id": "r1"}',
         "reason": "synthetic: carries crucible provenance (run_id)" + REFUSED_SYNTHETIC}]
    out = capsys.readouterr().out
    assert "imported 1 records into triage\n" in out
    assert f"  {path} line 2: not JSON" in out
    assert f"2 lines not imported; kept aside in {aside}\n" in out


def test_the_command_with_force_synthetic_exits_0(tmp_path, runs, capsys):
    db = tmp_path / "work" / "labeling.sqlite3"
    path = write_lines(tmp_path / "tickets.jsonl", '{"text": "Refund please."}',
                       '{"text": "My parcel is late.", "run_id": "r1"}')
    main(["gold", "create-set", "triage", "--task", TRIAGE, "--db", str(db)])

    code = main(["gold", "import", "triage", str(path), "--db", str(db), "--runs", str(runs),
                 "--force-synthetic", "bootstrapping the set"])

    assert code == 0
    assert "imported 2 records into triage (1 marked synthetic)\n" in capsys.readouterr().out
    assert not (tmp_path / "work" / "import-rejected-triage-tickets.jsonl").exists()


def test_the_command_on_an_unknown_set_exits_2(tmp_path, runs, capsys):
    path = write_lines(tmp_path / "tickets.jsonl", '{"text": "Refund please."}')

    code = main(["gold", "import", "refunds", str(path), "--db", str(tmp_path / "labeling.sqlite3"),
                 "--runs", str(runs)])

    assert code == 2
    assert capsys.readouterr().err == "error: no gold set refunds\n"


def test_the_command_on_a_missing_file_exits_2_naming_it(tmp_path, runs, capsys):
    db = tmp_path / "labeling.sqlite3"
    main(["gold", "create-set", "triage", "--task", TRIAGE, "--db", str(db)])
    missing = tmp_path / "nowhere.jsonl"

    assert main(["gold", "import", "triage", str(missing), "--db", str(db), "--runs", str(runs)]) == 2
    assert capsys.readouterr().err == f"error: [Errno 2] No such file or directory: '{missing}'\n"
