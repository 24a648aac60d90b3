"""A task whose answer is a tool call, on literal inputs: the verifier (right tool, arguments
valid against the tool's JSON schema, equal to the label), the forms a call is read from
(a JSON object, `<tool_call>` tags, an OpenAI `tool_calls` response), the pairs made by
rule, the TRL rows with `tools`, and what the tiny model's tokenizer renders from them,
which must be what every other model is shown as text."""

import json

import pytest
from openai.types.chat import ChatCompletion
from transformers import AutoTokenizer

from datagen.exports.formats import write_exports
from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers
from datagen.foundation.export_layout import ALPACA_FILE, DPO_FILE, SFT_FILE, SHAREGPT_FILE
from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, PreferencePair, Teacher
from datagen.foundation.task import Task, parse_json_answer, schema_errors
from datagen.foundation.tool_calls import call_schema, message_text, system_with_tools
from datagen.pairs.axis_rejections import NoRejection, make_axis_rejection
from datagen.serving.endpoint import EndpointConfig
from datagen.serving.response_cache import CachedResponse
from datagen.tasks.shop_assistant import TASK, TOOLS, TRAINED_SYSTEM_PROMPT
from tests.conftest import read_jsonl
from train.chat_template import CHATML_TRAINING_TEMPLATE, ChatTemplateError, pin_chat_template
from train.loss_masks import check_loss_masks

REFUND = {"name": "issue_refund", "arguments": {"order_id": "MB-77310", "amount": 39.9, "reason": "damaged"}}
REFUND_TEXT = '{"name": "issue_refund", "arguments": {"order_id": "MB-77310", "amount": 39.9, "reason": "damaged"}}'
PROMPT = "The toaster in order MB-77310 arrived broken. It cost €39.90 of the €52.40 I paid; please refund it."
ESCALATE = {"name": "escalate_to_human",
            "arguments": {"summary": "The customer was charged twice.", "priority": "urgent"}}
# A tool and the system turn that lists it: what a model whose template ignores tools is shown.
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Das Wetter für eine Stadt",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
WEATHER_SYSTEM = (
    "Call a tool.\n\n# Tools\n\nYou may call one of these functions. Their signatures are within <tools></tools> "
    'XML tags:\n<tools>\n{"type": "function", "function": {"name": "weather", "description": "Das Wetter für eine '
    'Stadt", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}'
    "\n</tools>")


def with_arguments(**arguments) -> dict:
    return {"name": "issue_refund", "arguments": dict(REFUND["arguments"], **arguments)}


# The verifier

@pytest.mark.parametrize("answer, errors", [
    (REFUND, []),
    ({"name": "issue_refund", "arguments": {"order_id": "MB-77310", "amount": 39.9}},
     ["arguments: Value error, 'reason' is a required property"]),
    (with_arguments(currency="EUR"),
     ["arguments: Value error, Additional properties are not allowed ('currency' was unexpected)"]),
    (with_arguments(amount=0, order_id="MB-7731"),
     ["arguments: Value error, amount: 0 is less than or equal to the minimum of 0; "
      "order_id: 'MB-7731' does not match '^[A-Z]{2}-[0-9]{5}$'"]),
    ({"name": "refund", "arguments": {}},
     ["name: Input should be 'lookup_order', 'track_shipment', 'cancel_order', 'issue_refund', 'update_address' "
      "or 'escalate_to_human'"]),
])
def test_arguments_are_held_to_the_named_tools_json_schema(answer, errors):
    assert schema_errors(TASK.answer_schema, answer) == errors


@pytest.mark.parametrize("answer, wrong", [
    (REFUND, []),
    (with_arguments(amount=39.90000000001), []),  # float noise
    ({"name": "cancel_order", "arguments": {"order_id": "MB-77310", "reason": "changed_mind"}}, ["name", "arguments"]),
    (with_arguments(amount=52.4), ["arguments"]),  # the order's total for the item's price
    (with_arguments(order_id="MB-77301"), ["arguments"]),
])
def test_compare_names_the_wrong_tool_and_any_argument_off_the_label(answer, wrong):
    assert TASK.compare(answer, REFUND) == wrong


def test_the_wrong_tool_with_the_same_arguments_is_wrong_on_name_only():
    lookup = {"name": "lookup_order", "arguments": {"order_id": "MB-77310"}}
    assert TASK.compare({"name": "track_shipment", "arguments": {"order_id": "MB-77310"}}, lookup) == ["name"]


def test_a_summary_in_the_models_own_words_is_not_compared_but_the_priority_is():
    other_words = {"name": "escalate_to_human", "arguments": {"summary": "Double charge.", "priority": "urgent"}}
    assert TASK.compare(other_words, ESCALATE) == []
    assert TASK.compare(dict(other_words, arguments={"summary": "x", "priority": "normal"}), ESCALATE) == ["arguments"]


def answer(text: str, finish_reason: str = "stop") -> Example:
    teacher = Teacher("http://teacher", "t", "{}", 0)
    return Example(task="shop_assistant", prompt=PROMPT, source="test", run_id="r", response=text,
                   reference=canonical_json(REFUND), teacher=teacher, finish_reason=finish_reason)


def test_answer_filters_keep_the_right_call_and_give_each_wrong_one_its_reason():
    kept, rejected = filter_answers([
        answer(REFUND_TEXT),
        answer(f"<tool_call>\n{REFUND_TEXT}\n</tool_call>", finish_reason="tool_calls"),
        answer(f"Sure! {REFUND_TEXT}"),
        answer(json.dumps({"name": "issue_refund", "arguments": {"order_id": "MB-77310", "amount": 39.9}})),
        answer(json.dumps(with_arguments(amount=52.4))),
        answer(json.dumps({"name": "lookup_order", "arguments": {"order_id": "MB-77310"}})),
    ], TASK, AnswerFilterConfig())
    assert len(kept) == 2
    assert [reason for _, reason in rejected] == [
        "unparseable: not a single JSON object",
        "schema_invalid: arguments: Value error, 'reason' is a required property",
        "wrong_fields: arguments",
        "wrong_fields: name, arguments",
    ]


# Reading a call

@pytest.mark.parametrize("text", [
    REFUND_TEXT,
    f"<tool_call>\n{REFUND_TEXT}\n</tool_call>",
    f"<tool_call>{REFUND_TEXT}</tool_call>",
    f"```json\n{REFUND_TEXT}\n```",
])
def test_a_call_is_read_as_a_json_object_or_inside_tool_call_tags(text):
    assert parse_json_answer(text) == REFUND


@pytest.mark.parametrize("text", [
    f"Calling the tool: {REFUND_TEXT}", f"<tool_call>{REFUND_TEXT}", "<tool_call></tool_call>"])
def test_prose_or_a_tag_left_open_is_no_call(text):
    assert parse_json_answer(text) is None


def openai_completion(message: dict) -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


def call(name: str, arguments: str, number: int = 0) -> dict:
    return {"id": f"call_{number}", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_an_openai_tool_calls_response_is_stored_as_the_calls_text():
    arguments = '{"order_id":"MB-77310","amount":39.9,"reason":"damaged"}'  # as the server wrote them
    one = openai_completion({"role": "assistant", "content": None, "tool_calls": [call("issue_refund", arguments)]})
    stored = CachedResponse.from_completion(one)
    assert stored.content == '{"name": "issue_refund", "arguments": ' + arguments + "}"
    assert (parse_json_answer(stored.content), stored.finish_reason) == (REFUND, "tool_calls")
    # Two calls, or text beside the call, are not one answer: kept as text, rejected as unparseable.
    two = openai_completion({"role": "assistant", "content": None, "tool_calls": [
        call("lookup_order", '{"order_id": "MB-77310"}'), call("track_shipment", '{"order_id": "MB-77310"}', 1)]})
    assert CachedResponse.from_completion(two).content == (
        '{"name": "lookup_order", "arguments": {"order_id": "MB-77310"}}\n'
        '{"name": "track_shipment", "arguments": {"order_id": "MB-77310"}}')
    assert parse_json_answer(CachedResponse.from_completion(two).content) is None


def test_tool_calling_through_the_api_needs_a_served_model_and_no_json_schema():
    with pytest.raises(ValueError, match="tool_calling: api needs a base_url"):
        EndpointConfig(tool_calling="api")
    with pytest.raises(ValueError, match="choose one"):
        EndpointConfig(base_url="http://x/v1", model="m", tool_calling="api", structured_output="json_schema")


# The task's definition

def test_a_rendered_call_lists_arguments_in_the_tools_declared_order():
    shuffled = {"name": "issue_refund", "arguments": {"reason": "damaged", "amount": 39.9, "order_id": "MB-77310"}}
    assert TASK.render_answer(shuffled) == REFUND_TEXT


def test_tools_must_be_valid_and_come_with_their_call_schema():
    broken = dict(WEATHER, function=dict(WEATHER["function"], parameters={"type": "object", "required": "city"}))
    with pytest.raises(ValueError, match="tool weather: parameters are not a valid JSON schema"):
        call_schema((broken,))
    with pytest.raises(ValueError, match="its answer schema is not their call_schema"):
        Task(name="t", version="1", answer_schema=call_schema((WEATHER,)), system_prompt="s", few_shot=(),
             generate=lambda count, seed: [], compare=lambda a, b: [], tools=TOOLS)


def test_every_chat_lists_the_tools_in_its_system_turn_unless_they_travel_apart():
    assert system_with_tools("Call a tool.", (WEATHER,)) == WEATHER_SYSTEM
    trained = TASK.messages(PROMPT, few_shot=False, trained=True)
    assert trained[0]["content"] == system_with_tools(TRAINED_SYSTEM_PROMPT, TOOLS)
    assert TASK.messages(PROMPT, few_shot=False, trained=True, tools_in_system=False)[0]["content"] == (
        TRAINED_SYSTEM_PROMPT)
    assert trained[0]["content"] in TASK.system_prompts


# Pairs made by rule

CANCEL = {"name": "cancel_order", "arguments": {"order_id": "MB-77310", "reason": "changed_mind"}}


# Which mistake is made for a call is picked by a hash of it: these calls show each kind.
@pytest.mark.parametrize("axis, chosen, rejected, evidence", [
    ("one_wrong_field", {"name": "lookup_order", "arguments": {"order_id": "MB-77310"}},
     {"name": "track_shipment", "arguments": {"order_id": "MB-77310"}},
     'rejected sets name: "lookup_order" -> "track_shipment"'),
    ("wrong_arguments", CANCEL, {"name": "cancel_order", "arguments": {"order_id": "MB-77310"}},
     "rejected leaves out the argument reason"),
    ("wrong_arguments", ESCALATE,
     {"name": "escalate_to_human", "arguments": dict(ESCALATE["arguments"], channel="phone")},
     'rejected adds the argument channel: "phone"'),
    ("wrong_arguments", REFUND, with_arguments(reason="late_delivery"),
     'rejected sets arguments.reason: "damaged" -> "late_delivery"'),  # another enum value, by rule
    ("wrong_arguments", with_arguments(amount=12.5), with_arguments(amount=125.0),
     "rejected sets arguments.amount: 12.5 -> 125.0"),  # the task's misread amount
    ("wrong_arguments", {"name": "lookup_order", "arguments": {"order_id": "QD-20417"}},
     {"name": "lookup_order", "arguments": {"order_id": "QD-20471"}},
     'rejected sets arguments.order_id: "QD-20417" -> "QD-20471"'),  # the task's swapped digits
])
def test_a_rule_made_wrong_call_differs_in_the_tool_or_one_argument(axis, chosen, rejected, evidence):
    made = make_axis_rejection(json.dumps(chosen, indent=2), axis, TASK)
    assert made == (TASK.render_answer(chosen), json.dumps(rejected), evidence)


def test_wrong_arguments_needs_a_task_with_tools():
    from datagen.tasks.text_to_sql import TASK as SQL

    with pytest.raises(NoRejection, match="wrong_arguments: the task declares no tools"):
        make_axis_rejection('{"sql": "SELECT 1"}', "wrong_arguments", SQL)


# Exports and what the model sees

@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    sft = Example(task="shop_assistant", prompt=PROMPT, source="test", run_id="r", response=REFUND_TEXT)
    pair = PreferencePair(task="shop_assistant", prompt=PROMPT, chosen=REFUND_TEXT,
                          rejected="Sure! Here is the answer:\n\n" + REFUND_TEXT, strategy="axis_targeted",
                          evidence="e", source="test", run_id="r")
    write_exports(folder, [sft], [pair], TASK)
    return folder


def test_trl_sft_rows_carry_the_tools_and_the_answer_as_a_tool_call(export):
    (row,) = read_jsonl(export / SFT_FILE)
    assert row["messages"] == [
        {"role": "system", "content": TRAINED_SYSTEM_PROMPT, "tool_calls": None},
        {"role": "user", "content": PROMPT, "tool_calls": None},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
            "name": "issue_refund", "arguments": '{"order_id": "MB-77310", "amount": 39.9, "reason": "damaged"}'}}]},
    ]
    assert json.loads(row["tools"]) == list(TOOLS)
    assert message_text(row["messages"][2]) == REFUND_TEXT


def test_trl_dpo_rows_call_on_the_side_that_is_a_call_and_keep_text_on_the_other(export):
    (row,) = read_jsonl(export / DPO_FILE)
    assert [message["content"] for message in row["prompt"]] == [TRAINED_SYSTEM_PROMPT, PROMPT]
    assert row["chosen"][0]["tool_calls"][0]["function"]["name"] == "issue_refund"
    assert row["rejected"] == [{"role": "assistant", "content": "Sure! Here is the answer:\n\n" + REFUND_TEXT,
                                "tool_calls": None}]
    assert json.loads(row["tools"]) == list(TOOLS)


def test_alpaca_and_sharegpt_rows_list_the_tools_in_their_system_text(export):
    (alpaca,) = read_jsonl(export / ALPACA_FILE)
    (sharegpt,) = read_jsonl(export / SHAREGPT_FILE)
    listed = system_with_tools(TRAINED_SYSTEM_PROMPT, TOOLS)
    assert (alpaca["instruction"], alpaca["output"]) == (listed, REFUND_TEXT)
    assert [turn["value"] for turn in sharegpt["conversations"]] == [listed, PROMPT, REFUND_TEXT]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    pin_chat_template(tokenizer, with_tools=True)
    return tokenizer


def test_the_template_renders_a_rows_tools_and_call_as_the_text_other_models_see(tokenizer):
    row = {"messages": [
        {"role": "system", "content": "Call a tool."}, {"role": "user", "content": "Weather in Köln?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "weather", "arguments": '{"city": "K\\u00f6ln"}'}}]}],
        "tools": json.dumps([WEATHER])}
    rendered = tokenizer.apply_chat_template(row["messages"], tools=json.loads(row["tools"]), tokenize=False)
    assert rendered == (f"<|im_start|>system\n{WEATHER_SYSTEM}<|im_end|>\n"
                        "<|im_start|>user\nWeather in Köln?<|im_end|>\n"
                        '<|im_start|>assistant\n{"name": "weather", "arguments": {"city": "K\\u00f6ln"}}<|im_end|>\n')
    # The call and its end of turn are supervised, nothing else.
    tokens = tokenizer.apply_chat_template(row["messages"], tools=[WEATHER], return_dict=True,
                                           return_assistant_tokens_mask=True)
    assert check_loss_masks(tokenizer, [row], [tokens])["rows"] == 1


def test_a_training_template_that_drops_tools_is_refused(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    pin_chat_template(tokenizer)  # a task without tools needs no tools rendered
    ignoring_tools = CHATML_TRAINING_TEMPLATE.replace("{% if tools %}", "{% if false %}")
    with pytest.raises(ChatTemplateError, match="renders tools and tool calls differently"):
        pin_chat_template(AutoTokenizer.from_pretrained(tiny_model), ignoring_tools, with_tools=True)
