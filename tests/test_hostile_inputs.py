"""The hurried and hostile user: Ctrl-C in the terminal, files edited between runs, a
5 MB prompt, a binary recipe, a missing or empty import, a corrupt parquet file.

Each case runs the real command the way a user does (a subprocess in its own session,
signals to its process group) or the real flow against the scripted teacher on loopback
(tests/scripted_teacher.py), which counts every request it receives.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import psutil
import pytest

from datagen.filters.prompt_length import prompt_bound
from datagen.serving.endpoint import EndpointConfig
from datagen.tasks.support_triage import TASK
from flows.build_dataset import BuildDatasetRecipe, build_dataset
from tests.scripted_teacher import ScriptedTeacher

REPO = Path(__file__).parent.parent
HANG_GUARD_S = 300  # not a timing assertion: a stop that hangs fails here instead of blocking the suite


def user_env() -> dict[str, str]:
    # A user's shell: no Prefect API configured, so the command brings its own server.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PREFECT_API_URL", None)
    return env


def crucible(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=user_env(), timeout=HANG_GUARD_S)


class Descendants:
    """Every process the command starts, seen while it runs (a server leaves the
    command's session by design, so the session alone would not find it)."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.seen = process, {}
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        parent = psutil.Process(self.process.pid)
        while self.process.poll() is None:
            try:
                for child in parent.children(recursive=True):
                    # The latest command line: a child seen between fork and exec still
                    # shows its parent's, and would otherwise be remembered as that.
                    self.seen[child.pid] = (child, " ".join(child.cmdline()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    def commands(self) -> list[str]:
        return [command for _, command in self.seen.values()]

    def alive_after_exit(self, session: int) -> list[str]:
        self._thread.join(timeout=10)
        alive = [command for child, command in self.seen.values()
                 if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
        for other in psutil.process_iter(["pid"]):
            try:
                if os.getsid(other.pid) == session:
                    alive.append(" ".join(other.cmdline()))
            except (ProcessLookupError, psutil.Error):
                pass
        return alive


def scripted_recipe(path: Path, tmp_path: Path, base_url: str, **teacher) -> Path:
    settings = ", ".join(f"{k}: {v}" for k, v in teacher.items())
    path.write_text(
        "task: datagen.tasks.support_triage:TASK\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
        "prompts: {count: 12, seed: 3}\n"
        f"distill: {{samples_per_prompt: 3, cache_path: {tmp_path / 'cache.sqlite'}, "
        f"teachers: [{{base_url: '{base_url}', model: scripted, concurrency: 2{', ' if settings else ''}{settings}}}]}}\n"
    )
    return path


def stop_while_answering(command: list[str], ready, signal_to: str, signum: int):
    """Start the command as a terminal would, wait until `ready()`, signal it; return
    (exit code, stderr, seconds from the signal to the exit, what was left running)."""
    build = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                             env=user_env(), start_new_session=True)
    descendants = Descendants(build)
    deadline = time.monotonic() + HANG_GUARD_S
    while not ready() and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert build.poll() is None, build.communicate()[1][-3000:]
    signalled = time.monotonic()
    if signal_to == "group":  # Ctrl-C in a terminal: the whole foreground process group
        os.killpg(build.pid, signum)
    else:
        build.send_signal(signum)
    _, stderr = build.communicate(timeout=HANG_GUARD_S)
    seconds = time.monotonic() - signalled
    return build.returncode, stderr, seconds, descendants


@pytest.mark.parametrize(("signal_to", "signum"), [("group", signal.SIGINT), ("build", signal.SIGTERM)])
def test_ctrl_c_or_sigterm_stops_the_build_at_once_with_130_and_leaves_nothing_running(tmp_path, signal_to, signum):
    """A local server's slow answers are abandoned, not waited for (nothing is paid)."""
    labels = {t.text: t.label for t in TASK.generate(12, 3)}
    with ScriptedTeacher(lambda prompt, k: json.dumps(labels[prompt]), answer_delay_s=60) as teacher:
        path = scripted_recipe(tmp_path / "recipe.yaml", tmp_path, teacher.base_url)
        command = [sys.executable, "-m", "flows.build_dataset", "--recipe", str(path)]
        code, stderr, seconds, descendants = stop_while_answering(
            command, lambda: len(teacher.requests) >= 2, signal_to, signum)
        sent = len(teacher.requests)
    name = signal.Signals(signum).name
    print(f"{name} to the {signal_to}: exit {code} after {seconds:.1f} s")
    assert code == 130, stderr[-3000:]
    assert re.search(rf"^stopped: {name} received; 0 of 36 answers are cached, run the same command again to "
                     "resume$", stderr, re.MULTILINE), stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    assert sent == 2  # the two in flight; nothing was sent after the signal
    assert any("prefect.server.api.server:create_app" in c for c in descendants.commands())
    assert descendants.alive_after_exit(session=descendants.process.pid) == []


@pytest.mark.slow
def test_ctrl_c_with_the_embedded_teacher_answering_stops_its_server_too(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "task: datagen.tasks.support_triage:TASK\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
        "prompts: {count: 6, seed: 3}\n"
        "prompt_dedupe: {exact: true, minhash: null}\n"
        f"distill: {{samples_per_prompt: 2, cache_path: {tmp_path / 'cache.sqlite'}, "
        "teachers: [{concurrency: 4, sampling: {max_tokens: 96}}]}\n"
    )
    def answering() -> bool:
        logs = list((tmp_path / "runs").glob("*/logs/vllm-server.log"))
        return bool(logs) and "POST /v1/chat/completions" in logs[0].read_text(errors="replace")

    code, stderr, seconds, descendants = stop_while_answering(
        [sys.executable, "-m", "flows.build_dataset", "--recipe", str(path)], answering, "group", signal.SIGINT)
    print(f"SIGINT to the group with the embedded teacher answering: exit {code} after {seconds:.1f} s")
    assert code == 130, stderr[-3000:]
    assert re.search(r"^stopped: SIGINT received; \d+ of 12 answers are cached", stderr, re.MULTILINE), stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    assert any("vllm.entrypoints.openai.api_server" in c and "SmolLM2-135M-Instruct" in c
               for c in descendants.commands())
    assert descendants.alive_after_exit(session=descendants.process.pid) == []


def test_a_failed_build_leaves_no_server_running(tmp_path):
    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    path = scripted_recipe(tmp_path / "recipe.yaml", tmp_path, dead, max_retries=0)
    build = subprocess.Popen([sys.executable, "-m", "flows.build_dataset", "--recipe", str(path)], cwd=REPO,
                             env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    descendants = Descendants(build)
    _, stderr = build.communicate(timeout=HANG_GUARD_S)
    assert build.returncode == 1 and "error: 36 of 36 requests failed after retries" in stderr, stderr[-3000:]
    assert any("prefect.server.api.server:create_app" in c for c in descendants.commands())
    assert descendants.alive_after_exit(session=build.pid) == []


# ---- the user's files ------------------------------------------------------------------


@pytest.fixture
def scripted_labels():
    labels = {t.text: t.label for t in TASK.generate(4, 9)}
    with ScriptedTeacher(lambda prompt, k: json.dumps(labels.get(prompt, {}))) as teacher:
        yield teacher


def imports_recipe(tmp_path: Path, teacher: ScriptedTeacher, imported: Path) -> BuildDatasetRecipe:
    return BuildDatasetRecipe.model_validate({
        "task": "datagen.tasks.support_triage:TASK",
        "runs_dir": str(tmp_path / "runs"),
        "prompts": {"count": 4, "seed": 9},
        "imports": [{"path": str(imported), "kind": "prompts"}],
        "distill": {"samples_per_prompt": 1, "cache_path": str(tmp_path / "cache.sqlite"),
                    "teachers": [{"base_url": teacher.base_url, "model": "scripted"}]},
    })


def asked(teacher: ScriptedTeacher) -> list[str]:
    return [request["messages"][-1]["content"] for request in teacher.requests]


@pytest.mark.usefixtures("prefect_harness")
def test_an_edited_import_file_is_imported_again_with_what_was_made_from_it(tmp_path, scripted_labels):
    imported = tmp_path / "mine.jsonl"
    imported.write_text(json.dumps({"prompt": "My kettle arrived with a dent. Order A-100300."}) + "\n")
    build = imports_recipe(tmp_path, scripted_labels, imported)
    first = build_dataset(build)
    run_dir = Path(first["run_dir"])
    generated_before = json.loads((run_dir / "prompts" / "manifest.json").read_text())

    imported.write_text(json.dumps({"prompt": "The lamp I ordered (A-100400) never came. Where is it?"}) + "\n")
    second = build_dataset(build)

    assert second["run_dir"] == first["run_dir"]  # the same recipe resumes the same run
    prompts = pl.read_parquet(run_dir / "imported" / "part-00000.parquet")["prompt"].to_list()
    assert prompts == ["The lamp I ordered (A-100400) never came. Where is it?"]
    assert "The lamp I ordered (A-100400) never came. Where is it?" in asked(scripted_labels)
    unique = pl.read_parquet(run_dir / "unique_prompts" / "part-00000.parquet")["prompt"].to_list()
    assert "My kettle arrived with a dent. Order A-100300." not in unique
    # What did not read the file is kept as it was.
    assert json.loads((run_dir / "prompts" / "manifest.json").read_text()) == generated_before


@pytest.mark.usefixtures("prefect_harness")
def test_a_5_mb_prompt_is_rejected_as_too_long_before_any_request(tmp_path, scripted_labels):
    huge = "Please read all of this. " * 200_000  # 5 MB on one line
    imported = tmp_path / "mine.jsonl"
    imported.write_text(json.dumps({"prompt": huge}) + "\n"
                        + json.dumps({"prompt": "My kettle arrived with a dent. Order A-100300."}) + "\n")
    summary = build_dataset(imports_recipe(tmp_path, scripted_labels, imported))

    assert huge not in asked(scripted_labels)
    assert len(scripted_labels.requests) == summary["counts"]["prompts after dedupe"] == 5
    assert summary["prompts rejected by reason"] == {"too_long": 1}
    rejects = pl.read_parquet(Path(summary["run_dir"]) / "unique_prompts" / "rejects-00000.parquet")
    assert rejects["prompt"].to_list() == [huge]
    # The scripted teacher is a remote endpoint to crucible: its tokens are estimated at 3
    # characters a token, against 8192 - 160 answer tokens - the system and few-shot turns.
    assert re.fullmatch(r"too_long: 1666667 tokens > \d{4} \(estimate at 3 characters a token\)",
                        rejects["detail"][0])


def test_the_embedded_teacher_counts_prompt_tokens_with_its_own_tokenizer(embedded_model):
    bound = prompt_bound(TASK, EndpointConfig(sampling={"max_tokens": 128}), few_shot=True, max_prompt_tokens=None)
    assert bound.counter.name == "SmolLM2-135M-Instruct tokenizer"
    system_and_shots = bound.counter.count_turns(TASK.messages("", few_shot=True))
    assert bound.max_tokens == 8192 - 128 - system_and_shots
    assert bound.reason_if_over("My kettle arrived with a dent.") is None
    assert bound.reason_if_over(" kettle" * 8000) == f"too_long: 8000 tokens > {bound.max_tokens} (SmolLM2-135M-Instruct tokenizer)"


# ---- bad input: exit 2, the file named, no traceback, nothing left behind --------------


def test_a_recipe_that_is_not_utf8_text_is_refused_naming_file_and_line(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(b"task: datagen.tasks.support_triage:TASK\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = crucible("build", "--recipe", str(recipe), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: {recipe}: not a YAML text file: byte 0x89 at line 2, column 1 is not UTF-8\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("content", "problem"), [(None, "no such file"), (b"", "the file is empty: no row to import"),
                                                  (b"\n\n", "the file is empty: no row to import")])
def test_a_missing_or_empty_import_file_is_refused_before_any_flow_starts(tmp_path, content, problem):
    imported = tmp_path / "mine.jsonl"
    if content is not None:
        imported.write_bytes(content)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: datagen.tasks.support_triage:TASK\n"
                      f"imports: [{{path: {imported}, kind: prompts}}]\n")
    result = crucible("build", "--recipe", str(recipe), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {recipe}: imports.0.path: {imported}: {problem}\n"
    assert not (tmp_path / "runs").exists()


def test_a_corrupt_parquet_file_given_to_dedupe_is_refused_and_writes_no_folder(tmp_path):
    good = tmp_path / "good.parquet"
    pl.DataFrame({"text": ["a ticket about a refund"] * 50}).write_parquet(good)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # cut off mid-file, as a copy can be
    result = crucible("dedupe", str(corrupt), "--text-field", "text", "--out", str(tmp_path / "out" / "deduped"),
                      cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"crucible dedupe: {corrupt}: cannot read as parquet: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
