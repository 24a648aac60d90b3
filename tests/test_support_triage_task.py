import json

from datagen.exports.sft_examples import SftSelectionConfig, sft_rows
from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers
from datagen.filters.text_filters import LanguageConfig
from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, Teacher
from datagen.foundation.task import parse_json_answer, schema_errors
from datagen.tasks.support_triage import TASK, TriageAnswer, compare_answer

REFERENCE = {
    "category": "damaged_item",
    "priority": "high",
    "order_id": "A-555123",
    "product": "wireless earbuds",
    "needs_human": True,
    "summary": "Earbuds arrived with a cracked case; customer wants a replacement.",
}


def answer(response: str, sample_index: int = 0, finish_reason: str = "stop", prompt_id: str = "p1") -> Example:
    return Example(
        task="support_triage",
        prompt="The earbuds from order A-555123 arrived cracked.",
        response=response,
        reference=canonical_json(REFERENCE),
        source="test",
        run_id="r",
        teacher=Teacher("http://127.0.0.1:1/v1", "m", "{}", sample_index),
        finish_reason=finish_reason,
        parent_ids=(prompt_id,),
    )


def test_parse_accepts_bare_or_fenced_json_only():
    assert parse_json_answer('{"a": 1}') == {"a": 1}
    assert parse_json_answer('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_answer('Sure! {"a": 1}') is None
    assert parse_json_answer("[1, 2]") is None


def test_schema_names_the_broken_field():
    bad = dict(REFERENCE, priority="medium", summary=" ".join(["word"] * 21))
    errors = schema_errors(TriageAnswer, bad)
    assert errors[0].startswith("priority: Input should be 'low', 'normal', 'high' or 'urgent'")
    assert errors[1] == "summary: Value error, summary has 21 words, at most 20 allowed"
    assert schema_errors(TriageAnswer, dict(REFERENCE, order_id="12345"))[0].startswith("order_id: String should match")
    assert schema_errors(TriageAnswer, REFERENCE) == []


def test_compare_exact_fields_and_lenient_product():
    assert compare_answer(dict(REFERENCE, product="Earbuds"), REFERENCE) == []
    assert compare_answer(dict(REFERENCE, product=None), REFERENCE) == ["product"]
    assert compare_answer(dict(REFERENCE, product="kettle", category="wrong_item", needs_human=False), REFERENCE) == [
        "category", "needs_human", "product"
    ]
    # the summary is free text: a different one is still right
    assert compare_answer(dict(REFERENCE, summary="Cracked earbuds."), REFERENCE) == []


def test_filters_give_one_reason_per_reject_in_order():
    right = json.dumps(REFERENCE)
    answers = [
        answer(right, 0),
        answer(right[:40], 1, finish_reason="length"),
        answer("I think it is damaged.", 2),
        answer(json.dumps(dict(REFERENCE, priority="medium")), 3),
        answer(json.dumps(dict(REFERENCE, category="wrong_item")), 4),
        answer(right + " " * 600, 5),
    ]
    kept, rejected = filter_answers(answers, TASK, AnswerFilterConfig())
    assert kept == [answers[0]]
    assert [reason for _, reason in rejected] == [
        "truncated: hit max_tokens",
        "unparseable: not a single JSON object",
        "schema_invalid: priority: Input should be 'low', 'normal', 'high' or 'urgent'",
        "wrong_fields: category",
        f"too_long: {len(right) + 600} chars > 600",
    ]


def test_sft_fills_unanswered_prompts_with_the_reference_label():
    prompt = Example(task="support_triage", prompt="The earbuds from order A-555123 arrived cracked.",
                     reference=canonical_json(REFERENCE), source="gen", run_id="r", template_id="t/1", seed=4)
    other = Example(task="support_triage", prompt="Where is my parcel?", reference=canonical_json(REFERENCE),
                    source="gen", run_id="r")
    right = answer(json.dumps(REFERENCE), 0, prompt_id=prompt.id)
    rows = sft_rows([right], [prompt, other], TASK, SftSelectionConfig())
    assert rows[0] == right
    assert rows[1].source == "datagen.sft_examples.reference_answer@1"
    assert rows[1].prompt == "Where is my parcel?" and rows[1].parent_ids == (other.id,)
    assert json.loads(rows[1].response) == REFERENCE and rows[1].teacher is None
    assert sft_rows([right], [prompt, other], TASK, SftSelectionConfig(fill_with_references=False)) == [right]


def test_training_messages_have_no_few_shot_but_teacher_messages_do():
    assert [m["role"] for m in TASK.messages("hi", few_shot=False)] == ["system", "user"]
    teacher_chat = TASK.messages("hi", few_shot=True)
    assert len(teacher_chat) == 2 + 2 * len(TASK.few_shot)
    for shot in TASK.few_shot:
        assert schema_errors(TriageAnswer, shot[1]) == []


def test_training_rows_carry_the_short_trained_system_prompt():
    trained = TASK.messages("hi", few_shot=False, trained=True)
    assert trained == [{"role": "system", "content": TASK.trained_system_prompt}, {"role": "user", "content": "hi"}]
    assert len(TASK.trained_system_prompt) < len(TASK.system_prompt) / 2
    assert TASK.system_prompts == (TASK.system_prompt, TASK.trained_system_prompt)  # both accepted on import


def test_every_generated_label_passes_every_answer_filter():
    """The text-quality filters (refusal, repetition, language) must not reject a right
    answer: rendered references of 120 generated tickets all pass."""
    config = AnswerFilterConfig(language=LanguageConfig(expected=["en"]))
    answers = [
        Example(task="support_triage", prompt=g.text, response=TASK.render_answer(g.label),
                reference=canonical_json(g.label), source="test", run_id="r", finish_reason="stop",
                parent_ids=("p",))
        for g in TASK.generate(120, 7)
    ]
    kept, rejected = filter_answers(answers, TASK, config)
    assert rejected == []
