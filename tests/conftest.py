import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The real vLLM, without graph compilation: each test's server generates a few rows after
# its start, where compiling (and, on a fresh machine, the first compile) costs more than
# it saves (datagen/serving/vllm_server.py).
os.environ.setdefault("CRUCIBLE_VLLM_EAGER", "1")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API on a temporary database, shared by every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def one_torch_thread():
    """Tiny models' matmuls are too small to share between threads: on a busy 2-core
    machine each op waited ~8 ms for the second thread (0.1 ms on one)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    from datagen.serving.embedded_model import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_model(embedded_model, tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama with the real SmolLM2 tokenizer and chat template
    (`tests/tiny_model.py`).

    Fast enough to serve and train in tests; its answers are noise, which is what the
    build flow must reject with reasons.
    """
    from tests.tiny_model import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-llama"), embedded_model)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
