"""Benchmark: how long vLLM takes to start here, by compile setting, and what each costs in decoding.

    .venv/bin/python -m tests.benchmarks.vllm_start [--modes aot inductor eager] [--rows 32]

Each mode starts vLLM on the embedded SmolLM2-135M-Instruct through crucible's own
launcher (`datagen/serving/vllm_server.py`), times it to healthy, then sends `--rows`
few-shot triage prompts from the locked gold set at 16 in flight (96 tokens out,
temperature 0) and prints output tokens/s:

- `aot`: vLLM's default with torch >= 2.10, its AOT compile cache (`VLLM_USE_AOT_COMPILE=1`);
- `inductor`: the older inductor cache (`VLLM_USE_AOT_COMPILE=0`, crucible's setting);
- `eager`: no graph compilation (`CRUCIBLE_VLLM_EAGER=1`, the test suite's setting).

A mode run first on a machine also pays its first compile; run the list twice to see the
cached starts. Ratios are printed against `inductor` in the same run.
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
from datagen.serving.vllm_server import serve_model
from datagen.tasks.support_triage import TASK
from gold.gold_root import GoldRoot

MODES = {"aot": {"VLLM_USE_AOT_COMPILE": "1", "CRUCIBLE_VLLM_EAGER": "0"},
         "inductor": {"VLLM_USE_AOT_COMPILE": "0", "CRUCIBLE_VLLM_EAGER": "0"},
         "eager": {"VLLM_USE_AOT_COMPILE": "0", "CRUCIBLE_VLLM_EAGER": "1"},
         # vLLM on CPU keeps one core for its scheduler by default: on 2 cores the model gets one.
         "eager-1core": {"VLLM_USE_AOT_COMPILE": "0", "CRUCIBLE_VLLM_EAGER": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "1"},
         "eager-2cores": {"VLLM_USE_AOT_COMPILE": "0", "CRUCIBLE_VLLM_EAGER": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}}


def measure(mode: str, chats: list[list[dict]], folder: Path) -> tuple[float, float]:
    """(seconds to healthy, output tokens/s) of one start in `mode`."""
    saved = {key: os.environ.get(key) for key in MODES[mode]}
    os.environ.update(MODES[mode])
    os.environ["CRUCIBLE_CACHE"] = str(folder / f"cache-{mode}")  # no answer read back from a cache
    model = embedded_model_dir()
    try:
        started = time.monotonic()
        with serve_model(model, folder / f"vllm-{mode}.log") as base_url:
            healthy = time.monotonic() - started
            started = time.monotonic()
            outputs = over_api(EndpointConfig(base_url=base_url, model=model.name, concurrency=16), chats,
                               max_new_tokens=96, seed=0)
            seconds = time.monotonic() - started
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokens = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in outputs)
    return healthy, tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--rows", type=int, default=32)
    args = parser.parse_args()
    rows = GoldRoot("gold/sets").get("support_triage").rows[:args.rows]
    chats = [TASK.messages(row["prompt"], few_shot=True) for row in rows]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in args.modes:
            results[mode] = measure(mode, chats, Path(folder))
            print(f"{mode:9} healthy after {results[mode][0]:6.1f} s, {results[mode][1]:6.1f} output tokens/s",
                  flush=True)
    if "inductor" in results:
        base = results["inductor"]
        for mode, (healthy, rate) in results.items():
            print(f"{mode:9} start {healthy / base[0]:.2f}x, decoding {rate / base[1]:.2f}x of inductor's")
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
