"""`crucible gold ...`: the labelers' page and the gold sets' life cycle.

    crucible gold add-user NAME --role labeler|reviewer|admin    prints the secret once
    crucible gold create-set SET --task datagen.tasks.support_triage:TASK [--labels-per-record K] [--purpose seed]
    crucible gold import SET FILE.jsonl [--text-field text] [--force-synthetic REASON]
    crucible gold serve [--host 127.0.0.1] [--port 8765] [--certfile PEM --keyfile PEM | --behind-https-proxy [IP]]
    crucible gold status SET                                     progress and agreement
    crucible gold keygen --owner NAME [--key PATH]                 your signing key; trusts its public half
    crucible gold lock SET --as REVIEWER [--key PATH]             writes gold/sets/SET/v<N>/, signed; a seed
                                                                  set only when disjoint from the eval sets
    crucible gold sign SET [--key PATH]                            signs versions locked before signing
    crucible gold verify [gold/sets/SET/v<N> ...]                 exit 1 on any drift

Every command takes `--db` (the labeling database, default gold/work/labeling.sqlite3)
and `--gold-root` (default gold/sets). Locking a seed set needs the contamination audit,
which sits above gold: `crucible` (flows/cli.py) hands it to `run` as `seed_check`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from gold.gold_sets import EVAL, GOLD_ROOT, PURPOSES, VERSION_FOLDER, GoldSetError
from gold.labeling_store import DEFAULT_DB, ROLES, LabelingStore, NotFound, User
from gold.seed_sets import SeedCheck
from gold.signing import KEY_ENV, default_key_path, load_signing_key

DEFAULT_PORT = 8765


def add_arguments(gold: argparse.ArgumentParser) -> None:
    actions = gold.add_subparsers(dest="gold_command", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"labeling database (default {DEFAULT_DB})")
        parser.add_argument("--gold-root", type=Path, default=GOLD_ROOT, help=f"gold sets folder (default {GOLD_ROOT})")
        return parser

    add_user = action("add-user", "create a labeler, reviewer or admin; prints their secret once")
    add_user.add_argument("name")
    add_user.add_argument("--role", choices=ROLES, required=True)
    add_user.add_argument("--secret-stdin", action="store_true", help="read the secret from stdin instead of generating one")

    create = action("create-set", "start a gold set for a task")
    create.add_argument("name")
    create.add_argument("--task", required=True, help="the task by import path, e.g. datagen.tasks.support_triage:TASK")
    create.add_argument("--labels-per-record", type=int, default=2, help="independent labels per record (default 2)")
    create.add_argument("--purpose", choices=PURPOSES, default=EVAL,
                        help="eval: measures fine-tunes, never trained on (default); seed: few-shot turns, "
                        "self-generation seeds and SFT anchors for builds, kept disjoint from the eval sets")

    imported = action("import", "add records to label from a JSONL file")
    imported.add_argument("name")
    imported.add_argument("file", type=Path)
    imported.add_argument("--text-field", default="text", help="the field holding the text to label (default text)")
    imported.add_argument("--source", default=None, help="where the rows come from (default: the file name)")
    imported.add_argument("--runs", type=Path, default=Path("runs"), help="crucible runs whose prompts are refused as synthetic")
    imported.add_argument("--force-synthetic", metavar="REASON", default=None,
                          help="import synthetic rows anyway, marked synthetic with this reason")

    serve = action("serve", "start the labelers' web page")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--certfile", type=Path, default=None,
                       help="TLS certificate (PEM): serve HTTPS; the session cookie is then Secure")
    serve.add_argument("--keyfile", type=Path, default=None, help="the certificate's private key (PEM)")
    serve.add_argument("--behind-https-proxy", metavar="PROXY_IP", nargs="?", const="127.0.0.1", default=None,
                       help="a TLS proxy at PROXY_IP (default 127.0.0.1) serves the page over HTTPS: the cookie is "
                            "Secure, and only that proxy's X-Forwarded-For names the client (never trusted otherwise)")

    status = action("status", "progress and agreement of a set")
    status.add_argument("name")

    key_help = f"your private signing key (default ${KEY_ENV} or {default_key_path()})"
    keygen = action("keygen", "create your private signing key (outside the repository) and trust its public key")
    keygen.add_argument("--owner", required=True, help="whose key it is, as the trusted list shows it")
    keygen.add_argument("--key", type=Path, default=None, help=key_help)
    keygen.add_argument("--trust-only", action="store_true",
                        help="the key exists: only add its public key to the gold root's trusted_keys.json")

    lock = action("lock", "write the approved records as the set's next locked version, signed")
    lock.add_argument("name")
    lock.add_argument("--as", dest="user", required=True, help="the reviewer or admin who locks it")
    lock.add_argument("--key", type=Path, default=None, help=key_help)

    sign = action("sign", "sign a set's existing versions (locked before versions were signed)")
    sign.add_argument("name")
    sign.add_argument("--key", type=Path, default=None, help=key_help)
    sign.add_argument("--owner", default=None, help="name shown for the key (default: as trusted)")

    verify = action("verify", "check every locked gold set (or the sets named) against its manifest and signature")
    verify.add_argument("versions", nargs="*", type=Path,
                        help="gold/sets/<set> or gold/sets/<set>/v<N> folders, each checked with its whole set "
                        "(default: all)")


def run(args: argparse.Namespace, seed_check: SeedCheck | None = None) -> int:
    if args.gold_command == "verify":
        return run_verify(args)
    if args.gold_command in ("keygen", "sign"):
        return run_keys(args)
    store = LabelingStore(args.db)
    who = f"cli:{getpass.getuser()}"
    try:
        if args.gold_command == "add-user":
            from gold.people import add_user

            secret = sys.stdin.readline().strip() if args.secret_stdin else None
            secret = add_user(store, who, args.name, args.role, secret)
            print(f"created {args.role} {args.name}" + ("" if args.secret_stdin else f"; secret (shown once): {secret}"))
        elif args.gold_command == "create-set":
            store.create_set(who, args.name, args.task, args.labels_per_record, args.purpose)
            print(f"created {args.purpose} set {args.name}; write its guidelines in "
                  f"{args.gold_root / args.name / 'GUIDELINES.md'}")
        elif args.gold_command == "import":
            return run_import(store, who, args)
        elif args.gold_command == "serve":
            return run_serve(args)
        elif args.gold_command == "status":
            from gold.app import set_agreement

            print(json.dumps({"progress": store.progress(args.name),
                              "agreement": set_agreement(store, args.name)["fields"]}, indent=1))
        elif args.gold_command == "lock":
            from gold.lock_gold_set import lock_gold_set
            from gold.people import users

            user = next((user for user in users(store) if user.name == args.user), None)
            if user is None:
                raise NotFound(f"no user {args.user}")
            key = load_signing_key(args.key or default_key_path(), user.name)
            folder = lock_gold_set(store, User(user.name, user.role), args.name, args.gold_root, key, seed_check)
            manifest = json.loads((folder / "manifest.json").read_text())
            print(f"locked {folder}: {manifest['records']} records, sha256 {manifest['sha256']}, signed by key {key.id}")
            if "disjoint_from_eval_sets" in manifest:
                proof = manifest["disjoint_from_eval_sets"]
                print(f"seed set disjoint from {', '.join(ref['set'] for ref in proof['eval_sets'])} "
                      f"({', '.join(proof['methods'])})")
    except (GoldSetError, NotFound, ValueError, OSError) as error:  # PermissionError is an OSError
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def run_import(store: LabelingStore, who: str, args: argparse.Namespace) -> int:
    from gold.import_records import import_records

    result = import_records(store, who, args.name, args.file, text_field=args.text_field, source=args.source,
                            runs_root=args.runs, force_synthetic_reason=args.force_synthetic)
    print(f"imported {len(result.imported)} records into {args.name}"
          + (f" ({len(result.synthetic)} marked synthetic)" if args.force_synthetic and result.synthetic else ""))
    if result.rejected:
        aside = args.db.parent / f"import-rejected-{args.name}-{args.file.stem}.jsonl"
        aside.write_text("".join(json.dumps(reject, ensure_ascii=False) + "\n" for reject in result.rejected))
        for reject in result.rejected[:20]:
            print(f"  {args.file} line {reject['line']}: {reject['reason']}")
        print(f"{len(result.rejected)} lines not imported; kept aside in {aside}")
    return 1 if result.rejected else 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gold.app import create_app

    if (args.certfile is None) != (args.keyfile is None):
        raise ValueError("--certfile and --keyfile go together: the certificate and its private key")
    if args.certfile and args.behind_https_proxy:
        raise ValueError("--certfile serves HTTPS itself; --behind-https-proxy says a proxy does: choose one")
    for path in (args.certfile, args.keyfile):
        if path is not None and not path.is_file():
            raise ValueError(f"{path}: no such file")
    https = bool(args.certfile or args.behind_https_proxy)
    if not https and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without HTTPS: secrets and session cookies cross the network in "
              "clear; pass --certfile/--keyfile, or --behind-https-proxy behind a TLS proxy", file=sys.stderr)
    print(f"labelers' page: {'https' if https else 'http'}://{args.host}:{args.port}/ (Ctrl-C stops)")
    # uvicorn trusts X-Forwarded-For/-Proto from 127.0.0.1 by default: a client on this
    # machine could then pose as any address and slip the login throttle.
    uvicorn.run(create_app(args.db, args.gold_root, https=https), host=args.host, port=args.port,
                log_level="warning", ssl_certfile=args.certfile, ssl_keyfile=args.keyfile,
                proxy_headers=args.behind_https_proxy is not None, forwarded_allow_ips=args.behind_https_proxy)
    return 0


def run_keys(args: argparse.Namespace) -> int:
    from gold.lock_gold_set import sign_gold_set
    from gold.signing import generate_key, trust_key

    path = args.key or default_key_path()
    try:
        if args.gold_command == "keygen":
            key = load_signing_key(path, args.owner) if args.trust_only else generate_key(path, args.owner)
            trusted = trust_key(args.gold_root, key)
            print(f"{'' if args.trust_only else f'private key {path} (owner-only; never commit it); '}"
                  f"key {key.id} of {args.owner} is trusted by {trusted}: commit that file, and review "
                  "every change to it, since it decides who can lock gold sets")
        else:
            key = load_signing_key(path, args.owner or "")
            print(f"signed {sign_gold_set(args.gold_root, args.name, key)} with key {key.id}")
    except GoldSetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _sets_by_root(folders: list[Path]) -> dict[Path, list[str]]:
    """The gold roots and sets that named set or version folders belong to: a version is
    verified with its whole set, since the set's signed list vouches for all of them, under
    the root whose trusted keys it was signed for."""
    found: dict[Path, set[str]] = {}
    for folder in map(Path, folders):
        set_folder = folder.parent if VERSION_FOLDER.match(folder.name) else folder
        found.setdefault(set_folder.parent, set()).add(set_folder.name)
    return {root: sorted(names) for root, names in found.items()}


def run_verify(args: argparse.Namespace) -> int:
    from gold.gold_root import gold_root_problems

    try:
        results = {}
        for root, sets in (_sets_by_root(args.versions) if args.versions else {args.gold_root: None}).items():
            results |= gold_root_problems(root, sets)
    except GoldSetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not results:
        print(f"no gold set versions under {args.gold_root}")
        return 1
    bad = 0
    for version, problems in results.items():
        if problems:
            bad += 1
            print(f"FAILED {version}")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"ok     {version}")
    return 1 if bad else 0
