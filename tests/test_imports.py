import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Literal

import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from datagen.exports.formats import write_exports
from datagen.foundation.records import Example, PreferencePair, Turn
from datagen.foundation.row_files import RowFileError
from datagen.foundation.task import Task
from datagen.generation.imports import ImportConfig, ImportReject, import_file


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Literal["billing", "shipping"]


SYSTEM = "Classify the ticket."
TASK = Task(
    name="toy", version="1", answer_schema=Label, system_prompt=SYSTEM, few_shot=(),
    generate=lambda count, seed: [], compare=lambda answer, reference: [],
)
BILLING = '{"category": "billing"}'
SHIPPING = '{"category": "shipping"}'


def write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def source_of(path: Path) -> str:
    return f"import:{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def load(path: Path, kind: str, **options):
    return import_file(ImportConfig(path=path, kind=kind, **options), TASK, "run-1")


def example(path: Path, prompt: str, response: str | None = None, reference: str | None = None) -> Example:
    return Example(task="toy", prompt=prompt, response=response, reference=reference,
                   source=source_of(path), run_id="run-1")


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def turn(speaker: str, value: str) -> dict:
    return {"from": speaker, "value": value}


def rejected(path: Path, kind: str, row: dict, **options) -> list[str]:
    """The reasons given for one JSONL row."""
    result = load(write(path, [row]), kind, **options)
    assert result.examples == [] and result.pairs == []
    return [r.reason for r in result.rejects]


# ---- each layout, as JSONL and parquet ------------------------------------------------


CHATS = {
    "trl": [
        {"messages": [msg("system", SYSTEM), msg("user", "Charged twice"), msg("assistant", BILLING)]},
        {"messages": [msg("user", "Parcel late"), msg("assistant", SHIPPING)]},
    ],
    "sharegpt": [
        {"conversations": [turn("system", SYSTEM), turn("human", "Charged twice"), turn("gpt", BILLING)]},
        {"conversations": [turn("human", "Parcel late"), turn("gpt", SHIPPING)]},
    ],
}


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("layout", ["trl", "sharegpt"])
def test_single_turn_chats_become_sft_examples(tmp_path, layout, suffix):
    path = write(tmp_path / f"chats{suffix}", CHATS[layout])
    result = load(path, "sft")
    assert result.layout == layout
    assert result.examples == [example(path, "Charged twice", BILLING), example(path, "Parcel late", SHIPPING)]
    assert result.examples[0].template_id is None and result.examples[0].seed is None
    assert result.rejects == []


HISTORY = (Turn("user", "Charged twice"), Turn("assistant", BILLING))
CONVERSATIONS = {
    "trl": {"messages": [msg("system", SYSTEM), msg("user", "Charged twice"), msg("assistant", BILLING),
                         msg("user", "And the parcel is late"), msg("assistant", SHIPPING)]},
    "sharegpt": {"conversations": [turn("human", "Charged twice"), turn("gpt", BILLING),
                                   turn("human", "And the parcel is late"), turn("gpt", SHIPPING)]},
    "alpaca": {"instruction": SYSTEM, "input": "And the parcel is late", "output": SHIPPING,
               "history": [["Charged twice", BILLING]]},
}


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("layout", ["trl", "sharegpt", "alpaca"])
def test_a_conversation_is_one_example_its_last_user_turn_the_prompt(tmp_path, layout, suffix):
    path = write(tmp_path / f"chats{suffix}", [CONVERSATIONS[layout]])
    sft, prompts = load(path, "sft"), load(path, "prompts")
    assert (sft.layout, sft.rejects, prompts.rejects) == (layout, [], [])
    (row,) = sft.examples
    assert row == Example(task="toy", prompt="And the parcel is late", response=SHIPPING, source=source_of(path),
                          run_id="run-1", context=HISTORY)
    assert row.id != example(path, "And the parcel is late", SHIPPING).id  # the history is content
    # A prompt row keeps its history; the teacher answers its last turn.
    assert prompts.examples == [dataclasses.replace(row, response=None)]
    assert [r.context for r in sft.prompts_and_answers()] == [HISTORY, HISTORY]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_preference_rows_shared_history_is_the_pairs_context(tmp_path, suffix):
    path = write(tmp_path / f"dpo{suffix}", [{
        "prompt": [msg("system", SYSTEM), msg("user", "Charged twice"), msg("assistant", BILLING),
                   msg("user", "And the parcel is late")],
        "chosen": [msg("assistant", SHIPPING)], "rejected": [msg("assistant", BILLING)],
    }])
    assert load(path, "preference").pairs == [
        PreferencePair(task="toy", prompt="And the parcel is late", chosen=SHIPPING, rejected=BILLING,
                       strategy="import", evidence=f"imported from dpo{suffix}", source=source_of(path),
                       run_id="run-1", context=HISTORY)]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_alpaca_puts_the_input_below_the_instruction(tmp_path, suffix):
    path = write(tmp_path / f"alpaca{suffix}", [
        {"instruction": "Which team handles this?", "input": "Charged twice", "output": BILLING},
        {"instruction": "Which team handles a late parcel?", "input": "", "output": SHIPPING},
        # crucible's own export: the instruction is the task's system prompt
        {"instruction": SYSTEM, "input": "Parcel late", "output": SHIPPING},
    ])
    result = load(path, "sft")
    assert result.layout == "alpaca"
    assert result.examples == [
        example(path, "Which team handles this?\n\nCharged twice", BILLING),
        example(path, "Which team handles a late parcel?", SHIPPING),
        example(path, "Parcel late", SHIPPING),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_plain_prompts_keep_their_reference(tmp_path, suffix):
    path = write(tmp_path / f"plain{suffix}", [
        {"prompt": "Charged twice", "reference": BILLING},
        {"prompt": "Hello?", "reference": None},
    ])
    result = load(path, "prompts")
    assert result.layout == "plain"
    assert result.examples == [
        example(path, "Charged twice", reference='{"category":"billing"}'),
        example(path, "Hello?"),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_trl_preference_rows_become_imported_pairs(tmp_path, suffix):
    conversational = write(tmp_path / f"dpo{suffix}", [{
        "prompt": [msg("system", SYSTEM), msg("user", "Charged twice")],
        "chosen": [msg("assistant", BILLING)],
        "rejected": [msg("assistant", SHIPPING)],
    }])
    standard = write(tmp_path / f"dpo-text{suffix}", [
        {"prompt": "Parcel late", "chosen": SHIPPING, "rejected": BILLING},
    ])
    imported = load(conversational, "preference").pairs + load(standard, "preference").pairs
    assert imported == [
        PreferencePair(task="toy", prompt="Charged twice", chosen=BILLING, rejected=SHIPPING, strategy="import",
                       evidence=f"imported from dpo{suffix}", source=source_of(conversational), run_id="run-1"),
        PreferencePair(task="toy", prompt="Parcel late", chosen=SHIPPING, rejected=BILLING, strategy="import",
                       evidence=f"imported from dpo-text{suffix}", source=source_of(standard), run_id="run-1"),
    ]


# ---- layout detection --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "row", "layout"),
    [
        ("prompts", {"messages": [msg("user", "Hi")]}, "trl"),
        ("prompts", {"instruction": "Hi"}, "alpaca"),
        ("prompts", {"conversations": [turn("human", "Hi")]}, "sharegpt"),
        ("prompts", {"prompt": "Hi", "id": "7"}, "plain"),
        ("preference", {"prompt": "Hi", "chosen": "a", "rejected": "b"}, "trl"),
    ],
)
def test_auto_detection_says_which_layout_it_chose(tmp_path, kind, row, layout):
    assert load(write(tmp_path / "rows.jsonl", [row]), kind).layout == layout


def test_the_layout_is_detected_from_the_first_row_that_is_an_object(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('not json\n{"prompt": "Hi"}\n')
    result = load(path, "prompts")
    assert (result.layout, result.examples) == ("plain", [example(path, "Hi")])
    assert result.rejects == [ImportReject(1, "not json", "invalid_json: Expecting value at column 1")]


def test_ambiguous_or_unknown_keys_stop_the_import_naming_the_file_and_keys(tmp_path):
    both = write(tmp_path / "both.jsonl", [{"messages": [], "instruction": "Hi"}])
    with pytest.raises(RowFileError) as error:
        load(both, "sft")
    assert str(error.value) == (
        f"{both}: line 1: keys instruction, messages fit several layouts (trl, alpaca): set `layout`"
    )
    neither = write(tmp_path / "neither.parquet", [{"text": "Hi", "label": 1}])
    with pytest.raises(RowFileError) as error:
        load(neither, "sft")
    assert str(error.value) == (
        f"{neither}: row 0: no layout fits keys label, text: expected messages (trl), "
        "instruction (alpaca), conversations (sharegpt) or prompt (plain)"
    )
    chats = write(tmp_path / "chats.jsonl", [{"messages": [msg("user", "Hi")]}])
    with pytest.raises(RowFileError) as error:
        load(chats, "preference")
    assert str(error.value) == (
        f"{chats}: line 1: no preference layout fits keys messages: "
        "the trl layout needs prompt, chosen and rejected"
    )


def test_a_given_layout_is_not_second_guessed(tmp_path):
    path = write(tmp_path / "rows.jsonl", [{"messages": [msg("user", "Hi")], "prompt": "Other"}])
    assert load(path, "prompts", layout="plain").examples == [example(path, "Other")]


# ---- crucible's own exports read back ------------------------------------------------


def test_crucible_exports_read_back_to_the_same_rows(tmp_path):
    sft = [
        Example(task="toy", prompt="Charged twice", response=BILLING, source="gen@1", run_id="r0"),
        Example(task="toy", prompt="Parcel late\nsince Monday", response=SHIPPING, source="gen@1", run_id="r0"),
    ]
    pairs = [PreferencePair(task="toy", prompt="Charged twice", chosen=BILLING, rejected=SHIPPING,
                            strategy="verifier_ranked", evidence="e", source="s", run_id="r0")]
    write_exports(tmp_path, sft, pairs, TASK)
    sft_files = ["trl_sft/train.jsonl", "trl_sft_parquet/train.parquet", "alpaca/train.jsonl", "sharegpt/train.jsonl"]
    for file in sft_files:
        result = load(tmp_path / file, "sft")
        assert (result.rejects, [e.id for e in result.examples]) == ([], [e.id for e in sft]), file
        assert [(e.prompt, e.response) for e in result.examples] == [(e.prompt, e.response) for e in sft]
    for file in ["trl_dpo/train.jsonl", "trl_dpo_parquet/train.parquet"]:
        result = load(tmp_path / file, "preference")
        assert (result.rejects, [p.id for p in result.pairs]) == ([], [p.id for p in pairs]), file


def test_crucible_exports_of_conversations_read_back_to_the_same_rows(tmp_path):
    longer = HISTORY + (Turn("user", "And the parcel is late"), Turn("assistant", SHIPPING))
    sft = [
        Example(task="toy", prompt="Charged twice", response=BILLING, source="gen@1", run_id="r0"),
        Example(task="toy", prompt="And the parcel is late", response=SHIPPING, source="gen@1", run_id="r0",
                context=HISTORY),
        Example(task="toy", prompt="Both, then", response=BILLING, source="gen@1", run_id="r0", context=longer),
    ]
    pairs = [PreferencePair(task="toy", prompt="And the parcel is late", chosen=SHIPPING, rejected=BILLING,
                            strategy="verifier_ranked", evidence="e", source="s", run_id="r0", context=HISTORY)]
    write_exports(tmp_path, sft, pairs, TASK)
    for file in ["trl_sft/train.jsonl", "trl_sft_parquet/train.parquet", "alpaca/train.jsonl", "sharegpt/train.jsonl"]:
        result = load(tmp_path / file, "sft")
        assert (result.rejects, [e.id for e in result.examples]) == ([], [e.id for e in sft]), file
    for file in ["trl_dpo/train.jsonl", "trl_dpo_parquet/train.parquet"]:
        result = load(tmp_path / file, "preference")
        assert (result.rejects, [p.id for p in result.pairs]) == ([], [p.id for p in pairs]), file


# ---- bad rows are kept aside with their reason -----------------------------------------


def test_broken_lines_are_reported_by_line_number_and_the_rest_imported(tmp_path):
    lines = [
        b'{"prompt": "Charged twice", "response": "{\\"category\\": \\"billing\\"}"}',
        b'{"prompt": "Parcel late", ',
        b'["prompt", "Hi"]',
        b'{"response": "x"}',
        b'{"prompt": 5, "response": "x"}',
        b'{"prompt": "  ", "response": "x"}',
        b"",
        b'{"prompt": "No answer"}',
        b'{"prompt": "Refund", "response": ""}',
        b'{"prompt": "caf\xe9"}',
        b'{"prompt": "Parcel late", "response": "{\\"category\\": \\"shipping\\"}"}',
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = load(path, "sft")
    assert result.examples == [example(path, "Charged twice", BILLING), example(path, "Parcel late", SHIPPING)]
    assert result.rejects == [
        ImportReject(
            2, '{"prompt": "Parcel late", ',
            "invalid_json: Expecting property name enclosed in double quotes at column 27",
        ),
        ImportReject(3, '["prompt", "Hi"]', "not_an_object: line is a JSON array"),
        ImportReject(4, '{"response": "x"}', "missing_field: prompt"),
        ImportReject(5, '{"prompt": 5, "response": "x"}', "wrong_type: prompt is number, expected string"),
        ImportReject(6, '{"prompt": "  ", "response": "x"}', "empty_field: prompt"),
        ImportReject(8, '{"prompt": "No answer"}', "missing_field: response"),
        ImportReject(9, '{"prompt": "Refund", "response": ""}', "empty_field: response"),
        ImportReject(10, '{"prompt": "caf\ufffd"}', "invalid_utf8: at byte 16"),
    ]


def test_a_parquet_row_that_does_not_fit_is_kept_aside_with_its_row_index(tmp_path):
    path = tmp_path / "rows.parquet"
    pl.DataFrame(
        {"prompt": ["Charged twice", None, "Parcel late"], "response": [BILLING, "x", None]},
        schema={"prompt": pl.String, "response": pl.String},
    ).write_parquet(path)
    result = load(path, "sft")
    assert result.examples == [example(path, "Charged twice", BILLING)]
    assert result.rejects == [
        ImportReject(1, '{"prompt": null, "response": "x"}', "missing_field: prompt"),
        ImportReject(2, '{"prompt": "Parcel late", "response": null}', "missing_field: response"),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"messages": [msg("user", "a")]}, "missing_turn: messages has no assistant turn after its last user turn"),
        ({"messages": [msg("user", "a"), msg("assistant", "b"), msg("user", "c")]},
         "missing_turn: messages has no assistant turn after its last user turn"),
        ({"messages": [msg("assistant", "b")]}, "missing_turn: messages has no user turn"),
        ({"messages": [msg("user", "a"), msg("system", SYSTEM), msg("assistant", "b")]},
         "turn_order: messages is user, system, assistant; expected [system,] user[, assistant, user ...]"
         "[, assistant]"),
        ({"messages": [msg("user", "a"), msg("user", "b"), msg("assistant", "c")]},
         "turn_order: messages is user, user, assistant; expected [system,] user[, assistant, user ...][, assistant]"),
        ({"conversations": [turn("human", "a"), turn("gpt", "b"), turn("gpt", "c"), turn("human", "d"),
                            turn("gpt", "e")]},
         "turn_order: conversations is user, assistant, assistant, user, assistant; expected [system,] user[, "
         "assistant, user ...][, assistant]"),
        ({"messages": [msg("system", SYSTEM), msg("user", "a"), msg("assistant", " "), msg("user", "c"),
                       msg("assistant", "d")]}, "empty_field: messages[2]"),
        ({"instruction": SYSTEM, "input": "c", "output": "d", "history": [["a"]]},
         "wrong_type: history[0] is not a [user, assistant] pair of strings"),
        ({"messages": [msg("user", "a"), msg("tool", "b")]},
         "unknown_role: messages[1].role is 'tool', expected one of system, user, assistant"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]},
         "wrong_type: messages[0].content is array, expected string"),
        ({"messages": "a"}, "wrong_type: messages is string, expected array"),
        ({"conversations": [turn("human", "a"), {"from": "gpt"}]}, "missing_field: conversations[1].value"),
        ({"instruction": "Classify", "input": "a"}, "missing_field: output"),
        ({"messages": [msg("system", "You are a helpful assistant."), msg("user", "a"), msg("assistant", "b")]},
         "system_mismatch: 'You are a helpful assistant.' is not the task's system prompt"),
    ],
)
def test_rows_crucible_cannot_train_on_are_rejected_with_a_reason(tmp_path, row, reason):
    assert rejected(tmp_path / "rows.jsonl", "sft", row) == [reason]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"prompt": "a", "chosen": [msg("assistant", "b"), msg("assistant", "c")], "rejected": "d"},
         "multi_turn: chosen is assistant, assistant; expected one assistant message"),
        ({"prompt": "a", "chosen": "b", "rejected": [msg("user", "c")]},
         "turn_order: rejected is user; expected one assistant message"),
        ({"prompt": [msg("user", "a"), msg("assistant", "b")], "chosen": "b", "rejected": "c"},
         "turn_order: prompt ends with an assistant turn; the answers belong in chosen and rejected"),
        ({"prompt": [msg("user", "a"), msg("user", "b")], "chosen": "c", "rejected": "d"},
         "turn_order: prompt is user, user; expected [system,] user[, assistant, user ...][, assistant]"),
        ({"prompt": "a", "chosen": "b", "rejected": "b"},
         "same_answers: chosen and rejected are equal; the pair teaches nothing"),
        ({"prompt": "a", "chosen": " ", "rejected": "b"}, "empty_field: chosen"),
    ],
)
def test_preference_rows_that_do_not_fit_are_rejected_with_a_reason(tmp_path, row, reason):
    assert rejected(tmp_path / "rows.jsonl", "preference", row) == [reason]


def test_drop_accepts_a_foreign_system_turn_and_trains_under_the_tasks(tmp_path):
    path = write(tmp_path / "rows.jsonl", [
        {"messages": [msg("system", "You are helpful."), msg("user", "a"), msg("assistant", BILLING)]},
    ])
    assert load(path, "sft", system_turn="drop").examples == [example(path, "a", BILLING)]


def test_prompts_do_not_read_the_answers_a_row_carries(tmp_path):
    path = write(tmp_path / "rows.jsonl", [
        {"messages": [msg("user", "Charged twice"), msg("assistant", BILLING)]},
        {"messages": [msg("user", "Parcel late")]},
    ])
    result = load(path, "prompts")
    assert result.examples == [example(path, "Charged twice"), example(path, "Parcel late")]


def test_a_reference_field_makes_imported_prompts_verifiable(tmp_path):
    path = write(tmp_path / "rows.jsonl", [
        {"conversations": [turn("human", "Charged twice")], "label": BILLING},
        {"conversations": [turn("human", "Parcel late")], "label": {"category": "shipping"}},
        {"conversations": [turn("human", "Hello?")]},
        {"conversations": [turn("human", "Refund")], "label": '{"category": "refund"}'},
        {"conversations": [turn("human", "Where?")], "label": "shipping"},
    ])
    result = load(path, "prompts", reference_field="label")
    assert result.examples == [
        example(path, "Charged twice", reference='{"category":"billing"}'),
        example(path, "Parcel late", reference='{"category":"shipping"}'),
    ]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (3, "missing_field: label"),
        (4, "reference_invalid: category: Input should be 'billing' or 'shipping'"),
        (5, "reference_invalid: label is not JSON (Expecting value)"),
    ]


# ---- files that cannot be imported at all ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "cannot read: No such file or directory"),
        ("garbage.parquet", "not parquet", "cannot read as parquet: "),  # then polars' own words
        ("rows.csv", "prompt\nHi\n", "cannot import a .csv file; use .jsonl or .parquet"),
        ("empty.jsonl", "\n", "the file is empty: no row to import"),
        ("broken.jsonl", "not json\n",
         "no row is a JSON object to detect the layout from; line 1: invalid_json: Expecting value at column 1"),
    ],
)
def test_unreadable_files_raise_an_error_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(RowFileError) as error:
        load(path, "sft")
    assert str(error.value).startswith(f"{path}: {message}")


def test_an_empty_file_in_a_given_layout_imports_nothing(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    result = load(path, "sft", layout="plain")
    assert (result.examples, result.rejects) == ([], [])


def test_the_config_refuses_what_a_kind_cannot_read():
    with pytest.raises(ValidationError, match="preference rows are read in the trl layout only, not alpaca"):
        ImportConfig(path="p.jsonl", kind="preference", layout="alpaca")
    with pytest.raises(ValidationError, match="reference_field is for prompts and sft rows"):
        ImportConfig(path="p.jsonl", kind="preference", reference_field="label")
    with pytest.raises(ValidationError, match="extra_forbidden"):
        ImportConfig(path="p.jsonl", kind="sft", columns=["prompt"])
