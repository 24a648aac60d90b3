"""The teacher layer against a fault-injecting server on loopback (tests/scripted_teacher.py)."""

import asyncio
import json
import random

import pytest

from datagen.foundation.records import Example
from datagen.serving.client import ClientLimits, Endpoint, RequestFailed, TeacherClient, TeacherRefused
from datagen.serving.request_batch import TeacherStopped
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_triage import TASK
from datagen.teacher.distill import DistillConfig, answer_prompts
from tests.loopback_server import eventually
from tests.scripted_teacher import Fault, ScriptedTeacher

SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16, "seed": 1}


def limits(**overrides) -> ClientLimits:
    values = dict(concurrency=4, requests_per_minute=None, tokens_per_minute=None, timeout_s=5.0,
                  max_retries=3, backoff_base_s=1.0, backoff_cap_s=30.0,
                  input_usd_per_million=0.0, output_usd_per_million=0.0)
    return ClientLimits(**(values | overrides))


class Sleeps:
    """Records the waits the client asks for instead of sleeping through them."""

    def __init__(self):
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def ask(server, tmp_path, prompt="hi", key="k1", **limit_overrides):
    async def run():
        sleeps = Sleeps()
        cache = ResponseCache(tmp_path / "cache.sqlite")
        client = TeacherClient(Endpoint(server.base_url, "m", "secret-key"), limits(**limit_overrides), cache,
                               sleep=sleeps, rng=random.Random(0))
        try:
            messages = [{"role": "user", "content": prompt}]
            response = await client.complete(client.key(messages, SAMPLING, 0, None), messages, SAMPLING)
            return response, client.usage, sleeps.waits
        finally:
            await client.close()
            cache.close()

    return asyncio.run(run())


def test_429_waits_exactly_as_long_as_retry_after_says(tmp_path):
    script = lambda prompt, k: Fault(429, "slow down", headers={"Retry-After": "7"}) if k == 0 else "ok"
    with ScriptedTeacher(script) as server:
        response, usage, waits = ask(server, tmp_path)
    assert response.content == "ok"
    assert waits == [7.0]
    assert (usage.requests, usage.retries, usage.failures) == (2, 1, 0)


def test_5xx_backs_off_exponentially_with_jitter(tmp_path):
    script = lambda prompt, k: Fault(503, "overloaded") if k < 3 else "ok"
    with ScriptedTeacher(script) as server:
        response, usage, waits = ask(server, tmp_path)
    assert response.content == "ok" and usage.retries == 3
    for attempt, wait in enumerate(waits):
        assert 0.5 * 2**attempt <= wait < 2**attempt
    assert usage.retry_reasons == {"HTTP 503": 3}


def test_timeouts_dropped_connections_and_malformed_bodies_are_retried(tmp_path):
    faults = [Fault(delay_s=2.0), Fault(drop=True), Fault(body="{not json"), Fault(body='{"choices": []}')]
    script = lambda prompt, k: faults[k] if k < len(faults) else "finally"
    with ScriptedTeacher(script) as server:
        response, usage, waits = ask(server, tmp_path, timeout_s=0.5, max_retries=4)
    assert response.content == "finally"
    assert usage.retries == 4 and len(server.requests) == 5


def test_a_request_that_keeps_failing_reports_its_reason_and_attempts(tmp_path):
    with ScriptedTeacher(lambda prompt, k: Fault(500, "boom")) as server:
        with pytest.raises(RequestFailed) as failed:
            ask(server, tmp_path, max_retries=2)
    assert failed.value.attempts == 3 and len(server.requests) == 3
    assert str(failed.value) == "HTTP 500: Error code: 500 - boom"


def test_4xx_fails_fast_with_the_endpoints_message(tmp_path):
    with ScriptedTeacher(lambda prompt, k: (404, "model m does not exist")) as server:
        with pytest.raises(TeacherRefused, match="answered HTTP 404: .*model m does not exist"):
            ask(server, tmp_path)
        assert len(server.requests) == 1


def test_cache_hit_sends_nothing_and_never_stores_the_key(tmp_path):
    with ScriptedTeacher(lambda prompt, k: f"answer {k}") as server:
        first, _, _ = ask(server, tmp_path)
        async def again():
            cache = ResponseCache(tmp_path / "cache.sqlite")
            # A different API key is the same request: the key is not part of the cache key.
            client = TeacherClient(Endpoint(server.base_url, "m", "other-key"), limits(), cache)
            messages = [{"role": "user", "content": "hi"}]
            hit = client.cached(client.key(messages, SAMPLING, 0, None))
            await client.close()
            return hit, client.usage.cache_hits
        hit, hits = asyncio.run(again())
    assert hit == first and hits == 1 and len(server.requests) == 1
    assert b"secret-key" not in (tmp_path / "cache.sqlite").read_bytes()


def test_concurrency_and_requests_per_minute_are_respected(tmp_path):
    async def burst(server, **overrides):
        cache = ResponseCache(tmp_path / f"{len(overrides)}.sqlite")
        client = TeacherClient(Endpoint(server.base_url, "m", "k"), limits(**overrides), cache)
        jobs = []
        for i in range(9):
            messages = [{"role": "user", "content": f"prompt {i}"}]
            jobs.append(client.complete(client.key(messages, SAMPLING, 0, None), messages, SAMPLING))
        try:
            return await asyncio.wait_for(asyncio.gather(*jobs), timeout=3)
        finally:
            await client.close()

    with ScriptedTeacher(lambda prompt, k: "ok", answer_delay_s=0.1) as server:
        assert len(asyncio.run(burst(server, concurrency=3))) == 9
        assert server.max_in_flight == 3
    with ScriptedTeacher(lambda prompt, k: "ok") as server:
        # 4 requests per minute: the first 4 go at once, the fifth would wait ~15 s.
        with pytest.raises(TimeoutError):
            asyncio.run(burst(server, requests_per_minute=4))
        assert len(server.requests) == 4


def prompts(count: int) -> list[Example]:
    return [
        Example(task=TASK.name, prompt=t.text, reference=json.dumps(t.label), source="test", run_id="r")
        for t in TASK.generate(count, 2)
    ]


def distill(server, tmp_path, should_stop=lambda: None, **config):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    config = DistillConfig.model_validate(
        # stop_grace_s: a paid endpoint's answers in flight at a stop are waited for and cached.
        {"samples_per_prompt": 2, "teachers": [{"base_url": server.base_url, "model": "m", "concurrency": 2,
                                                 "stop_grace_s": 60.0,
                                                 "price": {"input_usd_per_million": 100.0,
                                                           "output_usd_per_million": 500.0}}]} | config
    )
    endpoint = Endpoint(server.base_url, "m", "k")
    try:
        return asyncio.run(answer_prompts(prompts(6), TASK, config, [endpoint], cache, "r", should_stop=should_stop))
    finally:
        cache.close()


def test_a_stopped_run_resumes_without_repeating_a_request(tmp_path):
    with ScriptedTeacher(lambda prompt, k: '{"k": %d}' % k) as server:
        stop_after = lambda: "SIGINT received" if len(server.requests) >= 5 else None
        with pytest.raises(TeacherStopped, match=r"stopped: SIGINT received; \d+ of 12 answers are cached"):
            distill(server, tmp_path, should_stop=stop_after)
        sent_before = len(server.requests)
        assert 5 <= sent_before < 12
        result = distill(server, tmp_path)
        assert len(server.requests) == 12  # each of the 12 (prompt, sample) jobs asked once
        assert len(result.answers) == 12
        assert result.usage[f"m at {server.base_url}"].cache_hits == sent_before and result.usage[f"m at {server.base_url}"].requests == 12 - sent_before


@pytest.mark.parametrize(("stop_grace_s", "cached_at_stop"), [(None, 0), (60.0, 2)])
def test_a_stop_abandons_a_local_servers_requests_in_flight_and_waits_for_paid_ones(
        tmp_path, stop_grace_s, cached_at_stop):
    """Unset, the grace is 0 on loopback: a local model's slow answers are not waited for,
    and their connections are closed, so a server that aborts such requests (vLLM) stops
    working on them. A paid endpoint's (a grace set) arrive within it and are cached."""
    with ScriptedTeacher(lambda prompt, k: "ok", answer_delay_s=3.0) as server:
        teacher = {"base_url": server.base_url, "model": "m", "concurrency": 2, "stop_grace_s": stop_grace_s}
        with pytest.raises(TeacherStopped, match=rf"stopped: SIGINT received; {cached_at_stop} of 12 answers"):
            distill(server, tmp_path, should_stop=lambda: "SIGINT received" if server.requests else None,
                    teachers=[teacher])
        assert len(server.requests) == 2  # the two in flight; nothing new was sent after the stop
        eventually(lambda: server.disconnects == 2 - cached_at_stop, "the abandoned requests' clients left")


def test_the_budget_stops_the_run_and_counts_cost(tmp_path):
    # Each scripted answer costs 100 tokens * $100/M + 20 tokens * $500/M = $0.02.
    with ScriptedTeacher(lambda prompt, k: "ok") as server:
        with pytest.raises(TeacherStopped, match=r"budget of \$0.05 spent"):
            distill(server, tmp_path, budget_usd=0.05)
        assert 3 <= len(server.requests) < 12
        result = distill(server, tmp_path, budget_usd=1.0)
    usage = result.usage[f"m at {server.base_url}"]
    assert usage.cost_usd == pytest.approx(0.02 * usage.requests)
    assert (usage.prompt_tokens, usage.completion_tokens) == (100 * usage.requests, 20 * usage.requests)


def test_failed_requests_are_returned_with_reasons_and_the_rest_are_kept(tmp_path):
    first_prompt = prompts(6)[0].prompt
    script = lambda prompt, k: Fault(500, "broken") if prompt == first_prompt else "ok"
    with ScriptedTeacher(script) as server:
        result = distill(server, tmp_path, teachers=[{"base_url": server.base_url, "model": "m",
                                                       "max_retries": 1, "backoff_base_s": 0.0}])
    assert len(result.answers) == 10
    assert sorted((f.sample_index, f.attempts) for f in result.failures) == [(0, 2), (1, 2)]
    assert all(f.reason.startswith("HTTP 500") for f in result.failures)
