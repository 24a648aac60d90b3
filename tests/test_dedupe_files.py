import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from datagen.dedupe.dedupe_files import DedupeFileConfig, dedupe_file
from datagen.dedupe.minhash_dedup import MinhashDedupConfig
from tests.conftest import read_jsonl

BASE = ("the espresso machine I ordered three weeks ago has still not arrived and nobody at the shop "
        "answers the phone or replies to my emails, so please tell me where my parcel is")
OTHER = "I was charged twice for my subscription this month and I want the extra charge refunded to my card"
THIRD = "how do I change the delivery address of an order that has already been shipped to the old address"

# Line 1..9 of the JSONL input; line 5 is blank, lines 6 and 8 are broken.
LINES = [
    json.dumps({"id": "t1", "text": BASE, "score": 0.2}),
    json.dumps({"id": "t2", "text": OTHER, "score": 0.9}),
    json.dumps({"id": "t3", "text": "  " + BASE.upper() + "  ", "score": 0.1}),  # exact, after normalization
    json.dumps({"id": "t4", "text": BASE + " today", "score": 0.7}),  # near: word 5-gram Jaccard 29/30
    "",
    '{"id": "t6", "text": "cut off',
    json.dumps({"id": "t7", "text": THIRD, "score": 0.3}),
    json.dumps({"id": "t8", "body": "no text field"}),
    json.dumps({"id": "t9", "text": OTHER + " please", "score": 0.4}),  # near: 15/16
]


@pytest.fixture
def jsonl_file(tmp_path) -> Path:
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return path


@pytest.fixture
def parquet_file(tmp_path) -> Path:
    rows = [json.loads(line) for line in LINES if line.startswith("{") and line.endswith("}")]
    path = tmp_path / "tickets.parquet"
    frame = pl.DataFrame(rows, schema={"id": pl.String, "text": pl.String, "score": pl.Float64, "body": pl.String})
    frame.drop("body").write_parquet(path)
    return path


def config(**overrides) -> DedupeFileConfig:
    return DedupeFileConfig(text_field="text", minhash=MinhashDedupConfig(ngram=5, **overrides.pop("minhash", {})),
                            **overrides)


def test_jsonl_keeps_lines_verbatim_and_names_duplicates_by_line(jsonl_file, tmp_path):
    summary = dedupe_file(jsonl_file, tmp_path / "out", config(), processes=1)
    out = tmp_path / "out"
    assert (out / "kept.jsonl").read_text().splitlines() == [LINES[0], LINES[1], LINES[6]]
    removed = [(r["id"], r["duplicate_of"], r["similarity"], r["method"]) for r in read_jsonl(out / "removed.jsonl")]
    assert removed == [("t3", 1, 1.0, "exact"), ("t4", 1, 0.9609, "near"), ("t9", 2, 0.9062, "near")]
    broken = read_jsonl(out / "broken.jsonl")
    assert [(b["line"], b["reason"][:9], b["raw"]) for b in broken] == [
        (6, "not JSON:", LINES[5]), (8, "no text i", LINES[7])
    ]
    assert broken[1]["reason"] == "no text in field 'text'"
    assert summary["rows"] == 8 and summary["kept"] == 3 and summary["broken"] == 2
    assert summary["removed"] == {"exact": 1, "near": 2}
    assert summary["clusters"] == {"with_duplicates": 2, "size_histogram": {"2": 1, "3": 1}}
    assert summary["duplicate_of"] == "line number of the kept row in the input (from 1)"
    assert summary["lsh"] == {"bands": 14, "rows": 9}
    assert json.loads((out / "summary.json").read_text()) == summary
    assert sorted(p.name for p in out.iterdir()) == ["broken.jsonl", "kept.jsonl", "removed.jsonl", "summary.json"]


def test_keep_quality_keeps_the_highest_score_and_names_it_by_id(jsonl_file, tmp_path):
    dedupe_file(jsonl_file, tmp_path / "out",
                config(minhash={"keep": "quality"}, score_field="score", id_field="id"), processes=1)
    kept = [r["id"] for r in read_jsonl(tmp_path / "out" / "kept.jsonl")]
    removed = [(r["id"], r["duplicate_of"], r["method"]) for r in read_jsonl(tmp_path / "out" / "removed.jsonl")]
    assert kept == ["t2", "t4", "t7"]
    assert removed == [("t1", "t4", "near"), ("t3", "t4", "near"), ("t9", "t2", "near")]


def test_keep_longest(jsonl_file, tmp_path):
    dedupe_file(jsonl_file, tmp_path / "out", config(minhash={"keep": "longest"}, id_field="id"), processes=1)
    assert [r["id"] for r in read_jsonl(tmp_path / "out" / "kept.jsonl")] == ["t4", "t7", "t9"]


def test_worker_processes_give_the_same_outputs(jsonl_file, tmp_path):
    dedupe_file(jsonl_file, tmp_path / "one", config(), processes=1)
    dedupe_file(jsonl_file, tmp_path / "two", config(batch_size=2), processes=2)
    for name in ("kept.jsonl", "removed.jsonl", "broken.jsonl"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()


def test_parquet_rows_are_named_by_index_and_null_texts_set_aside(tmp_path):
    path = tmp_path / "docs.parquet"
    pl.DataFrame({"text": [BASE, None, OTHER, BASE.lower()], "n": [1, 2, 3, 4]}).write_parquet(path)
    summary = dedupe_file(path, tmp_path / "out", config(), processes=1)
    out = tmp_path / "out"
    assert pl.read_parquet(out / "kept.parquet").to_dicts() == [{"text": BASE, "n": 1}, {"text": OTHER, "n": 3}]
    assert pl.read_parquet(out / "removed.parquet").to_dicts() == [
        {"text": BASE.lower(), "n": 4, "duplicate_of": 0, "similarity": 1.0, "method": "exact"}
    ]
    assert pl.read_parquet(out / "broken.parquet").to_dicts() == [
        {"text": None, "n": 2, "reason": "no text in field 'text'"}
    ]
    assert summary["duplicate_of"] == "row index of the kept row in the input (from 0)"


def test_missing_text_column_names_the_file_and_field(parquet_file, tmp_path):
    with pytest.raises(ValueError, match=r"tickets.parquet: no text column 'body'; its columns are id, text, score"):
        dedupe_file(parquet_file, tmp_path / "out", DedupeFileConfig(text_field="body"), processes=1)


def crucible(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flows.cli", "dedupe", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])


def test_cli_dedupes_jsonl(jsonl_file, tmp_path):
    result = crucible(str(jsonl_file), "--text-field", "text", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"8 rows: kept 3, removed 1 exact and 2 near duplicates, 2 broken; written to {tmp_path / 'out'}\n"
    assert len(read_jsonl(tmp_path / "out" / "removed.jsonl")) == 3


def test_cli_dedupes_parquet_with_options(parquet_file, tmp_path):
    result = crucible(str(parquet_file), "--text-field", "text", "--out", str(tmp_path / "out"), "--ngram", "3",
                      "--num-perm", "64", "--threshold", "0.97", "--id-field", "id")
    assert result.returncode == 0, result.stderr
    removed = pl.read_parquet(tmp_path / "out" / "removed.parquet")
    assert removed.select("id", "duplicate_of", "method").rows() == [("t3", "t1", "exact")]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["minhash"] == {"shingle": "word", "ngram": 3, "num_perm": 64, "threshold": 0.97,
                                                 "keep": "first", "seed": 1}


def test_cli_errors_name_the_file_and_field(jsonl_file, tmp_path):
    result = crucible(str(jsonl_file), "--text-field", "title", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr == (f"crucible dedupe: {jsonl_file}: no row has a readable text field 'title'; "
                             "line 1: no text in field 'title'\n")
    missing = crucible(str(tmp_path / "nope.jsonl"), "--text-field", "text", "--out", str(tmp_path / "out"))
    assert missing.returncode == 2 and missing.stderr == f"crucible dedupe: {tmp_path / 'nope.jsonl'}: no such file\n"
    bad = crucible(str(jsonl_file), "--text-field", "text", "--out", str(tmp_path / "out"), "--threshold", "1.5")
    assert bad.returncode == 2 and bad.stderr == "crucible dedupe: --threshold: Input should be less than 1\n"


def messages(system: str, *turns: str) -> list[dict]:
    return [{"role": "system", "content": system}] + [
        {"role": role, "content": text} for role, text in zip(["user", "assistant"] * 3, turns)]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_chat_field_is_deduped_on_every_turn_but_the_system_turn(tmp_path, suffix):
    chats = [
        {"id": "c1", "messages": messages("Be brief.", BASE, "Sorry, checking.", OTHER, "Refunded.")},
        {"id": "c2", "messages": messages("Another system prompt entirely.", BASE.upper(), "Sorry, checking.", OTHER,
                                          "Refunded.")},  # the same turns under another system prompt
        {"id": "c3", "messages": messages("Be brief.", BASE, "Sorry, checking.", THIRD, "Done.")},  # another turn 2
    ]
    path = tmp_path / f"chats{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(chat) + "\n" for chat in chats + [{"id": "c4", "messages": [1, 2]}]))
    else:
        pl.DataFrame(chats).write_parquet(path)
    summary = dedupe_file(path, tmp_path / "out", DedupeFileConfig(text_field="messages", id_field="id"), processes=1)
    kept = read_jsonl(tmp_path / "out" / "kept.jsonl") if suffix == ".jsonl" else pl.read_parquet(
        tmp_path / "out" / "kept.parquet").to_dicts()
    assert [chat["id"] for chat in kept] == ["c1", "c3"]
    assert (summary["removed"], summary["broken"]) == ({"exact": 1, "near": 0}, 1 if suffix == ".jsonl" else 0)
    if suffix == ".jsonl":
        (broken,) = read_jsonl(tmp_path / "out" / "broken.jsonl")
        assert broken["reason"] == "field 'messages' is a list but not a chat of role/content or from/value turns"
