"""Part 2: QLoRA SFT, then DPO from its adapter, with crucible's own stages.

`train.sft.run_sft` and `train.dpo.run_dpo` with `quantization="qlora"` (the base in 4-bit
NF4 through bitsandbytes, bf16 compute, paged AdamW 8-bit: `train/base_model.py`) on the
base model, with their defaults except the steps, the batch, and `eval_share=0` (no
held-out eval inside the timed loop). Rows: `settings.rows` support-triage tickets, each an
SFT chat with the short system prompt training rows carry and its label as the answer; for
DPO, the label is chosen and the label with the next category rejected
(`tests/benchmarks/train_throughput.generated_rows`).

Recorded per stage: loss at the first and last logged step, adapter tensors changed out of
all, the stage's own tokens/s, and peak GPU memory (`torch.cuda.max_memory_allocated`, reset
before each stage). The DPO adapter is what `vllm_lora` serves by name.

In a dry run (no CUDA) QLoRA is skipped, said so, and LoRA in full precision runs instead,
so the stages' plumbing still runs.
"""

from __future__ import annotations

import resource

from tests.gpu.settings import CheckSettings

DRY_RUN_QLORA = ("skipped: dry run on CPU: QLoRA's 4-bit NF4 base needs CUDA (bitsandbytes), and crucible "
                 "refuses it without a GPU (QLoRAUnavailable); LoRA in full precision ran instead")


def qlora_sft_then_dpo(settings: CheckSettings) -> dict:
    from tests.benchmarks.train_throughput import generated_rows
    from train.dpo import DPOStageConfig, run_dpo
    from train.sft import SFTStageConfig, run_sft

    if not settings.dry_run:
        bnb = settings.earlier("environment")["bitsandbytes"]
        if bnb["status"] != "ok":
            return {"status": f"skipped: bitsandbytes cannot run QLoRA here: {bnb['status']}"}
    quantization = "none" if settings.dry_run else "qlora"
    sft_rows, pairs = generated_rows(settings.rows, trained=True)
    folder = settings.work / "qlora"

    _reset_peak()
    sft = run_sft(SFTStageConfig(max_steps=settings.sft_steps, batch_size=settings.batch, eval_share=0),
                  settings.model_dir, sft_rows, folder / "sft", quantization=quantization)
    sft_peak = _peak()
    _reset_peak()
    dpo = run_dpo(DPOStageConfig(max_steps=settings.dpo_steps, batch_size=settings.batch),
                  settings.model_dir, folder / "sft" / "adapter", pairs, folder / "dpo", quantization=quantization)
    dpo_peak = _peak()
    return {
        "status": "ok",
        "quantization": quantization,
        "qlora": {"status": DRY_RUN_QLORA if settings.dry_run else "ok"},
        "rows": {"sft": len(sft_rows), "dpo": len(pairs)},
        "sft": {"steps": sft["steps"], "batch": settings.batch, "first_loss": sft["first_loss"],
                "last_loss": sft["last_loss"], "adapter_tensors_changed": sft["adapter_tensors_changed"],
                "adapter_tensors": sft["adapter_tensors"], "tokens_per_second": sft["tokens_per_second"],
                "train_seconds": sft["train_seconds"], "peak_memory": sft_peak},
        "dpo": {"steps": dpo["steps"], "batch": settings.batch, "first_loss": dpo["first_step"]["loss"],
                "last_loss": dpo["last_step"]["loss"],
                "last_margin": dpo["last_step"].get("rewards/margins"),
                "adapter_tensors_changed": dpo["adapter_tensors_changed"], "adapter_tensors": dpo["adapter_tensors"],
                "tokens_per_second": dpo["tokens_per_second"], "train_seconds": dpo["train_seconds"],
                "peak_memory": dpo_peak},
        "adapter": str(folder / "dpo" / "adapter"),
    }


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"mib": round(torch.cuda.max_memory_allocated() / 2**20), "what": "torch.cuda.max_memory_allocated"}
    return {"mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "what": "peak RSS of the whole process so far (CPU; not this stage's alone)"}
