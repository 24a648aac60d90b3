"""Serving a base model and its LoRA adapters, one model at a time, on an engine.

The preflight's candidates and on-policy sampling ask "where do I send requests for the
base model, or for base plus this adapter?". `AdapterServers` starts the engine for the
model asked for and keeps it while the next question needs the same model (the base model
serves every baseline, a fine-tune's target and regression evals share its server),
stopping the previous one first, so one model server at a time holds memory.

Adapters, by `GenerationConfig.adapters`:
- `merged` (the default on CPU): base and adapter merged into one plain checkpoint
  (`datagen/serving/merged_model.py`) and served as a model of its own. vLLM's LoRA path
  measured 3-5x slower than the base model on this CPU (shared/ENVIRONMENT.md), a server
  start is about 30 s: merging wins for a preflight's handful of adapters;
- `lora`: every adapter served by name from one server (`--enable-lora`), the normal
  path on a GPU, where LoRA costs little and no merged copies are written.

The cache and provenance name a model by what it is (the base's folder, an adapter's
weights digest, the engine), never by the random port it was served on.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from datagen.foundation.hashing import file_sha256
from datagen.serving.greedy_answers import model_identity
from datagen.serving.merged_model import merge_adapter
from datagen.serving.model_servers import LAUNCHERS, engine_identity


def adapter_digest(adapter: Path) -> str:
    return file_sha256(Path(adapter) / "adapter_model.safetensors")


class AdapterServers:
    """Where each candidate's model is served; close it (a context manager) to stop all."""

    def __init__(self, engine: str, base_model: Path, log_dir: Path, adapters_mode: str,
                 all_adapters: dict[str, Path]):
        self.engine, self.base_model, self.log_dir = engine, Path(base_model), Path(log_dir)
        self.adapters_mode, self.all_adapters = adapters_mode, all_adapters
        self._stack = contextlib.ExitStack()
        self._serving: tuple[str, str] | None = None  # (what the server holds, its base URL)
        self._merged_root = Path(tempfile.mkdtemp(prefix="crucible-merged-"))

    def __enter__(self) -> "AdapterServers":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
        shutil.rmtree(self._merged_root, ignore_errors=True)

    def endpoint(self, adapter: Path | None) -> tuple[str, str, str]:
        """(base URL, model name to request, identity for the cache) for the base model
        (`adapter` None) or base plus `adapter`."""
        if adapter is not None and self.adapters_mode == "lora":
            base_url = self._serve("base+lora", self.base_model, {name: path for name, path in
                                                                  self.all_adapters.items()})
            name = next(name for name, path in self.all_adapters.items() if Path(path) == Path(adapter))
            return base_url, name, f"lora:{adapter_digest(adapter)}:{engine_identity(self.engine)}"
        if adapter is None:
            base_url = self._serve("base", self.base_model, None)
            return base_url, self.base_model.name, model_identity(self.base_model, self.engine)
        digest = adapter_digest(adapter)
        merged = self._merged_root / digest[:16]
        if not merged.is_dir():
            merge_adapter(self.base_model, Path(adapter), merged)
        identity = f"merged:{digest}:{engine_identity(self.engine)}"
        return self._serve(f"merged:{digest}", merged, None), merged.name, identity

    def stop(self) -> None:
        """Stop the server now (generation in this process follows: an idle vLLM's engine
        loop would still take one of its cores)."""
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self._serving = None

    def _serve(self, holds: str, model_dir: Path, lora: dict[str, Path] | None) -> str:
        if self._serving is not None and self._serving[0] == holds:
            return self._serving[1]
        self.stop()  # one model server at a time
        log = self.log_dir / f"{self.engine}-{holds.split(':')[0]}.log"
        launch = LAUNCHERS[self.engine]
        server = launch(model_dir, log, lora_modules=lora) if lora else launch(model_dir, log)
        self._serving = (holds, self._stack.enter_context(server))
        return self._serving[1]
