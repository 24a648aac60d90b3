"""On-policy pairs from literal samples: the policy's plausible wrong answer against a
right sample or the label, one rule-governed field preferred; prompts with nothing to
teach dropped with their reason."""

from __future__ import annotations

import json

from datagen.foundation.records import Example, Teacher
from datagen.pairs.on_policy_pairs import on_policy_pairs
from datagen.tasks.support_triage import TASK

LABEL = {"category": "damaged_item", "priority": "high", "order_id": "A-204518", "product": "blender",
         "needs_human": True, "summary": "Blender arrived with a cracked jug."}
POLICY = Teacher(base_url="merged:abc123:vllm", model="abc123", sampling="{}", sample_index=0)


def prompt(text: str) -> Example:
    return Example(task="support_triage", prompt=text, source="test", run_id="r",
                   reference=json.dumps(LABEL, sort_keys=True))


def sample(of: Example, index: int, **changes) -> Example:
    text = changes.pop("text", None) or json.dumps(LABEL | changes)
    return Example(task="support_triage", prompt=of.prompt, response=text, source="on_policy", run_id="r",
                   reference=of.reference, finish_reason="stop", parent_ids=(of.id,),
                   teacher=Teacher(POLICY.base_url, POLICY.model, "{}", index))


def test_one_wrong_rule_field_is_preferred_and_a_right_sample_is_chosen():
    ticket = prompt("My blender A-204518 came with a cracked jug!")
    samples = [sample(ticket, 0, category="wrong_item", priority="low", product="mixer"),
               sample(ticket, 1, priority="normal"),
               sample(ticket, 2),
               sample(ticket, 3, text="Sure! here you go")]
    pairs, dropped = on_policy_pairs([ticket], samples, TASK)
    assert dropped == []
    (pair,) = pairs
    assert json.loads(pair.rejected)["priority"] == "normal" and pair.axis == "one_wrong_field"
    assert pair.chosen == samples[2].response and pair.parent_ids == (samples[2].id, samples[1].id)
    assert pair.strategy == "on_policy" and pair.margin == 1.0
    assert pair.evidence == ("round 1, policy merged:abc123:vllm: rejected is its own sample, wrong on priority; chosen is "
                             "a right sample of the policy; 1 of 4 samples right")


def test_without_a_right_sample_the_label_is_chosen():
    ticket = prompt("Blender jug cracked, order A-204518")
    pairs, _ = on_policy_pairs([ticket], [sample(ticket, 0, needs_human=False)], TASK)
    assert pairs[0].chosen == TASK.render_answer(LABEL) and pairs[0].parent_ids[0] == ticket.id
    assert "chosen is the label; 0 of 1 samples right" in pairs[0].evidence


def test_prompts_with_nothing_to_teach_are_dropped_with_their_reason():
    right, garbled, unasked = prompt("a"), prompt("b"), prompt("c")
    samples = [sample(right, 0), sample(right, 1), sample(garbled, 0, text="not json at all")]
    pairs, dropped = on_policy_pairs([right, garbled, unasked], samples, TASK)
    assert pairs == []
    assert dropped == [(right.id, "all_right: 2 of 2 samples agree with the label"),
                       (garbled.id, "no_plausible_wrong: samples fail on unparseable only"),
                       (unasked.id, "no_samples: the policy was not asked this prompt")]
