"""The precision a model's weights are loaded in, for training and for generation alike.

`auto` is bf16 where the hardware multiplies bf16 natively (a CUDA GPU, or a CPU with
AMX or AVX-512 BF16, read from /proc/cpuinfo) and fp32 elsewhere, where bf16 would be
emulated and slower. One owner, because training and serving must agree: an adapter
trained over a bf16 base is evaluated, sampled on-policy and served over a bf16 base.

Measured on this project's 2-core Sapphire Rapids CPU (AMX), the embedded 135M model:
- vLLM serving the 130 support-triage gold rows, few-shot: 37 s in bf16 against 80 s in
  fp32; held to the schema 35 s against 79 s (server start 36 and 32 s, not included);
- in process, the same rows held to the schema: 67 s against 121 s;
- LoRA SFT and DPO: 1.23x and 1.17x the steps per second (train/base_model.py).
(`tests/benchmarks/eval_generation.py`, `tests/benchmarks/train_precision.py`.)
The LoRA weights and their optimizer state stay fp32 either way (peft upcasts them).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

Precision = Literal["auto", "float32", "bfloat16"]
NATIVE_BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False  # not Linux, or no cpuinfo: assume no bf16 units, the safe side (fp32)
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool(NATIVE_BF16_CPU_FLAGS & set(flags))


def resolve_precision(precision: Precision) -> Literal["float32", "bfloat16"]:
    """`float32` or `bfloat16`: `auto` decided for this machine (see the module docstring)."""
    if precision != "auto":
        return precision
    import torch

    return "bfloat16" if torch.cuda.is_available() or _this_cpu_has_native_bf16() else "float32"


@functools.cache
def _this_cpu_has_native_bf16() -> bool:
    return cpu_has_native_bf16()
