"""On-policy sampling through a real engine on loopback: k answers per prompt from base
plus an adapter, named in provenance by the adapter's weights, cached so a re-run sends
nothing. The engine here is `transformers serve` on the tiny model (vLLM serves the same
way; tests/test_serving_engine.py checks it on the real model)."""

from __future__ import annotations

import json

import pytest

from datagen.foundation.hashing import file_sha256
from datagen.generation.labelled_prompts import LabelledPromptConfig, labelled_prompts
from datagen.serving.endpoint import SamplingParams
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_triage import TASK
from datagen.teacher.on_policy import SOURCE, PolicySamplingConfig, sample_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


def test_k_samples_per_prompt_from_base_plus_adapter_named_by_its_weights(tiny_model, adapter, tmp_path):
    examples = labelled_prompts(TASK, LabelledPromptConfig(count=3, seed=5), "run-1")
    config = PolicySamplingConfig(samples_per_prompt=2, engine="transformers",
                                  sampling=SamplingParams(temperature=1.0, top_p=0.95, max_tokens=8, seed=3))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        first = sample_policy(examples, TASK, config, tiny_model, adapter, cache, "run-1", tmp_path / "logs")
        again = sample_policy(examples, TASK, config, tiny_model, adapter, cache, "run-1", tmp_path / "logs")
    finally:
        cache.close()
    assert len(first.answers) == 6 and not first.failures
    digest = file_sha256(adapter / "adapter_model.safetensors")
    assert {a.teacher.base_url for a in first.answers} == {f"merged:{digest}:transformers"}
    assert {a.source for a in first.answers} == {SOURCE}
    assert sorted((a.parent_ids[0], a.teacher.sample_index) for a in first.answers) == sorted(
        (e.id, k) for e in examples for k in range(2))
    # Each (prompt, sample) has its own seed, derived from the config's.
    assert len({a.seed for a in first.answers}) == 6
    assert all(json.loads(a.teacher.sampling)["temperature"] == 1.0 for a in first.answers)
    # The re-run is answered from the cache: the same rows, nothing sent.
    assert [a.response for a in again.answers] == [a.response for a in first.answers]
    usage = next(iter(again.usage.values()))
    assert (usage.requests, usage.cache_hits) == (0, 6)


def test_samples_held_to_the_answer_schema_ask_the_engine_for_it(tiny_model, adapter, tmp_path, monkeypatch):
    # The request itself is checked, not a server (vLLM's structured output is exercised by
    # the demo; `transformers serve` refuses response_format): `answer_prompts` and the
    # servers are replaced by a recorder and a stand-in, named as the fakes they are.
    from datagen.teacher import on_policy

    asked = []

    async def recording_answer_prompts(prompts, task, distill, endpoints, cache, run_id, **kwargs):
        asked.append(distill)
        return "recorded"

    class NoServers:  # a fake too: no engine starts for a wiring check
        def __init__(self, *args):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def endpoint(self, adapter):
            return "http://127.0.0.1:9/v1", "policy", "merged:test"

    monkeypatch.setattr(on_policy, "answer_prompts", recording_answer_prompts)
    monkeypatch.setattr(on_policy, "AdapterServers", NoServers)
    examples = labelled_prompts(TASK, LabelledPromptConfig(count=1, seed=5), "run-1")
    config = PolicySamplingConfig(samples_per_prompt=1, engine="transformers", structured_output="json_schema")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        assert sample_policy(examples, TASK, config, tiny_model, adapter, cache, "run-1", tmp_path / "logs") == "recorded"
    finally:
        cache.close()
    from datagen.teacher.distill import response_format_for

    teacher = asked[0].teachers[0]
    assert teacher.structured_output == "json_schema"
    assert response_format_for(TASK, teacher)["json_schema"]["schema"] == TASK.answer_schema.model_json_schema()
    assert PolicySamplingConfig().structured_output == "prompt"  # free sampling unless asked
