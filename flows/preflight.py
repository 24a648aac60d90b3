"""The preflight: was the weight delta worth it? Baselines, pilot, ablations, one verdict.

    python -m flows.preflight --recipe flows/recipes/preflight_support_triage.yaml

1. Verify the locked gold sets: the task's newest (the target eval) and the regression
   set; refuse if either does not verify or does not exist.
2. Train the pilot: the recipe's training run (`flows/train_sft_dpo.py`: gate, LoRA SFT,
   DPO), its gate checking every row against the regression set as well as the task's.
   Its SFT adapter is a candidate too, which makes "without DPO" a free ablation.
3. Train each data ablation of the recipe (`train/ablations.py`); an ablation that leaves
   the SFT data alone reuses the pilot's SFT stage instead of training it again.
4. Evaluate every candidate on the same gold rows (`evals/`): baselines (the base model
   with the few-shot prompt; the base model held to the schema by constrained decoding;
   the teacher endpoint where the recipe names one) and every fine-tune, on the target
   set, and every model on the regression set.
5. Judge each fine-tune (`evals/candidate_verdicts.py`) and write `report.md`,
   `report.html` and `verdicts.json`, shown as a Prefect artifact.

Everything lands in the recipe's `out` (default `runs/<build run>/preflight/`). A
candidate's eval is kept with a fingerprint of what produced it (adapter weights, gold
set, prompts, generation settings) and re-used on a re-run only while that still holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, field_validator

from datagen.foundation.run_store import write_text_atomic
from datagen.foundation.task import Task, import_task
from datagen.serving.adapter_servers import AdapterServers
from datagen.serving.client import TeacherError
from datagen.serving.embedded_model import embedded_model_dir
from datagen.serving.endpoint import EndpointConfig
from evals.candidate_evals import Kind, evaluate
from evals.candidate_verdicts import CandidateScores, PrimaryMetric, judge_candidates
from evals.contamination.gate import ContaminationError
from evals.eval_candidates import Candidate, GenerationConfig
from evals.preflight_report import write_report
from evals.rule_scores import gold_rules, rule_accuracy
from flows.graceful_stop import Stopped, run_command
from flows.job_main import job_main
from flows.recipe import RecipeError, load_recipe
from flows.train_sft_dpo import TrainRecipe, train_sft_dpo
from gold.gold_root import GoldRoot, GoldSetError, LockedGoldSet
from train.ablations import Ablation, write_ablation_export

BASE = "base few-shot"


class PreflightRecipe(BaseModel):
    """The whole preflight. Every field's default is the recommended value."""

    model_config = ConfigDict(extra="forbid")

    train_recipe: Path = Field(description="the pilot's training recipe (flows/train_sft_dpo.py); its "
                               "contamination_gate.gold_root is where the evals' gold sets are read too")
    regression_set: str = Field("general_regression", description="the locked set that catches forgetting")
    metric: PrimaryMetric = Field("field_accuracy", description="the per-row target metric verdicts compare; "
                                  "check_share for a text task")
    regression_tolerance: float = Field(0.05, ge=0, le=1,
                                        description="the largest regression-accuracy drop an escalated fine-tune may have")
    min_schema_valid: float = Field(0.98, ge=0, le=1, description="the least share of schema-valid gold answers an "
                                    "escalated fine-tune may have (issue #17's bar for the demo's pilot)")
    constrained_baseline: bool = Field(True, description="also evaluate the base model under schema-constrained decoding")
    fine_tune_decoding: Literal["free", "constrained", "both"] = Field(
        "free", description="how every fine-tune (the pilot, its SFT adapter, the ablations) decodes its target rows: "
        "free, held to the answer schema (how a JSON task is served: vLLM's structured output), or both, each "
        "its own candidate with its own verdict. Constrained, the format is the decoder's and the verdict asks "
        "only what the weights bought: right values, against the base model held to the same schema")
    teacher: EndpointConfig | None = Field(None, description="evaluate the teacher endpoint as a baseline too "
                                           "(a server: base_url and model)")
    generation: GenerationConfig = GenerationConfig()
    # The demo's ablations run in a second command (`make ablations`, the same out folder,
    # so its baselines and pilot are read back): one SFT run and one eval each is more
    # than the 15 minutes `make demo` has on a 2-core CPU.
    ablations: list[Ablation] = Field([], description="the pilot's data changed one thing at a time: which part "
                                      "did the work? A pilot alone shows whether, not why")
    pilot_sft_candidate: bool = Field(True, description="also evaluate the pilot's SFT adapter alone (what DPO "
                                      "added) when no ablation is `dpo: false` and nothing else")
    out: Path | None = Field(None, description="default: the pilot's build run folder / preflight")

    @field_validator("teacher")
    @classmethod
    def _teacher_is_a_server(cls, teacher: EndpointConfig | None) -> EndpointConfig | None:
        if teacher is not None and teacher.base_url is None:
            raise ValueError("the teacher baseline is a server: give its base_url and model")
        return teacher

    def check_answer_format(self, task: Task) -> None:
        """A text task's replies are scored by checks: its metric is `check_share`, and no
        schema holds its decoding (its schema is its label's); a JSON task's are not."""
        text = task.answer_format == "text"
        if text != (self.metric == "check_share"):
            raise RecipeError(f"metric: {self.metric} does not score {task.name}'s {task.answer_format} answers: "
                              + ("use check_share" if text else "check_share is for text tasks"))
        if text and self.constrained_baseline:
            raise RecipeError(f"constrained_baseline: {task.name} answers in text, which no JSON schema holds: "
                              "set it to false")
        if text and self.fine_tune_decoding != "free":
            raise RecipeError(f"fine_tune_decoding: {task.name} answers in text, which no JSON schema holds: "
                              "set it to free")

    def pilot(self) -> TrainRecipe:
        """The training recipe, its gate checking the regression set too: no row the pilot
        or an ablation trains on (replay rows above all) may come close to a row it is scored on."""
        pilot = load_recipe(self.train_recipe, TrainRecipe)
        self.check_answer_format(import_task(pilot.task))
        gate = pilot.contamination_gate
        if self.regression_set in gate.also_against:
            return pilot
        also = gate.model_copy(update={"also_against": [*gate.also_against, self.regression_set]})
        return pilot.model_copy(update={"contamination_gate": also})

    def out_dir(self, pilot: TrainRecipe) -> Path:
        return self.out or pilot.out_dir().parent / "preflight"


@task(cache_policy=NO_CACHE)
def verify_gold_sets(regression_set: str, pilot: TrainRecipe) -> tuple[LockedGoldSet, LockedGoldSet]:
    """The task's newest locked set and the regression set, from the gold root the pilot is
    gated against, every version verified and signed (or raised, naming path and reason).
    The evals never run without gold: `without_gold_reason` is for training only."""
    root = GoldRoot(pilot.contamination_gate.gold_root)
    target = root.newest(import_task(pilot.task).name)[0]
    regression = root.get(regression_set)
    get_run_logger().info("gold sets verified: %s (%d rows), %s (%d rows)", target.label, len(target.rows),
                          regression.label, len(regression.rows))
    return target, regression


def train_ablation(ablation: Ablation, pilot: TrainRecipe, pilot_out: Path, folder: Path) -> Path:
    """The ablation's final adapter (it trains inside `train_sft_dpo`, a subflow, in `folder`/train)."""
    export = folder / "export"
    if not (export / "manifest.json").is_file():
        write_ablation_export(ablation, pilot.export_dir(), export)
    out = folder / "train"
    if not ablation.changes_sft() and not (out / "sft" / "result.json").is_file():
        shutil.copytree(pilot_out / "sft", out / "sft", dirs_exist_ok=True)  # the same rows, config and seed
    variant = pilot.model_copy(update={
        "export": export, "build_recipe": None, "out": out,
        "dpo": pilot.dpo if ablation.dpo else None,
        "on_policy": pilot.on_policy if ablation.on_policy and ablation.dpo else None,
        "replay": pilot.replay if ablation.replay is None else ablation.replay or None})
    manifest = train_sft_dpo(variant)
    return Path(manifest["final_adapter"])


@task(cache_policy=NO_CACHE, task_run_name="evaluate-{candidate.name}-{kind}")
def evaluate_candidate(generation: GenerationConfig, candidate: Candidate, kind: Kind, gold: LockedGoldSet,
                       model_dir: Path, task_path: str, out: Path, servers: AdapterServers | None) -> list[dict]:
    """One candidate on one gold set; per-row records, kept in `<out>/evals/<candidate>/<kind>.jsonl`."""
    started = time.monotonic()
    rows, kept = evaluate(candidate, kind, gold, import_task(task_path), model_dir, generation,
                          out / "evals" / candidate.folder, servers)
    how = "kept from an earlier run (same fingerprint)" if kept else f"{time.monotonic() - started:.0f} s"
    get_run_logger().info("%s on %s: %d rows, %s", candidate.name, gold.name, len(rows), how)
    return rows


def candidates(recipe: PreflightRecipe, pilot_out: Path, ablation_adapters: dict[str, Path],
               dpo_adapter: Path | None) -> list[Candidate]:
    found = [Candidate(BASE, "baseline", "few_shot", "the base model with the task's system prompt and few-shot turns")]
    if recipe.constrained_baseline:
        found.append(Candidate("base constrained", "baseline", "task",
                               "the base model with the task's system prompt, decoding held to the answer schema",
                               constrained=True))
    if recipe.teacher:
        found.append(Candidate("teacher", "baseline", "few_shot", f"the teacher {recipe.teacher.model}",
                               endpoint=recipe.teacher))
    fine_tunes = []
    if recipe.pilot_sft_candidate and not any(ablation.is_pilot_sft() for ablation in recipe.ablations):
        fine_tunes.append(("pilot SFT", "the pilot's LoRA SFT adapter (no DPO)", pilot_out / "sft" / "adapter"))
    if dpo_adapter is not None:
        fine_tunes.append(("pilot SFT+DPO", "the pilot: LoRA SFT, then DPO", dpo_adapter))
    for ablation in recipe.ablations:
        fine_tunes.append((f"ablation {ablation.name}", ablation.description, ablation_adapters[ablation.name]))
    decodings = {"free": (False,), "constrained": (True,), "both": (False, True)}[recipe.fine_tune_decoding]
    for name, description, adapter in fine_tunes:
        for constrained in decodings:
            found.append(Candidate(f"{name} constrained" if constrained else name, "fine-tune", "trained",
                                   f"{description}, decoding held to the answer schema" if constrained
                                   else description, adapter=adapter, constrained=constrained))
    return found


@task(cache_policy=NO_CACHE)
def report(metric: PrimaryMetric, tolerance: float, min_schema_valid: float, seed: int, ablations: list[Ablation],
           found: list[Candidate], scores: list[CandidateScores], task_path: str,
           gold: tuple[LockedGoldSet, LockedGoldSet], training: dict[str, Path], out: Path) -> dict:
    task_def = import_task(task_path)
    rules = None
    if task_def.labelling_rules:
        decided = gold_rules(task_def, gold[0].rows)
        rules = {candidate.name: rule_accuracy(task_def, decided, candidate.target_rows) for candidate in scores}
        for candidate in scores:
            candidate.rules = rules[candidate.name]
        write_text_atomic(out / "rule_accuracy.json", json.dumps(rules, indent=1))
    verdicts = judge_candidates(scores, base=BASE, metric=metric, fields=len(task_def.answer_schema.model_fields),
                                tolerance=tolerance, min_schema_valid=min_schema_valid, seed=seed)
    write_text_atomic(out / "verdicts.json", json.dumps(verdicts, indent=1))
    markdown = write_report(out, task=task_def, candidates=found, evals=out / "evals", verdicts=verdicts, gold=gold,
                            training=training, metric=metric, tolerance=tolerance, min_schema_valid=min_schema_valid,
                            rules=rules, ablations=ablations, ablations_folder=out / "ablations")
    create_markdown_artifact(markdown, key="preflight-report", description=f"preflight of {task_def.name}")
    return verdicts


@flow(name="preflight")
def preflight(recipe: PreflightRecipe | Path) -> dict:
    # A deployment names its recipe file (prefect.yaml); a command passes the loaded recipe.
    recipe = load_recipe(recipe, PreflightRecipe) if isinstance(recipe, Path) else recipe
    started = time.monotonic()
    pilot = recipe.pilot()  # the recipe files are read once: every path below derives from them
    out = recipe.out_dir(pilot)
    out.mkdir(parents=True, exist_ok=True)
    gold = verify_gold_sets(recipe.regression_set, pilot)
    pilot_manifest = train_sft_dpo(pilot)
    pilot_out = pilot.out_dir()
    ablation_adapters, training = {}, {"pilot": pilot_out}
    for ablation in recipe.ablations:
        if ablation.is_pilot_sft():
            ablation_adapters[ablation.name] = pilot_out / "sft" / "adapter"
            continue
        folder = out / "ablations" / ablation.name
        ablation_adapters[ablation.name] = train_ablation(ablation, pilot, pilot_out, folder)
        training[ablation.name] = folder / "train"
    model_dir = pilot.base_model or embedded_model_dir()
    # The pilot's own account of what it ended with: an on-policy round with nothing to
    # teach trains no DPO adapter.
    dpo_adapter = Path(pilot_manifest["final_adapter"]) if pilot_manifest["dpo"] else None
    found = candidates(recipe, pilot_out, ablation_adapters, dpo_adapter)
    scores = []
    with contextlib.ExitStack() as stack:
        servers = None if recipe.generation.engine == "in_process" else stack.enter_context(AdapterServers(
            recipe.generation.engine, model_dir, out / "logs", recipe.generation.adapters,
            {candidate.folder: candidate.adapter for candidate in found if candidate.adapter is not None}))
        for candidate in found:
            target_rows = evaluate_candidate(recipe.generation, candidate, "target", gold[0], model_dir, pilot.task,
                                             out, servers)
            if candidate.role == "fine-tune" or candidate.name == BASE:
                regression_rows = evaluate_candidate(recipe.generation, candidate, "regression", gold[1], model_dir,
                                                     pilot.task, out, servers)
            else:
                regression_rows = None  # a decoding constraint or another model: not the weights under test
            scores.append(CandidateScores(candidate.name, candidate.role, target_rows, regression_rows))
    verdicts = report(recipe.metric, recipe.regression_tolerance, recipe.min_schema_valid, recipe.generation.seed,
                      recipe.ablations, found, scores, pilot.task, gold, training, out)
    summary = {"out": str(out), "report": str(out / "report.html"), "verdicts": verdicts,
               "gold_sets": [locked.ref() for locked in gold],
               "pilot": pilot_manifest.get("final_adapter"), "wall_seconds": round(time.monotonic() - started, 1)}
    write_text_atomic(out / "preflight.json", json.dumps(summary, indent=1, default=str))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", type=Path, required=True)


def run(args: argparse.Namespace) -> int:
    try:
        recipe = load_recipe(args.recipe, PreflightRecipe)
        recipe.pilot()  # the training recipe it names is checked before anything starts too
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        summary = run_command(lambda: preflight(recipe))
    except Stopped as stopped:
        print(f"{stopped}", file=sys.stderr)
        return 130
    except (GoldSetError, ContaminationError, TeacherError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print()
    for name, verdict in summary["verdicts"].items():
        print(f"{name}: {verdict['verdict']}")
        for reason in verdict["reasons"]:
            print(f"    {reason}")
        for cause in verdict["causes"]:
            print(f"    why: {cause}")
    print(f"\nreport: {summary['report']}\n        {Path(summary['out']) / 'report.md'}")
    return 0


main = job_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
