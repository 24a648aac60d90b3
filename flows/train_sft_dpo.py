"""Train a LoRA adapter on a curated export: verify gold → gate → SFT → DPO → save.

    python -m flows.train_sft_dpo --recipe flows/recipes/train_support_triage.yaml

Also deployable with Prefect (`prefect.yaml`, deployment `train-sft-dpo/support-triage`).
Everything lands in `runs/<run_id>/train/` beside the export it trained on (or the
recipe's `out`):

    gold.json                   the locked gold sets verified, with their signed digests
    contamination/gate.json     the gate's verdict over every row about to be trained on
    sft/  adapter/ result.json log_history.json checkpoints/
    dpo/  adapter/ result.json log_history.json checkpoints/
    merged/                     base + final adapter, merged (with `merge: true`)
    sft-loss.png  dpo-loss.png
    manifest.json               written last: base model and its hash, export and gold
                                hashes, gate result, recipe, library versions, seeds,
                                wall time and tokens/s per stage

A stage whose `result.json` exists is done and is not run again; an interrupted stage
resumes from its last checkpoint. The gold sets are verified (hashes and signatures,
`gold/gold_root.py`) before anything else, and training refuses to start without a
locked gold set of the task, since nothing could show later whether the fine-tune helped,
unless the recipe's `contamination_gate.without_gold_reason` says why, which the manifest
records. The recipe must name its `task`: the gate checks that task's gold sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.foundation.export_layout import DPO_FILE, SFT_FILE
from datagen.foundation.hashing import canonical_json, file_sha256
from datagen.foundation.run_store import write_text_atomic
from datagen.foundation.task import import_task
from datagen.serving.merged_model import merge_adapter
from evals.contamination.audit_inputs import row_texts
from evals.contamination.gate import ContaminationError, ContaminationGateConfig, gate_rows, gold_sets_to_gate
from flows.graceful_stop import Stopped, run_command
from flows.job_main import job_main
from flows.recipe import RecipeError, load_recipe
from gold.gold_root import GoldSetError, LockedGoldSet
from train.ablations import read_export_rows
from train.base_model import model_hash
from train.dpo import DPOStageConfig, run_dpo
from train.loss_curves import plot_log_history
from train.on_policy_rounds import OnPolicyConfig, on_policy_round
from train.replay_mix import ReplayConfig, replay_rows
from train.sft import SFTStageConfig, run_sft

LIBRARIES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes")


class TrainRecipe(BaseModel):
    """One training run's whole intent. `export` names the data; `build_recipe` may name
    the dataset recipe instead, whose run's export is used."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="the task by import path; the gate checks this task's gold sets")
    export: Path | None = Field(None, description="a crucible export folder (runs/<run_id>/export)")
    build_recipe: Path | None = Field(None, description="the dataset recipe whose run's export to train on")
    base_model: Path | None = Field(None, description="a model folder; default: the embedded SmolLM2-135M-Instruct")
    quantization: Literal["none", "qlora"] = "none"
    contamination_gate: ContaminationGateConfig = ContaminationGateConfig()
    sft: SFTStageConfig = SFTStageConfig()
    dpo: DPOStageConfig | None = DPOStageConfig()
    replay: ReplayConfig | None = None
    on_policy: OnPolicyConfig | None = Field(None, description="DPO on the SFT policy's own samples "
                                             "(train/on_policy_rounds.py) instead of the export's pairs")
    merge: bool = Field(False, description="also save base + final adapter merged, for serving without peft")
    out: Path | None = Field(None, description="default: the export's run folder / train")

    @model_validator(mode="after")
    def _on_policy_needs_dpo(self) -> "TrainRecipe":
        if self.on_policy is not None and self.dpo is None:
            raise ValueError("on_policy pairs are for DPO: give a dpo section, or drop on_policy")
        if self.on_policy is not None and import_task(self.task).answer_format == "text":
            raise ValueError("on_policy reads each prompt's label back from the export's answer, and a text task's "
                             "checks are not in its reply: drop on_policy")
        return self

    def export_dir(self) -> Path:
        if (self.export is None) == (self.build_recipe is None):
            raise ValueError("give exactly one of export and build_recipe")
        if self.export is not None:
            return self.export
        from flows.build_dataset import BuildDatasetRecipe

        build = load_recipe(self.build_recipe, BuildDatasetRecipe)
        return build.runs_dir / build.default_run_id() / "export"

    def out_dir(self) -> Path:
        return self.out or self.export_dir().parent / "train"


class ExportTaskMismatch(ValueError):
    """The export was built for another task than the recipe names: the gate would check
    the wrong task's gold sets."""


def check_export_task(export: Path, task_path: str) -> None:
    """Refuse an export whose build recipe named another task (a crucible export's manifest
    says; an ablation's export points at its parent's)."""
    manifest_path = export / "manifest.json"
    while manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        built_for = manifest.get("config", {}).get("task")
        if built_for is not None:
            if import_task(built_for).name != import_task(task_path).name:
                raise ExportTaskMismatch(f"{export} was built for {built_for}, but the recipe's task is {task_path}: "
                                         "the gate would check the wrong task's gold sets")
            return
        if "parent_export" not in manifest:
            return
        manifest_path = Path(manifest["parent_export"]) / "manifest.json"


@task(cache_policy=NO_CACHE)
def verify_gold_sets(config: ContaminationGateConfig, task_path: str, out: Path) -> list[LockedGoldSet]:
    """Every gold version under the root verified and signed; the task's newest sets, which
    the gate checks against (none only with `without_gold_reason`)."""
    _, gold = gold_sets_to_gate(config, import_task(task_path).name)
    record = {"gold_sets": [locked.ref() for locked in gold],
              "without_gold_reason": config.without_gold_reason if not gold else None}
    write_text_atomic(out / "gold.json", json.dumps(record, indent=1))
    get_run_logger().info("gold sets verified: %s", ", ".join(f"{g.label} ({len(g.rows)} rows)" for g in gold)
                          or f"none ({config.without_gold_reason})")
    return gold


@task(cache_policy=NO_CACHE)
def gate_training_rows(config: ContaminationGateConfig, gold: list[LockedGoldSet], chats: list[dict],
                       replay: list[dict], pairs: list[dict], out: Path):
    """Audit every row about to be trained on against the gold sets (the task's, and the
    regression set the recipe names); replay rows are their own group, `replay:<id>` in
    the verdict."""
    kept, gate = gate_rows({"sft": chats, "replay": replay, "dpo": pairs}, lambda row: (row["id"], *row_texts(row)),
                           gold, config, out / "contamination")
    get_run_logger().info("contamination gate: %s against %s", gate.status, gate.names)
    return kept["sft"], kept["replay"], kept["dpo"], gate.as_dict()


@task(cache_policy=NO_CACHE)
def make_replay_rows(config: ReplayConfig, task_rows: int, model_dir: Path, folder: Path) -> tuple[list[dict], dict]:
    """The replay mix's rows (the base model's own answers, or the user's chats), timed."""
    started = time.monotonic()
    rows, record = replay_rows(config, task_rows, model_dir, folder)
    record["seconds"] = round(time.monotonic() - started, 1)
    get_run_logger().info("replay: %d rows (%s, share %s) in %.1f s", len(rows), config.source, config.share,
                          record["seconds"])
    return rows, record


@task(cache_policy=NO_CACHE)
def train_sft(config: SFTStageConfig, quantization: str, model_dir: Path, chats: list[dict], out: Path) -> dict:
    done = out / "sft" / "result.json"
    if done.is_file():
        get_run_logger().info("SFT already done (%s); not run again", done)
        return json.loads(done.read_text())
    logger = get_run_logger()
    return run_sft(config, model_dir, chats, out / "sft", quantization=quantization,
                   on_mask_sample=lambda sample: logger.info("SFT loss mask («supervised»):\n%s", sample))


@task(cache_policy=NO_CACHE)
def train_dpo(config: DPOStageConfig, quantization: str, model_dir: Path, start: Path, pairs: list[dict],
              folder: Path) -> dict:
    """DPO from the adapter at `start` (the SFT adapter, or the previous on-policy round's)."""
    done = folder / "result.json"
    if done.is_file():
        get_run_logger().info("DPO already done (%s); not run again", done)
        return json.loads(done.read_text())
    return run_dpo(config, model_dir, start, pairs, folder, quantization=quantization)


@task(cache_policy=NO_CACHE, task_run_name="on-policy-pairs-round-{round_}")
def sample_on_policy_pairs(task_path: str, config: OnPolicyConfig, gate: ContaminationGateConfig,
                           gold: list[LockedGoldSet], model_dir: Path, policy: Path, chats: list[dict], round_: int,
                           folder: Path) -> list[dict]:
    """The policy's samples on the training prompts, made into pairs, gated like every row."""
    task_ = import_task(task_path)
    rows, summary = on_policy_round(task_, config, model_dir, policy, chats, round_, folder)
    kept, verdict = gate_rows({"on_policy": rows}, lambda row: (row["id"], *row_texts(row)), gold, gate,
                              folder / "contamination")
    get_run_logger().info("on-policy round %d: %s; gate %s", round_, json.dumps(summary), verdict.status)
    return kept["on_policy"]


@task(cache_policy=NO_CACHE)
def save_outputs(final: Path, merge: bool, model_dir: Path, out: Path, manifest: dict) -> dict:
    """Loss plots, the merged model when asked for, and the manifest, written last;
    `final` is the adapter the run ends with."""
    sft_history = json.loads((out / "sft" / "log_history.json").read_text())
    plot_log_history(sft_history, ["loss", "eval_loss"], "SFT loss", out / "sft-loss.png")
    if (final.parent / "log_history.json").is_file() and final.parent.name.startswith("dpo"):
        dpo_history = json.loads((final.parent / "log_history.json").read_text())
        plot_log_history(dpo_history, ["loss", "rewards/margins", "rewards/accuracies"], "DPO", out / "dpo-loss.png")
    manifest["final_adapter"] = str(final)
    if merge:
        manifest["merged"] = str(merge_adapter(model_dir, final, out / "merged"))
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1, default=str))
    return manifest


@flow(name="train-sft-dpo")
def train_sft_dpo(recipe: TrainRecipe | Path) -> dict:
    # A deployment names its recipe file (prefect.yaml); a command passes the loaded recipe.
    recipe = load_recipe(recipe, TrainRecipe) if isinstance(recipe, Path) else recipe
    started = time.monotonic()
    export = recipe.export_dir()
    out = recipe.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    model_dir = recipe.base_model or _embedded_model()
    check_export_task(export, recipe.task)
    gold = verify_gold_sets(recipe.contamination_gate, recipe.task, out)
    chats, pairs = read_export_rows(export / SFT_FILE), read_export_rows(export / DPO_FILE) if recipe.dpo else []
    replay, replay_record = [], None
    if recipe.replay:
        replay, replay_record = make_replay_rows(recipe.replay, len(chats), model_dir, out / "replay")
    made = [row["id"] for row in replay]
    chats, replay, pairs, gate = gate_training_rows(recipe.contamination_gate, gold, chats, replay, pairs, out)
    if replay_record is not None:
        kept = {row["id"] for row in replay}
        replay_record |= {"rows": len(replay), "removed_by_gate": [row_id for row_id in made if row_id not in kept]}
    sft = train_sft(recipe.sft, recipe.quantization, model_dir, chats + replay, out)
    dpo, policy = None, out / "sft" / "adapter"
    if recipe.dpo and recipe.on_policy:
        # Iterative DPO: each round samples the policy the last one made; the final round's
        # adapter is in dpo/, earlier ones in dpo-round-<r>/. A round with no pair to teach
        # (every sample right, or none plausible) ends the rounds: DPO on nothing changes nothing.
        rounds = recipe.on_policy.rounds
        for round_ in range(1, rounds + 1):
            round_pairs = sample_on_policy_pairs(recipe.task, recipe.on_policy, recipe.contamination_gate, gold,
                                                 model_dir, policy, chats, round_, out / "on_policy" / f"round-{round_}")
            trained = round_pairs + (pairs if recipe.on_policy.keep_export_pairs else [])
            if not trained:
                get_run_logger().warning("on-policy round %d made no pair: no DPO from it", round_)
                break
            folder = out / ("dpo" if round_ == rounds else f"dpo-round-{round_}")
            dpo = train_dpo(recipe.dpo, recipe.quantization, model_dir, policy, trained, folder)
            policy, pairs = folder / "adapter", trained
        if dpo is None:
            pairs = []
    elif recipe.dpo:
        dpo = train_dpo(recipe.dpo, recipe.quantization, model_dir, policy, pairs, out / "dpo")
        policy = out / "dpo" / "adapter"
    manifest = {
        "base_model": {"path": str(model_dir), "sha256": model_hash(model_dir)},
        "export": {"path": str(export), "manifest_sha256": _sha_or_none(export / "manifest.json"),
                   "files": {name: file_sha256(export / name) for name in (SFT_FILE, DPO_FILE)
                             if (export / name).is_file()}},
        "gold_sets": [locked.ref() for locked in gold],
        "without_gold_reason": None if gold else recipe.contamination_gate.without_gold_reason,
        "contamination_gate": gate, "replay": replay_record,
        "on_policy": [json.loads(path.read_text())["summary"] for path in
                      sorted((out / "on_policy").glob("round-*/manifest.json"))] if recipe.on_policy else None,
        "rows": {"sft": len(chats) + len(replay), "dpo": len(pairs)},
        "recipe": json.loads(canonical_json(recipe.model_dump(mode="json"))),
        "libraries": {name: version(name) for name in LIBRARIES},
        "seeds": {"sft": recipe.sft.seed, "dpo": recipe.dpo.seed if recipe.dpo else None},
        "sft": _stage_figures(sft), "dpo": _stage_figures(dpo) if dpo else None,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    return save_outputs(policy, recipe.merge, model_dir, out, manifest)


def _stage_figures(result: dict) -> dict:
    keys = ("rows", "steps", "first_loss", "last_loss", "eval_losses", "first_step", "last_step", "train_seconds",
            "wall_seconds", "tokens_per_second", "adapter_tensors_changed", "mask")
    return {key: result[key] for key in keys if key in result}


def _sha_or_none(path: Path) -> str | None:
    return file_sha256(path) if path.is_file() else None


def _embedded_model() -> Path:
    from datagen.serving.embedded_model import embedded_model_dir

    return embedded_model_dir()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", type=Path, required=True)


def run(args: argparse.Namespace) -> int:
    try:
        recipe = load_recipe(args.recipe, TrainRecipe)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        manifest = run_command(lambda: train_sft_dpo(recipe))
    except Stopped as stopped:
        print(f"{stopped}", file=sys.stderr)
        return 130
    except (GoldSetError, ContaminationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ExportTaskMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = recipe.out_dir()
    print(f"\ntrained: {manifest['final_adapter']}")
    for stage in ("sft", "dpo"):
        figures = manifest.get(stage)
        if figures:
            loss = (figures.get("first_loss"), figures.get("last_loss")) if stage == "sft" else (
                (figures.get("first_step") or {}).get("loss"), (figures.get("last_step") or {}).get("loss"))
            print(f"{stage}: {figures['steps']} steps, loss {loss[0]} -> {loss[1]}, "
                  f"{figures.get('tokens_per_second')} tokens/s, {figures.get('train_seconds')} s")
    print(f"manifest: {out / 'manifest.json'}")
    return 0


main = job_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
