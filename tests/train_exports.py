"""A training export written the way crucible's build writes one (`trl_sft`, `trl_dpo`),
from the demo task's generated tickets, for the training and preflight flow tests."""

from __future__ import annotations

import json
from pathlib import Path

from datagen.tasks.support_triage import TASK

GOLD_ANSWER = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
               "needs_human": True, "summary": "Blender arrived with a cracked jug; customer wants a replacement."}


def chat(text: str, label: dict) -> list[dict]:
    return TASK.messages(text, few_shot=False)[1:] + [{"role": "assistant", "content": TASK.render_answer(label)}]


def write_export(folder: Path, tickets, extra_prompt: str | None = None) -> Path:
    (folder / "trl_sft").mkdir(parents=True)
    (folder / "trl_dpo").mkdir(parents=True)
    sft = [{"id": f"sft-{i}", "messages": chat(t.text, t.label)} for i, t in enumerate(tickets)]
    if extra_prompt:
        sft.append({"id": "sft-leak", "messages": chat(extra_prompt, GOLD_ANSWER)})
    pairs = []
    for i, t in enumerate(tickets[:8]):
        wrong = dict(t.label, category="product_question" if t.label["category"] != "product_question" else "cancellation")
        pairs.append({"id": f"pair-{i}", "prompt": TASK.messages(t.text, few_shot=False)[1:],
                      "chosen": [{"role": "assistant", "content": TASK.render_answer(t.label)}],
                      "rejected": [{"role": "assistant", "content": TASK.render_answer(wrong)}]})
    (folder / "trl_sft" / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in sft))
    (folder / "trl_dpo" / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in pairs))
    return folder
