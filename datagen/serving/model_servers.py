"""Where each configured model listens: the endpoint's own `base_url`, or the embedded
model, which crucible serves on loopback with the config's `engine` from the first time a
stage needs it until the block that owns the servers ends (it takes a while to warm, so
stages share one per engine).

This is the one place that decides between a remote endpoint and a server crucible
starts itself, and which engine's launcher starts it (`LAUNCHERS`); stages ask it for an
`Endpoint` and never start servers. A new engine is a launcher file and its name here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from datagen.foundation.precision import resolve_precision
from datagen.serving import transformers_server, vllm_server
from datagen.serving.client import Endpoint
from datagen.serving.embedded_model import CONVERSION_VERSION, embedded_model_dir
from datagen.serving.endpoint import EndpointConfig, resolve_endpoint

LAUNCHERS = {"vllm": vllm_server.serve_model, "transformers": transformers_server.serve_model}


def engine_identity(engine: str) -> str:
    """The engine as the cache and provenance name it: vLLM with the precision it serves in
    (`auto`, datagen/foundation/precision.py), since bf16 and fp32 answer differently and an
    answer cached in one must not stand for the other. `transformers serve` loads the
    checkpoint's own dtype."""
    return f"{engine}:{resolve_precision('auto')}" if engine == "vllm" else engine


class ModelServers:
    """Endpoints for configs; the embedded model's server for each engine started on first
    use, its log in `log_dir/<engine>-server.log`, and stopped when `stack` closes."""

    def __init__(self, log_dir: Path, stack: contextlib.ExitStack):
        self.log_dir, self.stack = Path(log_dir), stack
        self._embedded: dict[str, tuple[str, str, str]] = {}

    def endpoint(self, config: EndpointConfig) -> Endpoint:
        if config.base_url is not None:
            return resolve_endpoint(config, config.base_url, config.model, config.base_url)
        if config.engine not in self._embedded:
            model_dir = embedded_model_dir()
            log = self.log_dir / f"{config.engine}-server.log"
            base_url = self.stack.enter_context(LAUNCHERS[config.engine](model_dir, log))
            name = model_dir.name
            # The engine is part of the identity the cache and provenance see: two engines'
            # numerics differ, so their answers are not interchangeable.
            self._embedded[config.engine] = (base_url, name,
                                             f"embedded:{name}@v{CONVERSION_VERSION}:{engine_identity(config.engine)}")
        return resolve_endpoint(config, *self._embedded[config.engine])
