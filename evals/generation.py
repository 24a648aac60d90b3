"""Model outputs for evals: batched and deterministic.

In-process (`generate_in_process`): transformers on this machine, the base model or the
base plus a LoRA adapter through peft, greedy decoding, prompts left-padded in batches,
the chat template the adapter was trained with (saved beside it). Greedy decoding with
no sampling makes the outputs a function of the model and the prompts: the same eval run
twice gives the same rows.

Over the OpenAI-compatible API (`generate_over_api`): any server (vLLM serving base and
adapters, llama.cpp, `transformers serve`), temperature 0 and a fixed seed, one request
per prompt through the `openai` client, so a GPU user evaluates at full speed.

Input: chats (lists of `{"role", "content"}`, ending with the user's turn). Output: the
generated texts, in input order.
"""

from __future__ import annotations

from pathlib import Path

BATCH = 8


def generate_in_process(model_dir: Path, chats: list[list[dict]], *, adapter: Path | None = None,
                        max_new_tokens: int = 128, batch_size: int = BATCH, logits_processor=None) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter or model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    outputs = []
    for start in range(0, len(chats), batch_size):
        batch = tokenizer.apply_chat_template(chats[start:start + batch_size], add_generation_prompt=True,
                                              return_tensors="pt", padding=True, return_dict=True)
        with torch.no_grad():
            generated = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id,
                                       logits_processor=logits_processor() if logits_processor else None)
        outputs += tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return [output.strip() for output in outputs]


def generate_over_api(base_url: str, model: str, chats: list[list[dict]], *, api_key: str = "none",
                      max_new_tokens: int = 128, seed: int = 0) -> list[str]:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key)
    outputs = []
    for chat in chats:
        reply = client.chat.completions.create(model=model, messages=chat, temperature=0, seed=seed,
                                               max_tokens=max_new_tokens)
        outputs.append((reply.choices[0].message.content or "").strip())
    return outputs
