"""`crucible push`: an export verified whole before anything goes, then committed to a fake of
the Hub on loopback by the real HfApi, or written to a local folder; every failure one
`error:` line and exit 2."""

import argparse
import os
import subprocess
import sys

import pytest
from huggingface_hub import DatasetCard, HfApi

from datagen.foundation.hashing import file_sha256
from datagen.serving.server_processes import free_loopback_port
from flows.push_export import add_arguments, run
from tests.fake_hub import FakeHub
from tests.literal_export import listed_outputs, write_literal_export


def push_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def export(tmp_path):
    return write_literal_export(tmp_path / "runs")


def sent_files(export) -> list[str]:
    return sorted([*listed_outputs(export), "manifest.json"])


def test_the_export_goes_up_whole_in_one_commit_with_its_card(export, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
    with FakeHub() as hub:
        code = run(push_args(str(export), "me/triage-synthetic", "--private", "--revision", "v1"),
                   connect=lambda token: HfApi(endpoint=hub.url, token=token))
    assert code == 0, capsys.readouterr().err
    assert hub.tokens == {"Bearer hf_fake_token"}
    [created] = hub.created
    assert (created["organization"], created["name"], created["type"], created["visibility"]) == (
        "me", "triage-synthetic", "dataset", "private")
    assert hub.branches == [("me/triage-synthetic", "v1")]
    [commit] = hub.commits
    assert (commit["repo"], commit["revision"], commit["summary"]) == ("me/triage-synthetic", "v1",
                                                                       "crucible export of run literal")
    assert sorted(commit["files"]) == sent_files(export)
    assert all(commit["files"][name] == (export / name).read_bytes() for name in commit["files"])
    assert capsys.readouterr().out.startswith(f"pushed 8 verified files of {export} to "
                                              "datasets/me/triage-synthetic@v1 (private): http://127.0.0.1:")


def test_to_folder_lays_the_repo_out_as_the_hub_would_hold_it(export, tmp_path, capsys):
    target = tmp_path / "repo"
    assert run(push_args(str(export), "me/triage-synthetic", "--to-folder", str(target))) == 0
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == sent_files(export)
    assert all(file_sha256(target / name) == sha for name, sha in listed_outputs(export).items())
    assert DatasetCard.load(target / "README.md").data.license == "unknown"
    # A folder with something in it is never written over.
    assert run(push_args(str(export), "me/triage-synthetic", "--to-folder", str(target))) == 2
    assert f"error: {target}: exists and is not an empty folder" in capsys.readouterr().err


def test_dry_run_lists_what_would_go_and_sends_nothing(export, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert run(push_args(str(export), "me/triage-synthetic", "--dry-run"),
               connect=lambda token: pytest.fail("a dry run connects to nothing")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"would push 8 files of {export} to datasets/me/triage-synthetic@main:\n")
    assert f"  README.md  {(export / 'README.md').stat().st_size} bytes" in out


@pytest.mark.parametrize("damage, message", [
    (lambda e: (e / "trl_sft" / "train.jsonl").write_text('{"id": "x"}\n'),
     "trl_sft/train.jsonl: sha256 {actual} is not the manifest's"),
    (lambda e: (e / "alpaca" / "train.jsonl").unlink(), "alpaca/train.jsonl: missing"),
    (lambda e: (e / "notes.txt").write_text("mine"), "notes.txt: not listed in the manifest"),
    (lambda e: (e / "manifest.json").unlink(), "no manifest.json: not a finished export"),
])
def test_an_export_that_is_not_whole_is_refused_before_anything_goes(export, monkeypatch, capsys, damage, message):
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
    damage(export)
    actual = file_sha256(export / "trl_sft" / "train.jsonl") if "sha256" in message else ""
    assert run(push_args(str(export), "me/triage-synthetic"),
               connect=lambda token: pytest.fail("nothing is sent from a broken export")) == 2
    assert message.format(actual=actual) in capsys.readouterr().err


def test_an_export_made_before_cards_is_refused(tmp_path, capsys):
    from datagen.foundation.run_store import RunStore

    store = RunStore(tmp_path / "runs", "old")
    store.write_stage("export", {}, config={}, inputs=[],
                      write_files=lambda folder: (folder / "trl_sft").mkdir() or (folder / "trl_sft" / "train.jsonl")
                      .write_text("{}\n"))
    assert run(push_args(str(store.stage_dir("export")), "me/x", "--dry-run")) == 2
    assert "no dataset card (README.md): the export was made before crucible wrote cards" in capsys.readouterr().err


def test_no_token_a_bad_repo_id_and_a_refusing_hub_are_one_error_line(export, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert run(push_args(str(export), "me/triage-synthetic")) == 2
    assert capsys.readouterr().err.startswith("error: HF_TOKEN is not set")
    assert run(push_args(str(export), "me/not/a/repo", "--dry-run")) == 2
    assert capsys.readouterr().err.startswith("error: Repo id must be in the form")
    monkeypatch.setenv("HF_TOKEN", "hf_revoked")
    with FakeHub(refuse_with=401) as hub:
        assert run(push_args(str(export), "me/triage-synthetic"),
                   connect=lambda token: HfApi(endpoint=hub.url, token=token)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pushing to datasets/me/triage-synthetic@main failed, no commit was made: ")
    assert "401" in err and hub.commits == []


def test_an_unreachable_hub_fails_closed_without_a_traceback(export):
    """The command as a user runs it, against an endpoint where nothing listens."""
    # The contamination embedder sets HF_HUB_OFFLINE=1 in this test process once an earlier test
    # loaded it (evals/contamination/prompt_embeddings.py); a user's shell has no such thing.
    environment = {name: value for name, value in os.environ.items() if name != "HF_HUB_OFFLINE"} | {
        "HF_TOKEN": "hf_fake_token", "HF_ENDPOINT": f"http://127.0.0.1:{free_loopback_port()}"}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "push", str(export), "me/triage-synthetic"],
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: pushing to datasets/me/triage-synthetic@main failed, no commit was made: ")
    assert "Connection refused" in done.stderr
