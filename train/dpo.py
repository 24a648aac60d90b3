"""DPO from the SFT result on TRL's `DPOTrainer`, with the hand-off checked.

Input: preference rows in TRL's conversational layout (`{"id", "prompt": [messages],
"chosen": [assistant], "rejected": [assistant]}`, as crucible exports them), the base
model folder and the SFT adapter. Output in `out_dir`: the DPO adapter (`adapter/`,
with the pinned chat template), `log_history.json`, `result.json` (written last).

The policy is the SFT adapter, trainable, and the reference is a frozen copy of it:
TRL adds that copy as a second adapter ("ref") when it is given a PEFT model and no
reference. Get this wrong (the base model as reference, or a fresh adapter on the base)
and DPO optimizes against the wrong anchor: the loss collapses within a few steps
(LLaMA-Factory #8974). At the first step policy and reference are the same weights
(TRL disables dropout), so every reward is 0, the margin is 0 and the sigmoid loss is
exactly ln 2 = 0.693 (1 for hinge, 1/(2 beta)^2 for IPO). `HandOffCheck` reads the
first logged step and stops training with `HandOffError` when the loss is off by more
than `hand_off_tolerance`, or the mean chosen or rejected reward or the margin is not 0.
The first step's reward accuracy, "near 0.5" for a policy no better than its reference,
is TRL's strict chosen > rejected over exact ties, so 0; the margin is the sound test of
the same thing. Two different models can still give a loss near ln 2 (two random models
are both near uniform), which is why the rewards themselves are checked.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from transformers import TrainerCallback

from datagen.foundation.precision import Precision
from datagen.foundation.run_store import write_text_atomic
from train.base_model import Quantization, check_quantization, load_base_model, optimizer_name, session_throughput
from train.chat_template import pin_chat_template, row_tools

# TRL 1.16's DPO loss types (DPOConfig.loss_type).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


class DPOStageConfig(BaseModel):
    """Defaults: beta 0.1 and the sigmoid loss are the DPO paper's; 5e-5 is a common LoRA
    DPO learning rate (an order of magnitude under SFT's, since DPO moves a trained
    policy)."""

    model_config = ConfigDict(extra="forbid")

    beta: float = Field(0.1, gt=0)
    loss_type: str = Field("sigmoid", description=f"one of TRL's: {', '.join(LOSS_TYPES)}")
    learning_rate: float = Field(5e-5, gt=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=16)
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(20, ge=1)
    gradient_checkpointing: bool = Field(True, description="see SFTStageConfig")
    dtype: Precision = Field("auto", description="the base model's weights: auto (bf16 on CUDA and on CPUs with "
                             "AMX or AVX-512 BF16, else fp32), float32 or bfloat16 (datagen/foundation/precision.py); "
                             "LoRA weights stay fp32 either way")
    hand_off_tolerance: float = Field(0.02, gt=0, description="largest allowed |first loss - expected| and "
                                                               "|first mean margin|")
    seed: int = 0

    def model_post_init(self, _) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type {self.loss_type!r} is not one of TRL's: {', '.join(LOSS_TYPES)}")

    def expected_first_loss(self) -> float | None:
        """The loss when policy equals reference (all rewards 0), where it is known."""
        return {"sigmoid": math.log(2), "hinge": 1.0, "ipo": (1 / (2 * self.beta)) ** 2}.get(self.loss_type)


class HandOffError(RuntimeError):
    """DPO's first step shows policy and reference are not the same model."""


class HandOffCheck(TrainerCallback):
    def __init__(self, expected_loss: float | None, tolerance: float):
        self.expected_loss, self.tolerance = expected_loss, tolerance
        self.first: dict | None = None  # the first logged step, once seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.first is not None or not logs or "loss" not in logs:
            return
        self.first = dict(logs)
        off = []
        if self.expected_loss is not None and abs(logs["loss"] - self.expected_loss) > self.tolerance:
            off.append(f"loss {logs['loss']:.4f}, expected {self.expected_loss:.4f}")
        # Each reward is beta * (policy - reference) log-probability: 0 when they are one model.
        for key in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
            if key not in logs:
                raise HandOffError(f"DPO's first step logged no {key}: the hand-off cannot be checked")
            if abs(logs[key]) > self.tolerance:
                off.append(f"{key} {logs[key]:.4f}, expected 0")
        if off:
            raise HandOffError(
                "DPO's first step shows the policy and the reference differ before any update: " + "; ".join(off)
                + f" (rewards/chosen {logs.get('rewards/chosen')}, rewards/rejected {logs.get('rewards/rejected')}, "
                f"accuracy {logs.get('rewards/accuracies')}). DPO must start from the SFT adapter as both policy and "
                "reference; training stopped before it optimized against the wrong anchor")


def run_dpo(config: DPOStageConfig, model_dir: Path, sft_adapter: Path, rows: list[dict], out_dir: Path, *,
            quantization: Quantization = "none", ref_model=None, callbacks: list | None = None) -> dict:
    """Train the SFT adapter further with DPO on `rows`. `ref_model` is for tests that
    break the hand-off on purpose; leave it None."""
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    check_quantization(quantization)
    out_dir = Path(out_dir)
    started = time.monotonic()
    # The SFT adapter's pinned template, checked again against the base model's own.
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = pin_chat_template(tokenizer, (Path(sft_adapter) / "chat_template.jinja").read_text(),
                                 with_tools=any(row_tools(row) for row in rows))
    model = PeftModel.from_pretrained(load_base_model(model_dir, quantization, config.dtype), str(sft_adapter),
                                      is_trainable=True)
    check = HandOffCheck(config.expected_first_loss(), config.hand_off_tolerance)
    args = DPOConfig(
        output_dir=str(out_dir / "checkpoints"), beta=config.beta, loss_type=[config.loss_type],
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio, num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length, logging_steps=config.logging_steps, save_steps=config.save_steps,
        save_total_limit=2, seed=config.seed, data_seed=config.seed, optim=optimizer_name(quantization),
        report_to="none", bf16=quantization == "qlora", use_cpu=not _cuda(), dataloader_pin_memory=_cuda(),
        activation_checkpointing=config.gradient_checkpointing, disable_tqdm=True,
    )
    keys = ("prompt", "chosen", "rejected", "tools") if any(row_tools(row) for row in rows) else (
        "prompt", "chosen", "rejected")
    dataset = Dataset.from_list([{key: row.get(key) for key in keys} for row in rows])
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=dataset,
                         processing_class=tokenizer, callbacks=[check, *(callbacks or [])])
    initial = {name: param.detach().clone() for name, param in trainer.model.named_parameters() if param.requires_grad}
    last = _last_checkpoint(out_dir / "checkpoints")
    if last is not None:
        check.first = {"resumed_from": last}  # the first step was checked in the run that wrote it
    trainer.train(resume_from_checkpoint=last)
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    (adapter_dir / "chat_template.jinja").write_text(template)
    result = _result(trainer, check, initial, started, rows, last)
    write_text_atomic(out_dir / "log_history.json", json.dumps(trainer.state.log_history, indent=1))
    write_text_atomic(out_dir / "result.json", json.dumps(result, indent=1))
    return result


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _result(trainer, check: HandOffCheck, initial: dict, started: float, rows: list[dict], resumed) -> dict:
    history = trainer.state.log_history
    steps = [entry for entry in history if "loss" in entry]
    changed = sum(int(not initial[name].equal(param.detach()))
                  for name, param in trainer.model.named_parameters() if name in initial)
    return {
        "rows": len(rows), "steps": trainer.state.global_step, "first_step": check.first,
        "last_step": steps[-1] if steps else None, "adapter_tensors_changed": changed,
        "adapter_tensors": len(initial), "wall_seconds": round(time.monotonic() - started, 1),
        **session_throughput(history, resumed),
    }
