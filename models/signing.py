"""Signed model packages: what an admin signs, what travels to a station, what a station accepts.

A package directory holds `manifest.toml`, `model.onnx`, optionally `MODEL.md`, and once signed
`signature.json`. The admin signs a *statement* about the package (canonical JSON, Ed25519):

    {"name", "version", "manifest_sha256", "model_sha256", "card_sha256" | null,
     "allow_downgrade": bool, "signed_at": float, "signer": str}

`signature.json` = {"key_id": str, "sig": base64, "statement": {...}}. The key is the model-signing
key (one key per role: never the risk key nor the command key); stations pin its public half under
`[rollout] keys` by key id and refuse any other.

On the wire (`pack` / `open_package`):

    b"CPEMP1\\n" + header JSON + b"\\n" + manifest.toml + model.onnx + MODEL.md
    header   {"key_id", "sig", "statement", "files": [[name, length], ...]}

`open_package` checks, in this order and before any byte reaches onnxruntime: the envelope's form
(`bad_format`), that it is signed (`unsigned`), that the key is pinned (`unknown_key`), the
signature (`bad_signature`), the manifest's hash against the statement and the model's hash against
both the statement and the manifest (`sha_mismatch`), the manifest itself (`bad_manifest`). Any
bytes give a Package or a PackageError whose message is one sentence with the values. A station writes
a package into its slot with its `signature.json` (`Package.write`); `open_folder` verifies such a folder
in the same way before it runs again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.errors import ManifestError, PackageError
from models.manifest import MANIFEST_FILE, MODEL_FILE, Manifest, load_manifest, parse_manifest

MAGIC = b"CPEMP1\n"
SIGNATURE_FILE = "signature.json"
CARD_FILE = "MODEL.md"
FILES = (MANIFEST_FILE, MODEL_FILE, CARD_FILE)
MAX_HEADER = 16 * 1024
STATEMENT_KEYS = {"name", "version", "manifest_sha256", "model_sha256", "card_sha256", "allow_downgrade",
                  "signed_at", "signer"}


@dataclass(frozen=True)
class Package:
    """A verified package: the statement the admin signed and the files it covers."""

    key_id: str
    statement: dict[str, Any]
    manifest: Manifest
    files: dict[str, bytes]
    sig: str

    @property
    def allow_downgrade(self) -> bool:
        return bool(self.statement["allow_downgrade"])

    @property
    def identity(self) -> str:
        """sha256 of the canonical signed statement: the same however the envelope's unsigned header is spaced
        or ordered; a new signature of the same files (another `signed_at`) is another."""
        return _sha(canonical(self.statement))

    def write(self, folder: Path) -> None:
        """The package's files and its `signature.json` in `folder` (which must exist and be empty), each fsynced:
        `open_folder` verifies it again whenever it is to run."""
        doc = {"key_id": self.key_id, "sig": self.sig, "statement": self.statement}
        for name, data in {**self.files, SIGNATURE_FILE: (json.dumps(doc, indent=2) + "\n").encode()}.items():
            with (folder / name).open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())


def canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def statement_of(folder: Path, *, allow_downgrade: bool = False, signer: str = "admin",
                 at: float | None = None) -> dict[str, Any]:
    """The statement an admin signs for the package in `folder` (its manifest is validated first)."""
    manifest = load_manifest(folder)
    card = folder / CARD_FILE
    return {"name": manifest.name, "version": manifest.version,
            "manifest_sha256": _sha((folder / MANIFEST_FILE).read_bytes()), "model_sha256": manifest.sha256,
            "card_sha256": _sha(card.read_bytes()) if card.exists() else None, "allow_downgrade": allow_downgrade,
            "signed_at": time.time() if at is None else at, "signer": signer}


def sign_package(folder: Path, key: Ed25519PrivateKey, key_id: str, *, allow_downgrade: bool = False,
                 signer: str = "admin") -> dict[str, Any]:
    """Write `signature.json` into `folder`; the model's own hash is checked against the manifest first."""
    statement = statement_of(folder, allow_downgrade=allow_downgrade, signer=signer)
    actual = _sha((folder / MODEL_FILE).read_bytes())
    if actual != statement["model_sha256"]:
        raise PackageError("sha_mismatch", f"model package {folder} has model.onnx sha256 {actual[:12]}, but its "
                                           f"manifest says {statement['model_sha256'][:12]}; it is not signed")
    doc = {"key_id": key_id, "sig": base64.b64encode(key.sign(canonical(statement))).decode(), "statement": statement}
    (folder / SIGNATURE_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def pack(folder: Path) -> bytes:
    """The delivery envelope of the package in `folder`; unsigned if it has no signature.json."""
    sig = json.loads((folder / SIGNATURE_FILE).read_text("utf-8")) if (folder / SIGNATURE_FILE).exists() else {}
    files = [(n, (folder / n).read_bytes()) for n in FILES if (folder / n).exists()]
    header = {"key_id": sig.get("key_id"), "sig": sig.get("sig"), "statement": sig.get("statement"),
              "files": [[n, len(d)] for n, d in files]}
    return MAGIC + canonical(header) + b"\n" + b"".join(d for _, d in files)


def open_package(data: bytes, keys: Mapping[str, Ed25519PublicKey]) -> Package:
    """Verify an envelope against the pinned `keys`; PackageError (with `code`) otherwise. Never loads the model."""
    header, body = _header(data)
    return _verified(header, body, keys, f"model package of {len(data)} bytes")


def open_folder(folder: Path, keys: Mapping[str, Ed25519PublicKey]) -> Package:
    """Verify a package folder holding its `signature.json` (an installed slot) as `open_package` verifies an
    envelope, with the same codes; never loads the model."""
    try:
        doc = json.loads((folder / SIGNATURE_FILE).read_bytes())
        files = {n: (folder / n).read_bytes() for n in FILES if (folder / n).exists()}
    except FileNotFoundError as exc:
        raise PackageError("unsigned", f"model package {folder} holds no {SIGNATURE_FILE}; it is not run") from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise PackageError("bad_format", f"model package {folder} cannot be read: {exc!r:.200}") from exc
    if not isinstance(doc, dict):
        raise PackageError("bad_format", f"{folder / SIGNATURE_FILE} is not a JSON object")
    header = {"key_id": doc.get("key_id"), "sig": doc.get("sig"), "statement": doc.get("statement"),
              "files": [[n, len(d)] for n, d in files.items()]}
    return _verified(header, b"".join(files.values()), keys, f"model package {folder}")


def _verified(header: dict[str, Any], body: bytes, keys: Mapping[str, Ed25519PublicKey], what: str) -> Package:
    key_id, sig, statement = header.get("key_id"), header.get("sig"), header.get("statement")
    if not sig or not isinstance(sig, str) or not isinstance(key_id, str) or not key_id \
            or not isinstance(statement, dict):
        raise PackageError("unsigned", f"{what} carries no signature; it is not installed")
    if key_id not in keys:
        raise PackageError("unknown_key", f"model package signed with key {key_id!r}, which this station does not pin "
                                          f"(it pins {sorted(keys)}); it is not installed")
    try:
        keys[key_id].verify(base64.b64decode(sig, validate=True), canonical(statement))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise PackageError("bad_signature", f"model package signature does not verify with key {key_id!r}; "
                                            f"it is not installed") from exc
    if set(statement) != STATEMENT_KEYS:
        raise PackageError("bad_format", f"signed statement has keys {sorted(statement)}, expected {sorted(STATEMENT_KEYS)}")
    files = _files(header, body)
    return Package(key_id, statement, _check(statement, files), files, sig)


def _header(data: bytes) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(MAGIC):
        raise PackageError("bad_format", f"model package of {len(data)} bytes does not start with {MAGIC!r}")
    head, sep, body = data[len(MAGIC):].partition(b"\n")
    if not sep or len(head) > MAX_HEADER:
        raise PackageError("bad_format", f"model package header is missing or longer than {MAX_HEADER} bytes")
    try:
        header = json.loads(head)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PackageError("bad_format", f"model package header is not JSON: {exc!r:.200}") from exc
    if not isinstance(header, dict):
        raise PackageError("bad_format", "model package header is not a JSON object")
    return header, body


def _files(header: dict[str, Any], body: bytes) -> dict[str, bytes]:
    listed = header.get("files")
    if not isinstance(listed, list):
        raise PackageError("bad_format", f"model package header lists no files: {listed!r}")
    ok = all(isinstance(f, list) and len(f) == 2 and f[0] in FILES and isinstance(f[1], int)
                                          and f[1] >= 0 for f in listed)
    if not ok or sum(f[1] for f in listed) != len(body):
        raise PackageError("bad_format", f"model package lists files {listed!r} that do not add up to its "
                                         f"{len(body)} bytes")
    out, at = {}, 0
    for name, length in listed:
        out[name], at = body[at:at + length], at + length
    return out


def _check(statement: dict[str, Any], files: dict[str, bytes]) -> Manifest:
    """The manifest, once every file's hash matches what was signed."""
    manifest_bytes, model = files.get(MANIFEST_FILE, b""), files.get(MODEL_FILE, b"")
    want = {MANIFEST_FILE: statement["manifest_sha256"], MODEL_FILE: statement["model_sha256"],
            CARD_FILE: statement["card_sha256"]}
    for name, expected in want.items():
        if name in files and _sha(files[name]) != expected or name not in files and expected is not None:
            got = _sha(files[name])[:12] if name in files else "nothing"
            raise PackageError("sha_mismatch", f"{name} of model package {statement['name']} {statement['version']} "
                                               f"has sha256 {got}, but the signed statement says "
                                               f"{str(expected)[:12]}; it is not installed")
    manifest = _manifest(manifest_bytes)
    if (manifest.name, manifest.version, manifest.sha256) != (statement["name"], statement["version"], _sha(model)):
        raise PackageError("sha_mismatch", f"manifest names {manifest.name} {manifest.version} with model sha256 "
                                           f"{manifest.sha256[:12]}, but the package signed is {statement['name']} "
                                           f"{statement['version']} with model sha256 {_sha(model)[:12]}")
    return manifest


def _manifest(data: bytes) -> Manifest:
    try:
        return parse_manifest(data, Path("<package>") / MANIFEST_FILE)
    except ManifestError as exc:
        raise PackageError("bad_manifest", f"signed model package has an invalid manifest: {exc}") from exc


_NUM = re.compile(r"\d+")


def version_key(version: str) -> tuple[int, ...]:
    """Dotted versions compared number by number ("2.10.0" > "2.9.1"); non-numeric parts are ignored."""
    return tuple(int(n) for n in _NUM.findall(version))


def is_downgrade(new: str, active: str | None) -> bool:
    return active is not None and version_key(new) < version_key(active)
