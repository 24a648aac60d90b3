"""Push a build's export, with its dataset card, to a dataset repo on the Hugging Face Hub.

    crucible push runs/support_triage-1a2b3c4d5e6f/export me/support-triage-synthetic --private
    crucible push EXPORT REPO_ID --dry-run            # what would go, and where; sends nothing
    crucible push EXPORT REPO_ID --to-folder PATH     # the repo as the Hub would hold it, locally

Nothing leaves the machine before the export is verified whole: its `manifest.json` is
there, every file it lists is there with the sha256 it records, no file it does not list
is there, and the dataset card (`README.md`, written by the build) is one of them. The
files then go up in one commit (`HfApi.create_commit`) to the dataset repo REPO_ID,
created if missing (`--private` for a new one), on `--revision` (a branch, created from
main if missing). The token is read from `HF_TOKEN`; `HF_ENDPOINT` points at another Hub.

Every failure (an export that is missing or not whole, no token, the Hub refusing or out
of reach) is one `error:` line and exit 2, with nothing half-sent: a commit is whole or
not made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client: a network failure comes as its HTTPError
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from datagen.foundation.export_layout import CARD_FILE
from datagen.foundation.hashing import file_sha256
from datagen.foundation.run_store import MANIFEST, usual_mode
from flows.job_main import job_main


class PushRefused(ValueError):
    """An export that must not be pushed, or a push that cannot start; the message says why."""


def verified_files(export: Path) -> list[str]:
    """The export's files, `manifest.json` last, once each listed file's sha256 matches and
    nothing unlisted is there; raises `PushRefused` otherwise."""
    manifest_path = export / MANIFEST
    if not export.is_dir():
        raise PushRefused(f"{export}: no such export folder")
    if not manifest_path.is_file():
        raise PushRefused(f"{export}: no {MANIFEST}: not a finished export (the build writes it last)")
    try:
        listed = json.loads(manifest_path.read_text())["outputs"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise PushRefused(f"{manifest_path}: not an export manifest ({error})") from None
    problems = [f"{name}: missing" for name in listed if not (export / name).is_file()]
    problems += [f"{name}: sha256 {file_sha256(export / name)} is not the manifest's {entry['sha256']}"
                 for name, entry in listed.items()
                 if (export / name).is_file() and file_sha256(export / name) != entry["sha256"]]
    present = {p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()}
    problems += [f"{name}: not listed in the manifest" for name in sorted(present - set(listed) - {MANIFEST})]
    if problems:
        raise PushRefused(f"{export}: not the export its manifest describes:\n  " + "\n  ".join(problems))
    if CARD_FILE not in listed:
        raise PushRefused(f"{export}: no dataset card ({CARD_FILE}): the export was made before crucible wrote "
                             "cards; remove the folder and run the build again to make it with one")
    return sorted(listed) + [MANIFEST]


def copy_to_folder(export: Path, files: list[str], target: Path) -> None:
    """The files into `target` (new or empty) as the Hub repo would hold them, whole or not at all."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PushRefused(f"{target}: exists and is not an empty folder; name a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    for name in files:
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export / name, partial / name)
    usual_mode(partial, directory=True)
    if target.exists():
        target.rmdir()
    os.replace(partial, target)


def push_to_hub(api: HfApi, export: Path, files: list[str], repo_id: str, private: bool,
                revision: str | None) -> str:
    """`files` as one commit to the dataset repo; returns the commit's URL. One commit, not
    `upload_folder`: with hf_xet installed, huggingface_hub 2.4's `upload_folder` streams a
    folder in several commits (a batch older than five minutes is committed on its own), so
    a push cut short could leave a card describing files that never arrived."""
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    run_id = json.loads((export / MANIFEST).read_text())["run_id"]
    commit = api.create_commit(
        repo_id, repo_type="dataset", revision=revision,
        operations=[CommitOperationAdd(path_in_repo=name, path_or_fileobj=export / name) for name in files],
        commit_message=f"crucible export of run {run_id}",
        commit_description="Every file verified against the export's manifest.json before the push.")
    return commit.commit_url


def _listing(export: Path, files: list[str]) -> str:
    return "\n".join(f"  {name}  {(export / name).stat().st_size} bytes" for name in files)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export", type=Path, help="a build's export folder, runs/<run_id>/export")
    parser.add_argument("repo_id", help="the dataset repo, <user or org>/<name>")
    parser.add_argument("--private", action="store_true", help="make the repo private if it is new")
    parser.add_argument("--revision", default=None, help="the branch to commit to (made if missing; default main)")
    parser.add_argument("--dry-run", action="store_true", help="list what would go and where; send nothing")
    parser.add_argument("--to-folder", type=Path, default=None, metavar="PATH",
                        help="write the repo's files into PATH (new or empty) instead of the Hub")


def run(args: argparse.Namespace, connect: Callable[[str], HfApi] = lambda token: HfApi(token=token)) -> int:
    """`connect(token)`: the Hub client (another endpoint's, in tests)."""
    try:
        validate_repo_id(args.repo_id)
        files = verified_files(args.export)
        where = f"datasets/{args.repo_id}@{args.revision or 'main'}" + (" (private)" if args.private else "")
        if args.dry_run:
            print(f"would push {len(files)} files of {args.export} to {where}:\n{_listing(args.export, files)}")
            return 0
        if args.to_folder is not None:
            copy_to_folder(args.export, files, args.to_folder)
            print(f"wrote {len(files)} verified files of {args.export} to {args.to_folder}, as {where} would hold them")
            return 0
        token = os.environ.get("HF_TOKEN")
        if not token:
            raise PushRefused("HF_TOKEN is not set: make a write token at https://huggingface.co/settings/tokens "
                              "and export HF_TOKEN=... (or use --to-folder)")
    except (PushRefused, HFValidationError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        url = push_to_hub(connect(token), args.export, files, args.repo_id, args.private, args.revision)
    except (httpx2.HTTPError, OSError) as error:  # the Hub refused (HfHubHTTPError) or was out of reach
        print(f"error: pushing to {where} failed, no commit was made: {error}", file=sys.stderr)
        return 2
    print(f"pushed {len(files)} verified files of {args.export} to {where}: {url}")
    return 0


main = job_main(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
