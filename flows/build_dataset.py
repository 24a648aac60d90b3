"""The build flow: labelled prompts -> teacher answers -> verified SFT rows and pairs -> exports.

    python -m flows.build_dataset --recipe flows/recipes/support_triage.yaml

Stages (each written to `runs/<run_id>/<stage>/` with a manifest, so a re-run with the
same run id skips what already finished):

    seed            optional: a locked seed set's rows (gold-seed provenance), proven
                    disjoint from the task's eval sets on every run, for the teachers'
                    few-shot turns, self-generation's seeds and SFT anchor rows
    prompts         the task's rule-based generator, with known labels
    imported        optional: the user's own prompts, SFT rows or pairs (JSONL/parquet in
                    TRL, Alpaca, ShareGPT or plain layout); broken rows kept with reasons.
                    Made again, with what was made from it, when a file's content changes
    self_instruct   optional: new inputs the teacher writes from those, over rounds, with a
                    diversity guard (no known labels)
    conversations   optional: generated prompts made conversations, a simulator playing the
                    user and the teachers answering each turn (no known labels)
    unique_prompts  prompts too long for a teacher set aside (too_long), then exact and
                    MinHash dedupe, before any teacher is paid
    answers         n teacher samples per prompt, over the OpenAI-compatible API
    verified        filters with reasons: truncated, too long, unparseable, schema, wrong fields
    sft             one answer per prompt: a verified teacher answer, else the known label;
                    and the seed rows as anchors
    pairs           chosen vs a plausible wrong sample: verifier-ranked or minimal correction
    mix             optional: each source's share of the SFT and preference sets, with caps
                    and a seed; the rows left out kept with their reasons
    export          TRL messages / prompt-chosen-rejected, Alpaca and ShareGPT files, and the
                    Hub's dataset card (README.md)

The run id defaults to the task name and a hash of the recipe: the same recipe resumes
the same run, a changed recipe starts a new one. Ctrl-C or SIGTERM stops it with exit
130 and a `stopped:` line (flows/graceful_stop.py); a re-run resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from datagen.dedupe.prompt_dedupe import PromptDedupeConfig, dedupe_prompts, removed_frame
from datagen.exports.data_mix import DataMixConfig, MixError, mix_markdown, mix_sets
from datagen.exports.dataset_card import CardFacts, DatasetCardConfig, curation_figures, write_dataset_card
from datagen.exports.formats import write_exports
from datagen.exports.sft_examples import SftSelectionConfig, sft_rows
from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers, reason_kind, wrong_fields_of
from datagen.filters.prompt_length import PromptBound, prompt_bounds, split_too_long
from datagen.foundation.hashing import canonical_json, file_sha256
from datagen.foundation.records import Example, examples_from_frame, examples_to_frame, pairs_from_frame, pairs_to_frame
from datagen.foundation.row_files import RowFileError
from datagen.foundation.run_store import RunStore, write_text_atomic
from datagen.foundation.task import Task, import_task
from datagen.generation.imports import ImportConfig, check_importable, import_file
from datagen.generation.labelled_prompts import LabelledPromptConfig, labelled_prompts
from datagen.generation.seed_examples import (
    SeedRow,
    SeedSetConfig,
    few_shot_rows,
    seed_examples,
    seed_source,
    with_seed_few_shot,
)
from datagen.generation.self_instruct import SelfInstructConfig
from datagen.judge.judge_answers import JudgeConfig
from datagen.pairs.pair_report import pair_report, pair_report_markdown
from datagen.pairs.preference_pairs import PairSources, PreferencePairConfig, build_pairs, unfit_strategies
from datagen.reports.build_summary import run_summary, seed_set_summary, summary_markdown
from datagen.reports.curation_report import curation_html, curation_markdown, curation_report
from datagen.reports.rule_coverage import rule_coverage
from datagen.serving.client import TeacherError
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.model_servers import ModelServers
from datagen.serving.server_processes import ModelServerError
from datagen.teacher.distill import DistillConfig
from datagen.teacher.simulate_users import UserSimulationConfig
from evals.contamination.audit_inputs import record_texts
from evals.contamination.gate import ContaminationError, ContaminationGateConfig, gate_rows, gold_sets_to_gate
from evals.contamination.seed_disjointness import seed_disjointness
from flows.graceful_stop import Stopped, run_command
from flows.job_main import job_main
from flows.prefect_api import PrefectApiError
from flows.recipe import RecipeError, load_recipe
from flows.teacher_tasks import (
    ask_student,
    distill_answers,
    generate_self_instruct,
    imported_answers,
    judge_answers,
    rejects_frame,
    simulate_users,
)
from gold.gold_root import GoldRoot, GoldSetError, LockedGoldSet
from gold.seed_sets import locked_seed_rows, prove_disjoint


class BuildDatasetRecipe(BaseModel):
    """Everything one dataset build needs; each section is its stage's own config."""

    model_config = ConfigDict(extra="forbid")

    task: str  # import path of a Task, e.g. "datagen.tasks.support_triage:TASK"
    runs_dir: Path = Path("runs")
    prompts: LabelledPromptConfig = LabelledPromptConfig()
    # A locked human seed set (gold/seed_sets.py): few-shot turns, self-generation seeds, SFT anchors.
    seed: SeedSetConfig | None = None
    imports: list[ImportConfig] = []
    self_instruct: SelfInstructConfig | None = None
    # Conversations from generated prompts, a model playing the user (datagen/teacher/simulate_users.py).
    simulate_users: UserSimulationConfig | None = None
    prompt_dedupe: PromptDedupeConfig = PromptDedupeConfig()
    distill: DistillConfig = DistillConfig()
    answer_filters: AnswerFilterConfig = AnswerFilterConfig()
    sft: SftSelectionConfig = SftSelectionConfig()
    pairs: PreferencePairConfig = PreferencePairConfig()
    # The base model the trainer will fine-tune, asked without few-shot turns, greedily:
    # its rejected answers are the rejected side of `teacher_vs_student` pairs.
    student: EndpointConfig | None = None
    contamination_gate: ContaminationGateConfig = ContaminationGateConfig()
    judge: JudgeConfig | None = None  # for judge_ranked pairs; never sees a gold row
    # The share of each source in the SFT and preference sets; without it every row made is kept.
    mix: DataMixConfig | None = None
    card: DatasetCardConfig = DatasetCardConfig()  # the export's README.md: license, language, ...

    @model_validator(mode="after")
    def _student_for_student_pairs(self) -> "BuildDatasetRecipe":
        if "teacher_vs_student" in self.pairs.strategies and self.student is None:
            raise ValueError("pairs.strategies has teacher_vs_student, so the recipe needs a student section")
        if "judge_ranked" in self.pairs.strategies and self.judge is None:
            raise ValueError("pairs.strategies has judge_ranked, so the recipe needs a judge section")
        return self

    @model_validator(mode="after")
    def _tools_to_send(self) -> "BuildDatasetRecipe":
        asked = [index for index, teacher in enumerate(self.distill.teachers) if teacher.tool_calling == "api"]
        if asked and not self.load_task().tools:
            raise ValueError(f"distill.teachers[{asked[0]}] has tool_calling: api, but task {self.task} declares "
                             "no tools")
        return self

    @model_validator(mode="after")
    def _pairs_fit_the_answer_format(self) -> "BuildDatasetRecipe":
        task = self.load_task()
        unfit = unfit_strategies(self.pairs.strategies, task)
        if unfit:
            raise ValueError(f"pairs.strategies: {', '.join(unfit)} cannot make pairs of {task.name}'s "
                             f"{task.answer_format} answers (datagen/pairs/preference_pairs.py)")
        return self

    @field_validator("task")
    @classmethod
    def _names_a_task(cls, path: str) -> str:
        loaded = import_task(path)
        if not isinstance(loaded, Task):
            raise ValueError(f"{path} is a {type(loaded).__name__}, not a datagen.foundation.task.Task")
        return path

    def load_task(self) -> Task:
        return import_task(self.task)

    def default_run_id(self) -> str:
        # The task's version is part of the intent: a changed prompt or schema is a new run,
        # not a resumed one.
        task = self.load_task()
        # Sections added since run ids were first made count only where a recipe sets them:
        # a recipe without them keeps its run id, and resumes its runs.
        unset = {name for name in ("mix", "card") if name not in self.model_fields_set}
        intent = {"recipe": self.model_dump(mode="json", exclude=unset), "task_version": task.version}
        digest = hashlib.sha256(canonical_json(intent).encode()).hexdigest()
        return f"{task.name}-{digest[:12]}"


# ---- tasks: each reads its inputs from the run store and writes one stage ----------


@task(cache_policy=NO_CACHE)
def generate_prompts(store: RunStore, task_: Task, config: LabelledPromptConfig) -> None:
    if store.is_complete("prompts"):
        return
    prompts = labelled_prompts(task_, config, store.run_id)
    coverage = rule_coverage(task_, prompts, config.min_rows_per_rule)
    if coverage["below_minimum"]:
        get_run_logger().warning("labelling rules with fewer than %d generated prompts: %s; generate more prompts",
                                 config.min_rows_per_rule, ", ".join(
                                     f"{name} ({coverage['rows_by_rule'][name]})" for name in coverage["below_minimum"]))
    store.write_stage(
        "prompts",
        {"part": examples_to_frame(prompts)},
        config=config.model_dump(mode="json"),
        inputs=[],
        summary={"rule_coverage": coverage},
    )


@task(cache_policy=NO_CACHE)
def use_seed_set(store: RunStore, root: GoldRoot, eval_sets: list[LockedGoldSet], config: SeedSetConfig,
                 gate: ContaminationGateConfig, task_: Task) -> tuple[list[Example], dict]:
    """The recipe's seed set, proven disjoint from the task's eval sets by the gate's audit on
    every run, since an eval set locked since the last may come close to it (refused,
    naming the rows and measures; `contamination/seed_disjointness.json` says why either
    way); its rows written as the `seed` stage. A run begun on another version of the seed
    set makes again what it made from it. Returns the seed rows for the few-shot turns and
    the check's result."""
    locked = root.seed_set(config.set, task_.name)
    verdict = store.run_dir / "contamination" / "seed_disjointness.json"

    def check(seed: str, rows: list[tuple[str, dict]], against: list[LockedGoldSet]):
        return seed_disjointness(seed, rows, against, gate.audit, report_dir=store.run_dir / "contamination" / "seed")

    try:
        proof = prove_disjoint(check, locked.label, locked_seed_rows(locked), eval_sets,
                               f"seed set {locked.name} is not used")
    except GoldSetError as refused:
        write_text_atomic(verdict, json.dumps({"verdict": "refused", "error": str(refused)}, indent=1))
        raise
    write_text_atomic(verdict, json.dumps(proof.as_dict(), indent=1))
    get_run_logger().info("seed set %s: disjoint from %s (%s)", locked.label,
                          ", ".join(ref["set"] for ref in proof.eval_sets), ", ".join(proof.methods))
    if store.is_complete("seed") and store.manifest("seed")["config"]["seed_set"]["digest"] != locked.digest:
        get_run_logger().info("seed set is %s now; made again: %s", locked.label, ", ".join(store.remove_stage("seed")))
    if not store.is_complete("seed"):
        rows = [SeedRow(row["id"], row["prompt"], row["reference"]) for row in locked.rows]
        seeds = seed_examples(rows, seed_source(locked.name, locked.digest), task_, store.run_id)
        store.write_stage(
            "seed",
            {"part": examples_to_frame(seeds)},
            config=config.model_dump(mode="json") | {"seed_set": locked.ref()},
            inputs=[],
            summary={"few_shot": [row.parent_ids[0] for row in few_shot_rows(seeds, config.few_shot, task_)],
                     "disjointness": proof.as_dict()},
        )
    return few_shot_rows(examples_from_frame(store.read("seed")), config.few_shot, task_), proof.as_dict()


@task(cache_policy=NO_CACHE)
def import_data(store: RunStore, task_: Task, imports: list[ImportConfig]) -> None:
    """The user's own files, read into records: prompts join the generated prompts before
    dedupe; an SFT row's prompt does too, and its answer joins the teacher answers at the
    filters (the teacher is not asked again); pairs join the pair set.

    The stage records each file's sha256: a file edited since is imported again, and the
    stages made from the old import are made again too (the rest are kept)."""
    files = {str(config.path): file_sha256(config.path) for config in imports}
    if store.is_complete("imported"):
        if store.manifest("imported")["config"].get("file_sha256") == files:
            return
        get_run_logger().info("import files changed since the last run; made again: %s",
                              ", ".join(store.remove_stage("imported")))
    examples, pairs, rejects = [], [], []
    for config in imports:
        result = import_file(config, task_, store.run_id)
        get_run_logger().info("imported %s as %s rows (%s layout): %d read, %d kept aside",
                              config.path, config.kind, result.layout,
                              len(result.examples) + len(result.pairs), len(result.rejects))
        examples += result.prompts_and_answers()
        pairs += result.pairs
        rejects += [dataclasses.asdict(r) | {"file": str(config.path)} for r in result.rejects]
    store.write_stage(
        "imported",
        {"part": examples_to_frame(examples), "pairs": pairs_to_frame(pairs),
         "rejects": pl.DataFrame(rejects, schema={"line": pl.Int64, "raw": pl.String, "reason": pl.String,
                                                  "file": pl.String})},
        config={"imports": [c.model_dump(mode="json") for c in imports], "file_sha256": files},
        inputs=[],
        summary={"rejected_by_reason": dict(Counter(r["reason"].split(":", 1)[0] for r in rejects))},
    )


@task(cache_policy=NO_CACHE)
def dedupe(store: RunStore, config: PromptDedupeConfig, bounds: list[PromptBound],
           max_prompt_tokens: int | None, few_shot_from: str | None = None) -> None:
    """Prompts too long for a model that will be asked set aside, then exact and near
    duplicates removed, before any teacher is paid. `few_shot_from`: the stage whose rows
    are the teachers' few-shot turns (the seed set's), which the bounds and every answer
    after depend on."""
    if store.is_complete("unique_prompts"):
        return
    prompts = examples_from_frame(store.read("prompts"))
    inputs = ["prompts"] + ([few_shot_from] if few_shot_from else [])
    for stage in ("imported", "self_instruct", "conversations"):
        if store.is_complete(stage):
            prompts += [e for e in examples_from_frame(store.read(stage)) if e.response is None]
            inputs.append(stage)
    # Before dedupe, which a 5 MB prompt would only slow down.
    kept, too_long = split_too_long(prompts, bounds)
    kept, removed = dedupe_prompts(kept, config)
    store.write_stage(
        "unique_prompts",
        {"part": examples_to_frame(kept), "removed": removed_frame(removed), "rejects": rejects_frame(too_long)},
        config=config.model_dump(mode="json") | {"max_prompt_tokens": max_prompt_tokens},
        inputs=inputs,
        summary={"removed_by_method": dict(Counter(r[3] for r in removed)),
                 "rejected_by_reason": dict(Counter(reason_kind(r) for _, r in too_long))},
    )


@task(cache_policy=NO_CACHE)
def verify_answers(store: RunStore, task_: Task, config: AnswerFilterConfig) -> None:
    if store.is_complete("verified"):
        return
    unique = {p.id for p in examples_from_frame(store.read("unique_prompts"))}
    # An imported answer whose prompt dedupe removed goes with its prompt.
    answers = examples_from_frame(store.read("answers")) + [
        a for a in imported_answers(store) if a.parent_ids[0] in unique
    ]
    kept, rejected = filter_answers(answers, task_, config)
    store.write_stage(
        "verified",
        {"part": examples_to_frame(kept), "rejects": rejects_frame(rejected)},
        config=config.model_dump(mode="json"),
        inputs=["answers", "imported"] if store.is_complete("imported") else ["answers"],
        summary={
            "rejected_by_reason": dict(Counter(reason_kind(r) for _, r in rejected)),
            # Answers to self-generated prompts: format-checked, label unknown.
            "kept_without_reference": sum(a.reference is None for a in kept),
            # What the teacher gets wrong when its answer is otherwise well-formed.
            "wrong_fields": dict(
                Counter(
                    field
                    for _, r in rejected
                    if reason_kind(r) == "wrong_fields"
                    for field in wrong_fields_of(r)
                )
            ),
        },
    )


@task(cache_policy=NO_CACHE)
def select_sft_rows(store: RunStore, task_: Task, config: SftSelectionConfig, min_rows_per_rule: int,
                    anchors_from: str | None = None) -> None:
    """One row per prompt, and the rows of stage `anchors_from` (the seed set's) as they are;
    the rows per labelling rule are counted against the prompts stage's minimum."""
    if store.is_complete("sft"):
        return
    anchors = examples_from_frame(store.read(anchors_from)) if anchors_from else []
    rows = sft_rows(examples_from_frame(store.read("verified")), examples_from_frame(store.read("unique_prompts")),
                    task_, config, anchors)
    store.write_stage(
        "sft",
        {"part": examples_to_frame(rows)},
        config=config.model_dump(mode="json"),
        inputs=["verified", "unique_prompts"] + ([anchors_from] if anchors_from else []),
        summary={"rows_by_source": dict(Counter(r.source for r in rows)),
                 "rule_coverage": rule_coverage(task_, rows, min_rows_per_rule)},
    )


@task(cache_policy=NO_CACHE)
def build_pair_set(store: RunStore, task_: Task, config: PreferencePairConfig) -> None:
    """Pairs from every source the run has: verified answers and their rejects, the SFT
    rows, the student's rejects and the judge's rankings where those stages ran, and
    imported pairs."""
    if store.is_complete("pairs"):
        return
    verified = examples_from_frame(store.read("verified"))
    sources = PairSources(verified, _read_rejects(store, "verified"),
                          sft_rows=examples_from_frame(store.read("sft")))
    inputs = ["verified", "sft"]
    if store.is_complete("student_answers"):
        sources.student_rejects = _read_rejects(store, "student_answers")
        inputs.append("student_answers")
    if store.is_complete("judge"):
        sources.judged = pairs_from_frame(store.read("judge"))
        inputs.append("judge")
    pairs, dropped, skipped = build_pairs(sources, task_, config)
    if store.is_complete("imported"):
        pairs += pairs_from_frame(store.read("imported", "pairs"))
        inputs.append("imported")
    report = pair_report(pairs, dropped, task_, config.max_chosen_longer_fraction, skipped)
    get_run_logger().info("%s", pair_report_markdown(report))
    store.write_stage(
        "pairs",
        {"part": pairs_to_frame(pairs), "dropped": pairs_to_frame(p for p, _ in dropped).with_columns(
            reason=pl.Series([r for _, r in dropped], dtype=pl.String))},
        config=config.model_dump(mode="json"),
        inputs=inputs,
        summary={"pairs_by_strategy": report["by_strategy"], "report": report},
    )


@task(cache_policy=NO_CACHE)
def mix_data(store: RunStore, config: DataMixConfig) -> None:
    """The recipe's share of each source in the SFT and preference sets; the rows left out
    kept with their reasons (`sft_left_out`, `pairs_left_out`)."""
    if store.is_complete("mix"):
        return
    answers = examples_from_frame(store.read("verified")) + [a for a, _ in _read_rejects(store, "verified")]
    mixed = mix_sets(examples_from_frame(store.read("sft")), pairs_from_frame(store.read("pairs")), answers, config)
    get_run_logger().info("%s", mix_markdown(mixed.report))
    left_out = {"sft_left_out": examples_to_frame(row for row, _ in mixed.sft.left_out),
                "pairs_left_out": pairs_to_frame(pair for pair, _ in mixed.pairs.left_out)}
    reasons = {"sft_left_out": mixed.sft.left_out, "pairs_left_out": mixed.pairs.left_out}
    store.write_stage(
        "mix",
        {"sft": examples_to_frame(mixed.sft.kept), "pairs": pairs_to_frame(mixed.pairs.kept)}
        | {name: frame.with_columns(reason=pl.Series([r for _, r in reasons[name]], dtype=pl.String))
           for name, frame in left_out.items()},
        config=config.model_dump(mode="json"),
        inputs=["sft", "pairs", "verified"],
        summary={"mix": mixed.report,
                 "left_out_by_reason": {name: dict(Counter(reason_kind(r) for _, r in rows))
                                        for name, rows in reasons.items()}},
    )


def _read_rejects(store: RunStore, stage: str) -> list:
    frame = store.read(stage, "rejects")
    return list(zip(examples_from_frame(frame.drop("reason", "detail")), frame["detail"]))


@task(cache_policy=NO_CACHE)
def verify_gold_sets(config: ContaminationGateConfig, task_: Task) -> tuple[GoldRoot, list[LockedGoldSet]]:
    """Open the gold root and verify every version before anything is generated or paid
    for: the judge's guard and the export gate use what this returns, and nothing else."""
    root, gold_sets = gold_sets_to_gate(config, task_.name)
    get_run_logger().info("gold sets verified: %s", ", ".join(g.label for g in gold_sets) or
                          f"none of the task ({config.without_gold_reason})")
    return root, gold_sets


@task(cache_policy=NO_CACHE)
def export_datasets(store: RunStore, task_path: str, config: ContaminationGateConfig,
                    gold_sets: list[LockedGoldSet], card: DatasetCardConfig, seed_check: dict | None = None,
                    mixed: bool = False) -> None:
    """The export files and their dataset card, after the contamination gate: no row near
    a locked eval row of the task leaves the run unless the recipe removes it or overrides
    with a reason. The seed set's disjointness check (`seed_check`), when one was used, is
    recorded beside the gate's verdict: seed rows are trained on, so the gate checks eval
    sets only. `mixed`: the rows are the mix stage's."""
    if store.is_complete("export"):
        return
    sft = examples_from_frame(store.read("mix", "sft") if mixed else store.read("sft"))
    pairs = pairs_from_frame(store.read("mix", "pairs") if mixed else store.read("pairs"))
    task_ = import_task(task_path)
    kept, gate = gate_rows({"sft": sft, "pairs": pairs}, record_texts, gold_sets, config,
                           store.run_dir / "contamination")
    sft, pairs = kept["sft"], kept["pairs"]
    get_run_logger().info("contamination gate: %s against %s", gate.status, gate.names or "no gold set")
    if gate.status == "removed":
        get_run_logger().warning("contamination gate removed %d rows: %s", len(gate.flagged), sorted(gate.flagged))
    facts = CardFacts(task_.name, store.run_id, sft, pairs, curation_figures(store), gate.as_dict(),
                      seed_set_summary(store, seed_check) if seed_check else None,
                      store.manifest("mix")["summary"]["mix"] if mixed else None)

    def write_files(folder: Path) -> None:
        write_exports(folder, sft, pairs, task_)
        write_dataset_card(folder, card, facts)

    store.write_stage(
        "export",
        {},
        config={"task": task_path, "contamination_gate": config.model_dump(mode="json"),
                "card": card.model_dump(mode="json")},
        inputs=["mix"] if mixed else ["sft", "pairs"],
        summary={"contamination_gate": gate.as_dict(), "seed_set": seed_check},
        write_files=write_files,
    )


@task(cache_policy=NO_CACHE)
def report_curation(store: RunStore, task_: Task) -> Path:
    """What the filters and pair strategies did to this run's data, as JSON, a Prefect
    artifact and a self-contained HTML page with plots."""
    kept, rejects = store.read("verified"), store.read("verified", "rejects")
    answers = pl.concat([kept, rejects.drop("reason", "detail")])  # teacher and imported answers
    report = curation_report(answers, kept, rejects, task_)
    pairs = store.manifest("pairs")["summary"]["report"]
    mix = store.manifest("mix")["summary"]["mix"] if store.is_complete("mix") else None
    write_text_atomic(store.run_dir / "curation.json",
                      json.dumps({"answers": report, "pairs": pairs} | ({"mix": mix} if mix else {}), indent=2))
    page = store.run_dir / "curation.html"
    write_text_atomic(page, curation_html(report, pairs, mix))
    create_markdown_artifact(curation_markdown(report) + "\n\n" + pair_report_markdown(pairs)
                             + ("\n\n" + mix_markdown(mix) if mix else ""), key="curation",
                             description="curation report: filters, preference pairs and the data mix")
    return page


@task(cache_policy=NO_CACHE)
def summarize_run(store: RunStore) -> dict:
    summary = run_summary(store)
    markdown = summary_markdown(summary)
    write_text_atomic(store.run_dir / "summary.json", json.dumps(summary, indent=2))
    write_text_atomic(store.run_dir / "summary.md", markdown)
    create_markdown_artifact(markdown, key="build-summary", description="dataset build summary")
    return summary


# ---- the flow ---------------------------------------------------------------------


@flow(name="build-dataset", log_prints=True)
def build_dataset(recipe: BuildDatasetRecipe | Path, run_id: str | None = None) -> dict:
    # A deployment names its recipe file (prefect.yaml); a command passes the loaded recipe.
    recipe = load_recipe(recipe, BuildDatasetRecipe) if isinstance(recipe, Path) else recipe
    store = RunStore(recipe.runs_dir, run_id or recipe.default_run_id())
    get_run_logger().info("run %s in %s", store.run_id, store.run_dir)
    task_ = recipe.load_task()
    gold_root, gold_sets = verify_gold_sets(recipe.contamination_gate, task_)
    seed, seed_check = recipe.seed, None
    if seed is not None:
        shots, seed_check = use_seed_set(store, gold_root, gold_sets, seed, recipe.contamination_gate, task_)
        if seed.few_shot:
            task_ = with_seed_few_shot(task_, shots)
    generate_prompts(store, task_, recipe.prompts)
    if recipe.imports:
        import_data(store, task_, recipe.imports)
    distill = recipe.distill
    with contextlib.ExitStack() as stack:
        servers = ModelServers(store.run_dir / "logs", stack)  # started on first use, stopped after the block
        if recipe.self_instruct is not None and not store.is_complete("self_instruct"):
            generate_self_instruct(store, task_, recipe.self_instruct, distill, servers,
                                   seeds_from="seed" if seed and seed.self_instruct_seeds else "prompts")
        if recipe.simulate_users is not None and not store.is_complete("conversations"):
            simulate_users(store, task_, recipe.simulate_users, distill, servers)
        dedupe(store, recipe.prompt_dedupe,
               prompt_bounds(task_, distill.teachers, recipe.student, distill.max_prompt_tokens),
               distill.max_prompt_tokens, few_shot_from="seed" if seed and seed.few_shot else None)
        if not store.is_complete("answers"):
            distill_answers(store, task_, distill, servers)
        if recipe.student is not None and not store.is_complete("student_answers"):
            ask_student(store, task_, recipe.student, distill, recipe.answer_filters, servers)
        verify_answers(store, task_, recipe.answer_filters)
        if recipe.judge is not None and not store.is_complete("judge"):
            judge_answers(store, task_, recipe.judge, distill.cache_path, servers, gold_root.prompt_index())
    select_sft_rows(store, task_, recipe.sft, recipe.prompts.min_rows_per_rule,
                    anchors_from="seed" if seed and seed.sft_anchors else None)
    build_pair_set(store, task_, recipe.pairs)
    if recipe.mix is not None:
        mix_data(store, recipe.mix)
    export_datasets(store, recipe.task, recipe.contamination_gate, gold_sets, recipe.card, seed_check,
                    mixed=recipe.mix is not None)
    report_curation(store, task_)
    return summarize_run(store)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--run-id", default=None, help="resume or name a run (default: from the recipe)")
    parser.add_argument("--allow-contamination", metavar="REASON", default=None,
                        help="export rows that come close to gold rows anyway, for this reason (recorded)")


def run(args: argparse.Namespace) -> int:
    try:
        recipe = load_recipe(args.recipe, BuildDatasetRecipe)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for number, config in enumerate(recipe.imports):
        try:
            check_importable(config)
        except RowFileError as error:
            print(f"error: {args.recipe}: imports.{number}.path: {error}", file=sys.stderr)
            return 2
    # The override is not part of the recipe's identity: the refused run resumes at its export.
    run_id = args.run_id or recipe.default_run_id()
    if args.allow_contamination is not None:
        try:
            gate = ContaminationGateConfig.model_validate(
                recipe.contamination_gate.model_dump() | {"override_reason": args.allow_contamination})
        except ValidationError as error:
            print(f"error: --allow-contamination: {error.errors()[0]['msg']}", file=sys.stderr)
            return 2
        recipe = recipe.model_copy(update={"contamination_gate": gate})
    try:
        summary = run_command(lambda: build_dataset(recipe, run_id=run_id))
    except Stopped as stopped:
        print(f"{stopped}", file=sys.stderr)
        return 130
    except (TeacherError, ModelServerError, ContaminationError, GoldSetError, PrefectApiError, MixError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary_markdown(summary))
    print(f"Run folder: {summary['run_dir']}\nExports:    {summary['exports']}\n"
          f"Curation:   {summary['curation report']}")
    return 0


main = job_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
