import json
import os
import stat

import polars as pl
import pytest

from datagen.foundation.hashing import file_sha256
from datagen.foundation.run_store import RunStore, write_text_atomic


def test_stage_is_written_with_manifest_and_read_back(tmp_path):
    store = RunStore(tmp_path, "run1")
    frame = pl.DataFrame({"x": [1, 2, 3]})
    store.write_stage("first", {"part": frame}, config={"k": 1}, inputs=[])
    manifest = store.write_stage(
        "second", {"part": frame.head(1), "rejects": frame.tail(2)}, config={}, inputs=["first"]
    )
    assert store.read("second", "rejects")["x"].to_list() == [2, 3]
    assert manifest["counts"] == {"part": 1, "rejects": 2}
    assert manifest["inputs"] == {"first": file_sha256(tmp_path / "run1" / "first" / "manifest.json")}
    on_disk = json.loads((tmp_path / "run1" / "second" / "manifest.json").read_text())
    assert on_disk["outputs"]["part-00000.parquet"]["sha256"] == file_sha256(
        tmp_path / "run1" / "second" / "part-00000.parquet"
    )


def test_a_stage_that_fails_midway_leaves_nothing_that_looks_complete(tmp_path):
    store = RunStore(tmp_path, "run1")

    def crash(folder):
        (folder / "half.jsonl").write_text('{"a": 1}\n')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.write_stage("export", {"part": pl.DataFrame({"x": [1]})}, config={}, inputs=[], write_files=crash)
    assert not store.is_complete("export")
    assert not (tmp_path / "run1" / "export").exists()
    with pytest.raises(FileNotFoundError, match="has not completed"):
        store.read("export")
    # The retry clears the leftover partial folder and succeeds.
    store.write_stage("export", {"part": pl.DataFrame({"x": [1]})}, config={}, inputs=[])
    assert [p.name for p in (tmp_path / "run1").iterdir()] == ["export"]


def test_a_completed_stage_is_never_overwritten(tmp_path):
    store = RunStore(tmp_path, "run1")
    store.write_stage("s", {"part": pl.DataFrame({"x": [1]})}, config={}, inputs=[])
    with pytest.raises(FileExistsError):
        store.write_stage("s", {"part": pl.DataFrame({"x": [2]})}, config={}, inputs=[])


def test_an_input_stage_must_be_complete(tmp_path):
    with pytest.raises(FileNotFoundError, match="input stage 'missing'"):
        RunStore(tmp_path, "r").write_stage("s", {}, config={}, inputs=["missing"])


def test_stage_folders_and_reports_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        store = RunStore(tmp_path, "r")
        store.write_stage("s", {"part": pl.DataFrame({"a": [1]})}, config={}, inputs=[])
        write_text_atomic(tmp_path / "report.html", "<p>hi</p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.stage_dir("s").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644


def test_removing_a_stage_removes_what_was_made_from_it_dependents_first(tmp_path):
    store = RunStore(tmp_path, "run-1")
    table = {"part": pl.DataFrame({"x": [1]})}
    store.write_stage("imported", table, config={}, inputs=[])
    store.write_stage("prompts", table, config={}, inputs=[])
    store.write_stage("unique", table, config={}, inputs=["prompts", "imported"])
    store.write_stage("answers", table, config={}, inputs=["unique"])
    store.write_stage("pairs", table, config={}, inputs=["answers", "imported"])

    assert store.remove_stage("imported") == ["pairs", "answers", "unique", "imported"]
    assert [p.name for p in tmp_path.joinpath("run-1").iterdir()] == ["prompts"]
