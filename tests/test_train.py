"""The trainer on literal chats and a random 2-layer Llama: the pinned template, the
loss-mask check, the held-out split, SFT then DPO with the hand-off checked, QLoRA's
early failure without a GPU, and resuming an interrupted run."""

import json
import math
import re

import pytest
import torch
from transformers import AutoTokenizer, TrainerCallback

from datagen.foundation.precision import cpu_has_native_bf16
from train.base_model import QLoRAUnavailable, base_dtype, check_quantization, load_base_model
from train.chat_template import CHATML_TRAINING_TEMPLATE, ChatTemplateError, pin_chat_template
from train.dpo import DPOStageConfig, HandOffCheck, HandOffError, run_dpo
from train.loss_masks import LossMaskError, check_loss_masks, mask_sample, supervised_text
from train.sft import SFTStageConfig, run_sft, set_aside_long_rows, split_held_out

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TWO_TURNS = [
    {"role": "system", "content": "Reply in JSON."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": '{"a": 1}'},
    {"role": "user", "content": "Again"},
    {"role": "assistant", "content": '{"a": 2}'},
]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
           "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
SYSTEM = {"role": "system", "content": "Reply with JSON only."}


def number_chat(n: int) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": f"Number: {NUMBERS[n]}"},
            {"role": "assistant", "content": json.dumps({"n": n})}]


SFT_ROWS = [{"id": f"sft-{n:02d}", "messages": number_chat(n)} for n in range(20)]
PREFERENCE_ROWS = [
    {"id": f"pair-{n:02d}", "prompt": number_chat(n)[:2],
     "chosen": [{"role": "assistant", "content": json.dumps({"n": n})}],
     "rejected": [{"role": "assistant", "content": f"It is {NUMBERS[n]}."}]}
    for n in range(12)
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    pin_chat_template(tokenizer)
    return tokenizer


def tokenized(tokenizer, messages):
    return tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)


# The loss mask


def test_pinned_template_supervises_exactly_each_assistant_answer_and_its_end_of_turn(tokenizer):
    tokens = tokenized(tokenizer, TWO_TURNS)
    assert supervised_text(tokenizer, tokens["input_ids"], tokens["assistant_masks"]) == (
        '{"a": 1}<|im_end|>{"a": 2}<|im_end|>')
    counts = check_loss_masks(tokenizer, [{"id": "chat-1", "messages": TWO_TURNS}], [tokens])
    assert counts == {"rows": 1, "supervised_tokens": 14, "prompt_tokens": 32}


def test_a_supervised_prompt_token_or_an_unsupervised_answer_token_names_the_row(tokenizer):
    tokens = tokenized(tokenizer, TWO_TURNS)
    mask = tokens["assistant_masks"]
    first_answer = mask.index(1)
    prompt_on = mask[:first_answer - 1] + [1] + mask[first_answer:]  # the newline after "assistant"
    answer_off = mask[:first_answer] + [0] + mask[first_answer + 1:]
    rows = [{"id": "chat-1", "messages": TWO_TURNS}]
    for bad in (prompt_on, answer_off):
        with pytest.raises(LossMaskError, match="row chat-1: the supervised tokens are not exactly"):
            check_loss_masks(tokenizer, rows, [{"input_ids": tokens["input_ids"], "assistant_masks": bad}])


def test_a_row_with_no_supervised_token_is_refused(tokenizer):
    tokens = tokenized(tokenizer, TWO_TURNS)
    nothing = {"input_ids": tokens["input_ids"], "assistant_masks": [0] * len(tokens["input_ids"])}
    with pytest.raises(LossMaskError, match="row chat-1 has no supervised token"):
        check_loss_masks(tokenizer, [{"id": "chat-1", "messages": TWO_TURNS}], [nothing])


def test_a_dropped_row_is_refused(tokenizer):
    rows = [{"id": "chat-1", "messages": TWO_TURNS}, {"id": "chat-2", "messages": TWO_TURNS}]
    with pytest.raises(LossMaskError, match="2 chats but 1 tokenized rows"):
        check_loss_masks(tokenizer, rows, [tokenized(tokenizer, TWO_TURNS)])


def test_mask_sample_puts_each_supervised_span_in_guillemets(tokenizer):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}]
    tokens = tokenized(tokenizer, chat)
    assert mask_sample(tokenizer, tokens["input_ids"], tokens["assistant_masks"]) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n«Hello<|im_end|>»\n")


THREE_TURNS = [
    {"role": "system", "content": "Reply in JSON."},
    {"role": "user", "content": "My kettle leaks."},
    {"role": "assistant", "content": '{"category": "damaged_item"}'},
    {"role": "user", "content": "Can a person call me?"},
    {"role": "assistant", "content": '{"needs_human": true}'},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": '{"done": true}'},
]
THREE_TURNS_MASKED = (
    "<|im_start|>system\nReply in JSON.<|im_end|>\n<|im_start|>user\nMy kettle leaks.<|im_end|>\n"
    '<|im_start|>assistant\n«{"category": "damaged_item"}<|im_end|>»\n'
    "<|im_start|>user\nCan a person call me?<|im_end|>\n"
    '<|im_start|>assistant\n«{"needs_human": true}<|im_end|>»\n'
    "<|im_start|>user\nThanks!<|im_end|>\n"
    '<|im_start|>assistant\n«{"done": true}<|im_end|>»\n')


def test_every_assistant_turn_of_a_three_turn_chat_is_supervised_and_no_system_or_user_token(tokenizer):
    tokens = tokenized(tokenizer, THREE_TURNS)
    assert mask_sample(tokenizer, tokens["input_ids"], tokens["assistant_masks"]) == THREE_TURNS_MASKED
    assert check_loss_masks(tokenizer, [{"id": "talk", "messages": THREE_TURNS}], [tokens])["rows"] == 1


def test_sfts_own_tokenization_supervises_every_assistant_turn_of_a_conversation(tiny_model, tmp_path):
    samples = []
    rows = [{"id": f"talk-{n}", "messages": THREE_TURNS[:5] + [{"role": "user", "content": f"Number: {NUMBERS[n]}"},
                                                               {"role": "assistant", "content": json.dumps({"n": n})}]}
            for n in range(4)]
    config = SFTStageConfig(max_steps=1, batch_size=4, max_length=128, eval_share=0, save_steps=10)
    result = run_sft(config, tiny_model, rows, tmp_path / "sft", on_mask_sample=samples.append)
    # run_sft checked every row's mask against its assistant turns before the step: here, the shown one.
    assert samples == [THREE_TURNS_MASKED.split("<|im_start|>user\nThanks!")[0]
                       + '<|im_start|>user\nNumber: zero<|im_end|>\n<|im_start|>assistant\n«{"n": 0}<|im_end|>»\n']
    assert (result["mask"]["rows"], result["steps"]) == (4, 1)


# The pinned chat template


def test_pinned_template_renders_like_smollm2s_own(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert "{% generation %}" not in tokenizer.chat_template
    assert pin_chat_template(tokenizer) == CHATML_TRAINING_TEMPLATE
    assert tokenizer.chat_template == CHATML_TRAINING_TEMPLATE


def test_a_template_missing_one_newline_is_refused(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    own = tokenizer.chat_template
    newline_after_answer = "{% endgeneration %}{{ '\n' }}"
    assert CHATML_TRAINING_TEMPLATE.count(newline_after_answer) == 1
    no_newline = CHATML_TRAINING_TEMPLATE.replace(newline_after_answer, "{% endgeneration %}")
    with pytest.raises(ChatTemplateError, match="renders differently from the base model's own"):
        pin_chat_template(tokenizer, no_newline)
    assert tokenizer.chat_template == own


def test_a_tokenizer_without_a_chat_template_is_refused(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = None
    with pytest.raises(ChatTemplateError, match="has no chat template"):
        pin_chat_template(tokenizer)


# Rows before training


def test_held_out_split_depends_on_ids_only():
    train, held_out = split_held_out(SFT_ROWS, 0.1)
    assert [row["id"] for row in held_out] == ["sft-09"]  # the one id whose hash falls under 0.1
    assert train == [row for row in SFT_ROWS if row["id"] != "sft-09"]
    reversed_train, reversed_held_out = split_held_out(SFT_ROWS[::-1], 0.1)
    assert (reversed_train, reversed_held_out) == (train[::-1], held_out)
    assert split_held_out(SFT_ROWS[:10], 0.1)[1] == held_out
    assert split_held_out(SFT_ROWS, 0.0) == (SFT_ROWS, [])


def test_held_out_split_takes_the_lowest_hash_when_none_falls_under_the_share():
    # sft-10..19 hash above 0.1; sft-16's is the lowest (0.106).
    assert [row["id"] for row in split_held_out(SFT_ROWS[10:], 0.1)[1]] == ["sft-16"]


def test_a_row_over_max_length_is_set_aside_with_its_length(tokenizer):
    short = {"id": "short", "messages": number_chat(3)}
    long = {"id": "long", "messages": number_chat(3)[:2] + [{"role": "assistant", "content": "word " * 40}]}
    kept, aside = set_aside_long_rows(tokenizer, [short, long], max_length=40)
    assert kept == [short]
    assert aside == [{"id": "long", "reason": "too_long: 66 > 40 tokens"}]


# SFT, then DPO from its adapter


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """SFT on the tiny JSON task, then DPO from its adapter; both results and folders."""
    root = tmp_path_factory.mktemp("train")
    samples = []
    sft_config = SFTStageConfig(learning_rate=1e-2, epochs=2, batch_size=4, max_length=64, eval_share=0.1)
    sft = run_sft(sft_config, tiny_model, SFT_ROWS[:16], root / "sft", on_mask_sample=samples.append)
    dpo_config = DPOStageConfig(epochs=1, batch_size=4, max_length=64)
    dpo = run_dpo(dpo_config, tiny_model, root / "sft" / "adapter", PREFERENCE_ROWS, root / "dpo")
    return {"root": root, "sft": sft, "dpo": dpo, "mask_samples": samples}


@pytest.mark.slow
def test_sft_lowers_the_loss_reports_eval_loss_and_changes_every_adapter_tensor(trained):
    sft = trained["sft"]
    assert sft["rows"] == {"train": 15, "held_out": 1, "set_aside": []}  # sft-09 held out
    assert sft["steps"] == 8
    assert sft["last_loss"] < sft["first_loss"]
    assert len(sft["eval_losses"]) == 2  # one per epoch, on the held-out row
    assert sft["eval_losses"][1] < sft["eval_losses"][0]
    assert sft["adapter_tensors"] == 2 * 2 * 7  # A and B of 7 linear layers in each of 2 blocks
    assert sft["adapter_tensors_changed"] == sft["adapter_tensors"]
    assert sft["mask"]["rows"] == 15
    assert json.loads((trained["root"] / "sft" / "result.json").read_text()) == sft


@pytest.mark.slow
def test_sft_shows_the_first_rows_mask(trained):
    assert trained["mask_samples"] == [(
        "<|im_start|>system\nReply with JSON only.<|im_end|>\n<|im_start|>user\nNumber: zero<|im_end|>\n"
        '<|im_start|>assistant\n«{"n": 0}<|im_end|>»\n')]


@pytest.mark.slow
def test_sft_adapter_folder_carries_the_pinned_template(trained):
    adapter = trained["root"] / "sft" / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "chat_template.jinja"} <= {
        path.name for path in adapter.iterdir()}
    assert (adapter / "chat_template.jinja").read_text() == CHATML_TRAINING_TEMPLATE


@pytest.mark.slow
def test_dpo_starts_at_ln2_with_zero_rewards_and_changes_the_adapter(trained):
    dpo = trained["dpo"]
    first = dpo["first_step"]
    assert abs(first["loss"] - math.log(2)) < 1e-4
    assert (first["rewards/chosen"], first["rewards/rejected"], first["rewards/margins"]) == (0.0, 0.0, 0.0)
    assert dpo["steps"] == 3
    assert dpo["adapter_tensors"] == 2 * 2 * 7
    assert dpo["adapter_tensors_changed"] == dpo["adapter_tensors"]
    adapter = trained["root"] / "dpo" / "adapter"
    assert (adapter / "chat_template.jinja").read_text() == CHATML_TRAINING_TEMPLATE


@pytest.mark.slow
def test_dpo_adapter_loads_on_the_base_and_generates(trained, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = trained["root"] / "dpo" / "adapter"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(adapter))
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    inputs = tokenizer.apply_chat_template(number_chat(5)[:2], add_generation_prompt=True, return_dict=True,
                                           return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 4


@pytest.mark.slow
def test_dpo_against_a_different_reference_stops_at_the_first_step(trained, tiny_model, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(1)
    stranger = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_model))
    with pytest.raises(HandOffError, match=r"rewards/chosen -?\d\.\d{4}, expected 0"):
        run_dpo(DPOStageConfig(batch_size=2, max_length=64), tiny_model, trained["root"] / "sft" / "adapter",
                PREFERENCE_ROWS, tmp_path / "dpo", ref_model=stranger)
    assert not (tmp_path / "dpo" / "result.json").exists()


# The hand-off check on its own


def first_log(check: HandOffCheck, logs: dict) -> None:
    check.on_log(args=None, state=None, control=None, logs=logs)


def test_hand_off_check_passes_ln2_with_zero_rewards_and_reads_only_the_first_step():
    check = HandOffCheck(math.log(2), 0.02)
    first_log(check, {"learning_rate": 0.0})  # not a training step: no loss
    logs = {"loss": 0.6931, "rewards/chosen": 0.0, "rewards/rejected": 0.0, "rewards/margins": 0.0}
    first_log(check, logs)
    assert check.first == logs
    first_log(check, {"loss": 0.1, "rewards/chosen": 3.0})  # later steps move, as they should


@pytest.mark.parametrize("logs, named", [
    ({"loss": 0.5, "rewards/chosen": 0.0, "rewards/rejected": 0.0, "rewards/margins": 0.0},
     "loss 0.5000, expected 0.6931"),
    ({"loss": 0.6931, "rewards/chosen": 0.3, "rewards/rejected": 0.3, "rewards/margins": 0.0},
     "rewards/chosen 0.3000, expected 0"),
])
def test_hand_off_check_stops_on_a_loss_or_reward_off_zero(logs, named):
    with pytest.raises(HandOffError, match=re.escape(named)):
        first_log(HandOffCheck(math.log(2), 0.02), logs)


def test_expected_first_loss_per_loss_type():
    assert DPOStageConfig().expected_first_loss() == math.log(2)
    assert DPOStageConfig(loss_type="hinge").expected_first_loss() == 1.0
    assert DPOStageConfig(loss_type="ipo", beta=0.5).expected_first_loss() == 1.0
    assert DPOStageConfig(loss_type="ipo", beta=0.1).expected_first_loss() == pytest.approx(25.0)
    assert DPOStageConfig(loss_type="robust").expected_first_loss() is None


def test_an_unknown_loss_type_is_refused():
    with pytest.raises(ValueError, match="loss_type 'sigmoidal' is not one of TRL's"):
        DPOStageConfig(loss_type="sigmoidal")


# QLoRA without a GPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="QLoRA runs where there is CUDA")
def test_qlora_without_cuda_fails_before_training(tiny_model, tmp_path):
    with pytest.raises(QLoRAUnavailable, match="needs a CUDA GPU"):
        check_quantization("qlora")
    check_quantization("none")
    with pytest.raises(QLoRAUnavailable):
        run_sft(SFTStageConfig(batch_size=4, max_length=64), tiny_model, SFT_ROWS, tmp_path / "sft",
                quantization="qlora")
    assert not (tmp_path / "sft" / "checkpoints").exists()


# Resuming


class Interrupted(Exception):
    pass


class InterruptAtStep(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupted(f"stopped at step {state.global_step}")


class RecordSteps(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


@pytest.mark.slow
def test_an_interrupted_sft_run_resumes_from_its_last_checkpoint(tiny_model, tmp_path):
    config = SFTStageConfig(epochs=1, batch_size=2, max_length=64, eval_share=0, save_steps=1)
    rows = SFT_ROWS[:8]
    # on_step_end runs before that step's checkpoint is saved: stopping in step 3 leaves checkpoint-2.
    with pytest.raises(Interrupted):
        run_sft(config, tiny_model, rows, tmp_path, callbacks=[InterruptAtStep(3)])
    assert sorted(path.name for path in (tmp_path / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-1", "checkpoint-2"]
    assert not (tmp_path / "result.json").exists()

    steps = RecordSteps()
    result = run_sft(config, tiny_model, rows, tmp_path, callbacks=[steps])
    assert steps.steps == [3, 4]
    assert result["steps"] == 4
    assert (tmp_path / "result.json").exists()


# Precision


class RecordDtypes(TrainerCallback):
    """The dtypes of the base model's weights and of the trainable ones when training begins
    (DPO also holds a frozen copy of the SFT adapter as its reference: LoRA, not base)."""

    def __init__(self):
        self.base: set[torch.dtype] = set()
        self.trainable: set[torch.dtype] = set()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        for name, param in model.named_parameters():
            if param.requires_grad:
                self.trainable.add(param.dtype)
            elif "lora_" not in name:
                self.base.add(param.dtype)


def test_auto_precision_is_bf16_where_the_hardware_has_bf16_units_and_qlora_refuses_fp32(tmp_path):
    native = torch.cuda.is_available() or cpu_has_native_bf16()
    assert base_dtype("auto") == (torch.bfloat16 if native else torch.float32)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(cpuinfo)  # AVX-512 alone emulates bf16: fp32 is faster there
    for flag in ("avx512_bf16", "amx_bf16"):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu avx512f {flag} avx512_vnni\n")
        assert cpu_has_native_bf16(cpuinfo)
    assert not cpu_has_native_bf16(tmp_path / "missing")
    assert (base_dtype("float32"), base_dtype("bfloat16")) == (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="QLoRA computes in bf16"):
        load_base_model("unused", "qlora", "float32")


@pytest.mark.slow
def test_sft_and_dpo_train_a_bf16_base_with_fp32_lora_weights(tiny_model, tmp_path):
    """dtype: bfloat16 loads the frozen base in bf16 (not autocast); the adapter and its
    updates stay fp32; SFT still lowers the loss and DPO still starts at ln 2."""
    sft_dtypes, dpo_dtypes = RecordDtypes(), RecordDtypes()
    sft = run_sft(SFTStageConfig(learning_rate=1e-2, epochs=2, batch_size=4, max_length=64, eval_share=0,
                                 dtype="bfloat16"),
                  tiny_model, SFT_ROWS[:16], tmp_path / "sft", callbacks=[sft_dtypes])
    assert (sft_dtypes.base, sft_dtypes.trainable) == ({torch.bfloat16}, {torch.float32})
    assert sft["last_loss"] < sft["first_loss"]
    assert sft["adapter_tensors_changed"] == sft["adapter_tensors"] == 2 * 2 * 7

    dpo = run_dpo(DPOStageConfig(epochs=1, batch_size=4, max_length=64, dtype="bfloat16"), tiny_model,
                  tmp_path / "sft" / "adapter", PREFERENCE_ROWS, tmp_path / "dpo", callbacks=[dpo_dtypes])
    assert (dpo_dtypes.base, dpo_dtypes.trainable) == ({torch.bfloat16}, {torch.float32})
    assert abs(dpo["first_step"]["loss"] - math.log(2)) < 1e-4
    assert dpo["adapter_tensors_changed"] == dpo["adapter_tensors"]
