"""On-policy preference pairs: the policy's own plausible mistakes against the right answer.

A pair teaches what separates its sides, and a policy learns most from pairs whose
rejected side is something it actually writes (RLHFlow's online iterative DPO, Dong et al.
2024, arXiv:2405.07863; SimPO's on-policy data, Meng et al. 2024, arXiv:2405.14734).
Pairs that reject prose the SFT model no longer writes teach it nothing.

Input: the training prompts with their known label (`reference`), and k samples of the
policy per prompt (`datagen/teacher/on_policy.py`). Each sample is verified by the task's
own filters (`answer_filters.filter_answers`: parse, schema, agreement with the label).
Per prompt:

- `chosen` is a verified sample when the policy got it right at least once, else the
  label rendered by the task (the same layout the SFT rows teach);
- `rejected` is a *plausible* wrong sample: valid JSON of the schema, wrong on named
  fields. Samples wrong in exactly one closed-valued field (an enum or a flag: the fields
  the task's labelling rules decide) are preferred, then fewer wrong fields, then the
  first sample: the pair differs on one rule;
- a prompt where every sample is right is dropped (`all_right`: nothing left to teach),
  and one whose samples fail only on format (`no_plausible_wrong`) too: format is SFT's
  job and `axis_targeted`'s `broken_format`, taught in isolation.

Every pair records `strategy: on_policy`, the policy (the engine identity that names its
weights digest) and how many of the k samples were right in `evidence`, and its parents.
"""

from __future__ import annotations

import json
from collections import defaultdict

from datagen.filters.answer_filters import AnswerFilterConfig, filter_answers, reason_kind, wrong_fields_of
from datagen.foundation.records import Example, PreferencePair
from datagen.foundation.task import Task, label_fields

SOURCE = "datagen.pairs.on_policy@1"


def _preference(fields: list[str], closed: set[str]) -> tuple[int, int]:
    one_rule = len(fields) == 1 and fields[0] in closed
    return (0 if one_rule else 1, len(fields))


def on_policy_pairs(prompts: list[Example], samples: list[Example], task: Task,
                    filters: AnswerFilterConfig = AnswerFilterConfig(), round_: int = 1,
                    ) -> tuple[list[PreferencePair], list[tuple[str, str]]]:
    """(pairs, dropped as (prompt id, reason)) from `samples`, whose `parent_ids[0]` is
    the id of their prompt in `prompts`; `round_` is the on-policy round (iterative DPO)."""
    closed = set(label_fields(task.answer_schema))
    by_prompt: dict[str, list[Example]] = defaultdict(list)
    for sample in samples:
        by_prompt[sample.parent_ids[0]].append(sample)
    pairs, dropped = [], []
    for prompt in prompts:
        asked = by_prompt.get(prompt.id, [])
        if not asked:
            dropped.append((prompt.id, "no_samples: the policy was not asked this prompt"))
            continue
        kept, rejected = filter_answers(asked, task, filters)
        wrong = [(sample, wrong_fields_of(reason)) for sample, reason in rejected
                 if reason_kind(reason) == "wrong_fields"]
        if not rejected:
            dropped.append((prompt.id, f"all_right: {len(kept)} of {len(asked)} samples agree with the label"))
            continue
        if not wrong:
            kinds = sorted({reason_kind(reason) for _, reason in rejected})
            dropped.append((prompt.id, f"no_plausible_wrong: samples fail on {', '.join(kinds)} only"))
            continue
        loser, fields = min(wrong, key=lambda item: _preference(item[1], closed))
        policy = loser.teacher.base_url if loser.teacher else "unknown policy"
        if kept:
            winner, chosen_text, how = kept[0], kept[0].response, "a right sample of the policy"
        else:
            winner, chosen_text, how = prompt, task.render_answer(json.loads(prompt.reference)), "the label"
        pairs.append(PreferencePair(
            task=task.name, prompt=prompt.prompt, chosen=chosen_text, rejected=loser.response,
            strategy="on_policy", source=SOURCE, run_id=loser.run_id,
            evidence=(f"round {round_}, policy {policy}: rejected is its own sample, wrong on {', '.join(fields)}; chosen is {how}; "
                      f"{len(kept)} of {len(asked)} samples right"),
            chosen_teacher=winner.teacher, rejected_teacher=loser.teacher, parent_ids=(winner.id, loser.id),
            axis="one_wrong_field" if len(fields) == 1 else "wrong_fields", margin=float(len(fields)),
            context=prompt.context,
        ))
    return pairs, dropped
