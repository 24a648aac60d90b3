"""The build flow end to end: real Prefect runs, real teacher servers on loopback."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import polars as pl
import pytest

from datagen.foundation.precision import resolve_precision
from datagen.generation.imports import ImportConfig
from datagen.generation.self_instruct import SelfInstructConfig
from datagen.serving.client import TeacherError
from datagen.serving.server_processes import ModelServerError, free_loopback_port
from datagen.serving.transformers_server import serve_model, served_model_name
from datagen.tasks.support_triage import TASK
from evals.contamination.gate import ContaminationError
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from gold.lock_gold_set import gold_row_id
from tests.conftest import read_jsonl
from tests.locked_gold import lock_gold_rows
from tests.scripted_teacher import ScriptedTeacher
from tests.test_judge import shown

pytestmark = pytest.mark.usefixtures("prefect_harness")


def recipe(tmp_path: Path, count: int = 12, seed: int = 3, samples: int = 3, **teacher) -> BuildDatasetRecipe:
    return BuildDatasetRecipe.model_validate(
        {
            "task": "datagen.tasks.support_triage:TASK",
            "runs_dir": str(tmp_path / "runs"),
            "prompts": {"count": count, "seed": seed},
            "distill": {
                "samples_per_prompt": samples,
                "cache_path": str(tmp_path / "responses.sqlite"),
                "teachers": [{"concurrency": 4, "backoff_base_s": 0.01, **teacher}],
            },
        }
    )


def labels_by_prompt(count: int, seed: int) -> dict[str, dict]:
    return {t.text: t.label for t in TASK.generate(count, seed)}


def test_exports_hold_exactly_the_verified_answers_and_pairs(tmp_path):
    labels = labels_by_prompt(12, 3)

    def script(prompt: str, k: int) -> str:
        label = labels[prompt]
        if k == 0:
            return json.dumps(label)
        if k == 1:  # plausible but wrong: the pair's rejected side
            return json.dumps(dict(label, needs_human=not label["needs_human"]))
        return "Sorry, I cannot help with that."

    with ScriptedTeacher(script) as teacher:
        build = recipe(tmp_path, base_url=teacher.base_url, model="scripted")
        summary = build_dataset(build, run_id="exact")
        requests_after_first_run = len(teacher.requests)
        # A re-run of a finished run pays for nothing again.
        assert build_dataset(build, run_id="exact") == summary
        assert len(teacher.requests) == requests_after_first_run
        # A build that died after the teacher answered but before its stages were
        # written gets every answer back from the response cache: no request is repeated.
        again = build_dataset(build, run_id="exact-after-crash")
        assert len(teacher.requests) == requests_after_first_run
        usage = again["teacher usage"][f"scripted at {teacher.base_url}"]
        assert usage["cache_hits"] == again["counts"]["teacher answers"]
        assert usage["requests"] == 0
        assert again["counts"] == summary["counts"]

    unique = summary["counts"]["prompts after dedupe"]
    assert 0 < unique <= 12
    assert summary["counts"]["prompts generated"] == 12
    assert requests_after_first_run == summary["counts"]["teacher answers"] == 3 * unique
    assert summary["counts"]["SFT rows"] == summary["counts"]["preference pairs"] == unique
    assert summary["answers rejected by reason"] == {"wrong_fields": unique, "refusal_phrase": unique}
    assert summary["SFT rows by source"] == {"datagen.teacher.answer_prompts@2": unique}
    assert summary["pairs by strategy"] == {"verifier_ranked": unique}
    curation = json.loads((Path(summary["run_dir"]) / "curation.json").read_text())
    assert curation["answers"]["counts"] == {"answers": 3 * unique, "kept": unique, "rejected": 2 * unique}
    assert sorted((f["filter"], f["rows"]) for f in curation["answers"]["rejected_by_filter"]) == [
        ("refusal_phrase", unique), ("wrong_fields", unique)]
    assert curation["pairs"]["by_strategy"] == {"verifier_ranked": unique}
    assert "Rejections by filter" in Path(summary["curation report"]).read_text()
    # Rows per labelling rule: every rule listed, counted on the generated prompts and the SFT
    # rows; 12 prompts leave rules under the minimum of 6, and the summary flags them.
    coverage = summary["rows per labelling rule"]
    generated = Counter(name for t in TASK.generate(12, 3) for name in TASK.rule_names(t.text, t.label, t.template_id))
    assert coverage["prompts"]["rows_by_rule"] == {rule.name: generated[rule.name] for rule in TASK.labelling_rules}
    assert set(coverage["prompts"]["below_minimum"]) == {
        name for name, rows in coverage["prompts"]["rows_by_rule"].items() if rows < 6} != set()
    order_rules = ("order_id_as_written", "order_id_decoy", "order_id_none")  # exactly one per row
    assert sum(coverage["sft"]["rows_by_rule"][name] for name in order_rules) == unique
    summary_page = (Path(summary["run_dir"]) / "summary.md").read_text()
    assert "**rows per labelling rule** (minimum 6; ⚠ below it)" in summary_page
    assert f"| urgent_safety_hazard | {generated['urgent_safety_hazard']}" in summary_page
    # The API key never reaches the store: the scripted teacher needs none, and the
    # teacher's provenance holds only endpoint, model and sampling.
    assert teacher.requests[0]["temperature"] == 0.8 and "seed" in teacher.requests[0]

    export = Path(summary["exports"])
    sft = read_jsonl(export / "trl_sft" / "train.jsonl")
    assert len(sft) == unique
    for row in sft:
        system, user, assistant = row["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert json.loads(assistant["content"]) == labels[user["content"]]
    dpo = read_jsonl(export / "trl_dpo" / "train.jsonl")
    for row in dpo:
        truth = labels[row["prompt"][-1]["content"]]
        assert json.loads(row["chosen"][0]["content"]) == truth
        assert json.loads(row["rejected"][0]["content"]) == dict(truth, needs_human=not truth["needs_human"])
    alpaca = read_jsonl(export / "alpaca" / "train.jsonl")
    assert {r["input"] for r in alpaca} == {r["messages"][1]["content"] for r in sft}
    sharegpt = read_jsonl(export / "sharegpt" / "train.jsonl")
    assert [t["from"] for t in sharegpt[0]["conversations"]] == ["system", "human", "gpt"]

    # Every export folder loads as one table with `datasets`, parquet and JSONL alike.
    assert datasets.load_dataset(str(export / "trl_sft"), split="train").num_rows == unique
    assert datasets.load_dataset(str(export / "trl_dpo_parquet"), split="train").column_names == [
        "id", "prompt", "chosen", "rejected"
    ]
    # Provenance: each pair leads back to the two teacher answers it was built from.
    pairs = pl.read_parquet(Path(summary["run_dir"]) / "pairs" / "part-00000.parquet")
    answers = pl.read_parquet(Path(summary["run_dir"]) / "answers" / "part-00000.parquet")
    assert set(pairs["parent_ids"].explode()) <= set(answers["id"])
    assert set(answers["teacher"].struct.field("model")) == {"scripted"}


def test_self_generated_inputs_are_answered_but_kept_out_of_sft_without_a_label(tmp_path):
    labels = labels_by_prompt(6, 5)
    some_label = next(iter(labels.values()))

    def script(prompt: str, k: int) -> str:
        if prompt.startswith("Write a new message about"):  # a self-generation request
            words = prompt.split()[5:]
            return f"Hello, about {' '.join(words)}: request {len(teacher.requests)} " + " ".join(
                f"detail{len(teacher.requests)}x{i}" for i in range(12))
        return json.dumps(labels.get(prompt, some_label))

    with ScriptedTeacher(script) as teacher:
        build = recipe(tmp_path, count=6, seed=5, samples=1, base_url=teacher.base_url, model="scripted")
        build = build.model_copy(update={"self_instruct": SelfInstructConfig(rounds=2, requests_per_round=4)})
        summary = build_dataset(build, run_id="self-instruct")
        sent = len(teacher.requests)
        assert build_dataset(build, run_id="self-instruct-again")["counts"] == summary["counts"]
        assert len(teacher.requests) == sent  # a fresh run of the same recipe pays nothing

    counts = summary["counts"]
    assert counts["inputs self-generated"] == 8
    assert summary["self-generation"]["stop_reason"] == "ran all 2 rounds"
    assert [r["kept"] for r in summary["self-generation"]["rounds"]] == [4, 4]
    assert counts["prompts after dedupe"] == counts["prompts generated"] + 8
    assert sent == 8 + counts["teacher answers"]
    assert summary["answers kept without a known label"] == 8
    # The SFT set takes only answers whose label was checked.
    assert counts["SFT rows"] == counts["prompts generated"]
    generated = pl.read_parquet(Path(summary["run_dir"]) / "self_instruct" / "part-00000.parquet")
    assert generated["reference"].null_count() == 8
    assert set(generated["teacher"].struct.field("model")) == {"scripted"}
    assert generated["template_id"][0] == f"self_instruct/round-1/{TASK.topics[0]}"


def test_student_and_axis_pairs_with_a_bounded_chosen_longer_share(tmp_path):
    labels = labels_by_prompt(8, 2)

    def script(prompt: str, k: int) -> str:
        # k = 0 is the teacher's sample; k = 1 the student's, asked afterwards.
        return json.dumps(labels[prompt]) if k == 0 else "This customer needs help with an order."

    with ScriptedTeacher(script) as teacher:
        build = recipe(tmp_path, count=8, seed=2, samples=1, base_url=teacher.base_url, model="scripted")
        build = BuildDatasetRecipe.model_validate(build.model_dump() | {
            "student": {"base_url": teacher.base_url, "model": "scripted-student",
                        "sampling": {"temperature": 0.0}},
            # Every teacher_vs_student pair's chosen side (the JSON) is longer than the
            # student's one line, half the pairs at least: a bound under a half must drop some.
            "pairs": {"strategies": ["teacher_vs_student", "axis_targeted"], "max_pairs_per_prompt": 2,
                      "max_chosen_longer_fraction": 0.4},
        })
        summary = build_dataset(build, run_id="pairs")
        student_requests = [r for r in teacher.requests if r["model"] == "scripted-student"]

    unique = summary["counts"]["prompts after dedupe"]
    # The student is asked as it will be after training: system prompt and ticket, no few-shot.
    assert len(student_requests) == unique
    assert all([m["role"] for m in r["messages"]] == ["system", "user"] for r in student_requests)
    assert summary["student answers rejected by reason"] == {"unparseable": unique}
    report = summary["pair set"]
    made = {"teacher_vs_student": unique, "axis_targeted": unique}
    assert report["pairs"] + report["dropped"].get("length_balance", 0) == 2 * unique
    assert report["chosen_longer_fraction"] <= 0.4
    assert report["dropped"]["length_balance"] > 0
    assert set(report["by_strategy"]) == set(made)
    pairs = pl.read_parquet(Path(summary["run_dir"]) / "pairs" / "part-00000.parquet")
    student = pairs.filter(pl.col("strategy") == "teacher_vs_student")
    assert set(student["rejected"]) == {"This customer needs help with an order."}
    assert set(student["axis"]) == {"unparseable"}
    assert set(student["rejected_teacher"].struct.field("model")) == {"scripted-student"}


def test_trl_cli_trains_on_the_sft_export_unchanged(tmp_path, tiny_model):
    labels = labels_by_prompt(8, 5)
    with ScriptedTeacher(lambda prompt, k: json.dumps(labels[prompt])) as teacher:
        summary = build_dataset(
            recipe(tmp_path, count=8, seed=5, samples=1, base_url=teacher.base_url, model="scripted")
        )
    export = Path(summary["exports"]) / "trl_sft"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "trl"), "sft", "--model_name_or_path", str(tiny_model),
            "--dataset_name", str(export), "--use_peft", "--use_cpu", "true", "--max_steps", "2",
            "--per_device_train_batch_size", "2", "--output_dir", str(tmp_path / "trl-out"),
            "--report_to", "none", "--save_strategy", "no", "--logging_steps", "1",
        ],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'loss'" in result.stdout + result.stderr


def test_real_transformers_serve_answers_are_all_accounted_for(tmp_path, tiny_model):
    """A real `transformers serve` process with a random model: noise in, reasons out."""
    with serve_model(tiny_model, tmp_path / "serve.log") as base_url:
        summary = build_dataset(
            recipe(tmp_path, samples=2, base_url=base_url, model=served_model_name(tiny_model),
                   sampling={"max_tokens": 24, "temperature": 1.0})
        )
    counts = summary["counts"]
    assert counts["teacher answers"] == 2 * counts["prompts after dedupe"]
    assert counts["verified answers"] + counts["rejected answers"] == counts["teacher answers"]
    assert sum(summary["answers rejected by reason"].values()) == counts["rejected answers"]
    # 24 tokens of noise never make a whole, correct triage object: every SFT row is the
    # generator's reference label, and no plausible wrong answer exists to make a pair.
    assert counts["SFT rows"] == counts["prompts after dedupe"]
    assert summary["SFT rows by source"] == {"datagen.sft_examples.reference_answer@1": counts["SFT rows"]}
    assert counts["preference pairs"] == 0
    assert summary["answers rejected by reason"].get("truncated", 0) > 0
    rejects = pl.read_parquet(Path(summary["run_dir"]) / "verified" / "rejects-00000.parquet")
    assert rejects["detail"].null_count() == 0


@pytest.mark.slow
def test_the_embedded_teacher_answers_through_vllm(tmp_path):
    """The demo's own path: base_url null serves SmolLM2-135M-Instruct with vLLM for the run."""
    build = BuildDatasetRecipe.model_validate(
        {
            "task": "datagen.tasks.support_triage:TASK",
            "runs_dir": str(tmp_path / "runs"),
            "prompts": {"count": 3, "seed": 11},
            "prompt_dedupe": {"exact": True, "minhash": None},
            "distill": {
                "samples_per_prompt": 1,
                "cache_path": str(tmp_path / "responses.sqlite"),
                "teachers": [{"sampling": {"temperature": 0.0, "max_tokens": 96}}],
            },
        }
    )
    summary = build_dataset(build)
    answers = pl.read_parquet(Path(summary["run_dir"]) / "answers" / "part-00000.parquet")
    assert answers.height == summary["counts"]["prompts after dedupe"] == 3
    # The real 135M model writes JSON objects in the few-shot format for most tickets.
    parsed = [r for r in answers["response"] if r.strip().startswith("{")]
    assert len(parsed) >= 2, answers["response"].to_list()
    assert set(answers["teacher"].struct.field("model")) == {"SmolLM2-135M-Instruct"}
    # The precision vLLM serves in names the answers too (bf16 on a CPU with bf16 units).
    assert set(answers["teacher"].struct.field("base_url")) == {
        f"embedded:SmolLM2-135M-Instruct@v1:vllm:{resolve_precision('auto')}"}
    log = (Path(summary["run_dir"]) / "logs" / "vllm-server.log").read_text(errors="replace")
    assert "vllm.entrypoints.openai" in log or "Starting vLLM server" in log, log[-2000:]


def test_an_unreachable_teacher_fails_with_a_clear_message_and_writes_nothing(tmp_path):
    dead = f"http://127.0.0.1:{free_loopback_port()}/v1"
    build = recipe(tmp_path, base_url=dead, model="nobody", max_retries=1)
    with pytest.raises(TeacherError, match=rf"36 of 36 requests failed after retries .* first: teacher nobody at "
                       rf"{dead}: (connection error|timeout): Cannot connect to host .* after 2 attempts; all are listed in .*failed-requests.jsonl"):
        build_dataset(build, run_id="dead")
    run_dir = tmp_path / "runs" / "dead"
    failed = read_jsonl(run_dir / "logs" / "failed-requests.jsonl")
    assert len(failed) == 36 and {f["attempts"] for f in failed} == {2}
    assert (run_dir / "unique_prompts" / "manifest.json").exists()
    assert not (run_dir / "answers").exists()
    assert not list(run_dir.glob(".answers.partial-*"))


def test_an_endpoint_that_refuses_fails_fast_with_its_message(tmp_path):
    with ScriptedTeacher(lambda prompt, k: (401, "invalid api key")) as teacher:
        build = recipe(tmp_path, base_url=teacher.base_url, model="scripted")
        with pytest.raises(TeacherError, match="answered HTTP 401: .*invalid api key"):
            build_dataset(build, run_id="refused")
        # 401 is not retried: at most one request per job that started before the failure.
        assert len(teacher.requests) <= 4


def test_a_model_server_that_dies_names_its_log(tmp_path):
    log = tmp_path / "server.log"
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelServerError, match=rf"see its log {log}"):
        with serve_model(tmp_path / "not-a-model", log, startup_timeout_s=120):
            pass


def test_the_command_line_reports_a_bad_recipe_before_any_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: datagen.tasks.support_triage:TASK\ndistill: {samples_per_prompt: -1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "flows.build_dataset", "--recipe", str(bad)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent)),
    )
    assert result.returncode == 2
    assert f"{bad}: distill.samples_per_prompt: Input should be greater than or equal to 1 (got -1)" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_stops_the_build_and_the_rerun_repeats_no_request(tmp_path):
    """The user's view: Ctrl-C half way, then the same command again."""
    labels = labels_by_prompt(12, 3)
    with ScriptedTeacher(lambda prompt, k: json.dumps(labels[prompt]), answer_delay_s=0.3) as teacher:
        path = tmp_path / "recipe.yaml"
        path.write_text(
            "task: datagen.tasks.support_triage:TASK\n"
            f"runs_dir: {tmp_path / 'runs'}\n"
            "prompts: {count: 12, seed: 3}\n"
            f"distill: {{samples_per_prompt: 3, cache_path: {tmp_path / 'cache.sqlite'}, "
            # Waited for as a paid endpoint's would be: the answers in flight are cached.
            f"teachers: [{{base_url: '{teacher.base_url}', model: scripted, concurrency: 2, stop_grace_s: 60}}]}}\n"
        )
        command = [sys.executable, "-m", "flows.build_dataset", "--recipe", str(path)]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
        build = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 240
        while len(teacher.requests) < 6 and time.monotonic() < deadline and build.poll() is None:
            time.sleep(0.05)
        build.send_signal(signal.SIGINT)
        _, stderr = build.communicate(timeout=120)
        assert build.returncode == 130, stderr[-2000:]
        assert re.search(r"stopped: SIGINT received; \d+ of 36 answers are cached", stderr)
        sent = len(teacher.requests)
        assert 6 <= sent < 36
        run_dirs = list((tmp_path / "runs").iterdir())
        assert not (run_dirs[0] / "answers").exists()

        resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        # Every (ticket, sample) was asked for exactly once over the two runs.
        assert len(teacher.requests) == 36
        assert sorted(teacher.seen.values()) == [3] * 12
        assert f"| scripted at {teacher.base_url} | {36 - sent} | {sent} | 0 | 0 |" in resumed.stdout


def test_imported_sft_rows_join_the_filters_without_paying_the_teacher(tmp_path):
    labels = labels_by_prompt(4, 9)
    mine = "My blender arrived with a cracked jug, order A-100200. I want a new one."
    mine_label = {"category": "damaged_item", "priority": "normal", "order_id": "A-100200",
                  "product": "blender", "needs_human": False, "summary": "Blender jug arrived cracked; wants a replacement."}
    rows = [
        json.dumps({"messages": [{"role": "user", "content": mine},
                                 {"role": "assistant", "content": json.dumps(mine_label)}]}),
        "{this line is broken",
        json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                 {"role": "user", "content": "Order?"}, {"role": "assistant", "content": "x"}]}),
    ]
    imported = tmp_path / "mine.jsonl"
    imported.write_text("\n".join(rows) + "\n")

    with ScriptedTeacher(lambda prompt, k: json.dumps(labels[prompt])) as teacher:
        build = recipe(tmp_path, count=4, seed=9, samples=1, base_url=teacher.base_url, model="scripted")
        build = build.model_copy(update={"imports": [ImportConfig(path=imported, kind="sft")]})
        summary = build_dataset(build, run_id="imports")
        asked = [r["messages"][-1]["content"] for r in teacher.requests]

    assert mine not in asked and len(asked) == 4
    run_dir = Path(summary["run_dir"])
    rejects = pl.read_parquet(run_dir / "imported" / "rejects-00000.parquet")
    assert rejects["line"].to_list() == [2]
    assert [r.split(":")[0] for r in rejects["reason"]] == ["invalid_json"]
    # The chat of two exchanges is one imported SFT row; its first answer is no triage, so the
    # filters reject it for that earlier turn, and its prompt is not sent to the teacher either.
    assert summary["counts"]["prompts after dedupe"] == 6
    verified_rejects = pl.read_parquet(run_dir / "verified" / "rejects-00000.parquet")
    (talk,) = verified_rejects.filter(pl.col("prompt") == "Order?").iter_rows(named=True)
    assert talk["detail"] == "earlier_turn: unparseable: not a single JSON object (assistant turn 1 of 2)"
    assert [turn["content"] for turn in talk["context"]] == ["Hi", "Hello!"]
    sft = pl.read_parquet(run_dir / "sft" / "part-00000.parquet")
    (row,) = sft.filter(pl.col("prompt") == mine).iter_rows(named=True)
    assert row["source"].startswith("import:mine.jsonl@") and json.loads(row["response"]) == mine_label
    assert summary["counts"]["SFT rows"] == 5


def test_the_judge_ranks_answers_to_self_generated_prompts(tmp_path):
    labels = labels_by_prompt(4, 4)
    some_label = next(iter(labels.values()))
    good, vague = "Customer reports the problem and asks for a fix.", "Something."

    def script(prompt: str, k: int) -> str:
        if prompt.startswith("Write a new message about"):
            return f"Hello, I need help with {prompt[26:]} Reference {k} " + " ".join(
                f"w{len(teacher.requests)}x{i}" for i in range(12))
        if "[Answer A]" in prompt:
            first = json.loads(shown(prompt, "Answer A"))["summary"]
            return json.dumps({"rationale": "The clearer summary.", "winner": "A" if first == good else "B"})
        if "[Answer]" in prompt:
            summary = json.loads(shown(prompt, "Answer"))["summary"]
            return json.dumps({"rationale": "Judged.", "score": 9 if summary == good else 3})
        if prompt in labels:
            return json.dumps(labels[prompt])
        return json.dumps(dict(some_label, summary=good if k == 0 else vague))

    with ScriptedTeacher(script) as teacher:
        build = BuildDatasetRecipe.model_validate(recipe(tmp_path, count=4, seed=4, samples=2,
                                                         base_url=teacher.base_url, model="scripted").model_dump() | {
            "self_instruct": {"rounds": 1, "requests_per_round": 4},
            "judge": {"endpoint": {"base_url": teacher.base_url, "model": "scripted-judge"}},
            "pairs": {"strategies": ["verifier_ranked", "judge_ranked"]},
        })
        summary = build_dataset(build, run_id="judged")

    generated = summary["counts"]["inputs self-generated"]
    assert generated == 4
    assert summary["pair set"]["by_strategy"] == {"judge_ranked": generated}
    pairs = pl.read_parquet(Path(summary["run_dir"]) / "pairs" / "part-00000.parquet")
    assert {json.loads(c)["summary"] for c in pairs["chosen"]} == {good}
    assert {json.loads(r)["summary"] for r in pairs["rejected"]} == {vague}
    judge = json.loads((Path(summary["run_dir"]) / "judge" / "manifest.json").read_text())["summary"]
    assert judge["readable_scores"] == judge["scored"] == 2 * generated
    assert judge["family_warning"].startswith("judge scripted-judge is of the same lineage (scripted) as scripted")


def test_the_contamination_gate_refuses_removes_or_records_an_override(tmp_path):
    labels = labels_by_prompt(6, 8)
    leaked = next(iter(labels))
    umbrella = {"category": "product_question", "priority": "low", "order_id": None, "product": "umbrella",
                "needs_human": False, "summary": "Customer asks about a lost umbrella."}
    gold_rows = [("  " + leaked.upper() + "  ", labels[leaked]),
                 ("A gold ticket about a lost umbrella that nobody trains on.", umbrella)]
    lock_gold_rows(tmp_path / "gold" / "sets", "triage-gold", "datagen.tasks.support_triage:TASK", gold_rows)
    g1 = gold_row_id(*gold_rows[0])
    gate = {"gold_root": str(tmp_path / "gold" / "sets"), "audit": {"methods": ["exact", "ngram", "minhash"]}}

    def build(run_id: str, **overrides):
        config = BuildDatasetRecipe.model_validate(recipe(tmp_path, count=6, seed=8, samples=1,
                                                          base_url=teacher.base_url, model="scripted").model_dump()
                                                   | {"contamination_gate": gate | overrides})
        return build_dataset(config, run_id=run_id)

    with ScriptedTeacher(lambda prompt, k: json.dumps(labels[prompt])) as teacher:
        with pytest.raises(ContaminationError, match=r"training rows come too close to gold rows of "
                                                     rf"triage-gold/v1:\n  sft:\w+ matches triage-gold-v1:{g1}"):
            build("refused")
        removed = build("removed", on_contamination="remove")
        overridden = build("overridden", override_reason="the leaked ticket is a public FAQ example")

    assert not (tmp_path / "runs" / "refused" / "export").exists()
    refused = json.loads((tmp_path / "runs" / "refused" / "contamination" / "gate.json").read_text())
    assert refused["status"] == "refused"
    sft = read_jsonl(Path(removed["exports"]) / "trl_sft" / "train.jsonl")
    assert leaked not in {row["messages"][1]["content"] for row in sft}
    assert len(sft) == removed["counts"]["SFT rows"] - 1
    manifest = json.loads((Path(removed["exports"]) / "manifest.json").read_text())
    assert manifest["summary"]["contamination_gate"]["status"] == "removed"
    assert list(manifest["summary"]["contamination_gate"]["flagged"].values()) == [[f"triage-gold-v1:{g1}"]]
    gate_report = json.loads((Path(overridden["run_dir"]) / "contamination" / "gate.json").read_text())
    assert gate_report["status"] == "overridden"
    assert gate_report["override_reason"] == "the leaked ticket is a public FAQ example"
    sft = read_jsonl(Path(overridden["exports"]) / "trl_sft" / "train.jsonl")
    assert leaked in {row["messages"][1]["content"] for row in sft}
    assert (Path(overridden["run_dir"]) / "contamination" / "triage-gold-v1" / "overlap.html").exists()


def test_a_conversation_task_builds_and_exports_every_turn(tmp_path):
    """The multi-turn demo task end to end: generated conversations and ones a simulated
    customer continues, each last turn answered by the teacher with its history, verified
    against the generator's label, and exported with every turn in each format."""
    from datagen.tasks.support_conversation import TASK as TALK

    shots = 1 + 2 * len(TALK.few_shot)
    follow_up = "Can someone call me back today?"

    def chat_key(messages: list[dict]) -> str:
        """A teacher request by its turns after the few-shot ones; the simulator's by its transcript."""
        if messages[0]["content"] == TALK.system_prompt:
            return json.dumps([m["content"] for m in messages[shots:]])
        return messages[-1]["content"]

    generated = TALK.generate(8, 1)
    labels = {json.dumps([*(t.content for t in g.context), g.text]): g.label for g in generated}

    def script(key: str, k: int) -> str:
        if key.startswith("The conversation so far"):  # the simulated customer: one follow-up, then done
            return "[END]" if follow_up in key else follow_up
        label = labels.get(key)
        if label is None:  # a simulated conversation's last turn: no label to get right
            return json.dumps(dict(generated[0].label, needs_human=True, summary=f"Customer wants a call ({k})."))
        # The second request of a conversation gets a plausible wrong category: a pair's rejected side.
        wrong = "cancellation" if label["category"] != "cancellation" else "wrong_item"
        return json.dumps(dict(label, category=wrong) if k == 1 else label)

    with ScriptedTeacher(script, key=chat_key) as teacher:
        build = BuildDatasetRecipe.model_validate({
            "task": "datagen.tasks.support_conversation:TASK",
            "runs_dir": str(tmp_path / "runs"),
            "prompts": {"count": 8, "seed": 1},
            "simulate_users": {"seeds": 2, "user_turns": 4,
                               "simulator": {"base_url": teacher.base_url, "model": "customer"}},
            "distill": {"samples_per_prompt": 2, "cache_path": str(tmp_path / "responses.sqlite"),
                        "teachers": [{"base_url": teacher.base_url, "model": "scripted", "backoff_base_s": 0.01}]},
            "sft": {"use_unlabelled": True},
            "pairs": {"strategies": ["verifier_ranked"]},
            "contamination_gate": {"audit": {"methods": ["exact", "ngram", "minhash"]},
                                   "also_against": ["support_triage"],
                                   "without_gold_reason": "the conversation task has no gold set yet"},
        })
        summary = build_dataset(build, run_id="conversations")

    counts = summary["counts"]
    assert (counts["prompts generated"], counts["conversations simulated"]) == (8, 2)
    # One seed had two user turns (it got a follow-up and said no more), one three (the follow-up made four).
    assert summary["user simulation"]["ended_by"] == {"stop_phrase": 1, "user_turns": 1}
    assert counts["prompts after dedupe"] == 10 and counts["SFT rows"] == 10
    assert summary["answers rejected by reason"] == {"wrong_fields": 8}
    assert counts["preference pairs"] == 8
    gate = json.loads((Path(summary["run_dir"]) / "contamination" / "gate.json").read_text())
    assert gate["status"] == "clean" and [ref["set"] for ref in gate["gold_sets"]] == ["support_triage/v1"]

    export = Path(summary["exports"])
    sft, sharegpt = read_jsonl(export / "trl_sft" / "train.jsonl"), read_jsonl(export / "sharegpt" / "train.jsonl")
    roles = {"system": "system", "user": "human", "assistant": "gpt"}
    for row, shared in zip(sft, sharegpt, strict=True):
        messages = row["messages"]
        assert messages[0] == {"role": "system", "content": TALK.training_system_prompt}
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * (len(messages) // 2)
        assert shared["conversations"] == [{"from": roles[m["role"]], "value": m["content"]} for m in messages]
        label = labels.get(json.dumps([m["content"] for m in messages[1:-1]]))
        if messages[-2]["content"] != follow_up:  # a generated conversation: its label is its last answer
            assert json.loads(messages[-1]["content"]) == label
    simulated = [row for row in sft if row["messages"][-2]["content"] == follow_up]
    assert len(simulated) == 2 and all(len(row["messages"]) >= 7 for row in simulated)  # 3 or 4 user turns
    for row in read_jsonl(export / "trl_dpo" / "train.jsonl"):
        key = json.dumps([m["content"] for m in row["prompt"][1:]])
        assert [m["role"] for m in row["prompt"][-3:]] == ["user", "assistant", "user"]  # the history, then the turn
        assert json.loads(row["chosen"][0]["content"]) == labels[key]
        assert json.loads(row["rejected"][0]["content"])["category"] != labels[key]["category"]
    # Who wrote each turn of a simulated conversation, from the run store.
    store = Path(summary["run_dir"])
    generator = pl.read_parquet(store / "prompts" / "part-00000.parquet")["source"][0]
    for turns in pl.read_parquet(store / "conversations" / "part-00000.parquet")["context"]:
        writers = [turn["written_by"] for turn in turns]
        assert writers[:-1] == [generator] * (len(writers) - 1)  # the seed conversation's own turns
        assert writers[-1] == f"scripted at {teacher.base_url}"  # the teacher's answer to the seed's last turn
