"""The dedupe flow on Prefect's thread pool and on a Dask LocalCluster gives the same
result as the plain function: sharding changes where batches run, not what they decide."""

import json

import pytest

from datagen.dedupe.dedupe_files import DedupeFileConfig, dedupe_file
from datagen.dedupe.minhash_dedup import MinhashDedupConfig
from flows.dedupe_flow import dedupe_file_flow
from flows.task_runners import task_runner

pytestmark = pytest.mark.usefixtures("prefect_harness")

BASE = [
    "the quick brown fox jumps over the lazy dog near the river bank at dawn",
    "a support ticket about a parcel that never arrived at the customer's house",
    "invoices must list every line item with its quantity and unit price",
]


def corpus(tmp_path):
    rows = []
    for i in range(40):
        text = BASE[i % 3] + f" copy {i // 3}" if i % 4 else f"unique row number {i} " + " ".join(
            f"w{i}x{j}" for j in range(12))
        rows.append({"id": i, "text": text})
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("dask", [None, "local"])
def test_the_flow_matches_the_function_on_threads_and_on_dask(tmp_path, dask):
    path = corpus(tmp_path)
    config = DedupeFileConfig(text_field="text", id_field="id", batch_size=7,
                              minhash=MinhashDedupConfig(ngram=3, threshold=0.7))
    expected = dedupe_file(path, tmp_path / "plain", config, processes=1)
    flow = dedupe_file_flow.with_options(task_runner=task_runner(dask, 2))
    summary = flow(path, tmp_path / "flow", config)
    assert (summary["kept"], summary["removed"]) == (expected["kept"], expected["removed"])
    assert summary["removed"]["near"] > 0
    assert (tmp_path / "flow" / "kept.jsonl").read_text() == (tmp_path / "plain" / "kept.jsonl").read_text()
    assert (tmp_path / "flow" / "removed.jsonl").read_text() == (tmp_path / "plain" / "removed.jsonl").read_text()
