"""No retry storms against a busy server (issue 16, item 3): a timed-out or abandoned
request closes its connection, and the concurrency limit adapts to the endpoint.

The stage tests run the teacher stage against a real HTTP server on loopback whose
requests share one processor (tests/saturating_teacher.py): past its capacity every
request times out. With these numbers and the limit held at 12 (the cut disabled, once,
while writing this test) the stage sent 280 requests for 40 prompts and got 4 answers
from a server that aborts abandoned requests, none from one that keeps working on them,
whose requests in flight grew to 131: the storm of issue 16. With the adaptive limit it
sent 52 and got all 40.
"""

import asyncio
import contextlib
import json
import random

import pytest

from datagen.foundation.records import Example
from datagen.serving.adaptive_concurrency import AdaptiveConcurrency
from datagen.serving.client import ClientLimits, Endpoint, RequestFailed, TeacherClient
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_triage import TASK
from datagen.teacher.distill import DistillConfig, answer_prompts
from tests.loopback_server import eventually
from tests.saturating_teacher import SaturatingTeacher

SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16, "seed": 1}


def test_a_timed_out_request_closes_its_connection_so_the_server_can_abort_it(tmp_path):
    async def ask(server):
        cache = ResponseCache(tmp_path / "cache.sqlite")
        limits = ClientLimits(concurrency=1, requests_per_minute=None, tokens_per_minute=None, timeout_s=0.3,
                              max_retries=0, backoff_base_s=0.0, backoff_cap_s=0.0,
                              input_usd_per_million=0.0, output_usd_per_million=0.0)
        client = TeacherClient(Endpoint(server.base_url, "m", "k"), limits, cache, rng=random.Random(0))
        messages = [{"role": "user", "content": "hi"}]
        try:
            await client.complete(client.key(messages, SAMPLING, 0, None), messages, SAMPLING)
        finally:
            await client.close()
            cache.close()

    # An answer would take 60 s: only a disconnect can end the request on the server.
    with SaturatingTeacher(work_s=60.0) as server:
        with pytest.raises(RequestFailed, match="^timeout"):
            asyncio.run(ask(server))
        eventually(lambda: server.disconnects == 1, "the server saw the client leave")
        assert server.received == 1 and server.answered == 0
        eventually(lambda: not server._running, "the server stopped working on the abandoned request")


def prompts(count: int) -> list[Example]:
    return [Example(task=TASK.name, prompt=t.text, reference=json.dumps(t.label), source="test", run_id="r")
            for t in TASK.generate(count, 2)]


@pytest.mark.parametrize("abort_on_disconnect", [True, False], ids=["aborts-like-vllm", "keeps-working"])
def test_the_teacher_stage_finishes_against_a_saturated_server_without_a_retry_storm(tmp_path, abort_on_disconnect):
    """Each request needs 0.1 s of the server's processor; with 12 in flight each takes
    1.2 s and times out at 0.9 s. The limit halves to 6 (0.6 s each), then climbs back."""
    asked = prompts(40)
    seen = []
    with SaturatingTeacher(work_s=0.1, abort_on_disconnect=abort_on_disconnect) as server:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        config = DistillConfig.model_validate({"samples_per_prompt": 1, "teachers": [{
            "base_url": server.base_url, "model": "m", "concurrency": 12, "timeout_s": 0.9,
            "max_retries": 6, "backoff_base_s": 0.1, "backoff_cap_s": 1.0}]})
        run = answer_prompts(asked, TASK, config, [Endpoint(server.base_url, "m", "k")], cache, "r",
                             on_progress=seen.append)
        try:
            # A hang guard only: the stage takes a few seconds.
            result = asyncio.run(asyncio.wait_for(run, 300))
        finally:
            cache.close()
        usage = result.usage[f"m at {server.base_url}"]
        print(f"requests {server.received} for {len(asked)} prompts; concurrency 12 -> "
              f"{usage.concurrency_lowest} -> {usage.concurrency_limit}")
        assert len(result.answers) == len(asked) and not result.failures
        assert server.received == usage.requests <= len(asked) * 1.2 + 12
        # Every timeout closed its connection: the server saw each client leave.
        eventually(lambda: server.disconnects == usage.retry_reasons.get("timeout", 0), "a disconnect per timeout")
    assert usage.concurrency_ceiling == 12
    assert usage.concurrency_lowest < 12 and usage.concurrency_cuts >= 1
    assert usage.concurrency_raises >= 1 and usage.concurrency_limit > usage.concurrency_lowest
    assert min(p.concurrency for p in seen) == usage.concurrency_lowest
    assert seen[-1].concurrency == usage.concurrency_limit and seen[-1].concurrency_ceiling == 12


async def hold(limiter: AdaptiveConcurrency, count: int) -> tuple[contextlib.AsyncExitStack, list]:
    """Take `count` slots; closing the stack gives them back."""
    stack = contextlib.AsyncExitStack()
    return stack, [await stack.enter_async_context(limiter.slot()) for _ in range(count)]


def test_a_burst_of_failures_cuts_the_limit_once_and_successes_raise_it_again():
    async def run():
        limiter = AdaptiveConcurrency(8, successes_per_raise=3)
        stack, slots = await hold(limiter, 8)
        for slot in slots:  # all eight were in flight when the server choked: one cut
            limiter.overloaded(slot)
        assert (limiter.limit, limiter.cuts) == (4, 1)
        await stack.aclose()
        stack, (late,) = await hold(limiter, 1)
        limiter.overloaded(late)  # sent after the cut: a new sign, a new cut
        assert (limiter.limit, limiter.lowest, limiter.cuts) == (2, 2, 2)
        await stack.aclose()
        for _ in range(3):
            limiter.succeeded()
        assert (limiter.limit, limiter.raises) == (3, 1)
        for _ in range(100):
            limiter.succeeded()
        assert limiter.limit == 8  # never above the configured concurrency

    asyncio.run(run())


def test_waiting_requests_get_slots_in_turn_under_the_reduced_limit():
    async def run():
        limiter = AdaptiveConcurrency(2)
        entered = []

        async def request(name: str, release: asyncio.Event):
            async with limiter.slot() as slot:
                entered.append(name)
                await release.wait()
                if name == "a":
                    limiter.overloaded(slot)  # limit 2 -> 1

        releases = {name: asyncio.Event() for name in "abcd"}
        tasks = [asyncio.create_task(request(name, releases[name])) for name in "abcd"]
        await asyncio.sleep(0)
        assert entered == ["a", "b"]
        releases["a"].set()
        await tasks[0]
        await asyncio.sleep(0)
        assert entered == ["a", "b"]  # b holds the one slot left
        releases["b"].set()
        await tasks[1]
        await asyncio.sleep(0)
        assert entered == ["a", "b", "c"]  # one at a time now, in the order they came
        releases["c"].set()
        releases["d"].set()
        await asyncio.gather(*tasks)
        assert entered == ["a", "b", "c", "d"]

    asyncio.run(run())


def test_a_request_cancelled_while_waiting_gives_up_its_turn():
    """A refusal or a stop cancels requests still waiting for a slot; the turn they never
    took passes to the next in line."""
    async def run():
        limiter = AdaptiveConcurrency(1)
        release = asyncio.Event()
        served = []

        async def request(name: str):
            async with limiter.slot():
                served.append(name)
                await release.wait()

        holder, cancelled, next_in_line = (asyncio.create_task(request(name)) for name in ("a", "b", "c"))
        await asyncio.sleep(0)
        release.set()
        cancelled.cancel()  # the holder leaves before the cancelled request hears of it
        outcomes = await asyncio.gather(holder, cancelled, next_in_line, return_exceptions=True)
        assert outcomes[0] is None and isinstance(outcomes[1], asyncio.CancelledError) and outcomes[2] is None
        assert served == ["a", "c"] and not limiter._waiting and limiter._in_flight == 0

    asyncio.run(run())
