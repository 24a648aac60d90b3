"""The gate reads gold only through verification: a tampered, unlocked or missing set stops it."""

from __future__ import annotations

import json
import os

import pytest

from datagen.foundation.records import Example, PreferencePair, Turn
from evals.contamination.audit_inputs import AuditRow, record_texts
from evals.contamination.gate import ContaminationError, ContaminationGateConfig, gate_rows, gold_sets_to_gate, run_gate
from gold.gold_root import GoldSetTampered, NoGoldSet
from gold.lock_gold_set import gold_row_id
from tests.locked_gold import lock_gold_rows

TICKET = "My blender from order A-204518 arrived with a cracked jug, I want a replacement."
ANSWER = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
          "needs_human": True, "summary": "Blender arrived with a cracked jug; customer wants a replacement."}
CONFIG = {"audit": {"methods": ["exact", "ngram", "minhash"]}}


def gate(tmp_path, rows, **settings):
    config = ContaminationGateConfig.model_validate(CONFIG | {"gold_root": str(tmp_path / "sets")} | settings)
    _, gold_sets = gold_sets_to_gate(config, "support_triage")
    return run_gate(rows, gold_sets, config, tmp_path / "report")


def test_a_training_row_equal_to_a_locked_gold_row_is_refused_by_its_id(tmp_path):
    lock_gold_rows(tmp_path / "sets", "triage", "datagen.tasks.support_triage:TASK", [(TICKET, ANSWER)])
    with pytest.raises(ContaminationError, match=f"sft:1 matches triage-v1:{gold_row_id(TICKET, ANSWER)}"):
        gate(tmp_path, [AuditRow("1", "sft:1", TICKET.lower(), "")])
    assert gate(tmp_path, [AuditRow("2", "sft:2", "Where is my umbrella order?", "")]).status == "clean"


def test_a_one_byte_edit_of_the_locked_set_stops_the_gate_naming_the_record(tmp_path):
    version = lock_gold_rows(tmp_path / "sets", "triage", "datagen.tasks.support_triage:TASK", [(TICKET, ANSWER)])
    records = version / "records.jsonl"
    os.chmod(records, 0o644)
    records.write_bytes(records.read_bytes().replace(b"cracked", b"crackeD"))
    with pytest.raises(GoldSetTampered, match=r"records.jsonl line 1 \(record [0-9a-f]{12}\): changed since the lock"):
        gate(tmp_path, [AuditRow("2", "sft:2", "Where is my umbrella order?", "")])


def test_an_unlocked_newest_version_stops_the_gate(tmp_path):
    lock_gold_rows(tmp_path / "sets", "triage", "datagen.tasks.support_triage:TASK", [(TICKET, ANSWER)])
    (tmp_path / "sets" / "triage" / "v2").mkdir()
    (tmp_path / "sets" / "triage" / "v2" / "records.jsonl").write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(GoldSetTampered, match="v2: not locked"):
        gate(tmp_path, [AuditRow("2", "sft:2", "Where is my umbrella order?", "")])


def test_another_tasks_gold_set_is_not_audited_and_no_set_of_the_task_is_an_error(tmp_path):
    lock_gold_rows(tmp_path / "sets", "regression", "gold.regression_schema:GENERAL_REGRESSION",
                   [(TICKET, {"answer": "4", "match": "number", "skill": "arithmetic"})])
    with pytest.raises(NoGoldSet, match=f"no locked gold set of task support_triage under {tmp_path / 'sets'}"):
        gate(tmp_path, [AuditRow("1", "sft:1", TICKET, "")])
    result = gate(tmp_path, [AuditRow("1", "sft:1", TICKET, "")], without_gold_reason="no triage gold set yet")
    assert (result.status, result.gold_sets, result.without_gold_reason) == (
        "without_gold", [], "no triage gold set yet")
    assert json.loads((tmp_path / "report" / "gate.json").read_text())["without_gold_reason"] == "no triage gold set yet"


def test_the_verdict_names_each_gold_version_by_its_signed_digest(tmp_path):
    version = lock_gold_rows(tmp_path / "sets", "triage", "datagen.tasks.support_triage:TASK", [(TICKET, ANSWER)])
    signed = json.loads((version.parent / "versions.json").read_text())
    result = gate(tmp_path, [AuditRow("2", "sft:2", "Where is my umbrella order?", "")])
    [ref] = result.gold_sets
    assert (ref["set"], ref["signed_by"]) == ("triage/v1", signed["signature"]["key_id"])
    from gold.signed_versions import entry_digest
    assert ref["digest"] == entry_digest(signed["versions"][0])


def test_a_set_named_in_also_against_is_gated_and_no_reason_excuses_its_absence(tmp_path):
    prompt = "What is 7 + 5? Reply with the number only."
    label = {"answer": "12", "match": "number", "skill": "arithmetic"}
    lock_gold_rows(tmp_path / "sets", "triage", "datagen.tasks.support_triage:TASK", [(TICKET, ANSWER)])
    with pytest.raises(NoGoldSet, match="no locked gold set 'general_regression'"):
        gate(tmp_path, [AuditRow("1", "replay:1", prompt, "12")], also_against=["general_regression"],
             without_gold_reason="a reason that is not about this set")
    lock_gold_rows(tmp_path / "sets", "general_regression", "gold.regression_schema:GENERAL_REGRESSION",
                   [(prompt, label)])
    with pytest.raises(ContaminationError, match=f"replay:1 matches general_regression-v1:{gold_row_id(prompt, label)}"):
        gate(tmp_path, [AuditRow("1", "replay:1", prompt, "12")], also_against=["general_regression"])
    # Named twice (by name and by version) it is still checked once.
    result = gate(tmp_path, [AuditRow("2", "replay:2", "Describe the taste of a lemon.", "Sour.")],
                  also_against=["general_regression", "general_regression/v1"])
    assert (result.status, result.names) == ("clean", ["triage/v1", "general_regression/v1"])


def test_the_builds_gate_audits_every_turn_of_a_conversation_and_a_pairs_history(tmp_path):
    lock_gold_rows(tmp_path / "sets", "triage", "datagen.tasks.support_triage:TASK", [(TICKET, ANSWER)])
    config = ContaminationGateConfig.model_validate(CONFIG | {"gold_root": str(tmp_path / "sets"),
                                                              "on_contamination": "remove"})
    _, gold_sets = gold_sets_to_gate(config, "support_triage")
    hidden = (Turn("user", "Hello, a quick question first."), Turn("assistant", "{}"),
              Turn("user", TICKET.upper()), Turn("assistant", "{}"))
    talk = Example(task="support_triage", prompt="Thanks, that is all.", response="{}", source="s", run_id="r",
                   context=hidden)
    clean = Example(task="support_triage", prompt="Where is my umbrella order?", response="{}", source="s", run_id="r")
    pair = PreferencePair(task="support_triage", prompt="Thanks.", chosen="{}", rejected="[]", strategy="s",
                          evidence="e", source="s", run_id="r", context=hidden[:2])
    kept, result = gate_rows({"sft": [talk, clean], "pairs": [pair]}, record_texts, gold_sets, config,
                             tmp_path / "report")
    assert kept == {"sft": [clean], "pairs": [pair]}
    assert result.flagged == {f"sft:{talk.id}": [f"triage-v1:{gold_row_id(TICKET, ANSWER)}"]}
