"""Benchmark: a preflight's generation through the engine against in-process transformers.

    .venv/bin/python -m tests.benchmarks.eval_generation [--rows 130] [--max-new-tokens 112]
        [--dtypes float32 bfloat16] [--cases few-shot constrained adapter] [--lora]

Candidates as the preflight asks them, on the locked support-triage gold prompts: the base
model with the few-shot prompt (`few-shot`), the base model held to the answer schema
(`constrained`: xgrammar in both paths), and base plus a LoRA adapter with the trained chat
(`adapter`: a random adapter of the demo's shape; the cost does not depend on what it
learnt). Each is generated greedily in this process (`datagen/serving/in_process.py`) and
through vLLM (a merged checkpoint for the adapter, the CPU default; `--lora` adds the
adapter served by name, the GPU default), in each precision of `--dtypes` (the weights'
dtype, datagen/foundation/precision.py). vLLM's time is printed without and with its
server's start (and the merge), which a preflight pays once per model; the ratio is
in-process over vLLM without the start.

Measured 2026-11-29, quiet 2-core AMX CPU, 130 rows, 112 tokens (`--cases few-shot
constrained`, by an earlier script of the same calls): vLLM few-shot 80 s fp32 / 37 s bf16,
constrained 79 / 35 s, server start 32 / 36 s; in process, constrained 121 / 67 s,
few-shot bf16 127 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from datagen.serving.embedded_model import embedded_model_dir
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.greedy_answers import over_api
from datagen.serving.in_process import generate_in_process
from datagen.serving.merged_model import merge_adapter
from datagen.serving.vllm_server import serve_model
from datagen.tasks.support_triage import TASK
from evals.constrained_decoding import schema_logits_processor
from evals.eval_candidates import json_schema_format
from gold.gold_root import GoldRoot


def random_adapter(model_dir: Path, folder: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.mul_(0.02)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    return folder


def through_engine(model_dir: Path, adapter: Path | None, chats, max_new_tokens: int, folder: Path, dtype: str,
                   lora: bool, response_format: dict | None) -> tuple[float, float]:
    """(generation seconds, seconds with the server's start and any merge)."""
    started = time.perf_counter()
    served_dir, lora_modules = model_dir, None
    if adapter is not None and lora:
        lora_modules = {"nudged": adapter}
    elif adapter is not None:
        served_dir = merge_adapter(model_dir, adapter, folder / f"merged-{dtype}")
    name = "nudged" if lora_modules else served_dir.name
    with serve_model(served_dir, folder / f"vllm-{dtype}-{name}.log", dtype=dtype,
                     lora_modules=lora_modules) as base_url:
        ready = time.perf_counter()
        over_api(EndpointConfig(base_url=base_url, model=name, concurrency=64), chats,
                 max_new_tokens=max_new_tokens, identity=f"bench:{dtype}:{name}:{lora}",
                 response_format=response_format)
        done = time.perf_counter()
    return done - ready, done - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=130)
    parser.add_argument("--max-new-tokens", type=int, default=112)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--cases", nargs="+", default=["few-shot", "constrained", "adapter"],
                        choices=["few-shot", "constrained", "adapter"])
    parser.add_argument("--lora", action="store_true", help="also serve the adapter by name (--enable-lora)")
    args = parser.parse_args()
    model_dir = embedded_model_dir()
    prompts = [row["prompt"] for row in GoldRoot("gold/sets").get("support_triage").rows[:args.rows]]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        os.environ["CRUCIBLE_CACHE"] = str(folder / "cache")  # nothing answered from an earlier run
        adapter = random_adapter(model_dir, folder / "adapter")
        cases = {"few-shot": (None, [TASK.messages(p, few_shot=True) for p in prompts], False),
                 "constrained": (None, [TASK.messages(p, few_shot=False) for p in prompts], True),
                 "adapter": (adapter, [TASK.messages(p, few_shot=False, trained=True) for p in prompts], False)}
        table = []
        for dtype in args.dtypes:
            for case in args.cases:
                lora, chats, constrained = cases[case]
                processor = schema_logits_processor(model_dir, TASK.answer_schema) if constrained else None
                started = time.perf_counter()
                generate_in_process(model_dir, chats, adapter=lora, max_new_tokens=args.max_new_tokens,
                                    logits_processor=processor, dtype=dtype)
                local = time.perf_counter() - started
                print(f"{case}, {dtype}: in process {local:.0f} s", flush=True)
                response_format = json_schema_format(TASK.answer_schema) if constrained else None
                for by_name in ([False, True] if lora is not None and args.lora else [False]):
                    seconds, with_start = through_engine(model_dir, lora, chats, args.max_new_tokens, folder, dtype,
                                                         by_name, response_format)
                    label = "vLLM" if lora is None else ("vLLM, adapter by name" if by_name else "vLLM, merged")
                    table.append((case, dtype, label, seconds, with_start, local))
                    print(f"  {label}: {seconds:.0f} s, {with_start:.0f} s with the start: in process / vLLM "
                          f"{local / seconds:.2f}x", flush=True)
    print(f"\n{args.rows} gold rows, up to {args.max_new_tokens} tokens out, greedy\n"
          "| candidate | dtype | path | seconds | with start | in process | in process / path |\n"
          "|---|---|---|---:|---:|---:|---:|")
    for case, dtype, label, seconds, with_start, local in table:
        print(f"| {case} | {dtype} | {label} | {seconds:.0f} | {with_start:.0f} | {local:.0f} | "
              f"{local / seconds:.2f}x |")
    if "float32" in args.dtypes and "bfloat16" in args.dtypes:
        by_key = {(case, dtype, label): seconds for case, dtype, label, seconds, _, _ in table}
        for case, dtype, label, seconds, _, _ in table:
            if dtype == "float32" and (case, "bfloat16", label) in by_key:
                print(f"{case}, {label}: bf16 {seconds / by_key[(case, 'bfloat16', label)]:.2f}x faster than fp32")


if __name__ == "__main__":
    main()
