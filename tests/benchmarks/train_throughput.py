"""Benchmark: crucible's SFT and DPO stages against TRL with its defaults, in tokens per
second, on the embedded SmolLM2-135M model.

    .venv/bin/python -m tests.benchmarks.train_throughput [--steps 6] [--batch 8] [--rounds 2] [--gpu]

Data: the newest demo export holding both `runs/*/export/trl_sft/train.jsonl` and
`trl_dpo/train.jsonl`; without one, rows made from the support-triage generator (the
ticket's chat with its rendered label as the answer; for DPO, the rejected answer is the
label with the next category). Every run is a fresh process given the same rows in the
same order.

- crucible SFT: `train.sft.run_sft` with its defaults except `max_steps`, `batch_size`,
  `seed=42` and `eval_share=0` (see below).
- TRL SFT: `trl.SFTTrainer(model=<model dir>, peft_config=...)` with `SFTConfig`
  defaults except `output_dir`, `max_steps`, `per_device_train_batch_size`, and on CPU
  `use_cpu=True, bf16=False` (below); the LoRA is crucible's default shape (r=16,
  alpha=32, dropout 0.05, all linear layers), so both train the same adapter.
- crucible DPO: `train.dpo.run_dpo` from the SFT adapter of the first crucible SFT run,
  its defaults except `max_steps`, `batch_size` and `seed=42`.
- TRL DPO: `trl.DPOTrainer` on `PeftModel.from_pretrained(base, <that adapter>,
  is_trainable=True)` with `DPOConfig` defaults except the same fields.

What is counted, identically for both sides (both are TRL trainers underneath):

- time: the Trainer's own `train_runtime`, the wall time of the training loop inside
  `train()`, which includes the checkpoint both save at the last step; model load,
  tokenization, crucible's loss-mask check and the adapter save after `train()` are
  outside it.
- tokens: TRL's `num_tokens`, the running total over every batch the trainer processed
  of the batch's attention mask (real tokens, padding not counted; for DPO the
  prompt+chosen and prompt+rejected sequences; padding-free batches count every packed
  position); the largest value in the log history is the total.
- tokens/s = tokens / time. Each method runs `--rounds` times, the order alternating
  (crucible first in odd rounds, TRL first in even ones); the best round counts.

Seeds: TRL's default seed is 42; crucible's is set to 42 too, so both shuffle the rows
the same way, see the same batches and count the same tokens (checked and printed).
`eval_share=0` because TRL's defaults run no evaluation, while crucible's held-out eval
at the epoch's end would run inside `train()` and take time that is not training.

Precision: TRL's configs default to `bf16=True`, which on CPU autocasts every matmul to
bfloat16; on these CPUs that took 810 s for one SFT step where fp32 took 51 s (batch 8,
demo export, 2 cores), so on CPU the TRL side trains fp32 like crucible does
(`base_model.py`), or the ratio would measure the precision, not the wrapper. On CUDA
TRL keeps its default (fp32 weights, bf16 autocast) and crucible its own (bf16 weights).
Differences that stay, being crucible's choices: the loss on the assistant's tokens only
(TRL's default: every token) and a log line every step (TRL: every 10).

With `--gpu` (CUDA only) it also runs SFT with packing (TRL's BFD packing, which is
padding-free) on both sides, crucible's LoRA SFT and DPO with `quantization="qlora"`,
and QLoRA's peak GPU memory over LoRA's. The peak MiB column is, on CUDA, the run's
`torch.cuda.max_memory_allocated()`; on CPU, its process's peak RSS (`ru_maxrss`:
model, activations and the logits, about 8 to 13 GB at batch 8 for SFT here). Target (issue #7): crucible/TRL >= 0.95x on CPU,
i.e. the wrapper costs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

TRL_SEED = 42  # TrainingArguments' default seed
RUNS = Path("runs")
GENERATED_ROWS = 64


# ---- data ------------------------------------------------------------------------------


def export_files() -> tuple[Path, Path] | None:
    """The newest demo export with both TRL SFT and DPO files, or None."""
    exports = sorted((path.parent.parent for path in RUNS.glob("*/export/trl_sft/train.jsonl")
                      if (path.parent.parent / "trl_dpo" / "train.jsonl").exists()),
                     key=lambda export: (export / "trl_sft" / "train.jsonl").stat().st_mtime)
    return (exports[-1] / "trl_sft" / "train.jsonl", exports[-1] / "trl_dpo" / "train.jsonl") if exports else None


def generated_rows(count: int, seed: int = 0, *, trained: bool = False) -> tuple[list[dict], list[dict]]:
    """SFT chats and DPO pairs from the support-triage generator's labelled tickets, with
    the teacher's system prompt, or with `trained` the shorter one training rows carry."""
    from datagen.tasks.support_triage import TASK, Category

    categories = typing.get_args(Category)
    sft, dpo = [], []
    for ticket in TASK.generate(count, seed):
        prompt = TASK.messages(ticket.text, few_shot=False, trained=trained)
        chosen = [{"role": "assistant", "content": TASK.render_answer(ticket.label)}]
        wrong = categories[(categories.index(ticket.label["category"]) + 1) % len(categories)]
        rejected = [{"role": "assistant", "content": TASK.render_answer({**ticket.label, "category": wrong})}]
        sft.append({"id": _content_id(prompt + chosen), "messages": prompt + chosen})
        dpo.append({"id": _content_id([prompt, chosen, rejected]), "prompt": prompt, "chosen": chosen,
                    "rejected": rejected})
    return sft, dpo


def _content_id(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).open() if line.strip()]


# ---- methods, each run in a fresh process ----------------------------------------------


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _trl_device_args() -> dict:
    """TRL's defaults on CUDA; on CPU, the CPU and fp32 (see the module docstring)."""
    return {} if _cuda() else {"use_cpu": True, "bf16": False}


def crucible_sft(rows: list[dict], out: Path, steps: int, batch: int, adapter: Path | None, model_dir: Path, *,
                 packing: bool = False, quantization: str = "none") -> list[dict]:
    from train.sft import SFTStageConfig, run_sft

    config = SFTStageConfig(max_steps=steps, batch_size=batch, packing=packing, eval_share=0, seed=TRL_SEED)
    run_sft(config, model_dir, rows, out, quantization=quantization)
    return json.loads((out / "log_history.json").read_text())


def trl_sft(rows: list[dict], out: Path, steps: int, batch: int, adapter: Path | None, model_dir: Path, *,
            packing: bool = False) -> list[dict]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from train.base_model import LoraSettings

    args = SFTConfig(output_dir=str(out / "checkpoints"), max_steps=steps, per_device_train_batch_size=batch,
                     packing=packing, **_trl_device_args())
    trainer = SFTTrainer(model=str(model_dir), args=args,
                         train_dataset=Dataset.from_list([{"messages": row["messages"]} for row in rows]),
                         peft_config=LoraSettings().peft_config())
    trainer.train()
    return trainer.state.log_history


def crucible_dpo(rows: list[dict], out: Path, steps: int, batch: int, adapter: Path | None, model_dir: Path, *,
                 quantization: str = "none") -> list[dict]:
    from train.dpo import DPOStageConfig, run_dpo

    config = DPOStageConfig(max_steps=steps, batch_size=batch, seed=TRL_SEED)
    run_dpo(config, model_dir, adapter, rows, out, quantization=quantization)
    return json.loads((out / "log_history.json").read_text())


def trl_dpo(rows: list[dict], out: Path, steps: int, batch: int, adapter: Path | None, model_dir: Path) -> list[dict]:
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(adapter),
                                      is_trainable=True)
    args = DPOConfig(output_dir=str(out / "checkpoints"), max_steps=steps, per_device_train_batch_size=batch,
                     **_trl_device_args())
    dataset = Dataset.from_list([{key: row[key] for key in ("prompt", "chosen", "rejected")} for row in rows])
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset,
                         processing_class=AutoTokenizer.from_pretrained(model_dir))
    trainer.train()
    return trainer.state.log_history


# name -> (stage, side, function); the stage picks the rows, "DPO" also needs an adapter.
METHODS = {
    "crucible SFT": ("SFT", "crucible", crucible_sft),
    "TRL SFT": ("SFT", "TRL", trl_sft),
    "crucible DPO": ("DPO", "crucible", crucible_dpo),
    "TRL DPO": ("DPO", "TRL", trl_dpo),
    "crucible SFT packed": ("SFT packed", "crucible", lambda *a: crucible_sft(*a, packing=True)),
    "TRL SFT packed": ("SFT packed", "TRL", lambda *a: trl_sft(*a, packing=True)),
    "crucible SFT QLoRA": ("SFT QLoRA", "crucible", lambda *a: crucible_sft(*a, quantization="qlora")),
    "crucible DPO QLoRA": ("DPO QLoRA", "crucible", lambda *a: crucible_dpo(*a, quantization="qlora")),
}


def measure(method: str, data: Path, out: Path, steps: int, batch: int, adapter: Path | None,
            model_dir: Path) -> dict:
    """Train with one method; its time, tokens, tokens/s and peak memory. Run it in a
    fresh process (`run_method`): the peak is the process's, and a second run in one
    process finds kernels and allocator caches warm."""
    import torch

    stage, side, train = METHODS[method]
    rows = json.loads(data.read_text())["DPO" if stage.startswith("DPO") else "SFT"]
    history = train(rows, out, steps, batch, adapter, model_dir)
    stats = {
        "reported_tokens_per_second":
            json.loads((out / "result.json").read_text())["tokens_per_second"] if side == "crucible" else None,
        "train_seconds": next(entry["train_runtime"] for entry in reversed(history) if "train_runtime" in entry),
        "tokens": int(max(entry.get("num_tokens", 0) for entry in history)),
        "steps": max(entry.get("step", 0) for entry in history),
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    stats["tokens_per_second"] = stats["tokens"] / stats["train_seconds"]
    return stats


# ---- driver and report -----------------------------------------------------------------


def run_method(method: str, data: Path, work: Path, steps: int, batch: int, adapter: Path | None,
               model_dir: Path | None = None) -> dict:
    """`measure` in a fresh process, on `model_dir` (the embedded model by default)."""
    out = work / f"{method.replace(' ', '-')}-{len(list(work.iterdir()))}"
    command = [sys.executable, "-m", "tests.benchmarks.train_throughput", "--measure", method, "--data", str(data),
               "--out", str(out), "--steps", str(steps), "--batch", str(batch)]
    command += ["--adapter", str(adapter)] if adapter else []
    command += ["--model", str(model_dir)] if model_dir else []
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode:
        raise SystemExit(f"{method} failed:\n{child.stderr[-6000:]}")
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    stats["out"] = out
    return stats


def report_row(method: str, round_: int, stats: dict) -> str:
    return (f"{method:22} {round_:>5} {stats['steps']:>5} {stats['tokens']:>8} {stats['train_seconds']:>8.1f} "
            f"{stats['tokens_per_second']:>9.1f} {stats['peak_mb']:>9.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each method, order alternating; best counts")
    parser.add_argument("--gpu", action="store_true", help="CUDA: add packed SFT, QLoRA and peak GPU memory")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        from datagen.serving.embedded_model import embedded_model_dir

        model_dir = args.model or embedded_model_dir()
        print(json.dumps(measure(args.measure, args.data, args.out, args.steps, args.batch, args.adapter, model_dir)))
        return 0

    import torch

    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA, and torch sees no GPU here")
    found = export_files()
    if found:
        sft, dpo = read_jsonl(found[0]), read_jsonl(found[1])
        source = f"demo export {found[0].parent.parent}"
    else:
        sft, dpo = generated_rows(GENERATED_ROWS)
        source = f"{GENERATED_ROWS} generated support-triage tickets"
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"data: {source}: {len(sft)} SFT chats, {len(dpo)} DPO pairs")
    print(f"model: embedded SmolLM2-135M-Instruct; LoRA r=16 alpha=32 all linear; {args.steps} steps of batch "
          f"{args.batch}; {device}; best of {args.rounds} rounds, order alternating\n")

    stages = [("SFT", "crucible SFT", "TRL SFT"), ("DPO", "crucible DPO", "TRL DPO")]
    if args.gpu:
        stages.insert(1, ("SFT packed", "crucible SFT packed", "TRL SFT packed"))
    print(f"{'method':22} {'round':>5} {'steps':>5} {'tokens':>8} {'train s':>8} {'tokens/s':>9} {'peak MiB':>9}")
    best: dict[str, dict] = {}
    adapter = None
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as folder:
        work = Path(folder)
        data = work / "rows.json"
        data.write_text(json.dumps({"SFT": sft, "DPO": dpo}))
        for stage, ours, theirs in stages:
            for round_ in range(1, args.rounds + 1):
                for method in (ours, theirs) if round_ % 2 else (theirs, ours):
                    stats = run_method(method, data, work, args.steps, args.batch, adapter)
                    print(report_row(method, round_, stats), flush=True)
                    if method not in best or stats["tokens_per_second"] > best[method]["tokens_per_second"]:
                        best[method] = stats
            if stage == "SFT":
                adapter = best[ours]["out"] / "adapter"  # DPO starts from crucible's SFT adapter
        if args.gpu:
            for method in ("crucible SFT QLoRA", "crucible DPO QLoRA"):
                best[method] = run_method(method, data, work, args.steps, args.batch, adapter)
                print(report_row(method, 1, best[method]), flush=True)

    print()
    for stage, ours, theirs in stages:
        same = "same tokens" if best[ours]["tokens"] == best[theirs]["tokens"] else (
            f"TOKENS DIFFER: crucible {best[ours]['tokens']}, TRL {best[theirs]['tokens']}")
        target = "" if torch.cuda.is_available() else " (target >= 0.95x)"
        print(f"{stage}: crucible / TRL {best[ours]['tokens_per_second'] / best[theirs]['tokens_per_second']:.2f}x"
              f"{target}; {same}; crucible's own result.json says {best[ours]['reported_tokens_per_second']} "
              f"tokens/s")
    if args.gpu:
        for stage in ("SFT", "DPO"):
            lora, qlora = best[f"crucible {stage}"]["peak_mb"], best[f"crucible {stage} QLoRA"]["peak_mb"]
            print(f"{stage} peak GPU memory: LoRA {lora:.0f} MiB, QLoRA {qlora:.0f} MiB ({qlora / lora:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
