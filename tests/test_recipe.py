import pytest

from flows.build_dataset import BuildDatasetRecipe
from flows.recipe import RecipeError, load_recipe


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_the_shipped_recipe_loads():
    recipe = load_recipe("flows/recipes/support_triage.yaml", BuildDatasetRecipe)
    assert recipe.load_task().name == "support_triage"
    assert recipe.distill.teachers[0].base_url is None


def test_errors_name_the_file_and_every_bad_field(tmp_path):
    path = write(
        tmp_path,
        "task: datagen.tasks.support_triage:TASK\n"
        "prompts: {count: 0}\n"
        "distill: {teachers: [{sampling: {temprature: 0.5}}]}\n",
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, BuildDatasetRecipe)
    message = str(caught.value)
    assert f"{path}: prompts.count: Input should be greater than or equal to 1 (got 0)" in message
    assert f"{path}: distill.teachers.0.sampling.temprature: Extra inputs are not permitted (got 0.5)" in message


def test_a_task_that_does_not_import_is_named(tmp_path):
    path = write(tmp_path, "task: datagen.tasks.nope:TASK\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml: task: .*No module named 'datagen.tasks.nope'"):
        load_recipe(path, BuildDatasetRecipe)


def test_a_remote_teacher_must_name_its_model(tmp_path):
    path = write(tmp_path, "task: datagen.tasks.support_triage:TASK\ndistill: {teachers: [{base_url: 'http://127.0.0.1:1/v1'}]}\n")
    with pytest.raises(RecipeError, match="distill.teachers.0: Value error, a teacher with a base_url must also name its model"):
        load_recipe(path, BuildDatasetRecipe)


def test_yaml_syntax_errors_give_the_line(tmp_path):
    path = write(tmp_path, "task: x\nprompts: {count: 3\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml: not valid YAML \(line 3, column 1\)"):
        load_recipe(path, BuildDatasetRecipe)


def test_only_one_teacher_can_be_the_embedded_model(tmp_path):
    path = write(tmp_path, "task: datagen.tasks.support_triage:TASK\ndistill: {teachers: [{}, {weight: 2}]}\n")
    with pytest.raises(RecipeError, match="distill: Value error, at most one teacher can be the embedded model"):
        load_recipe(path, BuildDatasetRecipe)
