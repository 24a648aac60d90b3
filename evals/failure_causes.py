"""Why a fine-tune was not escalated, in words and numbers a user can act on.

Three causes, each checked on every candidate that fails its verdict:

- **format**: its answers are schema-valid on fewer than `min_schema_valid` of the gold rows
  (an answer that does not validate scores every field wrong, so format hides every other
  skill);
- **a rule**: the labelling rule on whose gold rows it is furthest below the base model
  (`evals/rule_scores.py`), the rule it has not learnt, or unlearnt;
- **forgetting**: its regression accuracy dropped beyond the tolerance.

A candidate that fails with none of these failed on the noise (its gain is inside the
paired interval); the text says so and names its weakest rule, the place to add rows.
"""

from __future__ import annotations

from evals.rule_scores import share_with_interval


def _share(stats: dict) -> str:
    low, high = stats["ci95"]
    return f"{stats['right']}/{stats['n']} = {stats['value']:.3f} [{low:.2f}, {high:.2f}]"


def format_cause(target_rows: list[dict], min_schema_valid: float) -> str | None:
    valid = sum(bool(row["schema_valid"]) for row in target_rows)
    stats = share_with_interval(valid, len(target_rows))
    if stats["value"] >= min_schema_valid:
        return None
    return f"format: schema-valid JSON on {_share(stats)} of the gold rows, below {min_schema_valid:.2f}"


def worst_rule_below_base(rules: dict[str, dict], base_rules: dict[str, dict]) -> tuple[str, float] | None:
    """(rule, candidate minus base) of the rule furthest below the base model, or None when
    the candidate is at or above the base on every rule the gold rows exercise."""
    drops = [(name, stats["value"] - base_rules[name]["value"]) for name, stats in rules.items()
             if stats["n"] and stats["value"] < base_rules[name]["value"]]
    return min(drops, key=lambda drop: (drop[1], drop[0])) if drops else None


def rule_cause(rules: dict[str, dict], base_rules: dict[str, dict], base: str) -> str | None:
    worst = worst_rule_below_base(rules, base_rules)
    if worst is None:
        return None
    name, drop = worst
    stats = rules[name]
    return (f"rule `{name}` ({stats['field']}: {stats['title']}): {_share(stats)} right against {base}'s "
            f"{_share(base_rules[name])}, {drop:+.3f}, the worst rule below the base")


def weakest_rule(rules: dict[str, dict]) -> str | None:
    scored = [(stats["value"], name) for name, stats in rules.items() if stats["n"]]
    if not scored:
        return None
    name = min(scored)[1]
    return f"weakest rule `{name}` ({rules[name]['field']}: {rules[name]['title']}): {_share(rules[name])} right"


def forgetting_cause(regression_change: dict, regression_right: tuple[int, int], base_right: tuple[int, int],
                     tolerance: float, base: str) -> str | None:
    if -regression_change["value"] <= tolerance:
        return None
    low, high = regression_change["ci95"]
    return (f"forgetting: regression accuracy {regression_right[0]}/{regression_right[1]} against {base}'s "
            f"{base_right[0]}/{base_right[1]}, {regression_change['value']:+.3f} [{low:+.3f}, {high:+.3f}], "
            f"beyond the tolerance of {tolerance:.3f}")
