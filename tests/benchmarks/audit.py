"""Benchmark: crucible's contamination audit against lm-eval's `Janitor`, on real text.

    .venv/bin/python -m tests.benchmarks.audit [--train-mb 8] [--plants 100] [--embedding-mb 1] [--repeat 3]

Data, made offline and the same every run: the docstrings of installed packages (numpy,
scipy, torch, sympy, ...), split into paragraphs of at least 20 words, without a paragraph
that shares a 13-gram with an earlier one (libraries copy boilerplate between modules; the
only contamination should be the planted one). 1,000 paragraphs are the gold set (prompt: the paragraph; answer: the next
paragraph of the same docstring, if any); the others, shuffled, fill training rows of
about 1.5 KB (prompt: one paragraph; response: the next ones) up to `--train-mb`. Then
`--plants` gold prompts are planted verbatim, each as a paragraph inside another training
row's response.

Timed in the same run on the same in-memory rows (reading files is left out of both), the
fastest of `--repeat` runs each (the embedding run once):

- crucible's audit with `exact` and `ngram`, then adding `minhash`, then adding
  `embedding` on the first `--embedding-mb` of the training set (the sentence model reads
  about 150 short texts a second on these CPUs, so the whole set would take minutes);
- lm-eval 0.4.13's `Janitor(ngram_n=13)` in its pure-Python path (`clean_python`, its C++
  helper is not built): every gold prompt and answer registered as a contaminant, every
  training prompt and response cleaned; a row is flagged if cleaning changed it.

It prints MB/s of training text for each, crucible's n-gram audit over Janitor's (target
from issue 5: at least 5x), and how the two flagged sets agree on the planted rows and on
all rows.
"""

from __future__ import annotations

import argparse
import inspect
import random
import re
import time
from pathlib import Path

import numpy as np

from evals.contamination.audit import AuditConfig, audit
from evals.contamination.audit_inputs import AuditRow

# Many packages, each up to an equal share, so that no one project's boilerplate dominates.
PACKAGES = ("numpy", "scipy", "sklearn", "pandas", "matplotlib", "sympy", "networkx", "torch", "transformers",
            "datasets", "polars", "pydantic", "prefect", "sqlalchemy", "distributed", "dask", "jinja2", "rich",
            "setuptools", "pip", "pygments", "docutils", "alembic", "mako", "tornado", "aiohttp", "httpx")
GOLD_ROWS = 1000
MIN_WORDS = 20
ROW_BYTES = 1500
SEED = 5
NGRAM = 13
_DOCSTRING = re.compile(r'"""(.*?)"""', re.DOTALL)
_WORD = re.compile(r"\w+")


def docstring_paragraphs(target_bytes: int) -> list[list[str]]:
    """Triple-quoted strings of installed packages (docstrings, mostly), each as its list of
    prose paragraphs. A paragraph that shares a 13-gram with an earlier one is left out:
    libraries copy boilerplate between modules, and the only contamination in the data
    should be the planted one."""
    site = Path(np.__file__).resolve().parents[1]
    packages = [site / name for name in PACKAGES if (site / name).is_dir()]
    share = 2 * target_bytes // len(packages)  # twice an equal share: some packages have little
    docs, seen, total = [], set(), 0
    for package in packages:
        size = 0
        for path in sorted(package.rglob("*.py")):
            if size >= share or total + size >= target_bytes:
                break
            for literal in _DOCSTRING.findall(path.read_text(encoding="utf-8", errors="replace")):
                paragraphs = []
                for paragraph in inspect.cleandoc(literal).split("\n\n"):
                    words = _WORD.findall(paragraph.lower())
                    grams = {hash(tuple(words[i : i + NGRAM])) for i in range(len(words) - NGRAM + 1)}
                    if len(words) < MIN_WORDS or ">>>" in paragraph or not grams.isdisjoint(seen):
                        continue
                    seen |= grams
                    paragraphs.append(paragraph.strip())
                    size += len(paragraphs[-1].encode())
                if paragraphs:
                    docs.append(paragraphs)
        total += size
    return docs


def build(train_mb: float, plants: int) -> tuple[list[AuditRow], list[AuditRow], set[str]]:
    rng = random.Random(SEED)
    docs = docstring_paragraphs(int(train_mb * 1e6 * 1.3) + 2_000_000)
    rng.shuffle(docs)
    gold, rest = [], []
    for paragraphs in docs:
        if len(gold) < GOLD_ROWS and len(paragraphs) >= 1:
            answer = paragraphs[1] if len(paragraphs) > 1 else ""
            gold.append(AuditRow(f"gold-{len(gold)}", f"gold:{len(gold) + 1}", paragraphs[0], answer))
            rest.extend(paragraphs[2:])
        else:
            rest.extend(paragraphs)
    rows, size, current = [], 0, []
    for paragraph in rest:
        current.append(paragraph)
        if sum(len(p) for p in current) >= ROW_BYTES:
            rows.append(current)
            size += sum(len(p.encode()) for p in current)
            current = []
        if size >= train_mb * 1e6:
            break
    planted = set()
    for gold_row, row_index in zip(rng.sample(gold, plants), rng.sample(range(len(rows)), plants)):
        rows[row_index].insert(rng.randrange(1, len(rows[row_index]) + 1), gold_row.prompt)
        planted.add(f"train:{row_index + 1}")
    train = [AuditRow(f"train-{i + 1}", f"train:{i + 1}", row[0], "\n\n".join(row[1:])) for i, row in enumerate(rows)]
    return gold, train, planted


def megabytes(rows: list[AuditRow]) -> float:
    return sum(len(r.prompt.encode()) + len(r.answer.encode()) for r in rows) / 1e6


def run_janitor(gold: list[AuditRow], train: list[AuditRow]) -> tuple[float, set[str]]:
    from lm_eval.decontamination.janitor import Janitor

    started = time.perf_counter()
    janitor = Janitor(ngram_n=13)
    for row in gold:
        for text in (row.prompt, row.answer):
            if text:
                janitor.register_contaminant_python(text)  # `register_contaminant` prints per call
    # `clean_python` returns the text's clean slices, and drops a text under 200 characters
    # even when clean, so its output cannot tell dirty from clean: record whether it found
    # contaminated n-grams on their way to `_split_chunks`. (Listing them reads every n-gram
    # of a dirty text where Janitor stops after 10 dirty ones; on clean text the work is equal.)
    found: list[bool] = []
    split = janitor._split_chunks

    def record(text, parts):
        parts = list(parts)
        found.append(bool(parts))
        return split(text, parts)

    janitor._split_chunks = record
    flagged = set()
    for row in train:
        for text in (row.prompt, row.answer):
            if text:
                janitor.clean_python(text)
                if found[-1]:
                    flagged.add(row.where)
    return time.perf_counter() - started, flagged


def run_crucible(gold, train, methods) -> tuple[float, set[str]]:
    started = time.perf_counter()
    result = audit(gold, train, AuditConfig(methods=methods))
    return time.perf_counter() - started, set(result.flagged_train)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-mb", type=float, default=8.0)
    parser.add_argument("--plants", type=int, default=100)
    parser.add_argument("--embedding-mb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each n-gram audit; the fastest counts")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    gold, train, planted = build(args.train_mb, args.plants)
    size = megabytes(train)
    print(f"data: {len(gold)} gold rows, {len(train)} training rows, {size:.2f} MB of training text, "
          f"{len(planted)} verbatim plants (built from docstrings in {time.perf_counter() - started:.1f} s)")

    def best_of(run):  # the least disturbed of `--repeat` runs: this machine is shared
        runs = [run() for _ in range(args.repeat)]
        return min(seconds for seconds, _ in runs), runs[0][1]

    results = {"lm-eval Janitor(13), Python": (*best_of(lambda: run_janitor(gold, train)), size)}
    for name, methods in (("crucible exact+ngram", ["exact", "ngram"]),
                          ("crucible exact+ngram+minhash", ["exact", "ngram", "minhash"])):
        results[name] = (*best_of(lambda: run_crucible(gold, train, methods)), size)
    subset, subset_size = [], 0.0
    for row in train:
        if subset_size >= args.embedding_mb:
            break
        subset.append(row)
        subset_size += megabytes([row])
    if subset:
        from evals.contamination.prompt_embeddings import embed_texts

        embed_texts(["load the model before timing"])
        seconds, flagged = run_crucible(gold, subset, ["exact", "ngram", "minhash", "embedding"])
        results[f"crucible all four methods (first {subset_size:.2f} MB)"] = (seconds, flagged, subset_size)

    print(f"\n{'audit':<48}{'seconds':>9}{'MB/s':>9}{'flagged':>9}{'plants':>9}")
    for name, (seconds, flagged, scanned) in results.items():
        found = len(flagged & planted)
        print(f"{name:<48}{seconds:>9.2f}{scanned / seconds:>9.2f}{len(flagged):>9}{found:>9}")
    ours = results["crucible exact+ngram"]
    theirs = results["lm-eval Janitor(13), Python"]
    print(f"\ncrucible n-gram audit / Janitor: {theirs[0] / ours[0]:.1f}x (target: at least 5x)")
    mine, janitor = ours[1], theirs[1]
    print(f"verbatim plants ({len(planted)}): both {len(planted & mine & janitor)}, crucible only "
          f"{len((planted & mine) - janitor)}, Janitor only {len((planted & janitor) - mine)}, "
          f"neither {len(planted - mine - janitor)}")
    print(f"all flagged rows: both {len(mine & janitor)}, crucible only {len(mine - janitor)}, "
          f"Janitor only {len(janitor - mine)}")


if __name__ == "__main__":
    main()
