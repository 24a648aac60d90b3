import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from datagen.generation.template_generator import (
    RenderedTemplate,
    Template,
    generate_from_templates,
    render,
    slot_names,
)

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = (
    Template("greet", "Hello {{ name }}, your {{ item }} ships {{ day }}."),
    Template("count", "{{ name }}: {{ n }} x {{ item }}"),
)
VOCABULARY = {
    "name": ["Ada", "Ben", "Cy"],
    "item": ["kettle", "lamp"],
    "day": ["today", "Monday"],
    "n": lambda rng: rng.randint(1, 9),
}


def test_a_fixed_seed_gives_these_texts_and_slots():
    assert generate_from_templates(TEMPLATES, VOCABULARY, 5, seed=3) == [
        RenderedTemplate("count", "Cy: 2 x lamp", {"item": "lamp", "n": 2, "name": "Cy"}),
        RenderedTemplate("greet", "Hello Ben, your lamp ships today.",
                         {"day": "today", "item": "lamp", "name": "Ben"}),
        RenderedTemplate("count", "Cy: 4 x kettle", {"item": "kettle", "n": 4, "name": "Cy"}),
        RenderedTemplate("greet", "Hello Ben, your lamp ships Monday.",
                         {"day": "Monday", "item": "lamp", "name": "Ben"}),
        RenderedTemplate("greet", "Hello Cy, your kettle ships today.",
                         {"day": "today", "item": "kettle", "name": "Cy"}),
    ]


def test_same_seed_same_texts_other_seed_other_texts():
    first = generate_from_templates(TEMPLATES, VOCABULARY, 20, seed=1)
    assert first == generate_from_templates(TEMPLATES, VOCABULARY, 20, seed=1)
    assert [r.text for r in first] != [r.text for r in generate_from_templates(TEMPLATES, VOCABULARY, 20, seed=2)]


def test_texts_do_not_depend_on_the_process_hash_seed():
    # Slot names come out of Jinja as a set; drawing them in sorted order keeps the draws fixed.
    script = (
        "from datagen.generation.template_generator import Template, generate_from_templates as g; "
        "t = [Template('t', '{{ a }} {{ b }} {{ c }} {{ d }}')]; "
        "print([r.text for r in g(t, {k: list(range(50)) for k in 'abcd'}, 5, 0)])"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_templates_are_dealt_evenly():
    rendered = generate_from_templates(TEMPLATES, VOCABULARY, 10, seed=0)
    assert Counter(r.template_id for r in rendered) == {"greet": 5, "count": 5}


def test_only_the_named_slots_are_drawn_and_loops_work():
    template = Template("list", "{% for x in items %}\n- {{ x }}\n{% endfor %}\n{{ unused|default('') }}")
    assert slot_names(template) == ["items", "unused"]
    assert render(template, {"items": ["a", "b"], "unused": ""}) == "- a\n- b"


def test_a_slot_missing_from_the_vocabulary_is_refused_by_name():
    broken = (*TEMPLATES, Template("late", "Arrives {{ date }} for {{ name }}"))
    with pytest.raises(ValueError, match=r"template 'late' uses slots \['date'\] that the vocabulary lacks"):
        generate_from_templates(broken, VOCABULARY, 3, seed=0)


def test_a_missing_attribute_names_the_template_and_the_attribute():
    template = Template("price", "Costs {{ item.prise }}")
    with pytest.raises(ValueError, match=r"template 'price': .* has no attribute 'prise'"):
        generate_from_templates([template], {"item": [{"price": 3}]}, 1, seed=0)


def test_a_syntax_error_names_the_template_and_line():
    with pytest.raises(ValueError, match=r"template 'oops', line 2: unexpected 'end of print statement'"):
        generate_from_templates([Template("oops", "fine\n{{ name + }}")], VOCABULARY, 1, seed=0)


def test_bad_arguments_are_refused():
    assert generate_from_templates(TEMPLATES, VOCABULARY, 0, seed=0) == []
    with pytest.raises(ValueError, match="count must be >= 0"):
        generate_from_templates(TEMPLATES, VOCABULARY, -1, seed=0)
    with pytest.raises(ValueError, match="template ids must be unique"):
        generate_from_templates([TEMPLATES[0], TEMPLATES[0]], VOCABULARY, 1, seed=0)
