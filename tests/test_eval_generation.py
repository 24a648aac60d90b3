"""Eval generation is deterministic: greedy in-process with or without an adapter, and
temperature 0 with a fixed seed over the OpenAI-compatible API, through the client every
stage uses."""

from __future__ import annotations

import pytest
import torch

from datagen.serving.endpoint import EndpointConfig
from datagen.serving.greedy_answers import over_api
from datagen.serving.in_process import generate_in_process
from tests.scripted_teacher import ScriptedTeacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHATS = [[{"role": "user", "content": f"Ticket {i}: my lamp {'broke' * (i % 3 + 1)}"}] for i in range(5)]


def no_newlines():
    # The random tiny model's greedy choice is a newline; banning it (through the same
    # hook constrained decoding uses) makes it write text the test can compare.
    from transformers import LogitsProcessorList, SuppressTokensLogitsProcessor

    return LogitsProcessorList([SuppressTokensLogitsProcessor([198, 0, 1, 2], device="cpu")])


def test_in_process_generation_is_batched_greedy_and_repeatable(tiny_model):
    first = generate_in_process(tiny_model, CHATS, max_new_tokens=6, batch_size=2, logits_processor=no_newlines)
    again = generate_in_process(tiny_model, CHATS, max_new_tokens=6, batch_size=4, logits_processor=no_newlines)
    assert len(first) == 5 and all(first)
    assert first == again  # batch composition and padding do not change greedy outputs


def test_over_the_api_every_prompt_is_asked_once_at_temperature_0_with_a_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_CACHE", str(tmp_path / "cache"))
    with ScriptedTeacher(lambda prompt, k: f"answer to {prompt[:8]}") as server:
        endpoint = EndpointConfig(base_url=server.base_url, model="scripted")
        outputs = over_api(endpoint, CHATS, seed=7, max_new_tokens=32)
        # Through the teacher's client: a second ask is answered from the cache.
        assert over_api(endpoint, CHATS, seed=7, max_new_tokens=32) == outputs
    assert outputs == [f"answer to Ticket {i}" for i in range(5)]
    assert [(r["temperature"], r["seed"], r["max_tokens"]) for r in server.requests] == [(0, 7, 32)] * 5


def test_constrained_decoding_holds_the_real_model_to_the_answer_schema(embedded_model):
    # Asked with the short trained prompt, the untuned 135M model wrote 0 schema-valid
    # answers for the first 16 gold tickets; under xgrammar's grammar every output is a JSON
    # object with the schema's keys, in order, and valid values (the 20-word summary rule
    # is a validator, not part of the JSON Schema, so the grammar cannot hold it).
    from datagen.foundation.task import parse_json_answer
    from datagen.tasks.support_triage import TASK
    from evals.constrained_decoding import schema_logits_processor

    tickets = ["My blender from order A-204518 arrived cracked. I want a refund now!",
               "Does the standing desk come with a cable tray?"]
    chats = [TASK.messages(ticket, few_shot=False) for ticket in tickets]
    outputs = generate_in_process(embedded_model, chats, max_new_tokens=112,
                                  logits_processor=schema_logits_processor(embedded_model, TASK.answer_schema))
    for output in outputs:
        answer = parse_json_answer(output)
        assert answer is not None, output
        assert list(answer) == list(TASK.answer_schema.model_fields)
        assert not [error for error in _field_errors(TASK, answer) if not error.startswith("summary")], output


def _field_errors(task, answer: dict) -> list[str]:
    from datagen.foundation.task import schema_errors

    return schema_errors(task.answer_schema, answer)


def test_the_shared_prompt_prefix_is_computed_once_without_changing_any_output(embedded_model):
    # Few-shot chats share ~530 tokens; the reused prefix cache with per-row padding after it
    # must give what each prompt gives alone, unpadded and uncached.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from datagen.tasks.support_triage import TASK

    tickets = ["Where is my order A-120044? It is a week late.", "I was charged twice for my kettle!!",
               "Can I cancel my subscription to the coffee club please, I no longer need it."]
    chats = [TASK.messages(ticket, few_shot=True) for ticket in tickets]
    outputs = generate_in_process(embedded_model, chats, max_new_tokens=24, batch_size=2)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model, dtype=torch.float32).eval()
    alone = []
    for chat in chats:
        ids = tokenizer(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False),
                        add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            generated = model.generate(**ids, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        alone.append(tokenizer.decode(generated[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    assert outputs == alone
    assert all(output.startswith('{"category": "') for output in outputs)


def test_the_shared_prefix_leaves_every_row_a_token_of_its_own():
    from datagen.serving.in_process import shared_prefix_length

    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == 3
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert shared_prefix_length([[1, 2], [3, 4]]) == 0
    assert shared_prefix_length([[7, 8, 9]]) == 2


def test_free_text_strings_get_a_length_bound_so_the_object_can_always_close():
    from evals.constrained_decoding import bounded_strings

    schema = {"type": "object", "properties": {
        "summary": {"type": "string"}, "code": {"type": "string", "pattern": "^A-\\d{6}$"},
        "kind": {"type": "string", "enum": ["a", "b"]}, "note": {"type": "string", "maxLength": 10},
        "product": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    bounded = bounded_strings(schema, 160)["properties"]
    assert bounded["summary"] == {"type": "string", "maxLength": 160}
    assert "maxLength" not in bounded["code"] and "maxLength" not in bounded["kind"]
    assert bounded["note"]["maxLength"] == 10
    assert bounded["product"]["anyOf"][0] == {"type": "string", "maxLength": 160}
    assert "maxLength" not in schema["properties"]["summary"]  # a copy


class NoServerWanted:
    """Stands in for the preflight's servers (named a fake: no engine starts here). The
    candidate must be answered in process, and the running server stopped first."""

    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1

    def endpoint(self, adapter):
        raise AssertionError(f"a server was asked for {adapter}")


def test_adapters_in_process_answer_a_fine_tune_here_after_stopping_the_baselines_server(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evals.eval_candidates import Candidate, GenerationConfig, candidate_outputs

    adapter = tmp_path / "adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(adapter)
    servers = NoServerWanted()
    candidate = Candidate("pilot", "fine-tune", "trained", "", adapter=adapter)
    config = GenerationConfig(engine="vllm", adapters="in_process", batch_size=5)
    outputs = candidate_outputs(candidate, tiny_model, CHATS, max_new_tokens=6, config=config, servers=servers)
    assert servers.stopped == 1
    assert outputs == generate_in_process(tiny_model, CHATS, adapter=adapter, max_new_tokens=6, batch_size=5)
    # The adapter is used: its random LoRA weights change what the base model writes.
    assert outputs != generate_in_process(tiny_model, CHATS, max_new_tokens=6, batch_size=5)
