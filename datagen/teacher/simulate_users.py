"""User simulation: a model plays the user for a few turns, so single prompts become conversations.

From each seed prompt (a generated or imported one), the conversation goes: the seed is the
first user turn (a seed that is a conversation already goes on from its last turn); a
teacher answers it as `distill` would (the task's system prompt and
few-shot turns, the history so far); the simulator, told who the user is (`persona`, its
system prompt) and shown the conversation as a transcript, writes the user's next
message; and so on, up to `user_turns` user turns. The simulator ends a conversation
early by writing `stop_phrase` (what it wrote before the phrase, if anything, is the
user's last message); an empty message, one cut off by `max_tokens`, or one that repeats
an earlier user turn ends it too, without that message. The transcript is one user
message rather than the roles swapped, because a small model follows "write the user's
next message" more reliably than it plays the user in its own assistant turns, and
every chat template accepts it.

Output: per seed that got at least one follow-up, an Example whose `prompt` is the last
user message, unanswered (the `answers` stage answers it, with samples, like any prompt),
and whose `context` is every turn before it, each with `written_by`: the seed's own
`source` for the seed's turns, "<model> at <endpoint>" (`distill.usage_key`) for every
turn a model wrote. The row's `teacher` is the simulator's request that wrote `prompt`,
as self-generated inputs record theirs; `parent_ids` = (seed id,); `source` is
`datagen.teacher.simulate_users@1`. No `reference`: the seed's label answered its first
turn, and nobody knows the label after the follow-ups, so these rows are verified for
format only (`sft.use_unlabelled` decides whether they train). The earlier assistant turns
are trained on too, and the answer filters hold them to the label-free checks
(`earlier_turn`).

Seeds that end before a follow-up come back with their reason, as do those whose request
failed after retries (with the `FailedRequest`). Every request is cached and seeded by
(seed, turn), so a stopped or crashed run resumes without paying twice.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from datagen.foundation.hashing import canonical_json, normalize_text
from datagen.foundation.records import Example, Teacher, Turn
from datagen.foundation.task import Task
from datagen.serving.client import Endpoint, NotSent, RequestFailed, TeacherClient, TeacherUsage
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.request_batch import StopRule, TeacherStopped, run_requests
from datagen.serving.response_cache import CachedResponse, ResponseCache
from datagen.teacher.distill import FailedRequest, pick_teacher, request_seed, response_format_for, usage_key

SOURCE = "datagen.teacher.simulate_users@1"

DEFAULT_PERSONA = (
    "You are a customer writing to an online shop's support team. You write short, plain messages in the first "
    "person, as a real customer would: you react to what support just said, add a detail, ask a follow-up "
    "question, or say you are done. Never write as the support team."
)
_SPEAKER = re.compile(r"^\s*(?:user|customer)\s*:\s*", re.IGNORECASE)


class UserSimulationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    simulator: EndpointConfig = Field(
        default_factory=EndpointConfig, description="the model that plays the user; the embedded one by default. "
        "The teachers (distill.teachers) write the assistant turns")
    persona: str = Field(DEFAULT_PERSONA, min_length=1, description="the simulator's system prompt: who the user "
                         "is and how they write")
    seeds: int = Field(16, ge=1, description="how many prompts (the first of the prompts stage) become conversations")
    user_turns: int = Field(3, ge=2, le=8, description="the most user turns a conversation has, the seed's included")
    stop_phrase: str = Field("[END]", min_length=1, description="the simulator writes it when the user has nothing "
                             "more to say")


@dataclass
class SimulationResult:
    conversations: list[Example]
    ended: list[tuple[Example, str]]  # seeds that gave no conversation, with the reason
    failures: list[FailedRequest]
    ended_by: Counter[str] = field(default_factory=Counter)  # how each conversation ended
    usage: dict[str, TeacherUsage] = field(default_factory=dict)


def transcript_request(persona: str, turns: list[Turn], stop_phrase: str) -> list[dict[str, str]]:
    """The simulator's chat: its persona, then the conversation so far as a transcript."""
    lines = [f"{'User' if turn.role == 'user' else 'Assistant'}: {turn.content}" for turn in turns]
    return [
        {"role": "system", "content": persona},
        {"role": "user", "content": "The conversation so far, between you (the user) and the assistant:\n\n"
                                    + "\n\n".join(lines)
                                    + "\n\nWrite your next message to the assistant, as the user, and nothing else. "
                                    f"If you have nothing more to say, write only {stop_phrase}."},
    ]


def next_user_turn(response: CachedResponse, earlier: list[str], stop_phrase: str) -> tuple[str | None, str | None]:
    """(the user's message or None, why the conversation ends or None) from the simulator's answer."""
    text = _SPEAKER.sub("", response.content).strip()
    if response.finish_reason == "length":
        return None, "truncated"
    if stop_phrase in text:
        said = text.split(stop_phrase, 1)[0].strip()
        return (said or None), "stop_phrase"
    if not text:
        return None, "empty"
    if normalize_text(text) in {normalize_text(turn) for turn in earlier}:
        return None, "repeated"
    return text, None


async def simulate_conversations(
    seeds: list[Example], task: Task, config: UserSimulationConfig, teachers: list[EndpointConfig],
    teacher_endpoints: list[Endpoint], simulator_endpoint: Endpoint, cache: ResponseCache, run_id: str,
    *, should_stop=lambda: None,
) -> SimulationResult:
    """A conversation from each seed, as the module docstring describes. `teacher_endpoints[i]`
    is where `teachers[i]` is reached."""
    teacher_clients = [TeacherClient(endpoint, teacher.limits(), cache)
                       for endpoint, teacher in zip(teacher_endpoints, teachers, strict=True)]
    simulator = TeacherClient(simulator_endpoint, config.simulator.limits(), cache)
    clients = [*teacher_clients, simulator]
    stop = StopRule(clients, None, should_stop)
    result = SimulationResult([], [], [])
    slots: list[Example | tuple[Example, str] | None] = [None] * len(seeds)

    async def ask(seed: Example, client: TeacherClient, endpoint_config: EndpointConfig, messages, key: str,
                  response_format) -> tuple[CachedResponse, dict]:
        sampling = endpoint_config.sampling.model_dump()
        sampling["seed"] = request_seed(endpoint_config.sampling.seed, key, 0)
        try:
            return await client.ask(messages, sampling, 0, response_format, may_send=lambda: not stop()), sampling
        except RequestFailed as failure:
            result.failures.append(FailedRequest(seed.id, 0, client.endpoint.model, client.endpoint.identity,
                                                 failure.reason, failure.attempts))
            raise

    async def converse(slot: int, seed: Example) -> None:
        index = pick_teacher(seed.id, [t.weight for t in teachers])
        teacher, client = teachers[index], teacher_clients[index]
        turns = [dataclasses.replace(turn, written_by=turn.written_by or seed.source) for turn in seed.context]
        turns.append(Turn("user", seed.prompt, written_by=seed.source))
        written = None  # the simulator's request that wrote the last user turn
        reason = "user_turns"
        try:
            while len([turn for turn in turns if turn.role == "user"]) < config.user_turns:
                number = len(turns) // 2
                answer, _ = await ask(seed, client, teacher, task.messages(turns[-1].content, few_shot=True,
                                                                     context=turns[:-1]),
                                      f"{seed.id}:answer:{number}", response_format_for(task, teacher))
                turns.append(Turn("assistant", answer.content, written_by=usage_key(client.endpoint)))
                reply, sampling = await ask(seed, simulator, config.simulator,
                                            transcript_request(config.persona, turns, config.stop_phrase),
                                            f"{seed.id}:user:{number}", None)
                text, reason = next_user_turn(reply, [t.content for t in turns if t.role == "user"],
                                              config.stop_phrase)
                if text is None:
                    turns.pop()  # no reply to answer: the conversation ends at the last user turn
                    break
                turns.append(Turn("user", text, written_by=usage_key(simulator.endpoint)))
                written = Teacher(simulator.endpoint.identity, simulator.endpoint.model, canonical_json(sampling), 0)
                if reason is not None:
                    break
                reason = "user_turns"
        except NotSent:
            return
        except RequestFailed as failure:
            slots[slot] = (seed, f"failed_request: {failure.reason}")
            return
        if written is None:
            slots[slot] = (seed, "no_follow_up: " + (
                f"the seed has {len(seed.user_turns())} user turns, user_turns is {config.user_turns}"
                if reason == "user_turns" else f"the simulator's first reply ended it ({reason})"))
            return
        result.ended_by[reason] += 1
        slots[slot] = Example(task=task.name, prompt=turns[-1].content, source=SOURCE, run_id=run_id,
                              template_id=seed.template_id, seed=seed.seed, teacher=written,
                              parent_ids=(seed.id,), context=tuple(turns[:-1]))

    await run_requests([converse(slot, seed) for slot, seed in enumerate(seeds)], clients, stop)
    if stop.reason:
        raise TeacherStopped(f"stopped: {stop.reason} during user simulation; every response received is "
                             "cached, run the same command again to resume")
    # In seed order, never completion order: a resumed run makes the same rows.
    for done in slots:
        if isinstance(done, Example):
            result.conversations.append(done)
        elif done is not None:
            result.ended.append(done)
    result.usage = {usage_key(c.endpoint): c.usage for c in clients}
    return result
