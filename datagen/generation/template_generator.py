"""Seeded text generation from Jinja2 templates with slots.

Input: templates (Jinja2 source, each with a stable `template_id`), a vocabulary that
maps every slot name to a list of values or to a callable drawing one value from a
`random.Random`, a count and a seed. Output: `RenderedTemplate(template_id, text,
slots)`, where `slots` holds the values the text was rendered from, so a task can derive
the example's label from them rather than parse it back out of the text.

The same (templates, vocabulary, count, seed) gives the same texts in any process: one
`random.Random(seed)` makes every draw, slots are drawn in sorted name order, and only
the slots a template names are drawn. A template that names a slot the vocabulary lacks
is refused before anything is drawn, and `jinja2.StrictUndefined` turns a missing
attribute (`{{ item.prise }}`) into an error naming the template, not an empty string
in a training prompt.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

import jinja2
from jinja2 import meta

SlotVocabulary = Sequence[Any] | Callable[[random.Random], Any]
T = TypeVar("T")

# trim_blocks/lstrip_blocks: a `{% for %}` line in a layout template leaves no blank line
# or indent behind, so templates can be written as the text they produce.
_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
)


@dataclass(frozen=True)
class Template:
    template_id: str  # stable: it is recorded with every example made from the template
    source: str  # Jinja2 text; `{{ name }}` is a slot filled from the vocabulary


@dataclass(frozen=True)
class RenderedTemplate:
    template_id: str
    text: str
    slots: dict[str, Any]  # the value drawn for every slot the template names


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    return _ENVIRONMENT.from_string(source)


def slot_names(template: Template) -> list[str]:
    """The slots a template names, sorted so that draws happen in a fixed order."""
    try:
        parsed = _ENVIRONMENT.parse(template.source)
    except jinja2.TemplateSyntaxError as error:
        raise ValueError(f"template {template.template_id!r}, line {error.lineno}: {error.message}") from error
    return sorted(meta.find_undeclared_variables(parsed))


def render(template: Template, slots: Mapping[str, Any]) -> str:
    """The template's text with `slots` filled in and surrounding blank lines trimmed; a
    slot or attribute it lacks is an error."""
    try:
        return _compiled(template.source).render(slots).strip()
    except jinja2.UndefinedError as error:
        raise ValueError(f"template {template.template_id!r}: {error.message}") from error


def draw(vocabulary: SlotVocabulary, rng: random.Random) -> Any:
    return vocabulary(rng) if callable(vocabulary) else rng.choice(vocabulary)


def dealt_evenly(items: Sequence[T], count: int, rng: random.Random) -> list[T]:
    """`count` items dealt in shuffled rounds, so any `k * len(items)` use each k times."""
    dealt: list[T] = []
    while len(dealt) < count:
        round_ = list(items)
        rng.shuffle(round_)
        dealt.extend(round_)
    return dealt[:count]


def generate_from_templates(
    templates: Sequence[Template],
    vocabulary: Mapping[str, SlotVocabulary],
    count: int,
    seed: int,
) -> list[RenderedTemplate]:
    """`count` rendered texts; the same arguments always give the same list."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not templates:
        raise ValueError("no templates to generate from")
    ids = [t.template_id for t in templates]
    if len(set(ids)) != len(ids):
        raise ValueError(f"template ids must be unique, got {ids}")
    names = {t.template_id: slot_names(t) for t in templates}
    for template in templates:
        missing = [name for name in names[template.template_id] if name not in vocabulary]
        if missing:
            raise ValueError(
                f"template {template.template_id!r} uses slots {missing} "
                f"that the vocabulary lacks (it has {sorted(vocabulary)})"
            )
    rng = random.Random(seed)
    rendered = []
    for template in dealt_evenly(templates, count, rng):
        slots = {name: draw(vocabulary[name], rng) for name in names[template.template_id]}
        rendered.append(RenderedTemplate(template.template_id, render(template, slots), slots))
    return rendered
