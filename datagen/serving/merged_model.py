"""Base model plus LoRA adapter as one plain checkpoint: what an engine serves when LoRA
by name is the slow path (vLLM on CPU), and what `merge: true` leaves beside a training
run for users who serve without peft."""

from __future__ import annotations

from pathlib import Path


def merge_adapter(model_dir: Path, adapter: Path, target: Path) -> Path:
    """Base plus adapter as one plain checkpoint, for serving without peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(adapter)).merge_and_unload()
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(target)
    return target
