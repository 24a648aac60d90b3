"""Serve a local model with vLLM's OpenAI-compatible server, for the length of a block.

vLLM lives in an environment of its own (`.venv-vllm`, made by `make install`: it pins
transformers and fastapi versions crucible cannot use), so the server is that
environment's Python running `vllm.entrypoints.openai.api_server`, started like every
server crucible owns (`server_processes.serving`: own session, log file, bounded health
wait, stopped on every exit). `$CRUCIBLE_VLLM_PYTHON` points at another vLLM install;
`$CRUCIBLE_VLLM_EAGER` says whether vLLM skips graph compilation (`eager_mode`).

Settings, and why:
- `dtype` as training loads the base (`auto`, datagen/foundation/precision.py: bf16 on a
  GPU and on CPUs with AMX or AVX-512 BF16, fp32 elsewhere), so that an adapter is served
  over the base it was trained on: on this 2-core AMX CPU bf16 answered the 130 gold rows
  in 37 s against fp32's 80 s;
- the KV cache is bounded (`VLLM_CPU_KVCACHE_SPACE` on CPU, in GiB): left alone it sizes
  itself to the machine, and crucible may run it beside training or a second server;
- prefix caching is on (vLLM's default): every request of a task shares the system
  prompt and few-shot turns, 550 of about 600 prompt tokens in the demo;
- LoRA modules are served by name when given (`lora_modules`), the normal path on a GPU;
  on this CPU vLLM's LoRA path measured 3-5x slower than the base model, so there the
  evals serve a merged checkpoint instead (`evals/eval_candidates.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from datagen.foundation.precision import Precision, resolve_precision
from datagen.serving.server_processes import ModelServerError, free_loopback_port, serving

VLLM_VENV = Path(__file__).resolve().parents[2] / ".venv-vllm"
# vLLM finishes or aborts what it is doing within a second or two of SIGTERM; what was
# answered is in the response cache already.
STOP_GRACE_S = 5.0
# A first start compiles the model's graphs (about 80 s here; cached afterwards in
# ~/.cache/vllm), on a loaded 2-core machine more: generous, since a slow start is not a
# failure.
STARTUP_TIMEOUT_S = 600.0


def vllm_python() -> Path:
    configured = os.environ.get("CRUCIBLE_VLLM_PYTHON")
    python = Path(configured) if configured else VLLM_VENV / "bin" / "python"
    if not python.is_file():
        raise ModelServerError(f"vLLM is not installed at {python}: run `make install`, which creates "
                               f"{VLLM_VENV.name}/ (or set CRUCIBLE_VLLM_PYTHON to a Python that has vllm)")
    return python


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def context_tokens(model_dir: Path, wanted: int) -> int:
    """`wanted`, or less when the model's config.json says it was trained on fewer
    positions: vLLM refuses a longer `--max-model-len` (and a smaller test model, or a
    2k-context checkpoint, would otherwise fail to start)."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return wanted  # vLLM names the problem itself when it reads the folder
    positions = config.get("max_position_embeddings")
    return min(wanted, int(positions)) if isinstance(positions, (int, float)) and positions > 0 else wanted


def eager_mode() -> bool:
    """Whether vLLM skips graph compilation: `$CRUCIBLE_VLLM_EAGER` (1 or 0), by default on a
    CPU and not on a GPU. Eager starts ~30 s sooner here and decodes ~10% slower (60 s against
    92 s to healthy, 78 against 87 tokens/s on 32 few-shot requests): crucible starts a server
    per model and stage, and on a CPU each generates a few thousand tokens, which a compiled
    graph would have to save 30 s on. On a GPU, CUDA graphs are most of vLLM's speed."""
    configured = os.environ.get("CRUCIBLE_VLLM_EAGER")
    if configured in ("0", "1"):
        return configured == "1"
    return not cuda_available()


@contextlib.contextmanager
def serve_model(model_dir: Path, log_path: Path, *, served_name: str | None = None, dtype: Precision = "auto",
                kv_cache_gib: int = 2, max_model_len: int = 8192, lora_modules: dict[str, Path] | None = None,
                max_lora_rank: int = 16, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """vLLM serving `model_dir` (as `served_name`, default the folder's name) on
    127.0.0.1 for the duration of the block; yields its /v1 URL."""
    port = free_loopback_port()
    model_dir = Path(model_dir).resolve()
    command = [str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", served_name or model_dir.name, "--host", "127.0.0.1", "--port", str(port),
               "--dtype", resolve_precision(dtype), "--max-model-len", str(context_tokens(model_dir, max_model_len)),
               # Requests always carry their sampling settings; the model's own
               # generation_config must not change what "temperature 0" means.
               "--generation-config", "vllm"]
    if not cuda_available():
        # vllm-cpu 0.32 crashes (exit 0, "CPU Generator does not use offset") when a
        # request that carries a seed is prefilled in chunks: it rewinds the request's
        # generator, which CUDA's supports and the CPU's does not. The demo's teacher
        # (773-token seed few-shot prompts, 32 in flight, seed 0) hit it in every build.
        command.append("--no-enable-chunked-prefill")
    if eager_mode():
        command.append("--enforce-eager")
    if lora_modules:
        command += ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--lora-modules",
                    *(f"{name}={Path(path).resolve()}" for name, path in lora_modules.items())]
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib), "VLLM_NO_USAGE_STATS": "1",
                        "DO_NOT_TRACK": "1",
                        # vLLM 0.32's AOT compile cache (its default with torch >= 2.10) fails to
                        # load on CPU ("'function' object has no attribute 'finalize_loading'")
                        # and compiles again on every start: 186 s a start here. The older
                        # inductor cache loads: 92 s, most of it imports and warm-up.
                        "VLLM_USE_AOT_COMPILE": os.environ.get("VLLM_USE_AOT_COMPILE", "0")}
    with serving(command, port=port, log_path=log_path, what=f"vLLM for {model_dir}",
                 startup_timeout_s=startup_timeout_s, stop_grace_s=STOP_GRACE_S, env=env) as base_url:
        yield base_url
