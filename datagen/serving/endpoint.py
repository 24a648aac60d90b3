"""One endpoint's settings: where a model is served and how hard crucible may push it.

Every model crucible asks, a teacher, the base student, the judge or a model under
evaluation, is configured by one `EndpointConfig`: `base_url` and `model` for a server
someone else runs (OpenAI, a vLLM, SGLang or llama.cpp server), or `base_url: null` for
the embedded SmolLM2-135M-Instruct, which crucible serves on loopback for the length of
a run (`model_servers.py`) with the `engine` chosen: vLLM by default. `api_key_env` names the environment variable that holds the
key; the key itself is never in a recipe, a row or the cache.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.serving.client import REMOTE_STOP_GRACE_S, ClientLimits, Endpoint, TeacherError

# A remote teacher's context window when the recipe does not give it: 8192 tokens is the
# smallest window among the instruct models commonly served today (Llama 3 8B, Mistral 7B
# v0.1, SmolLM2), so a prompt that fits it fits them all. Raise it for a larger model.
DEFAULT_CONTEXT_TOKENS = 8192


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.8, ge=0, description="0 is greedy; >0 samples")
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(
        160, gt=0, description="a triage answer is ~60-80 tokens; longer ones are cut and rejected"
    )
    seed: int = Field(0, description="base seed; each request gets a seed derived from it")


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_usd_per_million: float = Field(0.0, ge=0)
    output_usd_per_million: float = Field(0.0, ge=0)


class EndpointConfig(BaseModel):
    """One endpoint and how hard we may push it (a teacher, the student, the judge, a
    model under evaluation).

    `base_url: null` serves the embedded SmolLM2-135M-Instruct on loopback for the length
    of the run. Otherwise give `base_url` and `model`, and, if the endpoint needs a key,
    `api_key_env`: the *name* of the environment variable that holds it.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    engine: Literal["vllm", "transformers"] = Field(
        "vllm", description="with base_url null, the engine crucible serves the embedded model with: vLLM "
        "(datagen/serving/vllm_server.py), or `transformers serve` as the fallback",
    )
    weight: float = Field(1.0, gt=0, description="share of prompts sent to this teacher")
    structured_output: Literal["prompt", "json_schema"] = "prompt"
    tool_calling: Literal["prompt", "api"] = Field(
        "prompt", description="for a task with tools (datagen/foundation/tool_calls.py): `prompt` lists them in the "
        "system turn, as crucible trains them, for endpoints whose chat template ignores `tools` (the embedded "
        "SmolLM2's); `api` sends them as the request's `tools` with `tool_choice: required` (OpenAI; a vLLM "
        "started with --enable-auto-tool-choice and a --tool-call-parser) and reads the answer's `tool_calls`",
    )
    sampling: SamplingParams = SamplingParams()
    price: Price = Price()
    concurrency: int = Field(
        8, ge=1, description="the most requests in flight at once; fewer while the endpoint shows overload "
        "(timeouts, 429, 5xx), found at run time (datagen/serving/adaptive_concurrency.py)",
    )
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    timeout_s: float = Field(300, gt=0, description="per request; CPU servers queue requests")
    max_retries: int = Field(4, ge=0, description="on 429, 5xx, timeouts, dropped connections, malformed bodies")
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_cap_s: float = Field(30.0, ge=0)
    stop_grace_s: float | None = Field(
        None, ge=0, description="after a stop, how long requests in flight may still finish and be cached; "
        f"unset: 0 for a server on loopback (nothing is paid), {REMOTE_STOP_GRACE_S:.0f} s elsewhere",
    )
    context_tokens: int | None = Field(
        None, gt=0, description="the model's context window, which the prompt, its system and few-shot "
        "turns and max_tokens must fit; unset: the embedded model's own, else "
        f"{DEFAULT_CONTEXT_TOKENS} (see datagen/filters/prompt_length.py)",
    )
    batch: bool = Field(
        False, description="send the requests the cache lacks as batch jobs through the endpoint's Batch API "
        "(OpenAI's: answers within 24 h at about half the price; give `price` at the batch rates); jobs are "
        "recorded in the response cache, so a killed run resumes by polling them (datagen/serving/batch_jobs.py)",
    )
    poll_s: float = Field(60.0, gt=0, description="with batch: true, how often each job's status is read")

    @model_validator(mode="after")
    def _model_named_with_url(self) -> "EndpointConfig":
        if self.base_url is not None and not self.model:
            raise ValueError("a teacher with a base_url must also name its model")
        if self.base_url is None and (self.model or self.api_key_env):
            raise ValueError("model and api_key_env apply only with a base_url")
        if self.base_url is None and self.tool_calling == "api":
            raise ValueError("tool_calling: api needs a base_url: the embedded SmolLM2's chat template ignores "
                             "tools, so they go in its system turn (tool_calling: prompt)")
        if self.tool_calling == "api" and self.structured_output == "json_schema":
            raise ValueError("tool_calling: api and structured_output: json_schema both shape the answer; "
                             "choose one")
        if self.base_url is None and self.batch:
            raise ValueError("batch applies only to an endpoint with a base_url whose server offers a Batch API; "
                             "the embedded model has none")
        context = self.context_tokens or (DEFAULT_CONTEXT_TOKENS if self.base_url is not None else None)
        if context is not None and self.sampling.max_tokens >= context:
            raise ValueError(f"sampling.max_tokens {self.sampling.max_tokens} leaves no room for a prompt in a "
                             f"context of {context} tokens; set context_tokens to the model's context window")
        return self

    def limits(self) -> ClientLimits:
        return ClientLimits(
            concurrency=self.concurrency,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
            input_usd_per_million=self.price.input_usd_per_million,
            output_usd_per_million=self.price.output_usd_per_million,
            stop_grace_s=self.stop_grace_s,
            batch=self.batch,
            poll_s=self.poll_s,
        )


def resolve_endpoint(config: EndpointConfig, base_url: str, model: str, identity: str = "") -> Endpoint:
    if config.api_key_env is None:
        # Local servers accept any key; the client insists on one being set.
        return Endpoint(base_url, model, "no-key", identity)
    key = os.environ.get(config.api_key_env)
    if not key:
        raise TeacherError(
            f"teacher {model} at {base_url}: environment variable {config.api_key_env} is not set"
        )
    return Endpoint(base_url, model, key)
