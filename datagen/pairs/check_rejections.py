"""Rejected replies made by rule from a right one, each failing exactly one of its checks.

For a text task (`foundation/text_checks.py`) a pair teaches a check when its sides differ
on that check alone: `chosen` is a reply that passes every check of its label, and the
rejected reply is the same text changed the least way that fails one check:

- `names_field` with digits in its value (an order id, an amount): the value misread,
  its last two different adjacent digits swapped (`A-310944` -> `A-310494`), as a careless
  reader copies it; without digits (a name, an email): the lines or sentences naming it
  left out;
- `must_mention`, `matches_pattern`: the sentences (or lines) holding the term or the
  match left out;
- `must_not_say`: the longest banned phrase added as a sentence before the sign-off;
- `max_words`: polite filler sentences added before the sign-off until the reply is over
  the limit.

Each rejected reply is checked by code: the chosen reply passes every check and the
rejected one fails that check and passes every other. A check whose change breaks another
too (a sentence naming the order and saying "cancelled") is skipped for the next one,
with the reason, which the pair report counts. Which check comes first is picked by a
hash of the key (the prompt's id), so a run is reproducible and the kinds spread evenly.
"""

from __future__ import annotations

import hashlib
import re

from datagen.foundation.text_checks import (
    MatchesPattern,
    MaxWords,
    MustMention,
    MustNotSay,
    NamesField,
    TextReference,
    check_results,
    mentions,
    reference_of,
    word_count,
)

FILLER = (
    "Thank you so much for reaching out to us about this.",
    "We truly appreciate your patience while we look into everything for you.",
    "Our friendly team is always here if you ever need anything at all.",
    "We hope you have a wonderful rest of your week.",
    "Please don't hesitate to get in touch again at any time.",
)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|(?=\n)|$)")


class NoCheckRejection(Exception):
    """No rejected reply fails this check alone; the message (`kind: why`) is counted."""


def _units(reply: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence, a line without a stop counting as one."""
    return [match.span() for match in _SENTENCE.finditer(reply) if match.group().strip()]


def _without(reply: str, spans: list[tuple[int, int]]) -> str:
    """The reply with these spans cut out, spaces tidied, blank lines kept single."""
    kept, at = [], 0
    for start, end in sorted(spans):
        kept.append(reply[at:start])
        at = end
    kept.append(reply[at:])
    text = re.sub(r"[ \t]+\n", "\n", re.sub(r"[ \t]{2,}", " ", "".join(kept)))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _drop_units(reply: str, holds) -> str:
    return _without(reply, [(start, end) for start, end in _units(reply) if holds(reply[start:end])])


def _before_sign_off(reply: str, sentences: str) -> str:
    body, gap, sign_off = reply.rpartition("\n\n")
    return f"{body} {sentences}{gap}{sign_off}" if gap else f"{sentences} {reply}"


def _digits_swapped(value: str) -> str | None:
    for match in reversed(list(re.finditer(r"(?=(\d)(\d))", value))):
        first, second = match.groups()
        if first != second:
            return value[:match.start()] + second + first + value[match.start() + 2:]
    return None


def _rejected(reply: str, check) -> tuple[str, str]:
    """(rejected reply, evidence) for one check; NoCheckRejection when the rule makes none."""
    if isinstance(check, NamesField):
        wrong = _digits_swapped(check.value)
        if wrong is not None:
            pattern = re.compile(r"(?<!\w)" + re.escape(check.value) + r"(?!\w)", re.IGNORECASE)
            return pattern.sub(wrong, reply), f"{check.field}: {check.value} -> {wrong}"
        return (_drop_units(reply, lambda unit: mentions(unit, check.value)),
                f"{check.field}: the sentences naming {check.value!r} left out")
    if isinstance(check, MustMention):
        terms = check.terms[:1] if check.mode == "all" else check.terms
        return (_drop_units(reply, lambda unit: any(mentions(unit, term) for term in terms)),
                f"the sentences saying {', '.join(map(repr, terms))} left out")
    if isinstance(check, MatchesPattern):
        spans = [match.span() for match in re.finditer(check.pattern, reply)]
        return (_without(reply, [unit for unit in _units(reply)
                                 if any(start < unit[1] and unit[0] < end for start, end in spans)]),
                f"the sentences matching {check.pattern!r} left out")
    if isinstance(check, MustNotSay):
        phrase = max(check.terms, key=lambda term: (len(term), term))
        sentence = phrase[0].upper() + phrase[1:] + ("" if phrase.endswith((".", "!", "?")) else ".")
        return _before_sign_off(reply, sentence), f"adds {sentence!r}"
    if isinstance(check, MaxWords):
        padding, words = [], word_count(reply)
        while words + sum(map(word_count, padding)) <= check.limit:
            padding.append(FILLER[len(padding) % len(FILLER)])
        rejected = _before_sign_off(reply, " ".join(padding))
        return rejected, f"{word_count(rejected)} words, at most {check.limit}"
    raise NoCheckRejection(f"{check.kind}: no rule makes a reply that fails it")


def _start(key: str, count: int) -> int:
    return int(hashlib.sha256(f"check:{key}".encode()).hexdigest()[:8], 16) % count


def check_rejection(reply: str, reference: dict | TextReference, key: str) -> tuple[str, str, str]:
    """(rejected reply, the kind of the one check it fails, evidence), trying the label's
    checks from one picked by `key`; NoCheckRejection (`kind: why` of the last tried) when
    no check can be failed alone."""
    label = reference_of(reference)
    if not all(result.passed for result in check_results(reply, label)):
        raise NoCheckRejection("chosen: the chosen reply does not pass every check of its label")
    start = _start(key, len(label.checks))
    reason = ""
    for index in [*range(start, len(label.checks)), *range(start)]:
        check = label.checks[index]
        try:
            rejected, evidence = _rejected(reply, check)
        except NoCheckRejection as skip:
            reason = str(skip)
            continue
        results = check_results(rejected, label) if rejected.strip() else []
        if results and [number for number, result in enumerate(results) if not result.passed] == [index]:
            return rejected, check.kind, f"rejected fails {check.kind}: {evidence}"
        reason = f"{check.kind}: the change fails other checks too, or none"
    raise NoCheckRejection(reason)
