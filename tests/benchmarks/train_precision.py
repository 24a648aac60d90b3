"""Benchmark: crucible's LoRA SFT and DPO with the base model's weights in bf16 against
fp32, on the CPU (`dtype` in SFTStageConfig / DPOStageConfig, train/base_model.py).

    .venv/bin/python -m tests.benchmarks.train_precision [--steps 4] [--batch 4] [--rounds 2] [--held-out 16]

bf16 here means the weights loaded in bfloat16 (`from_pretrained(dtype=torch.bfloat16)`),
not TRL's `bf16=True`, which on CPU autocasts fp32 weights per op and was about 10x
slower (shared/ENVIRONMENT.md). The LoRA weights and AdamW's state stay fp32 either way.

Data: rows made from the support-triage generator with the system prompt training rows
carry (`train_throughput.generated_rows(trained=True)`): the first `--steps x --batch`
rows train, the next `--held-out` rows measure. Every run is a fresh process with the
same rows, seed and steps; the demo train recipe's settings (SFT learning rate 1e-3,
activation checkpointing off). DPO starts from the fp32 SFT adapter of round 1 in both
precisions, so the DPO comparison measures DPO's own precision.

Measured per run:
- speed: steps / the Trainer's `train_runtime` (the training loop), the process's wall
  time (model load, tokenization, training, save; not the quality measure below), and
  the CPU seconds the stage took (user + system, the stage's whole call): on a machine
  shared with other jobs wall time measures the neighbours as much as the run, while the
  CPU seconds a run needs move much less with them;
- memory: the process's peak RSS (`ru_maxrss`), measured before the quality measure;
- quality, measured the same way for both precisions: the trained adapter on the fp32
  base, on the held-out rows. SFT: the mean loss on the answer's tokens. DPO: the DPO
  loss and reward accuracy (chosen's log-ratio over the SFT reference above rejected's)
  at the run's beta. Plus each run's training losses, step by step.

The precisions alternate (fp32 first in odd rounds, bf16 first in even ones), so a
neighbour's load on the machine falls on both; the best round's speed counts, and the
report prints bf16/fp32 ratios and the quality differences.

Measured 2026-11-29 on the 2-core AVX-512/AMX CPU with no other job running (load 1.5-2.0,
the run itself), `--steps 4 --batch 8 --held-out 8` (train s, fp32 / bf16):
- `--lora-dropout 0` (the demo's), 1 round: SFT 53.1 / 43.2 (bf16 1.23x steps/s), DPO
  138.9 / 118.6 (1.17x); peak RSS 0.81x and 0.76x; held-out SFT loss 0.952 / 0.9625, DPO
  loss 0.6885 / 0.6888, reward accuracy on 8 pairs 0.875 / 0.75;
- `--lora-dropout 0.05`, 2 rounds (DPO 1): SFT 59.8 and 57.4 / 51.4 and 51.0 (1.12-1.17x),
  DPO 138.7 / 111.5 (1.24x).
bf16 is faster, so `dtype: auto` loads the base in bf16 on a CPU with bf16 units
(datagen/foundation/precision.py). An earlier run beside other jobs (load 1.8-4.9, `--steps 2
--batch 4`) could not tell the two apart: SFT 63.8/50.5 and 114.2/124.7 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.train_throughput import generated_rows

PRECISIONS = ("float32", "bfloat16")
SEED = 42
SFT_LEARNING_RATE = 1e-3  # flows/recipes/train_support_triage.yaml


# ---- one run, in its own process --------------------------------------------------------


def train(stage: str, precision: str, rows: list[dict], out: Path, steps: int, batch: int,
          adapter: Path | None, model_dir: Path, lora_dropout: float) -> dict:
    from train.base_model import LoraSettings
    from train.dpo import DPOStageConfig, run_dpo
    from train.sft import SFTStageConfig, run_sft

    cpu_before = _cpu_seconds()
    if stage == "SFT":
        config = SFTStageConfig(max_steps=steps, batch_size=batch, eval_share=0, seed=SEED, dtype=precision,
                                learning_rate=SFT_LEARNING_RATE, gradient_checkpointing=False,
                                lora=LoraSettings(dropout=lora_dropout))
        run_sft(config, model_dir, rows, out)
    else:
        config = DPOStageConfig(max_steps=steps, batch_size=batch, seed=SEED, dtype=precision,
                                gradient_checkpointing=False)
        run_dpo(config, model_dir, adapter, rows, out)
    cpu_seconds = _cpu_seconds() - cpu_before
    history = json.loads((out / "log_history.json").read_text())
    train_seconds = next(entry["train_runtime"] for entry in reversed(history) if "train_runtime" in entry)
    return {"steps": max(entry.get("step", 0) for entry in history), "train_seconds": train_seconds,
            "losses": [round(entry["loss"], 4) for entry in history if "loss" in entry],
            "cpu_seconds": round(cpu_seconds, 1), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _answer_logprobs(model, tokenizer, prompt: list[dict], answer: list[dict]) -> tuple[float, int]:
    """Sum of the answer tokens' log-probabilities under `model`, and their count."""
    import torch

    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template(prompt + answer, tokenize=True, return_dict=True)["input_ids"]
    if ids[:len(prompt_ids)] != prompt_ids:
        raise ValueError("the chat template does not extend the prompt's tokens with the answer's")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    answer_part = logprobs[len(prompt_ids) - 1:]
    return float(answer_part.sum()), len(answer_part)


def held_out_quality(stage: str, rows: list[dict], adapter: Path, reference: Path | None, model_dir: Path,
                     beta: float) -> dict:
    """The adapter on the fp32 base: SFT's answer loss, or DPO's loss and reward accuracy."""
    import math

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32"),
                                      str(adapter), adapter_name="policy").eval()
    if stage == "SFT":
        total, count = 0.0, 0
        for row in rows:
            logprob, tokens = _answer_logprobs(model, tokenizer, row["messages"][:-1], row["messages"][-1:])
            total, count = total - logprob, count + tokens
        return {"held_out_loss": round(total / count, 4)}
    model.load_adapter(str(reference), adapter_name="reference")
    losses, wins = [], 0
    for row in rows:
        ratio = {}
        for side in ("chosen", "rejected"):
            model.set_adapter("policy")
            policy, _ = _answer_logprobs(model, tokenizer, row["prompt"], row[side])
            model.set_adapter("reference")
            ref, _ = _answer_logprobs(model, tokenizer, row["prompt"], row[side])
            ratio[side] = policy - ref
        margin = beta * (ratio["chosen"] - ratio["rejected"])
        losses.append(math.log1p(math.exp(-margin)))  # -log sigmoid(margin): DPO's sigmoid loss
        wins += margin > 0
    return {"held_out_dpo_loss": round(sum(losses) / len(losses), 4), "reward_accuracy": round(wins / len(rows), 3)}


def measure(stage: str, precision: str, data: Path, out: Path, steps: int, batch: int, adapter: Path | None,
            model_dir: Path, lora_dropout: float) -> dict:
    from train.dpo import DPOStageConfig

    split = json.loads(data.read_text())
    stats = train(stage, precision, split[stage]["train"], out, steps, batch, adapter, model_dir, lora_dropout)
    started = time.monotonic()
    stats |= held_out_quality(stage, split[stage]["held_out"], out / "adapter", adapter, model_dir,
                              DPOStageConfig().beta)
    stats["quality_seconds"] = round(time.monotonic() - started, 1)
    return stats


# ---- driver and report ------------------------------------------------------------------


def run_method(stage: str, precision: str, data: Path, work: Path, steps: int, batch: int,
               adapter: Path | None, lora_dropout: float) -> dict:
    out = work / f"{stage}-{precision}-{len(list(work.iterdir()))}"
    command = [sys.executable, "-m", "tests.benchmarks.train_precision", "--measure", stage, "--precision", precision,
               "--data", str(data), "--out", str(out), "--steps", str(steps), "--batch", str(batch),
               "--lora-dropout", str(lora_dropout)]
    command += ["--adapter", str(adapter)] if adapter else []
    started = time.monotonic()
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode:
        raise SystemExit(f"{stage} {precision} failed:\n{child.stderr[-6000:]}")
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    stats["wall_seconds"] = round(time.monotonic() - started - stats["quality_seconds"], 1)
    stats["steps_per_second"] = stats["steps"] / stats["train_seconds"]
    stats["out"] = out
    return stats


def report_row(stage: str, precision: str, round_: int, stats: dict) -> str:
    quality = (f"held-out loss {stats['held_out_loss']}" if stage == "SFT" else
               f"held-out DPO loss {stats['held_out_dpo_loss']}, reward acc {stats['reward_accuracy']}")
    return (f"{stage:4} {precision:9} {round_:>5} {stats['steps']:>5} {stats['train_seconds']:>8.1f} "
            f"{stats['steps_per_second']:>8.4f} {stats['wall_seconds']:>7.1f} {stats['cpu_seconds']:>7.1f} "
            f"{stats['peak_mb']:>9.0f}  "
            f"losses {stats['losses']}; {quality}")


def mean(runs: list[dict], key: str) -> float:
    return sum(stats[key] for stats in runs) / len(runs)


def split_rows(train_count: int, held_out: int) -> dict:
    sft, dpo = generated_rows(train_count + held_out, trained=True)
    return {"SFT": {"train": sft[:train_count], "held_out": sft[train_count:]},
            "DPO": {"train": dpo[:train_count], "held_out": dpo[train_count:]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each precision, order alternating")
    parser.add_argument("--held-out", type=int, default=16, help="rows the quality is measured on")
    parser.add_argument("--stages", nargs="+", choices=("SFT", "DPO"), default=["SFT", "DPO"])
    parser.add_argument("--lora-dropout", type=float, default=0.0,
                        help="the SFT adapter's dropout (DPO keeps it): the demo's 0, or LoraSettings' 0.05")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from datagen.serving.embedded_model import embedded_model_dir

    if args.measure:
        print(json.dumps(measure(args.measure, args.precision, args.data, args.out, args.steps, args.batch,
                                 args.adapter, embedded_model_dir(), args.lora_dropout)))
        return 0

    import torch

    print(f"data: support-triage generator, {args.steps * args.batch} training rows per stage, {args.held_out} "
          f"held out; model: embedded SmolLM2-135M-Instruct, LoRA r=16 all linear; {args.steps} steps of batch "
          f"{args.batch}, LoRA dropout {args.lora_dropout}; CPU {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads; load "
          f"average at start {os.getloadavg()[0]:.2f}\n")
    print(f"{'':4} {'weights':9} {'round':>5} {'steps':>5} {'train s':>8} {'steps/s':>8} {'wall s':>7} {'CPU s':>7} "
          f"{'peak MiB':>9}")
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="train-precision-") as folder:
        work = Path(folder)
        data = work / "rows.json"
        data.write_text(json.dumps(split_rows(args.steps * args.batch, args.held_out)))
        adapter = None
        if "DPO" in args.stages and "SFT" not in args.stages:
            raise SystemExit("DPO starts from the SFT adapter: measure SFT too")
        for stage in args.stages:
            for round_ in range(1, args.rounds + 1):
                for precision in PRECISIONS if round_ % 2 else PRECISIONS[::-1]:
                    stats = run_method(stage, precision, data, work, args.steps, args.batch,
                                       adapter if stage == "DPO" else None, args.lora_dropout)
                    runs.setdefault((stage, precision), []).append(stats)
                    print(report_row(stage, precision, round_, stats), f"(load {os.getloadavg()[0]:.2f})",
                          flush=True)
            if stage == "SFT":
                adapter = runs[("SFT", "float32")][0]["out"] / "adapter"

    print()
    for stage in args.stages:
        fp32 = max(runs[(stage, "float32")], key=lambda stats: stats["steps_per_second"])
        bf16 = max(runs[(stage, "bfloat16")], key=lambda stats: stats["steps_per_second"])
        drift = max(abs(a - b) for a, b in zip(fp32["losses"], bf16["losses"]))
        key = "held_out_loss" if stage == "SFT" else "held_out_dpo_loss"
        print(f"{stage}: bf16/fp32 steps/s {bf16['steps_per_second'] / fp32['steps_per_second']:.2f}x, wall "
              f"{bf16['wall_seconds'] / fp32['wall_seconds']:.2f}x, CPU seconds (mean of rounds) "
              f"{mean(runs[(stage, 'bfloat16')], 'cpu_seconds') / mean(runs[(stage, 'float32')], 'cpu_seconds'):.2f}x, "
              f"peak RSS {bf16['peak_mb'] / fp32['peak_mb']:.2f}x; "
              f"training loss differs by at most {drift:.4f} over {len(fp32['losses'])} steps; held-out "
              f"{key.removeprefix('held_out_')} fp32 {fp32[key]}, bf16 {bf16[key]} ({bf16[key] - fp32[key]:+.4f})"
              + (f"; reward accuracy fp32 {fp32['reward_accuracy']}, bf16 {bf16['reward_accuracy']}"
                 if stage == "DPO" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
