"""Part 3: vLLM serving the base model with the QLoRA adapter by name, on the gold prompts.

One vLLM server (`datagen/serving/vllm_server.serve_model`, bf16, `--enable-lora`) holds
the base model and the DPO adapter from `qlora_sft_dpo` as the module `qlora-dpo`. The
locked support-triage gold prompts (all 130 by default), each asked with the chat a trained
model sees (`TASK.messages(..., trained=True)`), go through crucible's client
(`request_batch.complete_chats`) at `settings.concurrency` in flight, temperature 0, up to
`settings.max_tokens` out: once to the base model, once to the adapter by name. Each leg
sends one warm-up request first (the adapter's first use loads it), timed apart, and uses
a fresh response cache, so nothing is answered from a cache.

Recorded per leg: wall seconds, output tokens (the server's usage counts) and output
tokens/s, prompt tokens, finish reasons, answers that parse as the task's schema; and the
adapter's output tokens/s over the base model's.

Dry run: vLLM takes 25-80 s to start on the project's CPU and its LoRA path is 3-5x slower
than the base model there (shared/ENVIRONMENT.md), so the dry run serves the tiny base
model with `transformers serve` (no LoRA by name) and records the adapter's leg as skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from pathlib import Path

from tests.gpu.settings import CheckSettings

LORA_NAME = "qlora-dpo"
GOLD_SETS = Path(__file__).resolve().parents[2] / "gold" / "sets"
DRY_RUN_LORA = ("skipped: dry run on CPU: LoRA by name is served by vLLM, which the dry run does not start "
                "(25-80 s to start on this CPU, its LoRA path 3-5x slower than the base there); "
                "the base leg ran on `transformers serve`")


def gold_chats(count: int | None) -> list[list[dict]]:
    from datagen.tasks.support_triage import TASK
    from gold.gold_root import GoldRoot

    rows = GoldRoot(GOLD_SETS).get("support_triage").rows
    return [TASK.messages(row["prompt"], few_shot=False, trained=True) for row in rows[:count]]


def lora_serving(settings: CheckSettings) -> dict:
    from datagen.serving.server_processes import ModelServerError

    if not settings.dry_run:
        vllm = settings.earlier("environment")["vllm"]
        if vllm["status"] != "ok":
            return {"status": f"skipped: no usable vLLM: {vllm['status']}"}
    trained = settings.earlier("qlora_sft_dpo")
    adapter = Path(trained["adapter"]) if trained["status"] == "ok" and not settings.dry_run else None
    chats = gold_chats(settings.prompts)
    legs = {"base": Path(settings.model_dir).resolve().name}
    if adapter is not None:
        legs["lora"] = LORA_NAME
    try:
        with _server(settings, adapter) as base_url:
            found = {leg: _timed_answers(settings, base_url, name, chats) for leg, name in legs.items()}
    except ModelServerError as error:
        return {"status": f"failed: {error}"}
    if "lora" not in found:
        found["lora"] = {"status": DRY_RUN_LORA if settings.dry_run else
                         f"skipped: no adapter to serve: qlora_sft_dpo {trained['status']}"}
    result = {"status": "ok", "engine": "transformers serve" if settings.dry_run else "vLLM, bf16",
              "prompts": len(chats), "concurrency": settings.concurrency, "max_tokens": settings.max_tokens,
              **found}
    if found["lora"]["status"] == "ok":
        result["lora_over_base"] = round(found["lora"]["output_tokens_per_second"]
                                         / found["base"]["output_tokens_per_second"], 3)
    return result


def _server(settings: CheckSettings, adapter: Path | None) -> contextlib.AbstractContextManager[str]:
    log = settings.work / "serving.log"
    if settings.dry_run:
        from datagen.serving.transformers_server import serve_model

        return serve_model(settings.model_dir, log)
    from datagen.serving.vllm_server import serve_model

    return serve_model(settings.model_dir, log, dtype="bfloat16",
                       lora_modules={LORA_NAME: adapter} if adapter is not None else None)


def _timed_answers(settings: CheckSettings, base_url: str, model: str, chats: list[list[dict]]) -> dict:
    from datagen.foundation.task import parse_json_answer
    from datagen.serving.endpoint import EndpointConfig, resolve_endpoint
    from datagen.serving.request_batch import complete_chats
    from datagen.serving.response_cache import ResponseCache
    from datagen.tasks.support_triage import TASK

    config = EndpointConfig(base_url=base_url, model=model, concurrency=settings.concurrency, timeout_s=600)
    endpoint = resolve_endpoint(config, base_url, model, f"gpu-check:{model}")
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": settings.max_tokens, "seed": 0}
    cache = ResponseCache(settings.work / f"responses-{model}.sqlite")
    warm_up = chats[0][:-1] + [{"role": "user", "content": "Warm-up: my order has not arrived."}]
    try:
        started = time.monotonic()
        asyncio.run(complete_chats(endpoint, config, [warm_up], sampling, cache))
        warm_up_seconds = time.monotonic() - started
        started = time.monotonic()
        answers = asyncio.run(complete_chats(endpoint, config, chats, sampling, cache))
        wall = time.monotonic() - started
    finally:
        cache.close()
    output_tokens = sum(answer.completion_tokens for answer in answers)
    return {
        "status": "ok", "model": model, "requests": len(answers), "wall_seconds": round(wall, 2),
        "warm_up_seconds": round(warm_up_seconds, 2), "output_tokens": output_tokens,
        "output_tokens_per_second": round(output_tokens / wall, 1),
        "prompt_tokens": sum(answer.prompt_tokens for answer in answers),
        "finish_reasons": dict(collections.Counter(str(answer.finish_reason) for answer in answers)),
        "schema_valid": sum(_schema_valid(TASK, parse_json_answer(answer.content)) for answer in answers),
        "first_answer": answers[0].content[:300],
    }


def _schema_valid(task, answer: dict | None) -> bool:
    if answer is None:
        return False
    try:
        task.answer_schema.model_validate(answer)
    except ValueError:
        return False
    return True
