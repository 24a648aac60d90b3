"""Part 4: crucible's SFT with padding-free packing against TRL's defaults, same rows.

Three methods of `tests/benchmarks/train_throughput.py` on the same `settings.rows` SFT
chats, `settings.throughput_steps` steps of `settings.batch` each, every one in a fresh
process (`run_method`; in a dry run, in this one):

- "TRL SFT": `SFTTrainer` with `SFTConfig`'s defaults (no packing, padded batches; on
  CUDA its default bf16 autocast over fp32 weights);
- "crucible SFT packed": `train.sft.run_sft` with `packing=True`. In TRL 1.16 that is
  `SFTConfig(packing=True, packing_strategy="bfd")`, which turns on `padding_free`
  whatever its own value: each batch is one row of concatenated sequences with
  `position_ids` restarting at every sequence and no attention mask;
- "crucible SFT": the stage's default, unpacked, to show what packing itself is worth.

Tokens are TRL's `num_tokens` (real tokens: the attention mask's sum, or every packed
position), time the Trainer's `train_runtime`; tokens/s is their ratio, and the figure
asked for is crucible packed over TRL's defaults.

Attention: transformers' default, PyTorch's sdpa (flash-attn is not a dependency). TRL's
docs say padding-free needs FlashAttention 2 or 3; with transformers 5.23, sdpa keeps
packed sequences apart too: given `position_ids` and no attention mask or cache (TRL's
`compute_loss` passes `use_cache=False`), `masking_utils.find_packed_sequence_indices`
builds a block-diagonal mask. `packed_attention` checks that on the base model, in fp32:
logits of two sequences packed into one row against each run alone (should be rounding
noise), and the same row without `position_ids` (the sequences then see each other).
"""

from __future__ import annotations

import json

from tests.gpu.settings import CheckSettings

METHODS = ("TRL SFT", "crucible SFT packed", "crucible SFT")


def packed_throughput(settings: CheckSettings) -> dict:
    from tests.benchmarks.train_throughput import generated_rows, measure, run_method

    if not settings.dry_run and settings.earlier("environment")["torch"]["status"] != "ok":
        return {"status": "skipped: no CUDA"}
    sft_rows, _ = generated_rows(settings.rows, trained=True)
    folder = settings.work / "throughput"
    folder.mkdir()
    data = folder / "rows.json"
    data.write_text(json.dumps({"SFT": sft_rows, "DPO": []}))
    methods = {}
    for method in METHODS:
        try:
            if settings.dry_run:
                out = folder / method.replace(" ", "-")
                stats = measure(method, data, out, settings.throughput_steps, settings.batch, None,
                                settings.model_dir)
            else:
                stats = run_method(method, data, folder, settings.throughput_steps, settings.batch, None,
                                   settings.model_dir)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - run_method exits with the child's stderr
            methods[method] = {"status": f"failed: {type(error).__name__}: {str(error)[-3000:]}"}
            continue
        methods[method] = {"status": "ok", "steps": stats["steps"], "tokens": stats["tokens"],
                           "train_seconds": round(stats["train_seconds"], 2),
                           "tokens_per_second": round(stats["tokens_per_second"], 1),
                           "peak_memory": {"mib": round(stats["peak_mb"]),
                                           "what": "torch.cuda.max_memory_allocated, own process"
                                           if not settings.dry_run else
                                           "peak RSS of the whole process so far (CPU; not this run's alone)"}}
    result = {"status": "ok", "rows": len(sft_rows), "batch": settings.batch, "steps": settings.throughput_steps,
              "methods": methods, "packed_attention": packed_attention(settings.model_dir)}
    ok = {name for name, found in methods.items() if found["status"] == "ok"}
    if {"crucible SFT packed", "TRL SFT"} <= ok:
        result["packed_over_trl_defaults"] = round(methods["crucible SFT packed"]["tokens_per_second"]
                                                   / methods["TRL SFT"]["tokens_per_second"], 3)
    if {"crucible SFT packed", "crucible SFT"} <= ok:
        result["packed_over_unpacked"] = round(methods["crucible SFT packed"]["tokens_per_second"]
                                               / methods["crucible SFT"]["tokens_per_second"], 3)
    if len(ok) < len(METHODS):
        result["status"] = "failed: " + "; ".join(f"{name} {methods[name]['status']}"
                                                 for name in METHODS if name not in ok)
    return result


def packed_attention(model_dir) -> dict:
    """Largest logit difference, packed row against sequences run alone, with and without
    the packed sequences' own `position_ids`."""
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(0, model.config.vocab_size, (1, n), generator=generator).to(device)
                     for n in (37, 23))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(37), torch.arange(23)]).unsqueeze(0).to(device)
    with torch.no_grad():
        alone = torch.cat([model(first, use_cache=False).logits, model(second, use_cache=False).logits], dim=1)
        kept_apart = (model(packed, position_ids=positions, use_cache=False).logits - alone).abs().max().item()
        run_together = (model(packed, use_cache=False).logits - alone).abs().max().item()
    attention = model.config._attn_implementation
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    # Measured on the tiny model on CPU: 2.4e-7 kept apart, 0.71 seeing each other.
    return {"attention": attention, "packed_vs_alone": kept_apart, "unpacked_row_vs_alone": run_together,
            "status": "ok" if kept_apart < 1e-2 and run_together > 100 * kept_apart else
            f"failed: packed sequences are not kept apart: max logit difference {kept_apart:.3g} "
            f"(one row without position_ids: {run_together:.3g})"}
