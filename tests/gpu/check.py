"""The GPU check (issue #16, item 6): the figures only a machine with CUDA can give.

    .venv/bin/python -m tests.gpu.check --out gpu-figures.json
    .venv/bin/python -m tests.gpu.check --dry-run --out dry-run.json   # the plumbing, on CPU

Four parts, in this order, each in a process of its own (the parent never touches CUDA,
so every part starts with the whole GPU free; vLLM takes 90% of the GPU's memory when it
starts, by default, and refuses to start without it):

1. `environment` (environment.py): torch's CUDA build and the GPU it sees, one 4-bit
   bitsandbytes layer run on the GPU, the vLLM environment's own torch and vLLM;
2. `qlora_sft_dpo` (qlora_stages.py): crucible's SFT then DPO stages with
   `quantization="qlora"` on the embedded SmolLM2-135M-Instruct, on rows made by the
   support-triage generator: loss first and last, adapter tensors changed, tokens/s, peak
   GPU memory;
3. `vllm_lora` (lora_serving.py): vLLM in bf16 serving the base model with that DPO
   adapter by name, answering the 130 locked support-triage gold prompts at 64 in flight,
   through the base and through the adapter: wall time, output tokens/s, their ratio;
4. `train_throughput` (packed_throughput.py): crucible's SFT with padding-free packing
   against TRL's defaults on the same rows (`tests/benchmarks/train_throughput.py`, each
   method a fresh process): tokens/s and the ratio, crucible unpacked beside them, and a
   check that packed sequences do not attend to each other.

It writes everything to `--out` (JSON: each part's figures and a `status` that is "ok",
"skipped: <reason>" or "failed: <reason>", on every part and leg) and prints a Markdown
table for the README (figures_table.py). A part that fails does not stop the next. Exit
status: 0 when nothing failed, 1 when something did, 2 without CUDA (then it says what it
found and runs nothing else; use --dry-run on such a machine). Each part's output is also
in `<work>/<part>.log`; `--work` keeps adapters, checkpoints and the vLLM log
(`serving.log`), by default in a new temporary folder that is left in place.

`--dry-run` runs the same parts on a CPU, in about a minute: a tiny random 2-layer Llama
with the real tokenizer (tests/tiny_model.py), a few rows, steps and prompts, every part
but the environment in this process, LoRA in place of QLoRA, `transformers serve` in place
of vLLM. What it cannot run is recorded as "skipped: <reason>"; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from tests.gpu.environment import environment
from tests.gpu.figures_table import figures_table
from tests.gpu.lora_serving import lora_serving
from tests.gpu.packed_throughput import packed_throughput
from tests.gpu.qlora_stages import qlora_sft_then_dpo
from tests.gpu.settings import CheckSettings

REPO = Path(__file__).resolve().parents[2]
PARTS = {"environment": environment, "qlora_sft_dpo": qlora_sft_then_dpo, "vllm_lora": lora_serving,
         "train_throughput": packed_throughput}


def run_here(part: str, settings: CheckSettings) -> dict:
    """Run one part in this process; its result (a failure too) is returned and written
    where the parts after it read it (`settings.result_path`)."""
    try:
        result = PARTS[part](settings)
    except Exception as error:  # noqa: BLE001 - a failed part is a figure; the next part still runs
        result = {"status": f"failed: {type(error).__name__}: {error}", "traceback": traceback.format_exc()[-6000:]}
    settings.result_path(part).write_text(json.dumps(result, indent=1))
    return result


def run_in_child(part: str, settings: CheckSettings) -> dict:
    """Run one part in a fresh process, its output shown here and kept in `<work>/<part>.log`."""
    log_path = settings.work / f"{part}.log"
    command = [sys.executable, "-m", "tests.gpu.check", "--part", part, "--settings", str(settings.path())]
    with open(log_path, "w") as log, subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True,
                                                      env=os.environ | {"PYTHONUNBUFFERED": "1"}) as child:
        for line in child.stdout:
            sys.stdout.write(line)
            log.write(line)
    if settings.result_path(part).is_file():
        return json.loads(settings.result_path(part).read_text())
    tail = "".join(log_path.read_text().splitlines(keepends=True)[-30:])
    result = {"status": f"failed: its process exited with {child.returncode} and wrote no result; see {log_path}",
              "log_tail": tail}
    settings.result_path(part).write_text(json.dumps(result, indent=1))
    return result


def statuses(figures) -> list[str]:
    """Every `status` in the figures, however deep."""
    if isinstance(figures, dict):
        own = [figures["status"]] if isinstance(figures.get("status"), str) else []
        return own + [status for key, value in figures.items() if key != "status" for status in statuses(value)]
    if isinstance(figures, list):
        return [status for value in figures for status in statuses(value)]
    return []


def run_check(settings: CheckSettings) -> dict:
    started = time.monotonic()
    figures = {"check": "crucible GPU check (issue #16, item 6)", "dry_run": settings.dry_run,
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": _commit(),
               "model": str(settings.model_dir), "work": str(settings.work),
               "settings": settings.model_dump(mode="json", exclude={"work", "model_dir"}), "part_seconds": {}}
    settings.save()
    for part in PARTS:
        part_started = time.monotonic()
        environment_found = figures.get("environment", {}).get("status", "ok")
        if part != "environment" and not settings.dry_run and environment_found != "ok":
            result = {"status": f"skipped: {environment_found}"}
            settings.result_path(part).write_text(json.dumps(result, indent=1))
        elif part == "environment" or not settings.dry_run:
            print(f"\n== {part}: running in its own process (log: {settings.work / (part + '.log')})", flush=True)
            result = run_in_child(part, settings)
        else:
            print(f"\n== {part}: running", flush=True)
            result = run_here(part, settings)
        figures[part] = result
        figures["part_seconds"][part] = round(time.monotonic() - part_started, 1)
        print(f"== {part}: {result['status']}", flush=True)
    figures["wall_seconds"] = round(time.monotonic() - started, 1)
    return figures


def _commit() -> str:
    found = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-figures.json"), help="the figures, as JSON")
    parser.add_argument("--dry-run", action="store_true", help="the same parts on CPU, tiny model, in about a minute")
    parser.add_argument("--work", type=Path, default=None, help="an empty folder for logs, adapters, checkpoints")
    parser.add_argument("--model", type=Path, default=None,
                        help="the base model (default: the embedded SmolLM2-135M-Instruct; a dry run builds a "
                        "tiny one)")
    parser.add_argument("--part", choices=PARTS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settings", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        run_here(args.part, CheckSettings.model_validate_json(args.settings.read_text()))
        return 0

    work = args.work or Path(tempfile.mkdtemp(prefix="crucible-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        # The stages resume from checkpoints they find: a used folder would give figures of nothing.
        raise SystemExit(f"--work {work} is not empty; give an empty or new folder")
    model_dir = args.model or _default_model(work, args.dry_run)
    settings = (CheckSettings.for_dry_run(work.resolve(), model_dir.resolve()) if args.dry_run
                else CheckSettings(work=work.resolve(), model_dir=model_dir.resolve()))
    figures = run_check(settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1))
    print(f"\nfigures: {args.out}; work folder: {work}\n\n{figures_table(figures)}")
    if not settings.dry_run and figures["environment"]["status"] != "ok":
        print(f"\nno GPU check was run: {figures['environment']['status']}", file=sys.stderr)
        return 2
    return 1 if any(status.startswith("failed") for status in statuses(figures)) else 0


def _default_model(work: Path, dry_run: bool) -> Path:
    from datagen.serving.embedded_model import embedded_model_dir

    if not dry_run:
        return embedded_model_dir()
    from tests.tiny_model import write_tiny_model

    return write_tiny_model(work / "tiny-llama", embedded_model_dir())


if __name__ == "__main__":
    sys.exit(main())
