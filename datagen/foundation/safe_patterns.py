"""Refuse a regular expression that Python's backtracking matcher may not finish.

A labeler writes the pattern of a `matches_pattern` check (`text_checks.py`), and code
then runs it on every reply a model writes; a pattern that backtracks exponentially would
hang the eval on one unlucky reply. Python's `re` has no timeout, and a timeout would make
a check's verdict depend on the machine's load, so the pattern is judged when it is
written, from its parse tree, against the shapes known to blow up (OWASP, "Regular
expression Denial of Service - ReDoS"; Davis et al. 2018, "The impact of regular
expression denial of service (ReDoS) in practice", ESEC/FSE, who find nearly all
super-linear patterns in the wild are of the first two shapes):

- a quantifier over something that is itself repeated: `(a+)+`, `(\\w+\\s?)*`, `(.*,){9}`;
- a quantifier over alternatives: `(a|aa)*`, `(ab|a)+` (a character class, `[ab]*`, is safe);
- a backreference (`(a+)\\1`), whose matching is NP-hard in general;
- more than one long quantifier (one that may repeat more than `LONG_REPEAT` times: `*`,
  `+`, `{2,}`, `{0,50}`): `re.search` tries every start, so one long quantifier costs
  time in the square of the reply's length and two in its cube; measured here, `.*a.*b`
  searched 4,000 characters without a match for 45 s, `.*a` for 0.05 s;
- a pattern longer than `MAX_PATTERN_CHARS`.

Possessive quantifiers (`a++`) never backtrack, so they do not count as long; a repeated
group is refused whatever its quantifiers, to keep the rule short enough for a labeler to
follow. What is refused says why, for the labelers' form.
"""

from __future__ import annotations

import re

# 3.11 moved sre_parse here; the old public name now warns when imported.
from re import _constants as sre
from re import _parser as sre_parse

MAX_PATTERN_CHARS = 200  # a check matches a phrase or a line, not a document
LONG_REPEAT = 10  # `\d{6}` is short; `\s*`, `.{0,50}` are long
MAX_LONG_QUANTIFIERS = 1

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


class UnsafePattern(ValueError):
    """A pattern that does not compile, or may backtrack without end; the message says which."""


def _walk(parsed):
    """Every (op, argument) of a parsed pattern, nested ones included, depth first."""
    for op, av in parsed:
        yield op, av
        if op in _REPEATS or op == sre.POSSESSIVE_REPEAT:
            yield from _walk(av[2])
        elif op == sre.SUBPATTERN:
            yield from _walk(av[3])
        elif op == sre.ATOMIC_GROUP:
            yield from _walk(av)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            yield from _walk(av[1])
        elif op == sre.BRANCH:
            for branch in av[1]:
                yield from _walk(branch)
        elif op == sre.GROUPREF_EXISTS:
            yield from _walk(av[1])
            if av[2] is not None:
                yield from _walk(av[2])


def _repeats_many(op, av) -> bool:
    return op in _REPEATS and av[1] > 1  # `?` and `{0,1}` repeat nothing


def check_pattern(pattern: str) -> str:
    """`pattern` when it compiles and none of the shapes above is in it; else `UnsafePattern`."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafePattern(f"pattern has {len(pattern)} characters, at most {MAX_PATTERN_CHARS}")
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except re.error as error:
        raise UnsafePattern(f"not a valid regular expression: {error}") from None
    nodes = list(_walk(parsed))
    if any(op in (sre.GROUPREF, sre.GROUPREF_EXISTS) for op, _ in nodes):
        raise UnsafePattern("backreferences (\\1, (?P=name), (?(1)...)) are refused: matching them can take "
                            "exponential time")
    for op, av in nodes:
        if not _repeats_many(op, av):
            continue
        inner = list(_walk(av[2]))
        if any(_repeats_many(*node) or node[0] == sre.POSSESSIVE_REPEAT for node in inner):
            raise UnsafePattern("a quantifier over a group that is itself repeated (like (a+)+) can take "
                                "exponential time to fail: repeat a character class instead")
        if any(node[0] == sre.BRANCH for node in inner):
            raise UnsafePattern("a quantifier over alternatives (like (a|ab)*) can take exponential time to "
                                "fail: use a character class, or write the alternatives out")
    long = sum(op in _REPEATS and av[1] > LONG_REPEAT for op, av in nodes)
    if long > MAX_LONG_QUANTIFIERS:
        raise UnsafePattern(f"{long} long quantifiers (*, +, {{n,}}, or more than {LONG_REPEAT} repeats); at most "
                            f"{MAX_LONG_QUANTIFIERS}, since each one multiplies the time a failed match takes")
    return pattern
