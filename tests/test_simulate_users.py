"""User simulation on a scripted teacher: the teacher answers each turn with the history, the
simulator writes the user's next one, every turn says who wrote it, and each stop condition
ends a conversation where it should."""

import asyncio
import json

from datagen.foundation.records import Example, Teacher, Turn
from datagen.serving.client import Endpoint
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.response_cache import ResponseCache
from datagen.tasks.support_conversation import TASK
from datagen.teacher.simulate_users import UserSimulationConfig, simulate_conversations
from tests.scripted_teacher import ScriptedTeacher

ANSWER = json.dumps({"category": "damaged_item", "priority": "high", "order_id": None, "product": "kettle",
                     "needs_human": True, "summary": "Kettle arrived dented."})
# Each seed's simulated user, one reply per assistant turn shown.
REPLIES = {
    "My kettle arrived with a dent.": ["User: It is order A-123456.", "Thanks, that is all! [END]"],
    "Where is my parcel?": ["[END]"],
    "I was charged twice.": ["Please refund one of them.", "please refund  one of them."],
    "Cancel my order please.": ["It is order A-654321.", "Today, if you can."],
}


def script(prompt: str, k: int) -> str:
    if prompt.startswith("The conversation so far"):
        seed = next(text for text in REPLIES if f"User: {text}" in prompt)
        return REPLIES[seed][prompt.count("\n\nAssistant: ") - 1]
    return ANSWER


def seed(text: str) -> Example:
    return Example(task=TASK.name, prompt=text, source="gen@1", run_id="r", template_id="t/1", seed=3)


def simulate(teacher: ScriptedTeacher, tmp_path):
    simulator = EndpointConfig(base_url=teacher.base_url, model="simulator", sampling={"seed": 7})
    assistant = EndpointConfig(base_url=teacher.base_url, model="teacher")
    config = UserSimulationConfig(simulator=simulator, user_turns=3)
    return asyncio.run(simulate_conversations(
        [seed(text) for text in REPLIES], TASK, config, [assistant], [Endpoint(teacher.base_url, "teacher", "k")],
        Endpoint(teacher.base_url, "simulator", "k"), ResponseCache(tmp_path / "cache.sqlite"), "run-1"))


def test_the_simulator_plays_the_user_and_every_turn_says_who_wrote_it(tmp_path):
    with ScriptedTeacher(script) as server:
        result = simulate(server, tmp_path)
        sent = len(server.requests)
        # A re-run is answered from the cache: nothing is paid twice.
        assert simulate(server, tmp_path).conversations == result.conversations
        assert len(server.requests) == sent
        asked = server.requests
    teacher, simulator = f"teacher at {server.base_url}", f"simulator at {server.base_url}"
    kettle, charged, cancel = result.conversations
    assert kettle.context == (
        Turn("user", "My kettle arrived with a dent.", written_by="gen@1"),
        Turn("assistant", ANSWER, written_by=teacher),
        Turn("user", "It is order A-123456.", written_by=simulator),  # "User: " taken off
        Turn("assistant", ANSWER, written_by=teacher),
    )
    # What the simulator wrote before the stop phrase is the user's last message, unanswered.
    assert (kettle.prompt, kettle.response, kettle.reference) == ("Thanks, that is all!", None, None)
    assert (kettle.source, kettle.parent_ids, kettle.template_id, kettle.seed) == (
        "datagen.teacher.simulate_users@1", (seed("My kettle arrived with a dent.").id,), "t/1", 3)
    assert isinstance(kettle.teacher, Teacher) and kettle.teacher.model == "simulator"
    # A repeated message ends the conversation at the turn before it.
    assert [t.content for t in charged.context] == ["I was charged twice.", ANSWER]
    assert charged.prompt == "Please refund one of them."
    assert [t.content for t in cancel.context if t.role == "user"] + [cancel.prompt] == [
        "Cancel my order please.", "It is order A-654321.", "Today, if you can."]
    assert result.ended == [(seed("Where is my parcel?"), "no_follow_up: the simulator's first reply ended it "
                                                          "(stop_phrase)")]
    assert result.ended_by == {"stop_phrase": 1, "repeated": 1, "user_turns": 1}
    assert result.failures == []
    # The teacher answered the second turn with the whole history after its few-shot turns.
    second = next(r for r in asked
                  if r["model"] == "teacher" and r["messages"][-1]["content"] == "It is order A-123456.")
    assert second["messages"][0]["content"] == TASK.system_prompt
    assert [m["content"] for m in second["messages"][-3:]] == ["My kettle arrived with a dent.", ANSWER,
                                                              "It is order A-123456."]
    # The simulator saw its persona and the transcript, not the task's system prompt.
    first = next(r for r in asked if r["model"] == "simulator")
    assert first["messages"][0]["content"] == UserSimulationConfig().persona
    assert first["messages"][1]["content"].startswith("The conversation so far")


def test_a_seed_that_is_a_conversation_goes_on_from_its_last_turn(tmp_path):
    history = (Turn("user", "My kettle arrived with a dent."), Turn("assistant", ANSWER))
    going_on = Example(task=TASK.name, prompt="Cancel my order please.", source="gen@1", run_id="r", context=history)
    full = Example(task=TASK.name, prompt="Where is my parcel?", source="gen@1", run_id="r",
                   context=history + (Turn("user", "I was charged twice."), Turn("assistant", ANSWER)))
    with ScriptedTeacher(lambda prompt, k: "It is order A-654321." if prompt.startswith("The conversation so far")
                         else ANSWER) as server:
        config = UserSimulationConfig(simulator=EndpointConfig(base_url=server.base_url, model="simulator"),
                                      user_turns=3)
        result = asyncio.run(simulate_conversations(
            [going_on, full], TASK, config, [EndpointConfig(base_url=server.base_url, model="teacher")],
            [Endpoint(server.base_url, "teacher", "k")], Endpoint(server.base_url, "simulator", "k"),
            ResponseCache(tmp_path / "cache.sqlite"), "run-1"))
    (talk,) = result.conversations
    assert [(t.role, t.content, t.written_by) for t in talk.context] == [
        ("user", "My kettle arrived with a dent.", "gen@1"), ("assistant", ANSWER, "gen@1"),
        ("user", "Cancel my order please.", "gen@1"), ("assistant", ANSWER, f"teacher at {server.base_url}")]
    assert talk.prompt == "It is order A-654321." and result.ended_by == {"user_turns": 1}
    assert result.ended == [(full, "no_follow_up: the seed has 3 user turns, user_turns is 3")]
