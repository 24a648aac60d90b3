"""A small export written from literal rows by crucible's own stages (formats, card, run
store), for the dataset card and push tests: no teacher, no Prefect."""

from __future__ import annotations

import json
from pathlib import Path

from datagen.exports.data_mix import DataMixConfig, mix_sets
from datagen.exports.dataset_card import CardFacts, DatasetCardConfig, write_dataset_card
from datagen.exports.formats import write_exports
from datagen.exports.sft_examples import REFERENCE_SOURCE
from datagen.foundation.records import Example, PreferencePair, Teacher
from datagen.foundation.run_store import RunStore
from datagen.tasks.support_triage import TASK

TEACHER = Teacher("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct", '{"temperature":0.8}', 0)
TEACHER_SOURCE = "datagen.teacher.answer_prompts@2"
SEED_SOURCE = "gold-seed:triage-seed/v1@5d41402abc4b2a76b9719d911017c592"
TICKETS = [
    "My parcel A-120001 is a week late, where is it?",
    "The mug in order A-120002 arrived in pieces.",
    "I was charged twice for order A-120003.",
    "Please cancel order A-120004 before it ships.",
    "I cannot log in since yesterday's password reset.",
    "Does the X200 blender come with a spare jar?",
    "You sent me a blue kettle instead of the red one, order A-120007.",
    "Refund order A-120008 please, I changed my mind.",
]


def answer(category: str, order: str | None, summary: str) -> str:
    return TASK.render_answer({"category": category, "priority": "normal", "order_id": order, "product": None,
                               "needs_human": False, "summary": summary})


def sft_rows() -> list[Example]:
    """Four template rows, three teacher rows, one seed row."""
    sources = [REFERENCE_SOURCE] * 4 + [TEACHER_SOURCE] * 3 + [SEED_SOURCE]
    return [Example(task="support_triage", prompt=ticket, response=answer("shipping_delay", None, f"ticket {i}"),
                    source=source, run_id="literal", teacher=TEACHER if source == TEACHER_SOURCE else None)
            for i, (ticket, source) in enumerate(zip(TICKETS, sources))]


def pairs(rows: list[Example]) -> list[PreferencePair]:
    """A verifier_ranked pair on a teacher row and an axis_targeted pair on a template row."""
    made = []
    for row, strategy in ((rows[4], "verifier_ranked"), (rows[0], "axis_targeted")):
        made.append(PreferencePair(task=row.task, prompt=row.prompt, chosen=row.response, rejected="Sorry, no.",
                                   strategy=strategy, evidence="rejected is unparseable",
                                   source="datagen.preference_pairs@3", run_id="literal", chosen_teacher=row.teacher,
                                   parent_ids=(row.id, row.id)))
    return made


GOLD_REF = {"set": "support-triage-eval/v2", "task": "support_triage", "records": 120,
            "sha256": "a" * 64, "digest": "9f2c" + "0" * 60, "signed_by": "lead-key-1", "path": "gold/sets/x/v2"}
GATE = {"status": "clean", "gold_sets": [GOLD_REF], "flagged": {}, "override_reason": None,
        "without_gold_reason": None, "reports": []}
CURATION = {"rows per stage": {"prompts generated": 12, "answers kept": 7, "SFT rows": 8, "preference pairs": 2},
            "prompts removed by dedupe": {"exact": 1, "minhash": 2},
            "answers rejected by filter": {"wrong_fields": 3, "refusal_phrase": 1},
            "pairs dropped by reason": {}}
MIX = DataMixConfig.model_validate({"sft": {"shares": {"template": 0.5, "teacher": 0.5}}, "seed": 0})


def write_literal_export(runs: Path, card: DatasetCardConfig = DatasetCardConfig()) -> Path:
    """`runs/literal/export`, sealed by the run store with its manifest; the SFT set mixed by `MIX`."""
    rows = sft_rows()
    mixed = mix_sets(rows, pairs(rows), [], MIX)
    facts = CardFacts("support_triage", "literal", mixed.sft.kept, mixed.pairs.kept, CURATION, GATE,
                      {"set": "triage-seed/v1", "digest": "5d41" + "0" * 60, "verdict": "disjoint",
                       "eval_sets": ["support-triage-eval/v2"], "methods": ["exact", "minhash"]}, mixed.report)

    def write_files(folder: Path) -> None:
        write_exports(folder, mixed.sft.kept, mixed.pairs.kept, TASK)
        write_dataset_card(folder, card, facts)

    store = RunStore(runs, "literal")
    store.write_stage("export", {}, config={"task": "datagen.tasks.support_triage:TASK"}, inputs=[],
                      summary={"contamination_gate": GATE}, write_files=write_files)
    return store.stage_dir("export")


def listed_outputs(export: Path) -> dict[str, str]:
    outputs = json.loads((export / "manifest.json").read_text())["outputs"]
    return {name: entry["sha256"] for name, entry in outputs.items()}
