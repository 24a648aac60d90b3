"""Greedy answers to a list of chats, from a server or from a model crucible serves for
the occasion: what evals and replay ask of a model (temperature 0, a fixed seed).

`over_api`: through the client every stage uses (concurrent up to the endpoint's limit,
retried, cached: an interrupted run resumes without asking again). `identity` names the
model for the cache when the URL does not (a server on a random local port).

`from_model`: `model_dir` served by `engine` (vLLM by default) for just these chats, then
stopped; `engine: in_process` generates with transformers in this process instead, for a
tiny model whose generation costs less than a server's start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from datagen.foundation.hashing import file_sha256
from datagen.serving.embedded_model import cache_dir
from datagen.serving.endpoint import EndpointConfig, resolve_endpoint
from datagen.serving.in_process import generate_in_process
from datagen.serving.model_servers import LAUNCHERS, engine_identity
from datagen.serving.request_batch import complete_chats
from datagen.serving.response_cache import ResponseCache

Engine = Literal["vllm", "transformers", "in_process"]


def over_api(config: EndpointConfig, chats: list[list[dict]], *, max_new_tokens: int, seed: int = 0,
             identity: str | None = None, response_format: dict | None = None) -> list[str]:
    endpoint = resolve_endpoint(config, config.base_url, config.model, identity or config.base_url)
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": max_new_tokens, "seed": seed}
    cache = ResponseCache(cache_dir() / "responses.sqlite")
    try:
        answers = asyncio.run(complete_chats(endpoint, config, chats, sampling, cache, response_format=response_format))
    finally:
        cache.close()
    return [answer.content.strip() for answer in answers]


def model_identity(model_dir: Path, engine: str) -> str:
    """A model folder named by its weights, for the cache: the same folder path can hold
    another model tomorrow."""
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    digest = file_sha256(weights[0]) if len(weights) == 1 else Path(model_dir).resolve().name
    return f"model:{digest}:{engine_identity(engine)}"


def from_model(model_dir: Path, chats: list[list[dict]], *, engine: Engine, max_new_tokens: int, log_path: Path,
               concurrency: int = 64) -> list[str]:
    if engine == "in_process":
        return generate_in_process(model_dir, chats, max_new_tokens=max_new_tokens)
    with LAUNCHERS[engine](model_dir, log_path) as base_url:
        served = EndpointConfig(base_url=base_url, model=Path(model_dir).resolve().name, concurrency=concurrency)
        return over_api(served, chats, max_new_tokens=max_new_tokens, identity=model_identity(model_dir, engine))
