"""The tool-calling family: its generator, then a real build from its committed recipe
against the scripted teacher, which calls tools through the API (`tool_calling: api`)
while the student is asked with the tools in its system turn and answers in `<tool_call>`
tags; then one SFT and one DPO step on the tiny model from the export, through TRL with its
`tools` column."""

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml

from datagen.foundation.export_layout import DPO_FILE, SFT_FILE
from datagen.foundation.tool_calls import system_with_tools
from datagen.tasks.shop_assistant import TASK, TOOLS, TRAINED_SYSTEM_PROMPT, generate_requests
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from flows.recipe import load_recipe
from tests.conftest import read_jsonl
from train.ablations import read_export_rows
from train.dpo import DPOStageConfig, run_dpo
from train.sft import SFTStageConfig, run_sft

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RECIPE = Path(__file__).parent.parent / "flows" / "recipes" / "shop_assistant.yaml"
MESSAGE = ("Hi! The kettle in order CC-51950 was missing from the box. It cost €88.21 of the €171.37 I paid; "
           "please refund it.")


def test_a_fixed_seed_gives_this_message_and_call():
    requests = generate_requests(14, seed=0)
    assert [(r.template_id, r.text, r.label) for r in requests if r.template_id == "issue_refund/1"] == [(
        "issue_refund/1", MESSAGE.replace("Hi! ", "Good morning. "),
        {"name": "issue_refund", "arguments": {"order_id": "CC-51950", "amount": 88.21, "reason": "missing_item"}})]
    assert generate_requests(14, seed=0) == requests != generate_requests(14, seed=1)


def test_every_label_is_a_valid_call_and_every_tool_is_dealt():
    requests = generate_requests(140, seed=2)
    assert Counter(r.label["name"] for r in requests) == {
        "lookup_order": 30, "track_shipment": 30, "cancel_order": 20, "issue_refund": 20, "update_address": 20,
        "escalate_to_human": 20}
    for request in requests:
        assert TASK.compare(json.loads(TASK.render_answer(request.label)), request.label) == []
        assert request.label["arguments"].get("order_id", "none") in request.text + "none"


def tool_call(label: dict) -> dict:
    """The teacher's answer as OpenAI returns a call: arguments as a JSON string."""
    return {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": label["name"], "arguments": json.dumps(label["arguments"])}}]}


@pytest.fixture(scope="module")
def build(tmp_path_factory, prefect_harness):
    from tests.scripted_teacher import ScriptedTeacher

    tmp_path = tmp_path_factory.mktemp("shop")
    labels = {r.text: r.label for r in generate_requests(14, 1)}

    def script(prompt: str, k: int):
        # k = 0 is the teacher's sample, k = 1 the student's, asked afterwards: the right tool
        # in the tags of Hermes templates, with no arguments.
        if k == 0:
            return tool_call(labels[prompt])
        return f"<tool_call>\n{json.dumps({'name': labels[prompt]['name'], 'arguments': {}})}\n</tool_call>"

    recipe = yaml.safe_load(RECIPE.read_text())
    with ScriptedTeacher(script) as teacher:
        teacher_config = recipe["distill"]["teachers"][0] | {
            "base_url": teacher.base_url, "model": "scripted", "tool_calling": "api", "backoff_base_s": 0.01}
        recipe |= {"runs_dir": str(tmp_path / "runs"), "prompts": {"count": 14, "seed": 1},
                   "student": recipe["student"] | {"base_url": teacher.base_url, "model": "scripted-student"}}
        recipe["distill"] |= {"teachers": [teacher_config], "cache_path": str(tmp_path / "responses.sqlite")}
        recipe["contamination_gate"]["gold_root"] = str(tmp_path / "gold")
        (tmp_path / "gold").mkdir()
        (tmp_path / "build.yaml").write_text(yaml.safe_dump(recipe))
        summary = build_dataset(load_recipe(tmp_path / "build.yaml", BuildDatasetRecipe))
    return summary, teacher.requests


def test_the_teacher_gets_the_tools_through_the_api_and_the_student_in_its_system_turn(build):
    summary, requests = build
    asked = [r for r in requests if r["model"] == "scripted"]
    student = [r for r in requests if r["model"] == "scripted-student"]
    assert asked and student
    assert all(r["tools"] == list(TOOLS) and r["tool_choice"] == "required" for r in asked)
    assert asked[0]["messages"][0]["content"] == TASK.system_prompt
    assert all("tools" not in r for r in student)
    assert student[0]["messages"][0]["content"] == system_with_tools(TASK.system_prompt, TOOLS)
    # Which way the teacher was asked is on every answer it gave.
    answers = pl.read_parquet(Path(summary["run_dir"]) / "answers" / "part-00000.parquet")
    sent = {json.loads(teacher["sampling"]).get("tool_choice") for teacher in answers["teacher"].to_list()}
    assert sent == {"required"}


def test_the_build_keeps_every_teacher_call_and_pairs_each_prompt_on_the_tool_or_its_arguments(build):
    summary, _ = build
    unique = summary["counts"]["prompts after dedupe"]
    assert summary["counts"]["SFT rows"] == unique == 14
    assert summary["SFT rows by source"] == {"datagen.teacher.answer_prompts@2": unique}
    assert summary["student answers rejected by reason"] == {"schema_invalid": unique}
    pair_set = summary["pair set"]
    assert pair_set["by_strategy"] == {"teacher_vs_student": unique, "axis_targeted": unique}
    # A wrong tool only where another tool takes the same arguments (lookup_order, track_shipment):
    # elsewhere one_wrong_field is skipped for the next axis, and says why.
    assert pair_set["by_axis"] == {"schema_invalid": unique, "one_wrong_field": 4, "wrong_arguments": 3,
                                   "broken_format": 4, "needless_preamble": 3}
    assert pair_set["skipped"] == {
        "one_wrong_field: no value of name makes the answer wrong on that field alone": 3}


def test_the_exported_trl_rows_carry_the_tools_and_each_answer_as_a_tool_call(build):
    summary, _ = build
    export = Path(summary["exports"])
    rows = read_jsonl(export / SFT_FILE)
    for row in rows:
        assert json.loads(row["tools"]) == list(TOOLS)
        system, user, assistant = row["messages"]
        assert (system["content"], assistant["content"]) == (TRAINED_SYSTEM_PROMPT, "")
        (call,) = assistant["tool_calls"]
        assert TASK.compare({"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])},
                            {r.text: r.label for r in generate_requests(14, 1)}[user["content"]]) == []
    print("an exported TRL SFT row:", json.dumps(rows[0], ensure_ascii=False))
    assert all(json.loads(row["tools"]) == list(TOOLS) for row in read_jsonl(export / DPO_FILE))


@pytest.mark.slow
def test_sft_and_dpo_train_on_the_export_with_tools_rendered_by_the_template(build, tiny_model, tmp_path):
    summary, _ = build
    export = Path(summary["exports"])
    sft = run_sft(SFTStageConfig(max_steps=1, batch_size=2, eval_share=0, learning_rate=1e-2, warmup_ratio=0),
                  tiny_model, read_export_rows(export / SFT_FILE)[:2], tmp_path / "sft")
    assert sft["steps"] == 1 and sft["adapter_tensors_changed"] > 0
    # Both rows' supervised tokens were checked to be exactly their call and end of turn
    # (train/loss_masks.py); the tools' schemas are most of the rest.
    assert sft["mask"]["rows"] == 2 and sft["mask"]["prompt_tokens"] > 10 * sft["mask"]["supervised_tokens"]
    dpo = run_dpo(DPOStageConfig(max_steps=1, batch_size=1, gradient_accumulation_steps=1, warmup_ratio=0), tiny_model,
                  tmp_path / "sft" / "adapter", read_export_rows(export / DPO_FILE)[:1], tmp_path / "dpo")
    assert dpo["steps"] == 1 and dpo["adapter_tensors_changed"] > 0
