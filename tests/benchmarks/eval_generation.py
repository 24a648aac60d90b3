"""Benchmark: a preflight's generation through the engine against in-process transformers.

    .venv/bin/python -m tests.benchmarks.eval_generation [--rows 130] [--max-new-tokens 112]

Two candidates, as the preflight asks them, on the locked support-triage gold prompts:
the base model with the few-shot prompt, and base plus a LoRA adapter with the trained
chat (a random adapter of the demo's shape: the cost does not depend on what it learnt).
Each is generated greedily three ways: in this process (`datagen/serving/in_process.py`,
the preflight's path before the engine), through vLLM serving a merged checkpoint
(the CPU default, `datagen/serving/adapter_servers.py`), and through vLLM serving the
adapter by name (`--enable-lora`, the GPU default). Times include starting the server
and merging, as a preflight pays them; the ratio over in-process is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from datagen.serving.adapter_servers import AdapterServers
from datagen.serving.embedded_model import embedded_model_dir
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.greedy_answers import over_api
from datagen.serving.in_process import generate_in_process
from datagen.tasks.support_triage import TASK
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


def through_engine(mode: str, model_dir: Path, adapter: Path | None, chats, max_new_tokens: int,
                   folder: Path) -> float:
    started = time.perf_counter()
    adapters = {"nudged": adapter} if adapter is not None else {}
    with AdapterServers("vllm", model_dir, folder / f"logs-{mode}", mode, adapters) as servers:
        base_url, model, identity = servers.endpoint(adapter)
        over_api(EndpointConfig(base_url=base_url, model=model, concurrency=64), chats,
                 max_new_tokens=max_new_tokens, identity=identity)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=130)
    parser.add_argument("--max-new-tokens", type=int, default=112)
    args = parser.parse_args()
    model_dir = embedded_model_dir()
    prompts = [row["prompt"] for row in GoldRoot("gold/sets").get("support_triage").rows[:args.rows]]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        os.environ["CRUCIBLE_CACHE"] = str(folder / "cache")  # nothing answered from an earlier run
        adapter = random_adapter(model_dir, folder / "adapter")
        cases = {"base few-shot": (None, [TASK.messages(p, few_shot=True) for p in prompts]),
                 "base + adapter": (adapter, [TASK.messages(p, few_shot=False, trained=True) for p in prompts])}
        table = []
        for case, (lora, chats) in cases.items():
            started = time.perf_counter()
            generate_in_process(model_dir, chats, adapter=lora, max_new_tokens=args.max_new_tokens)
            local = time.perf_counter() - started
            print(f"{case}: in process {local:.0f} s", flush=True)
            modes = ["merged", "lora"] if lora is not None else ["merged"]
            for mode in modes:
                seconds = through_engine(mode, model_dir, lora, chats, args.max_new_tokens, folder)
                label = "vLLM" if lora is None else f"vLLM, adapter {mode}"
                table.append((case, label, seconds, local))
                print(f"  {label}: {seconds:.0f} s (server start included): {local / seconds:.2f}x in-process",
                      flush=True)
    print(f"\n{args.rows} gold rows, up to {args.max_new_tokens} tokens out, greedy\n"
          "| candidate | path | seconds | in process | ratio |\n|---|---|---:|---:|---:|")
    for case, label, seconds, local in table:
        print(f"| {case} | {label} | {seconds:.0f} | {local:.0f} | {local / seconds:.2f}x |")


if __name__ == "__main__":
    main()
