"""SFT with LoRA on TRL's `SFTTrainer`: loss on the assistant's tokens only, checked.

Input: chats (`{"id", "messages": [{"role", "content"}, ...]}`, TRL's conversational
layout, as crucible exports them, with `tools` and assistant `tool_calls` for a task with
tools) and a base model folder. Output, in `out_dir`: the
LoRA adapter with its tokenizer and pinned chat template (`adapter/`), the trainer's
log history (`log_history.json`) and `result.json` (losses, token counts, wall time,
tokens/s), written last: a stage folder with `result.json` is complete.

Before the first step: the chat template is pinned (`chat_template.py`); rows longer
than `max_length` are set aside with their reason (truncation would cut the answer off);
the held-out split is taken by a hash of each row's id, so it is the same on every run;
and every tokenized row's loss mask is checked (`loss_masks.py`), with one row's mask
shown in the log. Checkpoints go to `out_dir/checkpoints/`; an interrupted run resumes
from the last one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.precision import Precision
from datagen.foundation.run_store import write_text_atomic
from train.base_model import (
    LoraSettings,
    Quantization,
    check_quantization,
    load_base_model,
    optimizer_name,
    session_throughput,
)
from train.chat_template import pin_chat_template, row_tools
from train.loss_masks import check_loss_masks, mask_sample

log = logging.getLogger("crucible.train")


class SFTStageConfig(BaseModel):
    """Defaults: a learning rate of 2e-4 with 10% warmup and cosine decay is the common
    LoRA SFT setting (QLoRA paper, TRL's LoRA examples); batch 8 suits 2 CPU cores."""

    model_config = ConfigDict(extra="forbid")

    lora: LoraSettings = LoraSettings()
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many steps (-1: run the epochs)")
    batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=16, description="longer rows are set aside, not truncated")
    packing: bool = Field(False, description="pack rows into max_length blocks, padding-free (TRL's BFD "
                                             "packing); with sdpa as with FlashAttention, position ids keep the "
                                             "packed chats apart (checked in tests/gpu/packed_throughput.py)")
    group_by_length: bool = Field(False, description="batches of rows of similar length (transformers' "
                                  "LengthGroupedSampler: shuffled groups of a few batches, each sorted by length), "
                                  "less padding to compute; off, rows are drawn at random (TRL's default)")
    eval_share: float = Field(0.1, ge=0, lt=0.5, description="held-out share of the training rows for eval loss")
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(20, ge=1)
    gradient_checkpointing: bool = Field(True, description="recompute activations in the backward pass (TRL's "
                                         "default): measured on the 135M model on CPU, turning it off doubled peak "
                                         "memory (14.7 vs 8.0 GB at batch 8) and was not faster")
    dtype: Precision = Field("auto", description="the base model's weights: auto (bf16 on CUDA and on CPUs with "
                             "AMX or AVX-512 BF16, else fp32), float32 or bfloat16 (datagen/foundation/precision.py); "
                             "LoRA weights stay fp32 either way")
    seed: int = 0


def split_held_out(rows: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """(train, held_out): a row is held out when its id's hash falls in the first `share`
    of the hash space, so a row's side never depends on row order or on the other rows
    (except when no row falls there: then the one with the lowest hash is held out)."""
    if share == 0:
        return rows, []
    held = [row for row in rows if int(hashlib.sha256(row["id"].encode()).hexdigest()[:8], 16) / 16**8 < share]
    if not held and len(rows) > 1:
        held = [min(rows, key=lambda row: hashlib.sha256(row["id"].encode()).hexdigest())]
    held_ids = {row["id"] for row in held}
    return [row for row in rows if row["id"] not in held_ids], held


def set_aside_long_rows(tokenizer, rows: list[dict], max_length: int) -> tuple[list[dict], list[dict]]:
    kept, aside = [], []
    for row in rows:
        length = len(tokenizer.apply_chat_template(row["messages"], tools=row_tools(row), tokenize=True,
                                                   return_dict=True)["input_ids"])
        (aside if length > max_length else kept).append(
            row if length <= max_length else {"id": row["id"], "reason": f"too_long: {length} > {max_length} tokens"})
    return kept, aside


def run_sft(config: SFTStageConfig, model_dir: Path, rows: list[dict], out_dir: Path, *,
            quantization: Quantization = "none", callbacks: list | None = None,
            on_mask_sample: Callable[[str], None] | None = None) -> dict:
    """Train a LoRA adapter on `rows`; returns (and writes) the stage result."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    check_quantization(quantization)
    out_dir = Path(out_dir)
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = pin_chat_template(tokenizer, with_tools=any(row_tools(row) for row in rows))
    rows, too_long = set_aside_long_rows(tokenizer, rows, config.max_length)
    train_rows, held_out = split_held_out(rows, config.eval_share)
    if not train_rows:
        raise ValueError("no training rows left for SFT after setting aside long rows and the held-out split")
    args = SFTConfig(
        output_dir=str(out_dir / "checkpoints"), assistant_only_loss=True, max_length=config.max_length,
        packing=config.packing, learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio, num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, logging_steps=config.logging_steps,
        save_steps=config.save_steps, save_total_limit=2, eval_strategy="epoch" if held_out else "no",
        seed=config.seed, data_seed=config.seed, optim=optimizer_name(quantization), report_to="none",
        bf16=quantization == "qlora", use_cpu=not _cuda(), dataloader_pin_memory=_cuda(),
        activation_checkpointing=config.gradient_checkpointing, disable_tqdm=True,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )
    # TRL's `tools` column only when rows carry tools: other tasks' datasets stay as they were.
    keys = ("messages", "tools") if any(row_tools(row) for row in rows) else ("messages",)
    columns = lambda chats: Dataset.from_list([{key: row.get(key) for key in keys} for row in chats])  # noqa: E731
    trainer = SFTTrainer(
        model=load_base_model(model_dir, quantization, config.dtype), args=args, train_dataset=columns(train_rows),
        eval_dataset=columns(held_out) if held_out else None, processing_class=tokenizer,
        peft_config=config.lora.peft_config(), callbacks=callbacks,
    )
    masks = _check_masks(tokenizer, train_rows, trainer.train_dataset, config.packing)
    sample = mask_sample(tokenizer, *_tokens_and_mask(trainer.train_dataset[0], tokenizer, train_rows[0],
                                                      config.packing))
    log.info("SFT loss mask of row %s («supervised»):\n%s", train_rows[0]["id"], sample)
    if on_mask_sample:
        on_mask_sample(sample)

    initial_adapter = _adapter_state(trainer.model)
    resumed = _last_checkpoint(out_dir / "checkpoints")
    trainer.train(resume_from_checkpoint=resumed)
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    (adapter_dir / "chat_template.jinja").write_text(template)
    result = _result(trainer, started, masks, train_rows, held_out, too_long, initial_adapter, resumed)
    write_text_atomic(out_dir / "log_history.json", json.dumps(trainer.state.log_history, indent=1))
    write_text_atomic(out_dir / "result.json", json.dumps(result, indent=1))
    return result


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _tokens_and_mask(prepared: dict, tokenizer, row: dict, packing: bool) -> tuple[list[int], list[int]]:
    if not packing:
        return prepared["input_ids"], [int(label != -100) for label in prepared["labels"]]
    # Packed rows mix chats: show the first chat as the template tokenizes it.
    own = tokenizer.apply_chat_template(row["messages"], tools=row_tools(row), tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return own["input_ids"], own["assistant_masks"]


def _check_masks(tokenizer, rows: list[dict], prepared, packing: bool) -> dict:
    if packing:
        tokenized = [dict(zip(("input_ids", "assistant_masks"), _tokens_and_mask({}, tokenizer, row, True)))
                     for row in rows]
    else:
        tokenized = [{"input_ids": item["input_ids"], "assistant_masks": [int(label != -100) for label in item["labels"]]}
                     for item in prepared]
    return check_loss_masks(tokenizer, rows, tokenized)


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _adapter_state(model) -> dict:
    return {name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad}


def _result(trainer, started: float, masks: dict, train_rows, held_out, too_long, initial_adapter, resumed) -> dict:
    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    eval_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    changed = sum(int(not initial_adapter[name].equal(param.detach()))
                  for name, param in trainer.model.named_parameters() if name in initial_adapter)
    return {
        "rows": {"train": len(train_rows), "held_out": len(held_out), "set_aside": too_long},
        "mask": masks, "steps": trainer.state.global_step, "epochs": trainer.state.epoch,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "eval_losses": eval_losses, "adapter_tensors_changed": changed, "adapter_tensors": len(initial_adapter),
        "wall_seconds": round(time.monotonic() - started, 1), **session_throughput(history, resumed),
    }
