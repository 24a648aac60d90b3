"""Benchmark: crucible's MinHash dedupe against datasketch and rensa, on real text with
planted near-duplicates of known Jaccard.

    .venv/bin/python -m tests.benchmarks.dedupe [--docs 100000] [--datasketch-docs N]

Corpus (offline, real text): paragraphs of the docstrings, comments and text files of
the Python standard library and the installed packages (Python sources, C/C++ headers,
READMEs, package METADATA), cleaned to prose (25 to 300 words, mostly alphabetic words,
code examples dropped) and exact-deduplicated: about 105,000 paragraphs with this
project's packages, cached under `runs/benchmarks/` (~45 s to build). A fifth of the
documents are planted near-duplicates: a copy of a base paragraph edited at random (a
word replaced, or added at either end) down to a target word 5-gram Jaccard spread
evenly over [0.3, 1.0), never an exact copy (`planted_copy`). Ground truth is the exact
Jaccard of the shingle sets (`minhash_dedup.shingles`) of every planted pair, of 20,000
random pairs, and of every pair a method joins.

Every method gets the same texts, the same shingle sets (word 5-grams of the normalized
text), num_perm=128, threshold 0.8 and the same LSH bands (14 x 9, weights 0.1/0.9;
rensa needs num_perm divisible by the bands and gets 16 x 8), and runs in a fresh
process that first loads the texts:

- crucible: `signatures` (vectorized, worker processes) + `cluster_near_duplicates`
  (bands, candidate pairs, verification, union-find), with 2 processes and with 1;
- datasketch: per document a `MinHash` fed with `update` per shingle, then
  `MinHashLSH.query` / `insert`, first seen wins (the loop its docs show); also the same
  loop with `update_batch`, for reference;
- rensa: per document `RMinHash.update(shingles)`, then `RMinHashLSH.query` / `insert`,
  first seen wins.

Reported per method: docs/s over signatures + LSH + clustering (shingling included for
the peers, who are given texts like crucible); peak memory as the growth of the
process's peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) over its RSS after
loading the texts, and the largest worker's peak RSS (`RUSAGE_CHILDREN`) where there are
workers (forked: it includes the parent's pages the worker touches, such as the texts); recall = share of planted pairs with true J >= 0.85 that end in one cluster;
precision = share of joined pairs (each removed document with its kept one) whose true
J > 0.5; and the share of planted pairs with J <= 0.5 and of random pairs wrongly joined.
Targets (issue #5): >= 10x the datasketch loop, >= 0.3x rensa (single-threaded), recall
and precision >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from datagen.dedupe.minhash_dedup import LSH_WEIGHTS, MinhashDedupConfig, cluster_near_duplicates, shingles
from datagen.foundation.hashing import normalize_text

CONFIG = MinhashDedupConfig(ngram=5, num_perm=128, threshold=0.8)
CACHE = Path("runs/benchmarks")
MIN_WORDS, MAX_WORDS = 25, 300
TEXT_SUFFIXES = (".py", ".rst", ".md", ".txt", ".h", ".hpp", ".cuh")
PLANTED_SHARE = 0.2
RANDOM_PAIRS = 20_000
_WORD = re.compile(r"[A-Za-z][a-z]+[.,;:]?$")
_TRIPLE_QUOTED = re.compile(r"(?s)(\"\"\"|\'\'\')(.*?)\1")
_HASH_BLOCK = re.compile(r"(?m)(?:^[ \t]*#.*\n)+")
_SLASH_BLOCK = re.compile(r"(?m)(?:^[ \t]*//.*\n)+")
_STAR_BLOCK = re.compile(r"(?s)/\*(.*?)\*/")


# ---- corpus ----------------------------------------------------------------------------


def prose_paragraphs(text: str) -> list[str]:
    """Paragraphs of running prose: no code examples or tables, mostly real words."""
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.splitlines()]
        if any(line.startswith((">>>", "...", "$ ", "|", "+--", "==", "--")) for line in lines):
            continue
        words = " ".join(lines).split()
        if len(words) < MIN_WORDS or sum(bool(_WORD.match(w)) for w in words) < 0.7 * len(words):
            continue
        found.append(" ".join(words[:MAX_WORDS]))
    return found


def comment_texts(source: str, suffix: str) -> list[str]:
    """The prose-bearing parts of a source file: Python's triple-quoted strings and
    comment blocks, C/C++ headers' comment blocks; a text file whole."""
    if suffix == ".py":
        return ([m.group(2) for m in _TRIPLE_QUOTED.finditer(source)]
                + [_strip_marks(m.group(0), "#") for m in _HASH_BLOCK.finditer(source)])
    if suffix in (".h", ".hpp", ".cuh"):
        return ([_strip_marks(m.group(0), "//+") for m in _SLASH_BLOCK.finditer(source)]
                + [_strip_marks(m.group(1), r"\*+") for m in _STAR_BLOCK.finditer(source)])
    return [source]


def _strip_marks(block: str, mark: str) -> str:
    return "\n".join(re.sub(r"^[ \t]*" + mark + r"[ \t]?", "", line) for line in block.splitlines())


def base_paragraphs() -> list[str]:
    """Distinct prose paragraphs of the stdlib and site-packages, in a fixed order (cached)."""
    cache = CACHE / "prose-paragraphs.jsonl"
    if cache.exists():
        return [json.loads(line) for line in cache.open()]
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    seen, paragraphs = set(), []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix not in TEXT_SUFFIXES and path.name not in ("METADATA", "PKG-INFO") or not path.is_file():
                continue
            try:
                source = path.read_text(errors="strict")
            except (UnicodeDecodeError, OSError):
                continue
            for text in comment_texts(source, path.suffix):
                for paragraph in prose_paragraphs(text):
                    key = normalize_text(paragraph)
                    if key not in seen:
                        seen.add(key)
                        paragraphs.append(paragraph)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(p) + "\n" for p in paragraphs))
    return paragraphs


def planted_copy(text: str, target: float, vocabulary: list[str], rng: random.Random) -> str:
    """A near-duplicate of `text` whose word 5-gram Jaccard with it is just above `target`
    (and below 1: never an exact copy). Random edits (a word replaced anywhere, or added at
    either end) are kept while the Jaccard stays at or above the target; ten edits in a
    row that would cross it end the copy. A replacement inside the text changes up to 5
    shingles, one at the ends fewer, so short texts can still land close to the target;
    a text no edit keeps above the target gets one word added at the end."""
    original = shingles(text, CONFIG.shingle, CONFIG.ngram)
    words, similarity, misses = text.split(), 1.0, 0
    while misses < 10:
        edited = list(words)
        choice = rng.random()
        if choice < 0.15:
            edited.append(rng.choice(vocabulary))
        elif choice < 0.3:
            edited.insert(0, rng.choice(vocabulary))
        else:
            edited[rng.randrange(len(edited))] = rng.choice(vocabulary)
        copy = shingles(" ".join(edited), CONFIG.shingle, CONFIG.ngram)
        if len(original & copy) / len(original | copy) >= target:
            words, similarity, misses = edited, len(original & copy) / len(original | copy), 0
        else:
            misses += 1
    if similarity == 1.0:  # every edit crossed the target: the gentlest one, a word added at the end
        words.append(rng.choice(vocabulary))
    return " ".join(words)


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a, CONFIG.shingle, CONFIG.ngram), shingles(b, CONFIG.shingle, CONFIG.ngram)
    return len(sa & sb) / len(sa | sb)


def build_corpus(n_docs: int) -> Path:
    """JSONL of {"text"} (the corpus, shuffled) plus the planted pairs and their Jaccard."""
    path = CACHE / f"dedupe-corpus-{n_docs}.jsonl"
    pairs_path = CACHE / f"dedupe-pairs-{n_docs}.json"
    if path.exists() and pairs_path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    n_planted = int(n_docs * PLANTED_SHARE)
    bases = base_paragraphs()[: n_docs - n_planted]
    if len(bases) < n_docs - n_planted:
        raise SystemExit(f"only {len(bases)} distinct prose paragraphs on this machine; ask for fewer --docs")
    rng = random.Random(5)
    vocabulary = sorted({w for text in bases[:5000] for w in text.split() if _WORD.match(w)})
    sources = rng.sample(range(len(bases)), n_planted)
    targets = [0.3 + 0.7 * k / n_planted for k in range(n_planted)]
    texts = bases + [planted_copy(bases[s], t, vocabulary, rng) for s, t in zip(sources, targets)]
    order = list(range(len(texts)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    planted = [(position[s], position[len(bases) + k]) for k, s in enumerate(sources)]
    planted_j = [jaccard(bases[s], texts[len(bases) + k]) for k, s in enumerate(sources)]
    random_pairs = [tuple(rng.sample(range(len(texts)), 2)) for _ in range(RANDOM_PAIRS)]
    with path.open("w") as out:
        for old in order:
            out.write(json.dumps({"text": texts[old]}) + "\n")
    shuffled = [texts[old] for old in order]
    pairs_path.write_text(json.dumps({
        "planted": [[a, b, j] for (a, b), j in zip(planted, planted_j)],
        "random": [[a, b, jaccard(shuffled[a], shuffled[b])] for a, b in random_pairs],
    }))
    return path


# ---- methods, each run in a fresh process ----------------------------------------------


def run_crucible(texts: list[str], processes: int) -> np.ndarray:
    from datagen.dedupe.minhash_signatures import signatures

    return cluster_near_duplicates(signatures(texts, CONFIG, processes=processes), CONFIG).representative


def first_seen_loop(texts: list[str], new_signature, new_lsh) -> np.ndarray:
    """Query, then insert if no indexed document reaches the threshold: the peers' loop."""
    lsh, kept, representative = new_lsh(), {}, np.arange(len(texts))
    for index, text in enumerate(texts):
        signature = new_signature(shingles(text, CONFIG.shingle, CONFIG.ngram))
        matches = [(signature.jaccard(kept[key]), -key) for key in lsh.query(signature)]
        best = max(matches, default=(0.0, 0))
        if best[0] >= CONFIG.threshold:
            representative[index] = -best[1]
        else:
            lsh.insert(index, signature)
            kept[index] = signature
    return representative


def run_datasketch(texts: list[str], batch: bool) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    def signature(shingle_set):
        minhash = MinHash(num_perm=CONFIG.num_perm, seed=CONFIG.seed)
        if batch:
            minhash.update_batch([s.encode() for s in shingle_set])
        else:
            for s in shingle_set:
                minhash.update(s.encode())
        return minhash

    return first_seen_loop(texts, signature, lambda: MinHashLSH(
        threshold=CONFIG.threshold, num_perm=CONFIG.num_perm, weights=LSH_WEIGHTS))


def run_rensa(texts: list[str]) -> np.ndarray:
    from rensa import RMinHash, RMinHashLSH

    def signature(shingle_set):
        minhash = RMinHash(num_perm=CONFIG.num_perm, seed=CONFIG.seed)
        minhash.update(list(shingle_set))
        return minhash

    # rensa needs num_perm divisible by the bands: 16 x 8 is the nearest to 14 x 9 (a pair at
    # J=0.8 becomes a candidate with probability 0.95 instead of 0.87; at J=0.5 0.06 instead of 0.03).
    return first_seen_loop(texts, signature, lambda: RMinHashLSH(
        threshold=CONFIG.threshold, num_perm=CONFIG.num_perm, num_bands=16))


METHODS = {
    "crucible 2 processes": lambda texts: run_crucible(texts, 2),
    "crucible 1 process": lambda texts: run_crucible(texts, 1),
    "datasketch update loop": lambda texts: run_datasketch(texts, batch=False),
    "datasketch update_batch loop": lambda texts: run_datasketch(texts, batch=True),
    "rensa loop": run_rensa,
}


def measure(method: str, corpus: Path, docs: int, result: Path) -> None:
    """In a fresh process: load, run one method, write its clusters and resource use."""
    texts = [json.loads(line)["text"] for line in corpus.open()][:docs]
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    representative = METHODS[method](texts)
    seconds = time.perf_counter() - started
    np.save(result, representative)
    print(json.dumps({
        "seconds": seconds,
        "peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - loaded_kb) / 1024,
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))


# ---- scoring and report ----------------------------------------------------------------


def score(representative: np.ndarray, texts: list[str], truth: dict) -> dict:
    same = lambda a, b: representative[a] == representative[b]  # noqa: E731
    high = [(a, b) for a, b, j in truth["planted"] if j >= 0.85]
    low = [(a, b) for a, b, j in truth["planted"] if j <= 0.5]
    removed = np.flatnonzero(representative != np.arange(len(representative)))
    joined_j = [jaccard(texts[i], texts[representative[i]]) for i in removed.tolist()]
    return {
        "recall": sum(same(a, b) for a, b in high) / len(high),
        "precision": sum(j > 0.5 for j in joined_j) / max(len(joined_j), 1),
        "removed": len(removed),
        "low_joined": sum(same(a, b) for a, b in low) / len(low),
        "random_joined": sum(same(a, b) for a, b, _ in truth["random"]) / len(truth["random"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--datasketch-docs", type=int, default=None,
                        help="run the datasketch update loop on the first N docs only (it is slow)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure, args.corpus, args.docs, args.result)
        return 0

    started = time.perf_counter()
    corpus = build_corpus(args.docs)
    texts = [json.loads(line)["text"] for line in corpus.open()]
    truth = json.loads((CACHE / f"dedupe-pairs-{args.docs}.json").read_text())
    planted_j = np.array([j for _, _, j in truth["planted"]])
    print(f"corpus: {len(texts)} docs ({len(texts) - len(planted_j)} prose paragraphs from the stdlib and "
          f"site-packages + {len(planted_j)} planted near-duplicates), mean {np.mean([len(t.split()) for t in texts]):.0f} "
          f"words; built or loaded in {time.perf_counter() - started:.0f} s")
    print(f"ground truth (exact word 5-gram Jaccard): planted pairs J>=0.85: {(planted_j >= 0.85).sum()}, "
          f"0.5<J<0.85: {((planted_j > 0.5) & (planted_j < 0.85)).sum()}, J<=0.5: {(planted_j <= 0.5).sum()} "
          f"(J from {planted_j.min():.2f} to {planted_j.max():.3f}); "
          f"{len(truth['random'])} random pairs, max J {max(j for *_, j in truth['random']):.2f}")
    print(f"all methods: word 5-grams, num_perm={CONFIG.num_perm}, threshold={CONFIG.threshold}, "
          f"LSH {CONFIG.bands()[0]} bands x {CONFIG.bands()[1]} rows\n")
    header = (f"{'method':30} {'docs':>7} {'docs/s':>8} {'time s':>7} {'peak MB':>8} {'worker MB':>9} "
              f"{'recall':>7} {'precision':>9} {'removed':>8} {'J<=.5 joined':>12} {'random joined':>13}")
    print(header)
    rates = {}
    for method in args.methods.split(","):
        docs = args.docs
        if method == "datasketch update loop" and args.datasketch_docs:
            docs = args.datasketch_docs
        with tempfile.TemporaryDirectory() as folder:
            result = Path(folder) / "representative.npy"
            child = subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.dedupe", "--measure", method, "--corpus", str(corpus),
                 "--docs", str(docs), "--result", str(result)], capture_output=True, text=True)
            if child.returncode:
                raise SystemExit(f"{method} failed:\n{child.stderr}")
            stats = json.loads(child.stdout.strip().splitlines()[-1])
            representative = np.load(result)
        subset = {key: [p for p in pairs if max(p[0], p[1]) < docs] for key, pairs in truth.items()}
        quality = score(representative, texts[:docs], subset)
        rates[method] = docs / stats["seconds"]
        print(f"{method:30} {docs:>7} {rates[method]:>8.0f} {stats['seconds']:>7.1f} {stats['peak_mb']:>8.0f} "
              f"{stats['worker_peak_mb']:>9.0f} {quality['recall']:>7.4f} {quality['precision']:>9.4f} "
              f"{quality['removed']:>8} {quality['low_joined']:>12.4f} {quality['random_joined']:>13.5f}", flush=True)
    print()
    crucible = rates.get("crucible 2 processes")
    for peer, target in (("datasketch update loop", 10), ("datasketch update_batch loop", None), ("rensa loop", 0.3),
                         ("crucible 1 process", None)):
        if crucible and peer in rates:
            goal = f" (target >= {target}x)" if target else ""
            print(f"crucible (2 processes) / {peer}: {crucible / rates[peer]:.2f}x{goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
