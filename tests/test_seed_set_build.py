"""A locked seed set in the build flow (real Prefect runs, a scripted teacher on loopback):
its rows are the teachers' few-shot turns, self-generation's seeds and SFT anchors, each
traced back to the gold row; every run proves it disjoint from the eval sets again."""

import functools
import json
from pathlib import Path

import polars as pl
import pytest

from datagen.tasks.support_triage import TASK
from evals.contamination.audit import AuditConfig
from evals.contamination.seed_disjointness import seed_disjointness
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from gold.gold_root import GoldRoot
from gold.lock_gold_set import gold_row_id
from gold.seed_sets import SeedOverlapError
from tests.conftest import read_jsonl
from tests.locked_gold import lock_gold_rows
from tests.scripted_teacher import ScriptedTeacher
from tests.test_seed_sets import EVAL_ROWS, TRIAGE, triage

pytestmark = pytest.mark.usefixtures("prefect_harness")

SEED_ROWS = [
    ("Can I change the email address on my account without losing my order history and saved cards?",
     triage(category="account_access", order_id=None, product=None,
            summary="Asks whether changing the account email keeps order history and saved cards.")),
    ("I was billed 49.99 twice for order A-402215 and my bank shows both payments as pending. Please refund one.",
     triage(category="billing_error", priority="high", order_id="A-402215", product=None,
            summary="Charged twice for order A-402215; wants one payment refunded.")),
    ("Does the 12-cup coffee maker have a keep-warm plate, and can the glass carafe go in the dishwasher?",
     triage(category="product_question", priority="low", order_id=None, product="coffee maker",
            summary="Asks about the coffee maker's keep-warm plate and dishwasher-safe carafe.")),
    ("Please cancel order A-770031 before it ships, I picked the wrong size of hiking boots.",
     triage(category="cancellation", order_id="A-770031", product="hiking boots",
            summary="Wants order A-770031 cancelled before shipping: wrong boot size.")),
]
# Audited without the sentence model here: tests/test_seed_sets.py covers the embedding.
METHODS = ["exact", "ngram", "minhash"]
CHECK = functools.partial(seed_disjointness, config=AuditConfig(methods=METHODS))


def gold_root(tmp_path: Path) -> Path:
    """An eval set and a seed set of the triage task, locked and signed."""
    root = tmp_path / "gold" / "sets"
    lock_gold_rows(root, "triage", TRIAGE, EVAL_ROWS)
    lock_gold_rows(root, "triage_seed", TRIAGE, SEED_ROWS, "seed", CHECK)
    return root


def recipe(tmp_path: Path, teacher: ScriptedTeacher, **changes) -> BuildDatasetRecipe:
    return BuildDatasetRecipe.model_validate({
        "task": TRIAGE,
        "runs_dir": str(tmp_path / "runs"),
        "prompts": {"count": 6, "seed": 9},
        "seed": {"set": "triage_seed", "few_shot": 3},
        "self_instruct": {"rounds": 1, "requests_per_round": 2, "seed_examples_per_request": 2},
        "distill": {"samples_per_prompt": 1, "cache_path": str(tmp_path / "responses.sqlite"),
                    "teachers": [{"base_url": teacher.base_url, "model": "scripted", "concurrency": 4,
                                  "backoff_base_s": 0.01}]},
        "contamination_gate": {"gold_root": str(tmp_path / "gold" / "sets"), "audit": {"methods": METHODS}},
    } | changes)


def scripted(labels: dict[str, dict]):
    def script(prompt: str, k: int) -> str:
        if prompt.startswith("Write a new message about"):  # a self-generation request
            return f"Hello, about {prompt[26:]} my reference is {len(labels)}{k} " + " ".join(
                f"word{i}x{len(prompt)}" for i in range(12))
        return json.dumps(labels.get(prompt, SEED_ROWS[0][1]))
    return script


def test_seed_rows_are_the_few_shot_turns_the_self_generation_seeds_and_sft_anchors(tmp_path):
    root = gold_root(tmp_path)
    seed = GoldRoot(root).seed_set("triage_seed", "support_triage")
    source = f"gold-seed:triage_seed/v1@{seed.digest}"
    gold_ids = [gold_row_id(*row) for row in SEED_ROWS]
    labels = {t.text: t.label for t in TASK.generate(6, 9)}

    with ScriptedTeacher(scripted(labels)) as teacher:
        summary = build_dataset(recipe(tmp_path, teacher), run_id="seeded")
        requests = list(teacher.requests)
    run = Path(summary["run_dir"])

    # The teachers' few-shot turns: three seed rows showing the most label values (the
    # cancellation ticket adds only its category) instead of the task's own.
    answer_requests = [r for r in requests if r["messages"][0]["content"] == TASK.system_prompt]
    assert answer_requests
    for request in answer_requests:
        assert request["messages"][1:7] == [
            turn for prompt, answer in SEED_ROWS[:3]
            for turn in ({"role": "user", "content": prompt}, {"role": "assistant", "content": TASK.render_answer(answer)})]
    seeds = pl.read_parquet(run / "seed" / "part-00000.parquet")
    assert seeds["source"].to_list() == [source] * 4
    assert seeds["parent_ids"].to_list() == [[gold_id] for gold_id in gold_ids]
    seed_manifest = json.loads((run / "seed" / "manifest.json").read_text())
    assert seed_manifest["summary"]["few_shot"] == gold_ids[:3]
    assert seed_manifest["config"]["seed_set"]["digest"] == seed.digest

    # Self-generation was shown seed rows, and its inputs name them as parents.
    generation_requests = [r for r in requests if r["messages"][-1]["content"].startswith("Write a new message about")]
    assert len(generation_requests) == 2
    for request in generation_requests:
        shown = [turn["content"] for turn in request["messages"][1:-1] if turn["role"] == "assistant"]
        assert len(shown) == 2 and set(shown) <= {prompt for prompt, _ in SEED_ROWS}
    generated = pl.read_parquet(run / "self_instruct" / "part-00000.parquet")
    assert generated.height == 2
    assert set(generated["parent_ids"].explode()) <= set(seeds["id"])
    assert json.loads((run / "self_instruct" / "manifest.json").read_text())["inputs"].keys() == {"seed"}

    # The SFT rows hold the seed rows as anchors, with their human answers and provenance.
    unique = summary["counts"]["prompts after dedupe"]
    assert summary["SFT rows by source"] == {"datagen.teacher.answer_prompts@2": unique - 2, source: 4}
    sft = pl.read_parquet(run / "sft" / "part-00000.parquet").filter(pl.col("source") == source)
    assert sft["prompt"].to_list() == [prompt for prompt, _ in SEED_ROWS]
    assert sft["response"].to_list() == [TASK.render_answer(answer) for _, answer in SEED_ROWS]
    assert sft["parent_ids"].to_list() == [[gold_id] for gold_id in gold_ids]
    exported = {row["messages"][1]["content"]: row["messages"][2]["content"]
                for row in read_jsonl(Path(summary["exports"]) / "trl_sft" / "train.jsonl")}
    assert all(exported[prompt] == TASK.render_answer(answer) for prompt, answer in SEED_ROWS)

    # The gate checked the eval set only, and the seed check is in the export's manifest.
    export = json.loads((Path(summary["exports"]) / "manifest.json").read_text())["summary"]
    gate = export["contamination_gate"]
    assert (gate["status"], [ref["set"] for ref in gate["gold_sets"]]) == ("clean", ["triage/v1"])
    eval_v1 = GoldRoot(root).get("triage")
    assert export["seed_set"] == {
        "seed": f"triage_seed/v1 (digest {seed.digest[:16]})", "verdict": "disjoint",
        "eval_sets": [{"set": "triage/v1", "digest": eval_v1.digest, "sha256": eval_v1.manifest["sha256"],
                       "records": 2}],
        "methods": METHODS, "overlaps": [],
        "reports": [str(run / "contamination" / "seed" / "triage-v1" / "overlap.html")]}
    assert summary["seed set"] == {"set": "triage_seed/v1", "digest": seed.digest, "rows": 4, "few_shot": 3,
                                   "verdict": "disjoint", "eval_sets": ["triage/v1"], "methods": METHODS}


def test_a_new_seed_version_makes_again_what_came_from_the_old_one(tmp_path):
    root = gold_root(tmp_path)
    labels = {t.text: t.label for t in TASK.generate(6, 9)}
    extra = ("My gift card code says it was already redeemed but I never used it, the card number ends in 5521.",
             triage(category="billing_error", priority="high", order_id=None, product="gift card",
                    summary="Gift card shows as redeemed though the customer never used it."))

    with ScriptedTeacher(scripted(labels)) as teacher:
        first = build_dataset(recipe(tmp_path, teacher, self_instruct=None), run_id="resumed")
        lock_gold_rows(root, "triage_seed", TRIAGE, [extra], "seed", CHECK)
        again = build_dataset(recipe(tmp_path, teacher, self_instruct=None), run_id="resumed")

    v2 = GoldRoot(root).seed_set("triage_seed", "support_triage")
    assert v2.name == "triage_seed/v2"
    assert first["seed set"]["rows"] == 4 and again["seed set"]["rows"] == 5
    assert again["SFT rows by source"][f"gold-seed:triage_seed/v2@{v2.digest}"] == 5
    assert not any(source.startswith("gold-seed:triage_seed/v1") for source in again["SFT rows by source"])


def test_a_build_refuses_a_seed_set_that_overlaps_an_eval_set_locked_after_it(tmp_path):
    root = gold_root(tmp_path)
    billed_twice = SEED_ROWS[1][0].replace("I was billed", "i was BILLED")
    records = lock_gold_rows(root, "triage_more", TRIAGE, [(billed_twice, SEED_ROWS[1][1])]) / "records.jsonl"
    seed = GoldRoot(root).seed_set("triage_seed", "support_triage")

    with ScriptedTeacher(scripted({})) as teacher:
        with pytest.raises(SeedOverlapError) as refused:
            build_dataset(recipe(tmp_path, teacher), run_id="refused")
        assert teacher.requests == []  # refused before any teacher was asked

    assert str(refused.value).startswith(
        f"seed set triage_seed/v1 is not used: it comes too close to eval rows in 1 pairs (measured by exact, ngram, "
        f"minhash):\n  seed row {seed.path / 'records.jsonl'} line 2 (id {gold_row_id(*SEED_ROWS[1])[:12]}) ~ eval row "
        f"{records}:1 (id {gold_row_id(billed_twice, SEED_ROWS[1][1])[:12]}) of triage_more/v1: exact, ngram, minhash\n")
    verdict = json.loads((tmp_path / "runs" / "refused" / "contamination" / "seed_disjointness.json").read_text())
    assert verdict == {"verdict": "refused", "error": str(refused.value)}
    assert not (tmp_path / "runs" / "refused" / "seed").exists()
