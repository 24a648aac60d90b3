"""Benchmark: how many in-flight requests suit the embedded teacher on this machine.

    .venv/bin/python -m tests.benchmarks.embedded_teacher [--concurrency 4 16 32] [--requests 32]

Serves the embedded SmolLM2-135M-Instruct with `transformers serve` (continuous batching,
as the build flow does), warms it up with one batch, then sends the demo task's few-shot
requests at each concurrency and prints seconds per answer and output tokens per second.
The recipe's `concurrency` for the embedded teacher comes from this.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import openai

from datagen.serving.embedded_model import embedded_model_dir
from datagen.serving.transformers_server import serve_model, served_model_name
from datagen.tasks.support_triage import TASK


async def send(base_url: str, model: str, tickets: list[str], concurrency: int) -> tuple[float, int]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", timeout=900, max_retries=0)
    limit = asyncio.Semaphore(concurrency)

    async def one(text: str, seed: int) -> int:
        async with limit:
            completion = await client.chat.completions.create(
                model=model, messages=TASK.messages(text, few_shot=True),
                temperature=0.5, top_p=0.95, max_tokens=128, seed=seed,
            )
            return completion.usage.completion_tokens

    start = time.perf_counter()
    tokens = await asyncio.gather(*(one(t, i) for i, t in enumerate(tickets)))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed, sum(tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16, 32])
    parser.add_argument("--requests", type=int, default=32)
    args = parser.parse_args()
    model_dir = embedded_model_dir()
    tickets = [t.text for t in TASK.generate(args.requests, 1)]
    with tempfile.TemporaryDirectory() as folder:
        with serve_model(model_dir, Path(folder) / "server.log") as base_url:
            model = served_model_name(model_dir)
            asyncio.run(send(base_url, model, tickets[:16], 16))  # the first batch is slow
            print(f"{args.requests} demo requests per level, embedded teacher, continuous batching")
            for concurrency in args.concurrency:
                elapsed, tokens = asyncio.run(send(base_url, model, tickets, concurrency))
                print(f"  concurrency {concurrency:3d}: {elapsed / len(tickets):5.2f} s per answer, "
                      f"{tokens / elapsed:5.1f} output tokens/s")


if __name__ == "__main__":
    main()
