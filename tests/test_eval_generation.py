"""Eval generation is deterministic: greedy in-process with or without an adapter, and
temperature 0 with a fixed seed over the OpenAI-compatible API."""

from __future__ import annotations

import pytest
import torch

from evals.generation import generate_in_process, generate_over_api
from tests.scripted_teacher import ScriptedTeacher

CHATS = [[{"role": "user", "content": f"Ticket {i}: my lamp {'broke' * (i % 3 + 1)}"}] for i in range(5)]


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_over_the_api_every_prompt_is_asked_once_at_temperature_0_with_a_seed():
    with ScriptedTeacher(lambda prompt, k: f"answer to {prompt[:8]}") as server:
        outputs = generate_over_api(server.base_url, "scripted", CHATS, seed=7, max_new_tokens=32)
    assert outputs == [f"answer to Ticket {i}" for i in range(5)]
    assert [(r["temperature"], r["seed"], r["max_tokens"]) for r in server.requests] == [(0, 7, 32)] * 5
