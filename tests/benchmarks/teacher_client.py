"""Benchmark: crucible's teacher layer against raw `AsyncOpenAI`, on a zero-latency stub.

    .venv/bin/python -m tests.benchmarks.teacher_client [--requests 3000] [--concurrency 256]

The stub (an aiohttp server in its own process, answering every chat completion at once)
stands in for a fast server, so what is measured is client overhead. All clients send
the same requests (the demo task's few-shot messages for distinct tickets) in the same run:

- raw `AsyncOpenAI` with its default httpx transport;
- raw `AsyncOpenAI` with the aiohttp transport crucible uses;
- crucible's `answer_prompts`: cache lookup and insert (SQLite), limits, retries ready,
  accounting and Example records with provenance, through the aiohttp transport.

It prints requests/s for each and crucible's ratio to both raw clients. Targets from
issue #3: at least 0.9x raw and at least 500 requests/s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import openai

from datagen.foundation.records import Example
from datagen.serving.client import Endpoint
from datagen.serving.response_cache import ResponseCache
from datagen.serving.server_processes import free_loopback_port
from datagen.tasks.support_triage import TASK
from datagen.teacher.distill import DistillConfig, answer_prompts

ANSWER = json.dumps(
    {
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": '{"category": "cancellation"}'}}],
        "usage": {"prompt_tokens": 600, "completion_tokens": 10, "total_tokens": 610},
    }
).encode()


def serve_stub(port: int) -> None:
    from aiohttp import web

    async def complete(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def raw(base_url: str, prompts: list[Example], concurrency: int, aiohttp: bool) -> float:
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="stub", max_retries=0,
        **({"http_client": openai.DefaultAioHttpClient()} if aiohttp else {}),
    )
    limit = asyncio.Semaphore(concurrency)

    async def one(prompt: Example) -> None:
        async with limit:
            await client.chat.completions.create(
                model="stub", messages=TASK.messages(prompt.prompt, few_shot=True),
                temperature=0.5, top_p=0.95, max_tokens=128, seed=1,
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    elapsed = time.perf_counter() - start
    await client.close()
    return len(prompts) / elapsed


async def crucible(base_url: str, prompts: list[Example], concurrency: int, cache_path: Path) -> float:
    config = DistillConfig.model_validate(
        {"samples_per_prompt": 1,
         "teachers": [{"base_url": base_url, "model": "stub", "concurrency": concurrency,
                       "sampling": {"temperature": 0.5, "top_p": 0.95, "max_tokens": 128}}]}
    )
    cache = ResponseCache(cache_path)
    start = time.perf_counter()
    result = await answer_prompts(prompts, TASK, config, [Endpoint(base_url, "stub", "stub")], cache, "bench")
    elapsed = time.perf_counter() - start
    cache.close()
    assert len(result.answers) == len(prompts) and not result.failures
    return len(prompts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()

    # Distinct prompts, so that every crucible request misses the cache and is sent.
    tickets = TASK.generate(args.requests, 0)
    prompts = [
        Example(task=TASK.name, prompt=f"{t.text} (#{i})", source="bench", run_id="bench")
        for i, t in enumerate(tickets)
    ]
    port = free_loopback_port()
    server = multiprocessing.Process(target=serve_stub, args=(port,), daemon=True)
    server.start()
    time.sleep(1.5)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        asyncio.run(raw(base_url, prompts[:200], 64, aiohttp=True))  # warm up the stub
        results = {
            "raw AsyncOpenAI (httpx)": asyncio.run(raw(base_url, prompts, args.concurrency, aiohttp=False)),
            "raw AsyncOpenAI (aiohttp)": asyncio.run(raw(base_url, prompts, args.concurrency, aiohttp=True)),
        }
        with tempfile.TemporaryDirectory() as folder:
            results["crucible answer_prompts"] = asyncio.run(
                crucible(base_url, prompts, args.concurrency, Path(folder) / "cache.sqlite")
            )
    finally:
        server.terminate()
    print(f"{args.requests} requests at {args.concurrency} concurrent, zero-latency stub on loopback")
    for name, rate in results.items():
        print(f"  {name:28s} {rate:8.0f} requests/s")
    ours = results["crucible answer_prompts"]
    print(f"  ratio crucible / raw httpx   {ours / results['raw AsyncOpenAI (httpx)']:.2f}x")
    print(f"  ratio crucible / raw aiohttp {ours / results['raw AsyncOpenAI (aiohttp)']:.2f}x")


if __name__ == "__main__":
    main()
