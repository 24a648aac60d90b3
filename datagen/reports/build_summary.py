"""The build's summary, read back from the stage manifests of one run.

The manifests are the record of what happened; the summary only gathers them, so a
summary of a resumed run is the same as that of an uninterrupted one.
"""

from __future__ import annotations

from datagen.exports.data_mix import mix_markdown
from datagen.foundation.run_store import RunStore
from datagen.pairs.pair_report import pair_report_markdown


def run_summary(store: RunStore) -> dict:
    """Counts per stage, reasons, sources, strategies and teacher usage, from the manifests."""
    stages = ["prompts", "unique_prompts", "answers", "verified", "sft", "pairs", "export"]
    manifests = {stage: store.manifest(stage) for stage in stages}
    summary = {
        "run_id": store.run_id,
        "run_dir": str(store.run_dir),
        "counts": {
            "prompts generated": manifests["prompts"]["counts"]["part"],
            "prompts after dedupe": manifests["unique_prompts"]["counts"]["part"],
            "teacher answers": manifests["answers"]["counts"]["part"],
            "verified answers": manifests["verified"]["counts"]["part"],
            "rejected answers": manifests["verified"]["counts"]["rejects"],
            "SFT rows": manifests["sft"]["counts"]["part"],
            "preference pairs": manifests["pairs"]["counts"]["part"],
        },
        # A run whose prompts stage predates the length check has no such count.
        "prompts rejected by reason": manifests["unique_prompts"]["summary"].get("rejected_by_reason", {}),
        "prompts removed by dedupe": manifests["unique_prompts"]["summary"]["removed_by_method"],
        "failed requests": manifests["answers"]["summary"]["failed_requests"],
        "teacher usage": manifests["answers"]["summary"]["usage"],
        "answers rejected by reason": manifests["verified"]["summary"]["rejected_by_reason"],
        "wrong fields in plausible answers": manifests["verified"]["summary"]["wrong_fields"],
        "SFT rows by source": manifests["sft"]["summary"]["rows_by_source"],
        "pairs by strategy": manifests["pairs"]["summary"]["pairs_by_strategy"],
        "pair set": manifests["pairs"]["summary"]["report"],
        "exports": str(store.stage_dir("export")),
        "curation report": str(store.run_dir / "curation.html"),
    }
    # Runs whose stages predate labelling rules, and tasks without them, have no coverage.
    if manifests["prompts"]["summary"].get("rule_coverage", {}).get("rows_by_rule"):
        summary["rows per labelling rule"] = {"prompts": manifests["prompts"]["summary"]["rule_coverage"],
                                              "sft": manifests["sft"]["summary"]["rule_coverage"]}
    if store.is_complete("self_instruct"):
        generated = store.manifest("self_instruct")
        summary["counts"] = {
            "prompts generated": summary["counts"]["prompts generated"],
            "inputs self-generated": generated["counts"]["part"],
            **summary["counts"],
        }
        summary["self-generation"] = {"stop_reason": generated["summary"]["stop_reason"],
                                      "rounds": generated["summary"]["rounds"]}
        summary["answers kept without a known label"] = manifests["verified"]["summary"]["kept_without_reference"]
        for key, usage in generated["summary"]["usage"].items():
            summary["teacher usage"][f"{key} (self-generation)"] = usage
    if store.is_complete("conversations"):
        simulated = store.manifest("conversations")
        summary["counts"] = {
            "prompts generated": summary["counts"]["prompts generated"],
            "conversations simulated": simulated["counts"]["part"],
            **summary["counts"],
        }
        summary["user simulation"] = {key: simulated["summary"][key] for key in ("ended_by", "user_turns",
                                                                                  "rejected_by_reason")}
        summary["answers kept without a known label"] = manifests["verified"]["summary"]["kept_without_reference"]
        for key, usage in simulated["summary"]["usage"].items():
            summary["teacher usage"][f"{key} (user simulation)"] = usage
    if store.is_complete("seed"):
        # The check of this run's export; every run checks again (contamination/seed_disjointness.json).
        summary["seed set"] = seed_set_summary(store, manifests["export"]["summary"].get("seed_set"))
    if store.is_complete("mix"):
        mixed = store.manifest("mix")
        summary["counts"] |= {"SFT rows after the mix": mixed["counts"]["sft"],
                              "preference pairs after the mix": mixed["counts"]["pairs"]}
        summary["data mix"] = mixed["summary"]["mix"]
    if store.is_complete("student_answers"):
        student = store.manifest("student_answers")
        summary["student answers rejected by reason"] = student["summary"]["rejected_by_reason"]
        for key, usage in student["summary"]["usage"].items():
            summary["teacher usage"][f"{key} (student)"] = usage
    return summary


def seed_set_summary(store: RunStore, check: dict | None) -> dict:
    """The run's seed set, and its disjointness from the eval sets by `check` (default: the
    check the seed stage recorded)."""
    seed = store.manifest("seed")
    check = check or seed["summary"]["disjointness"]
    return {"set": seed["config"]["seed_set"]["set"], "digest": seed["config"]["seed_set"]["digest"],
            "rows": seed["counts"]["part"], "few_shot": len(seed["summary"]["few_shot"]),
            "verdict": check["verdict"], "eval_sets": [ref["set"] for ref in check["eval_sets"]],
            "methods": check["methods"]}


def summary_markdown(summary: dict) -> str:
    lines = [f"# Dataset build `{summary['run_id']}`", "", "| stage | rows |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in summary["counts"].items()]
    if "seed set" in summary:
        seed = summary["seed set"]
        lines += ["", f"**seed set** `{seed['set']}` (digest {seed['digest'][:16]}): {seed['rows']} rows, "
                  f"{seed['few_shot']} as few-shot turns; {seed['verdict']} from {', '.join(seed['eval_sets'])} "
                  f"by {', '.join(seed['methods'])}"]
    titles = (
        "prompts rejected by reason", "prompts removed by dedupe", "answers rejected by reason", "wrong fields in plausible answers",
        "SFT rows by source", "pairs by strategy", "student answers rejected by reason",
    )
    for title in (t for t in titles if t in summary):
        lines += ["", f"**{title}**", "", "| | rows |", "|---|---:|"]
        lines += [f"| {reason} | {n} |" for reason, n in sorted(summary[title].items())] or ["| (none) | 0 |"]
    if "rows per labelling rule" in summary:
        lines += ["", *rule_coverage_markdown(summary["rows per labelling rule"])]
    if "self-generation" in summary:
        generation = summary["self-generation"]
        lines += [
            "", f"**self-generation** ({generation['stop_reason']}; "
            f"{summary['answers kept without a known label']} answers kept with no known label)", "",
            "| round | requested | failed | kept | near-dups | distinct-2 | near-dup rate | topic entropy | not kept because |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['round']} | {r['requested']} | {r['failed']} | {r['kept']} | {r['near_duplicates']} "
            f"| {r['distinct_2']:.2f} | {r['near_duplicate_rate']:.2f} | {r['topic_entropy']:.2f} "
            f"| {r['collapsed'] or ''} |"
            for r in generation["rounds"]
        ]
    if "user simulation" in summary:
        simulation = summary["user simulation"]
        ended = ", ".join(f"{reason} {n}" for reason, n in sorted(simulation["ended_by"].items())) or "none"
        turns = ", ".join(f"{n} with {users}" for users, n in sorted(simulation["user_turns"].items())) or "none"
        lines += ["", f"**user simulation**: conversations ended by {ended}; user turns: {turns}; "
                  f"{summary['answers kept without a known label']} answers kept with no known label"]
    lines += [
        "", "**teacher usage**", "",
        "| teacher | requests | cache hits | retries | failed | tokens in | tokens out | cost (USD) | concurrency |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {model} | {_requests(u)} | {u['cache_hits']} | {u['retries']} | {u['failures']} "
        f"| {u['prompt_tokens']} | {u['completion_tokens']} | {u['cost_usd']:.4f} | {_concurrency(u)} |"
        for model, u in summary["teacher usage"].items()
    ]
    lines += ["", pair_report_markdown(summary["pair set"])]
    if "data mix" in summary:
        lines += ["", mix_markdown(summary["data mix"])]
    lines += ["", f"Exports: `{summary['exports']}`", f"Curation report: `{summary['curation report']}`", ""]
    return "\n".join(lines)


def _requests(usage: dict) -> str:
    """Requests sent, and the batch jobs they went in for an endpoint in batch mode."""
    jobs, resumed = usage.get("batch_jobs", 0), usage.get("batch_jobs_resumed", 0)
    if not jobs and not resumed:
        return str(usage["requests"])
    return f"{usage['requests']} in {jobs} batch jobs" + (f", {resumed} resumed" if resumed else "")


def _concurrency(usage: dict) -> str:
    """The adaptive limit's path: the ceiling, or ceiling → lowest → end and its changes.
    Usage from before the limit adapted has none of it; batch jobs have no such limit."""
    if not usage.get("concurrency_ceiling") or usage.get("batch_jobs") or usage.get("batch_jobs_resumed"):
        return ""
    if not usage["concurrency_cuts"]:
        return str(usage["concurrency_ceiling"])
    return (f"{usage['concurrency_ceiling']} → {usage['concurrency_lowest']} → {usage['concurrency_limit']} "
            f"(cuts {usage['concurrency_cuts']}, raises {usage['concurrency_raises']})")


def rule_coverage_markdown(coverage: dict) -> list[str]:
    """Rows per labelling rule among the generated prompts and the SFT rows, each under the
    minimum flagged: a rule few rows teach is one the model may not learn."""
    prompts, sft = coverage["prompts"], coverage["sft"]
    minimum = prompts["minimum"]
    lines = [f"**rows per labelling rule** (minimum {minimum}; ⚠ below it)", "",
             "| rule | generated prompts | SFT rows |", "|---|---:|---:|"]
    for rule, generated in prompts["rows_by_rule"].items():
        trained = sft["rows_by_rule"][rule]
        lines.append(f"| {rule} | {generated}{' ⚠' if generated < minimum else ''} "
                     f"| {trained}{' ⚠' if trained < minimum else ''} |")
    if sft["without_label"]:
        lines += ["", f"{sft['without_label']} SFT rows have no known label and count towards no rule."]
    return lines
