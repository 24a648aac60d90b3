"""The GPU check's figures as a Markdown table for the README: one row per thing measured,
and, where a part or leg did not run, its status ("skipped: ..." or "failed: ...") instead
of figures."""

from __future__ import annotations

MAX_STATUS = 220  # a table cell; the JSON keeps the whole text


def figures_table(figures: dict) -> str:
    rows = [("check", "run", "result"), ("---", "---", "---")]
    rows.append(("machine", "", _machine(figures["environment"])))
    rows += _training(figures["qlora_sft_dpo"])
    rows += _serving(figures["vllm_lora"])
    rows += _throughput(figures["train_throughput"])
    lines = ["| " + " | ".join(cells) + " |" for cells in rows]
    if figures["dry_run"]:
        lines.insert(0, "Dry run: a tiny random model on CPU; the figures test the plumbing and mean nothing.\n")
    return "\n".join(lines)


def _cell(status: str) -> str:
    status = " ".join(status.split()).replace("|", "/")
    return status if len(status) <= MAX_STATUS else status[:MAX_STATUS] + "…"


def _machine(env: dict) -> str:
    if "torch" not in env:
        return _cell(env["status"])
    torch = env["torch"]
    found = [f"{torch['device']}, {torch['memory_gib']} GiB, capability {torch['capability']}"
             if torch["status"] == "ok" else _cell(torch["status"]),
             f"torch {torch['version']} (CUDA {torch['built_with_cuda']})",
             f"bitsandbytes: {_cell(env['bitsandbytes']['status'])}"]
    vllm = env["vllm"]
    found.append(f"vLLM {vllm['vllm']}" if vllm["status"] == "ok" else f"vLLM: {_cell(vllm['status'])}")
    return "; ".join(found)


def _training(part: dict) -> list[tuple[str, str, str]]:
    if part["status"] != "ok":
        return [("QLoRA SFT then DPO", "", _cell(part["status"]))]
    quantized = part["quantization"] == "qlora"
    name = "QLoRA" if quantized else "LoRA (QLoRA skipped)"
    rows = []
    for stage, what in (("sft", f"of {part['rows']['sft']} generated chats"),
                        ("dpo", f"of {part['rows']['dpo']} pairs, from the SFT adapter")):
        found = part[stage]
        run = f"{found['steps']} steps of {found['batch']}, {what}" + (", NF4 base" if quantized else "")
        rows.append((f"{name} {stage.upper()}", run,
                     f"loss {found['first_loss']:.3f} → {found['last_loss']:.3f}; "
                     f"{found['adapter_tensors_changed']}/{found['adapter_tensors']} adapter tensors changed; "
                     f"{found['tokens_per_second']} tokens/s; peak {found['peak_memory']['mib']:,} MiB"))
    return rows


def _serving(part: dict) -> list[tuple[str, str, str]]:
    if part["status"] != "ok":
        return [("vLLM with LoRA by name", "", _cell(part["status"]))]
    run = f"{part['prompts']} gold prompts, {part['concurrency']} in flight, ≤{part['max_tokens']} tokens out"
    rows = []
    for leg, name in (("base", "base model"), ("lora", "QLoRA adapter by name")):
        found = part[leg]
        if found["status"] != "ok":
            rows.append((f"{part['engine']}: {name}", run, _cell(found["status"])))
            continue
        ratio = f"; {part['lora_over_base']:.2f}x the base" if leg == "lora" else ""
        rows.append((f"{part['engine']}: {name}", run,
                     f"{found['wall_seconds']} s; {found['output_tokens_per_second']:,} output tokens/s{ratio}; "
                     f"{found['schema_valid']}/{found['requests']} schema-valid"))
    return rows


def _throughput(part: dict) -> list[tuple[str, str, str]]:
    if "methods" not in part:
        return [("SFT throughput", "", _cell(part["status"]))]
    names = {"TRL SFT": "SFT, TRL's defaults", "crucible SFT packed": "SFT, crucible, padding-free packing",
             "crucible SFT": "SFT, crucible, unpacked"}
    ratios = {"crucible SFT packed": ("packed_over_trl_defaults", "TRL's defaults"),
              "crucible SFT": ("packed_over_unpacked", None)}
    rows = []
    for method, found in part["methods"].items():
        run = (f"{part['steps']} steps of {part['batch']} {'packed blocks' if 'packed' in method else 'chats'}, "
               f"of {part['rows']} generated chats")
        if found["status"] != "ok":
            rows.append((names[method], run, _cell(found["status"])))
            continue
        key, against = ratios.get(method, (None, None))
        ratio = ""
        if key in part and against:
            ratio = f" ({part[key]:.2f}x {against})"
        elif key in part:
            ratio = f" (packed: {part[key]:.2f}x this)"
        rows.append((names[method], run, f"{found['tokens_per_second']:,} tokens/s{ratio}; {found['tokens']:,} tokens "
                                         f"in {found['train_seconds']} s; peak {found['peak_memory']['mib']:,} MiB"))
    check = part["packed_attention"]
    rows.append(("packed attention", f"{check['attention']}, fp32, 2 sequences in one row",
                 f"max logit difference against each alone {check['packed_vs_alone']:.1e} (without position_ids "
                 f"{check['unpacked_row_vs_alone']:.2f})" if check["status"] == "ok" else _cell(check["status"])))
    return rows
