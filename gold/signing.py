"""Who may vouch for a locked gold version: Ed25519 keys, the trusted list, signatures.

Hashes in a manifest prove that files match the manifest, not that anybody approved
them: whoever can edit `records.jsonl` can recompute every hash. A signature made with a
private key that never enters the repository closes that gap. `crucible gold keygen`
writes the private key outside the repository (default `~/.config/crucible/gold-signing-
key.pem`, or `$CRUCIBLE_GOLD_KEY`), readable by its owner only, and adds the public key to
the gold root's `trusted_keys.json`, which is committed beside the sets. A change to that
file decides who can lock gold sets, so it deserves the same review as a change to the
sets themselves.

Ed25519 (RFC 8032) through the `cryptography` package: small keys, deterministic
signatures, no parameters to get wrong. A key is named by the first 16 hex digits of the
sha256 of its raw public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gold.gold_sets import GoldSetError

TRUSTED_KEYS = "trusted_keys.json"
ALGORITHM = "ed25519"
KEY_ENV = "CRUCIBLE_GOLD_KEY"


def default_key_path() -> Path:
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "crucible" / "gold-signing-key.pem"


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """A private key loaded for signing, and the name it signs under."""

    private: Ed25519PrivateKey
    owner: str

    @property
    def id(self) -> str:
        return key_id(self.private.public_key())

    def sign(self, payload: bytes) -> dict:
        return {"algorithm": ALGORITHM, "key_id": self.id,
                "value": base64.b64encode(self.private.sign(payload)).decode()}

    def public_entry(self) -> dict:
        return {"id": self.id, "owner": self.owner, "algorithm": ALGORITHM,
                "public_key": base64.b64encode(_raw(self.private.public_key())).decode()}


def _inside_git_checkout(path: Path) -> Path | None:
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(top.stdout.strip()) if top.returncode == 0 and top.stdout.strip() else None


def generate_key(path: Path, owner: str) -> SigningKey:
    """A new private key written to `path` (owner-only, refused inside a git checkout or
    over an existing file)."""
    path = Path(path).expanduser().absolute()
    checkout = _inside_git_checkout(path)
    if checkout is not None:
        raise GoldSetError(f"{path} lies inside the git checkout {checkout}: a private signing key never "
                           "enters a repository; keep it in your home folder (the default) or pass another path")
    if path.exists():
        raise GoldSetError(f"{path} exists already: not overwritten (a lost key cannot sign again; "
                           "move it away first if you mean to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL with 0600 from the start: the key is never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return SigningKey(key, owner)


def load_signing_key(path: Path, owner: str) -> SigningKey:
    """The private key at `path`; refused when others may read it (as ssh does)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GoldSetError(f"{path}: no signing key there; create one with `crucible gold keygen` "
                           f"(or point --key / ${KEY_ENV} at yours)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise GoldSetError(f"{path}: permissions {mode:o} let others read the signing key; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise GoldSetError(f"{path}: not a PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise GoldSetError(f"{path}: not an Ed25519 key")
    return SigningKey(key, owner)


# ---- the trusted public keys of a gold root -------------------------------------------


def read_trusted_keys(gold_root: Path) -> dict[str, Ed25519PublicKey]:
    """The public keys `<gold_root>/trusted_keys.json` trusts, by key id."""
    path = Path(gold_root) / TRUSTED_KEYS
    if not path.is_file():
        raise GoldSetError(f"{path}: missing, so no gold version can be trusted; "
                           "`crucible gold keygen` creates it with your public key")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["keys"]
        keys = {}
        for entry in entries:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"], validate=True))
            if key_id(public) != entry["id"]:
                raise ValueError(f"key {entry['id']} does not match its public key")
            keys[entry["id"]] = public
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise GoldSetError(f"{path}: not a list of trusted keys ({error})") from None
    return keys


def trust_key(gold_root: Path, key: SigningKey) -> Path:
    """Add `key`'s public half to the gold root's trusted keys (once)."""
    path = Path(gold_root) / TRUSTED_KEYS
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {
        "about": "Public keys allowed to sign locked gold versions. Review every change to this file.",
        "keys": []}
    if all(entry["id"] != key.id for entry in data["keys"]):
        entry = key.public_entry() | {"added": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        data["keys"].append(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def signature_problem(payload: bytes, signature: dict, trusted: dict[str, Ed25519PublicKey]) -> str | None:
    """None when `signature` is a valid signature of `payload` by a trusted key; else why not."""
    try:
        algorithm, signer, value = signature["algorithm"], signature["key_id"], signature["value"]
        raw = base64.b64decode(value, validate=True)
    except (KeyError, TypeError, ValueError) as error:
        return f"malformed signature ({error!r})"
    if algorithm != ALGORITHM:
        return f"signed with {algorithm!r}, only {ALGORITHM} is accepted"
    if signer not in trusted:
        return f"signed by key {signer}, which {TRUSTED_KEYS} does not trust"
    try:
        trusted[signer].verify(raw, payload)
    except InvalidSignature:
        return f"the signature by key {signer} does not match (changed without the private key)"
    return None
