"""What the GPU check runs, shared by its parts: sizes, the model, where each part writes.

The defaults size the CUDA run: a few minutes on one H100 or H200 for the 135M model, most
of it vLLM's start. `for_dry_run` shrinks everything so the same parts run on a 2-core CPU
with a tiny model in well under a minute of training and serving.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class CheckSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    work: Path = Field(description="an empty folder: each part's JSON, logs, adapters and checkpoints")
    model_dir: Path = Field(description="the base model: the embedded SmolLM2-135M-Instruct on CUDA")
    dry_run: bool = False
    rows: int = Field(256, ge=4, description="support-triage tickets generated: SFT chats and DPO pairs")
    batch: int = Field(8, ge=1, description="rows per step, every training run (crucible's default)")
    sft_steps: int = Field(30, ge=1)
    dpo_steps: int = Field(15, ge=1)
    throughput_steps: int = Field(30, ge=1, description="steps of each method in the throughput benchmark")
    prompts: int | None = Field(None, ge=1, description="locked support-triage gold prompts served; None: all")
    max_tokens: int = Field(96, ge=1, description="per answer; the serving benchmark's (issue #16)")
    concurrency: int = Field(64, ge=1, description="requests in flight")

    @classmethod
    def for_dry_run(cls, work: Path, model_dir: Path) -> "CheckSettings":
        return cls(work=work, model_dir=model_dir, dry_run=True, rows=4, batch=2, sft_steps=2, dpo_steps=2,
                   throughput_steps=1, prompts=4, max_tokens=16)

    def path(self) -> Path:
        return self.work / "settings.json"

    def save(self) -> Path:
        self.path().write_text(self.model_dump_json(indent=1))
        return self.path()

    def result_path(self, part: str) -> Path:
        return self.work / f"{part}.json"

    def earlier(self, part: str) -> dict:
        """The result of a part that ran before this one."""
        path = self.result_path(part)
        if not path.is_file():
            raise RuntimeError(f"{part} has not run: {path} is missing")
        return json.loads(path.read_text())
