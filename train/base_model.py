"""Load the base model for LoRA, or for QLoRA on CUDA, and describe the adapter.

QLoRA (Dettmers et al. 2023): the frozen base in 4-bit NF4 with double quantization
through bitsandbytes, bf16 compute, and paged AdamW so optimizer state spills to CPU
memory instead of failing on a spike. It needs CUDA; asking for it without a GPU fails
here, before anything loads, rather than silently training the full-precision model.

The base model's weights are loaded in `dtype` (`Precision`, datagen/foundation/precision.py):
`auto` is bf16 where the hardware has bf16 units (CUDA, or a CPU with AMX or AVX-512 BF16)
and fp32 elsewhere. This is not autocast: TRL's `bf16=True` on CPU autocasts fp32 weights
per op and was about 10x slower here (shared/ENVIRONMENT.md). Either way the LoRA weights
and their optimizer state stay fp32: peft upcasts adapter weights on a bf16 base
(`autocast_adapter_dtype`).

Measured on the 2-core AMX CPU crucible is built on, on a quiet machine
(tests/benchmarks/train_precision.py --steps 4 --batch 8, SmolLM2-135M): bf16 trained SFT
1.23x and DPO 1.17x the steps per second of fp32 with LoRA dropout 0 (SFT 43.2 against
53.1 s, DPO 118.6 against 138.9 s), 1.12-1.17x and 1.24x with dropout 0.05, in 0.76-0.81x
the memory; held-out SFT loss 0.9625 against 0.952, DPO loss 0.6888 against 0.6885. The
dropout itself cost 7-16% of an SFT step (its random masks on each of the 210 LoRA inputs).
Under other jobs' load the earlier measurement could not tell the precisions apart, and
`auto` was fp32 on every CPU until then. The demo trains with `auto` and `lora.dropout: 0`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.precision import Precision, resolve_precision


class LoraSettings(BaseModel):
    """LoRA's shape. Defaults from the QLoRA paper's finding that adapting every linear
    layer matters more than the rank: r=16, alpha=32 (scale 2), dropout 0.05."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description="'all-linear' or module names")

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


class QLoRAUnavailable(RuntimeError):
    pass


Quantization = Literal["none", "qlora"]


def check_quantization(quantization: Quantization) -> None:
    if quantization == "qlora" and not torch.cuda.is_available():
        raise QLoRAUnavailable(
            "the recipe asks for QLoRA (4-bit NF4 through bitsandbytes), which needs a CUDA GPU, and none is "
            "available; set quantization: none to train LoRA in full precision on this machine")


def base_dtype(precision: Precision) -> torch.dtype:
    """The torch dtype the base model's weights are loaded in (see the module docstring)."""
    return getattr(torch, resolve_precision(precision))


def load_base_model(model_dir: Path, quantization: Quantization, precision: Precision = "auto"):
    from transformers import AutoModelForCausalLM

    if quantization == "qlora" and precision == "float32":
        raise ValueError("QLoRA computes in bf16 over a 4-bit base: dtype float32 cannot be honoured; use auto")
    check_quantization(quantization)
    if quantization == "qlora":
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=config, dtype=torch.bfloat16,
                                                     device_map={"": torch.cuda.current_device()})
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=base_dtype(precision))


def optimizer_name(quantization: Quantization) -> str:
    return "paged_adamw_8bit" if quantization == "qlora" else "adamw_torch"


def model_hash(model_dir: Path) -> str:
    """sha256 over the model folder's weight and config files, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).iterdir()):
        if path.suffix in (".safetensors", ".json", ".bin", ".jinja", ".model"):
            digest.update(path.name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def session_throughput(history: list[dict], resumed_from: str | None) -> dict:
    """Tokens this session trained on (TRL's running `num_tokens`: every input token of
    every step, prompt and answer) over the seconds it trained (`train_runtime`, which
    covers only this session when it resumed from a checkpoint)."""
    start_step = int(resumed_from.rsplit("-", 1)[-1]) if resumed_from else 0
    counts = [(entry["step"], entry["num_tokens"]) for entry in history if "num_tokens" in entry and "step" in entry]
    before = max((tokens for step, tokens in counts if step <= start_step), default=0)
    tokens = max((tokens for _, tokens in counts), default=0) - before
    seconds = history[-1].get("train_runtime") if history else None
    return {"train_seconds": seconds, "train_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 1) if seconds and tokens else None}
