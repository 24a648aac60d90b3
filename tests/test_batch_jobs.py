"""Batch mode (issue 16, item 5): the teacher stage and complete_chats through a Batch API,
against a loopback server implementing OpenAI's batch endpoints (tests/fake_batch_api.py)."""

import asyncio
import json

import pytest

from datagen.foundation.records import Example
from datagen.serving.batch_jobs import job_files, request_line
from datagen.serving.client import Endpoint, TeacherError
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.request_batch import TeacherStopped, complete_chats
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_triage import TASK
from datagen.teacher.distill import DistillConfig, answer_prompts
from tests.fake_batch_api import FakeBatchAPI, LineError


def prompts(count: int) -> list[Example]:
    return [Example(task=TASK.name, prompt=t.text, reference=json.dumps(t.label), source="test", run_id="r")
            for t in TASK.generate(count, 2)]


def teacher(api: FakeBatchAPI, **overrides) -> dict:
    # Each answer: 100 tokens in at $1/M and 20 out at $2/M (the batch rates) = $0.00014.
    return {"base_url": api.base_url, "model": "m", "batch": True, "poll_s": 0.02, "max_retries": 2,
            "price": {"input_usd_per_million": 1.0, "output_usd_per_million": 2.0}} | overrides


def distill(api: FakeBatchAPI, tmp_path, asked: list[Example], should_stop=lambda: None, **overrides):
    config = DistillConfig.model_validate({"samples_per_prompt": 2, "teachers": [teacher(api, **overrides)]})
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        # A hang guard only.
        return asyncio.run(asyncio.wait_for(
            answer_prompts(asked, TASK, config, [Endpoint(api.base_url, "m", "k")], cache, "r",
                           should_stop=should_stop), 120))
    finally:
        cache.close()


def usage_of(result, api):
    return result.usage[f"m at {api.base_url}"]


def test_a_batch_run_pays_each_request_once_and_fills_the_response_cache(tmp_path):
    asked = prompts(6)
    with FakeBatchAPI() as api:
        result = distill(api, tmp_path, asked)
        assert len(result.answers) == 12 and not result.failures
        assert [len(ids) for ids in api.submitted()] == [12]  # one job, every request once
        usage = usage_of(result, api)
        assert (usage.requests, usage.batch_jobs, usage.batch_jobs_resumed) == (12, 1, 0)
        assert usage.cost_usd == pytest.approx(12 * 0.00014)
        again = distill(api, tmp_path, asked)
        assert len(api.jobs) == 1  # the second run asked nothing: every answer was cached
        assert usage_of(again, api).cache_hits == 12 and usage_of(again, api).requests == 0
    assert sorted(a.response for a in again.answers) == sorted(a.response for a in result.answers)


def test_a_stopped_run_leaves_its_job_recorded_and_the_next_run_polls_it_instead_of_paying_again(tmp_path):
    asked = prompts(6)
    with FakeBatchAPI(polls_to_finish=10**9) as api:
        with pytest.raises(TeacherStopped, match=r"stopped: SIGINT received; 0 of 12 answers are cached"):
            distill(api, tmp_path, asked, should_stop=lambda: "SIGINT received" if len(api.retrieves) >= 2 else None)
        (job_id,) = api.jobs
        cache = ResponseCache(tmp_path / "cache.sqlite")
        assert list(cache.submitted_batch_jobs(api.base_url, "m")) == [job_id]
        cache.close()
        polled_before = len(api.retrieves)
        api.polls_to_finish = 0  # the job finishes while nobody is looking
        result = distill(api, tmp_path, asked)
        assert list(api.jobs) == [job_id]  # no new job: the recorded one was polled
        assert set(api.retrieves[polled_before:]) == {job_id}
    assert len(result.answers) == 12
    usage = usage_of(result, api)
    assert (usage.requests, usage.batch_jobs, usage.batch_jobs_resumed) == (0, 0, 1)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    assert cache.submitted_batch_jobs(api.base_url, "m") == {} and len(cache) == 12
    cache.close()


def test_failed_lines_are_recorded_with_their_reasons_and_the_rest_kept(tmp_path):
    asked = prompts(6)
    broken = asked[0].prompt
    answer = lambda body: LineError(500, "the model crashed") if body["messages"][-1]["content"] == broken else "ok"
    with FakeBatchAPI(answer=answer) as api:
        result = distill(api, tmp_path, asked)
    assert len(result.answers) == 10
    assert sorted((f.prompt_id, f.sample_index, f.attempts, f.reason) for f in result.failures) == [
        (asked[0].id, 0, 1, "HTTP 500: the model crashed"), (asked[0].id, 1, 1, "HTTP 500: the model crashed")]
    assert usage_of(result, api).failures == 2


def test_an_expired_job_is_followed_by_one_holding_only_what_had_no_answer(tmp_path):
    asked = prompts(6)
    with FakeBatchAPI(fates=["expired"], answered_before_expiry=5) as api:
        result = distill(api, tmp_path, asked)
        first, second = api.submitted()
    assert len(first) == 12 and second == first[5:]
    assert len(result.answers) == 12 and not result.failures
    assert usage_of(result, api).requests == 12 + 7


def test_a_request_no_job_gets_to_fails_after_max_retries_jobs(tmp_path):
    with FakeBatchAPI(fates=["expired"] * 3, answered_before_expiry=0) as api:
        result = distill(api, tmp_path, prompts(1), max_retries=2)
        assert len(api.jobs) == 3
    assert [(f.attempts, f.reason) for f in result.failures] == [(3, "batch job expired: no answer after 3 jobs")] * 2


def test_a_failed_job_fails_its_requests_with_the_apis_reasons(tmp_path):
    with FakeBatchAPI(fates=["failed"]) as api:
        result = distill(api, tmp_path, prompts(1))
        assert len(api.jobs) == 1  # the same file would be refused again: not resubmitted
    assert sorted(f.reason for f in result.failures) == [
        "batch job failed: invalid_request: model m is not available for batch",
        "batch job failed: its input file was refused (line 1: invalid_request: model m is not available for batch)"]


def test_a_500_while_polling_is_retried_and_too_many_stop_the_stage_with_the_job_recorded(tmp_path):
    with FakeBatchAPI(retrieve_faults={1, 2}) as api:
        result = distill(api, tmp_path, prompts(3))
    assert len(result.answers) == 6 and usage_of(result, api).retry_reasons == {"HTTP 500": 2}
    with FakeBatchAPI(retrieve_faults={1, 2, 3}) as api:
        with pytest.raises(TeacherError, match=r"reading batch job batch_1 failed after 3 attempts: HTTP 500.*"
                                               r"recorded in .*cache.sqlite, run again to resume"):
            distill(api, tmp_path / "again", prompts(3))


def test_cached_answers_are_never_submitted_again(tmp_path):
    asked = prompts(6)
    with FakeBatchAPI() as api:
        distill(api, tmp_path, asked[:2])
        result = distill(api, tmp_path, asked)
        first, second = api.submitted()
    assert len(first) == 4 and len(second) == 8 and not set(first) & set(second)
    assert len(result.answers) == 12 and usage_of(result, api).cache_hits == 4


def test_complete_chats_goes_through_batch_jobs_in_order(tmp_path):
    chats = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]
    answer = lambda body: f"answer to {body['messages'][-1]['content']}"
    with FakeBatchAPI(answer=answer) as api:
        config = EndpointConfig.model_validate(teacher(api))
        cache = ResponseCache(tmp_path / "cache.sqlite")
        answers = asyncio.run(complete_chats(Endpoint(api.base_url, "m", "k"), config, chats,
                                             {"temperature": 0.0, "max_tokens": 8}, cache))
        cache.close()
        assert len(api.jobs) == 1
    assert [a.content for a in answers] == [f"answer to question {i}" for i in range(5)]


def test_requests_are_split_into_files_within_the_apis_limits():
    lines = [request_line(f"k{i}", {"model": "m", "messages": [{"role": "user", "content": "x" * n}]})
             for i, n in enumerate([10, 10, 10, 200, 10])]
    assert job_files(lines, max_requests=2, max_bytes=10_000) == [[0, 1], [2, 3], [4]]
    size = len(lines[0])
    assert job_files(lines, max_requests=50_000, max_bytes=3 * size) == [[0, 1, 2], [3], [4]]
    with pytest.raises(TeacherError, match="batch request 3 is .* bytes"):
        job_files(lines, max_bytes=2 * size)


def test_batch_is_refused_for_the_embedded_model():
    with pytest.raises(ValueError, match="batch applies only to an endpoint with a base_url"):
        EndpointConfig(batch=True)
