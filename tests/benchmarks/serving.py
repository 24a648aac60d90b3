"""Benchmark: crucible's serving engine (vLLM) against `transformers serve`, same requests.

    .venv/bin/python -m tests.benchmarks.serving [--concurrency 16 64] [--rows 130]

The workload of issue 16: the locked support-triage gold prompts (130), each asked with
the task's system prompt and few-shot turns (about 600 prompt tokens, 550 of them shared
by every request), up to 96 tokens out, temperature 0. Each engine serves the embedded
SmolLM2-135M-Instruct as the build starts it (`datagen/serving/vllm_server.py`,
`datagen/serving/transformers_server.py` with the project's KV-cache flags), is warmed
with one request, then answers every row at each concurrency through a plain
`openai.AsyncOpenAI` client (no response cache). Printed per engine and concurrency: the
start-up seconds, wall seconds, output tokens/s, the server process tree's CPU seconds,
and vLLM's ratio over `transformers serve` in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import openai
import psutil

from datagen.serving.embedded_model import embedded_model_dir
from datagen.serving.server_processes import running_servers
from datagen.serving.transformers_server import serve_model as transformers_serve
from datagen.serving.vllm_server import serve_model as vllm_serve
from datagen.tasks.support_triage import TASK
from gold.gold_root import GoldRoot

ENGINES = {"vllm": vllm_serve, "transformers serve": transformers_serve}


async def answer_all(base_url: str, model: str, chats: list[list[dict]], concurrency: int) -> tuple[float, int]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", timeout=3600, max_retries=0)
    limit = asyncio.Semaphore(concurrency)

    async def one(chat: list[dict]) -> int:
        async with limit:
            completion = await client.chat.completions.create(model=model, messages=chat, temperature=0,
                                                              max_tokens=96, seed=0)
            return completion.usage.completion_tokens

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(chat) for chat in chats))
    seconds = time.perf_counter() - started
    await client.close()
    return seconds, sum(tokens)


def server_cpu_seconds() -> float:
    """CPU time of every server crucible is running and of their children."""
    total = 0.0
    for process in running_servers():
        try:
            tree = [psutil.Process(process.pid)] + psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            try:
                times = member.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16])
    parser.add_argument("--rows", type=int, default=130)
    args = parser.parse_args()
    model_dir = embedded_model_dir()
    rows = GoldRoot("gold/sets").get("support_triage").rows[:args.rows]
    chats = [TASK.messages(row["prompt"], few_shot=True) for row in rows]
    results: dict[tuple[str, int], tuple[float, int, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, serve in ENGINES.items():
            started = time.perf_counter()
            with serve(model_dir, Path(folder) / f"{name}.log") as base_url:
                startup = time.perf_counter() - started
                asyncio.run(answer_all(base_url, model_dir.name, chats[:1], 1))  # warm
                print(f"{name}: healthy after {startup:.0f} s", flush=True)
                for concurrency in args.concurrency:
                    cpu_before = server_cpu_seconds()
                    seconds, tokens = asyncio.run(answer_all(base_url, model_dir.name, chats, concurrency))
                    cpu = server_cpu_seconds() - cpu_before
                    results[(name, concurrency)] = (seconds, tokens, cpu)
                    print(f"  concurrency {concurrency}: {seconds:.0f} s, {tokens / seconds:.1f} output tokens/s, "
                          f"server CPU {cpu:.0f} s", flush=True)
    print(f"\n| engine | concurrency | wall | output tokens/s | server CPU |\n|---|---:|---:|---:|---:|")
    for (name, concurrency), (seconds, tokens, cpu) in results.items():
        print(f"| {name} | {concurrency} | {seconds:.0f} s | {tokens / seconds:.1f} | {cpu:.0f} s |")
    for concurrency in args.concurrency:
        ours, theirs = results[("vllm", concurrency)][0], results[("transformers serve", concurrency)][0]
        print(f"vLLM vs transformers serve at concurrency {concurrency}: {theirs / ours:.2f}x faster")


if __name__ == "__main__":
    main()
