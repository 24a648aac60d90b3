"""The data mix on literal rows: sources read from provenance, shares held or rescaled, caps,
the seed, every row left out with its reason, and why each achieved share differs."""

import hashlib
from collections import Counter

import pytest

from datagen.exports.data_mix import (
    DataMixConfig,
    MixError,
    SetMix,
    largest_remainder,
    mix_markdown,
    mix_sets,
    mix_source,
    pair_mix_source,
    planned_counts,
)
from datagen.exports.sft_examples import REFERENCE_SOURCE
from datagen.foundation.hashing import canonical_json
from datagen.foundation.records import Example, PreferencePair, Teacher
from flows.build_dataset import BuildDatasetRecipe
from flows.recipe import RecipeError, load_recipe

TEACHER = Teacher("http://127.0.0.1:8000/v1", "teacher-7b", "{}", 0)


def row(i: int, source: str, teacher: Teacher | None = None, template_id: str | None = None) -> Example:
    return Example(task="t", prompt=f"{source} prompt {i}", response=f"answer {i}", source=source, run_id="r",
                   teacher=teacher, template_id=template_id)


def rows(template: int = 80, teacher: int = 14, seed: int = 30, imported: int = 5) -> list[Example]:
    return ([row(i, REFERENCE_SOURCE) for i in range(template)]
            + [row(i, "datagen.teacher.answer_prompts@2", TEACHER, "shipping/3") for i in range(teacher)]
            + [row(i, "gold-seed:triage-seed/v1@5d41") for i in range(seed)]
            + [row(i, "import:mine.jsonl@0123456789ab") for i in range(imported)])


def sft_mix(**set_mix) -> DataMixConfig:
    return DataMixConfig.model_validate({"sft": set_mix, "seed": set_mix.pop("seed", 0)})


def by_source(examples) -> Counter:
    return Counter(mix_source(e) for e in examples)


def test_each_rows_source_is_read_from_its_provenance():
    assert [mix_source(r) for r in (
        row(0, REFERENCE_SOURCE),
        row(0, "datagen.teacher.answer_prompts@2", TEACHER, "shipping/3"),
        row(0, "datagen.teacher.answer_prompts@2", TEACHER, "self_instruct/round-1/billing"),
        row(0, "gold-seed:triage-seed/v1@5d41"),
        row(0, "import:mine.jsonl@0123456789ab"),
    )] == ["template", "teacher", "self_generated", "seed", "imported"]
    with pytest.raises(MixError, match="source 'somebody.else@1', which is none of the mix's sources"):
        mix_source(row(0, "somebody.else@1"))


def test_a_pair_is_of_the_source_of_the_answer_it_was_made_from():
    seed, teacher = row(0, "gold-seed:triage-seed/v1@5d41"), row(1, "datagen.teacher.answer_prompts@2", TEACHER)

    def pair(made_from: Example, strategy: str, source: str = "datagen.preference_pairs@3") -> PreferencePair:
        return PreferencePair(task="t", prompt=made_from.prompt, chosen=made_from.response, rejected="no",
                              strategy=strategy, evidence="", source=source, run_id="r",
                              parent_ids=(made_from.id, made_from.id))

    answers = {seed.id: seed, teacher.id: teacher}
    assert pair_mix_source(pair(seed, "axis_targeted"), answers) == "seed"
    assert pair_mix_source(pair(teacher, "verifier_ranked"), answers) == "teacher"
    assert pair_mix_source(pair(teacher, "import", "import:pairs.jsonl@0123456789ab"), {}) == "imported"
    with pytest.raises(MixError, match=r"\(verifier_ranked\) was made from .*not among the run's answers"):
        pair_mix_source(pair(teacher, "verifier_ranked"), {})


def test_reduce_total_holds_every_share_and_says_which_source_bounds_the_total():
    made = rows()
    mixed = mix_sets(made, [], [], sft_mix(shares={"template": 0.5, "teacher": 0.3, "seed": 0.2}))

    assert by_source(mixed.sft.kept) == {"template": 23, "teacher": 14, "seed": 9}
    assert [r for r in made if r in mixed.sft.kept] == mixed.sft.kept  # the set's order is kept
    report = mixed.report["sets"]["sft"]
    assert (report["rows_before"], report["rows"], report["left_out"]) == (129, 46, 83)
    assert report["total_why"] == ("as many as the shares allow: the scarcest source for its share is teacher "
                                   "(14 rows for 30%)")
    why = {s["source"]: (s["asked"], s["achieved"], s["available"], s["taken"], s["why"]) for s in report["sources"]}
    assert why == {
        "template": (0.5, 0.5, 80, 23, "as asked; 57 of 80 rows left out"),
        "teacher": (0.3, 0.3043, 14, 14, "as asked (rounded to whole rows); it bounds the total: only 14 teacher "
                    "rows reached the SFT set (teacher answers that passed every filter, one per prompt)"),
        "seed": (0.2, 0.1957, 30, 9, "as asked (rounded to whole rows); 21 of 30 rows left out"),
        "imported": (0.0, 0.0, 5, 0, "not in mix.sft.shares: all 5 left out"),
    }
    # Nothing dropped silently: every row is kept or left out with its reason.
    assert len(mixed.sft.kept) + len(mixed.sft.left_out) == len(made)
    assert Counter(reason for _, reason in mixed.sft.left_out) == {
        "over_share: template's 50% share is 23 rows": 57,
        "over_share: seed's 20% share is 9 rows": 21,
        "not_in_shares: imported has no share in mix.sft.shares": 5,
    }
    assert mixed.report["sets"]["preference"] == {"mixed": False, "rows_before": 0, "rows": 0}


def test_rescale_keeps_the_total_and_gives_a_short_or_capped_sources_rows_to_the_others():
    mixed = mix_sets(rows(), [], [], sft_mix(shares={"template": 0.5, "teacher": 0.3, "seed": 0.2}, caps={"seed": 10},
                                             total=100, on_shortfall="rescale"))

    assert by_source(mixed.sft.kept) == {"template": 76, "teacher": 14, "seed": 10}
    report = mixed.report["sets"]["sft"]
    assert report["total_why"] == "the 100 rows asked; seed, teacher fell short, the others rescaled"
    assert [s["why"] for s in report["sources"]] == [
        "asked 50%, got 76%: took rows seed and teacher could not give, in proportion to its share",
        "asked 30%, got 14%: only 14 teacher rows reached the SFT set (teacher answers that passed every filter, "
        "one per prompt)",
        "asked 20%, got 10%: capped at 10 rows by mix.sft.caps (30 available)",
        "not in mix.sft.shares: all 5 left out",
    ]
    assert Counter(reason.split(":")[0] for _, reason in mixed.sft.left_out) == {
        "over_share": 4, "over_cap": 20, "not_in_shares": 5}
    markdown = mix_markdown(mixed.report)
    assert "SFT set: 100 of 129 rows (rescale: the 100 rows asked; seed, teacher fell short" in markdown
    assert "| seed | 20% | 10% | 30 | 10 | 10 | 20 | asked 20%, got 10%: capped at 10 rows" in markdown
    assert "Replay: replay rows are not in this export: the trainer adds them" in markdown


def test_rescale_with_too_few_rows_in_all_reduces_the_total_and_says_so():
    counts, gave_all = planned_counts(SetMix(shares={"template": 0.5, "teacher": 0.5}, total=200,
                                             on_shortfall="rescale"), {"template": 80, "teacher": 14})
    assert (counts, gave_all) == ({"template": 80, "teacher": 14}, ["teacher"])
    mixed = mix_sets(rows(seed=0, imported=0), [], [],
                     sft_mix(shares={"template": 0.5, "teacher": 0.5}, total=200, on_shortfall="rescale"))
    assert mixed.report["sets"]["sft"]["total_why"] == ("asked for 200, got 94: the sources in the shares have no "
                                                        "more rows")


def test_the_seed_decides_which_rows_and_the_same_seed_the_same_rows():
    made = rows()
    shares = {"template": 0.5, "teacher": 0.3, "seed": 0.2}
    first = mix_sets(made, [], [], sft_mix(shares=shares, seed=0)).sft.kept
    assert mix_sets(list(reversed(made)), [], [], sft_mix(shares=shares, seed=0)).sft.kept == list(reversed(first))
    other = mix_sets(made, [], [], sft_mix(shares=shares, seed=1)).sft.kept
    assert by_source(other) == by_source(first) and set(other) != set(first)


def test_shares_that_leave_no_rows_fail_naming_the_empty_source():
    with pytest.raises(MixError, match=r"mix.sft: the shares leave no rows: self_generated \(0 rows for 10%\)"):
        mix_sets(rows(), [], [], sft_mix(shares={"template": 0.9, "self_generated": 0.1}))


def test_largest_remainder_splits_whole_rows_that_add_up():
    assert largest_remainder(10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder(7, {"template": 0.5, "teacher": 0.3, "seed": 0.2}) == {"template": 4, "teacher": 2,
                                                                                   "seed": 1}


@pytest.mark.parametrize("mix, message", [
    ("{sft: {shares: {template: 0.5, teacher: 0.3}}}", "mix.sft.shares: Value error, the shares add up to 0.8, not 1"),
    ("{sft: {shares: {template: 0.9, replay: 0.1}}}", "mix.sft.shares: Value error, replay is mixed in by the trainer"),
    ("{sft: {shares: {template: 1.0}, on_shortfall: rescale}}", "mix.sft: Value error, on_shortfall: rescale keeps "
     "the set's total, so it needs total"),
    ("{sft: {shares: {template: 1.0}, caps: {teacher: -1}}}", "mix.sft.caps.teacher: Input should be greater than "
     "or equal to 0"),
    ("{sft: {shares: {templates: 1.0}}}", "mix.sft.shares.templates.[key]: Input should be 'template', 'teacher'"),
    ("{seed: 3}", "mix: Value error, mix names neither sft nor preference"),
])
def test_a_bad_mix_is_refused_naming_the_file_and_field(tmp_path, mix, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"task: datagen.tasks.support_triage:TASK\nmix: {mix}\n")
    with pytest.raises(RecipeError) as refused:
        load_recipe(path, BuildDatasetRecipe)
    assert f"{path}: {message}" in str(refused.value)


def test_a_recipe_without_mix_or_card_keeps_its_run_id(tmp_path):
    plain = {"task": "datagen.tasks.support_triage:TASK", "runs_dir": str(tmp_path)}
    recipe = BuildDatasetRecipe.model_validate(plain)
    # The id as it was made before the mix and card sections existed: from the dump without them.
    before = recipe.model_dump(mode="json", exclude={"mix", "card"})
    digest = hashlib.sha256(canonical_json({"recipe": before, "task_version": recipe.load_task().version}).encode())
    assert recipe.default_run_id() == f"support_triage-{digest.hexdigest()[:12]}"
    mixed = BuildDatasetRecipe.model_validate(plain | {"mix": {"sft": {"shares": {"template": 1.0}}}})
    licensed = BuildDatasetRecipe.model_validate(plain | {"card": {"license": "apache-2.0"}})
    assert len({recipe.default_run_id(), mixed.default_run_id(), licensed.default_run_id()}) == 3
