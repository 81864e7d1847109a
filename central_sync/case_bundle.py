"""Signed case bundles: a manifest of every file's sha256 and size, signed by the exporting side, and the
offline check a court expert runs (docs/case-bundles.md). Station and hub both import this module.

A bundle is a zip (or the folder it unpacks to) holding the evidence files, `manifest.json` and
`manifest.sig`. The signature is the one the station already uses for diagnostic records
(edge/diag/signing.py): Ed25519 over the ASCII hex sha256 of `manifest.json`'s bytes, written as hex.
The manifest is never re-serialised before checking: its bytes as stored are what was signed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.errors import SyncError

FORMAT = "cpe-case-bundle"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ALG = "ed25519"


class CaseBundleError(SyncError):
    """A case bundle that cannot be built or a key that cannot be read; the message says which and why. A case
    selection refused (hub/case_export.py) also has a `code` (unknown_record, no_vehicle, no_match, too_many) and the
    `vals` its sentence names, for the control room's translation."""

    def __init__(self, message: str, code: str = "", **vals: str) -> None:
        super().__init__(message)
        self.code, self.vals = code, vals


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Frozen):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class SignerKey(_Frozen):
    alg: Literal["ed25519"] = "ed25519"
    public: str = Field(pattern=r"^[0-9a-f]{64}$")  # raw Ed25519 public key, hex
    key_id: str  # first 16 hex digits of the public key's sha256, as the station prints it


class Manifest(_Frozen):
    """What the bundle holds and who exported it, when and why."""

    format: Literal["cpe-case-bundle"] = "cpe-case-bundle"
    version: Literal[1] = 1
    case_id: str
    side: Literal["station", "hub"]
    origin: str  # the station id, or the hub's name
    exported_by: str
    exported_at: datetime
    reason: str = Field(min_length=1, max_length=2000)
    records: list[str]
    selection: dict[str, str] = Field(default_factory=dict)  # how the records were chosen (ids, or an identity)
    notes: list[str] = Field(default_factory=list)  # evidence the exporting side no longer held, one sentence each
    files: list[FileEntry]
    key: SignerKey


@dataclass(frozen=True)
class Bundle:
    """A built bundle: every file by its path inside the bundle, manifest and signature included."""

    files: dict[str, bytes]
    manifest: Manifest

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.files[MANIFEST]).hexdigest()


@dataclass
class Verification:
    """The outcome of `verify`: one sentence per problem; it holds only when there is none."""

    problems: list[str] = field(default_factory=list)
    manifest: Manifest | None = None
    pinned: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public: str) -> str:
    """Short fingerprint of a public key for people to compare (first 16 hex digits of its sha256)."""
    return hashlib.sha256(bytes.fromhex(public)).hexdigest()[:16]


def signer_key(private: Ed25519PrivateKey) -> SignerKey:
    public = public_hex(private.public_key())
    return SignerKey(public=public, key_id=key_id(public))


def build(files: Mapping[str, bytes], private: Ed25519PrivateKey, **about: object) -> Bundle:
    """Hash every file, write the manifest (fields in `about`) and sign it with `private`."""
    for name in files:
        _check_path(name)
    entries = [FileEntry(path=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
               for name, data in sorted(files.items())]
    try:
        manifest = Manifest.model_validate({**about, "files": entries, "key": signer_key(private)})
    except ValidationError as exc:
        raise CaseBundleError(f"the case bundle cannot be built: {_first(exc)}") from exc
    text = manifest.model_dump_json(indent=1).encode()
    signature = private.sign(hashlib.sha256(text).hexdigest().encode()).hex()
    return Bundle({**files, MANIFEST: text, SIGNATURE: signature.encode()}, manifest)


def _check_path(name: str) -> None:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or name in (MANIFEST, SIGNATURE) or "\\" in name:
        raise CaseBundleError(f"the case bundle cannot hold a file named {name!r}")


def zip_bytes(bundle: Bundle) -> bytes:
    """The bundle as one zip (stored, fixed dates: the same bundle gives the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(bundle.files):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), bundle.files[name])
    return buf.getvalue()


def read_bundle(path: Path) -> dict[str, bytes]:
    """Every file of a bundle zip or folder, by its path inside the bundle."""
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [info for info in zf.infolist() if not info.is_dir()]
            files = {info.filename: _entry(path, zf, info) for info in infos}
    except (OSError, zipfile.BadZipFile) as exc:
        raise CaseBundleError(f"{path} is neither a case bundle folder nor a readable zip: {exc}") from exc
    if len(files) != len(infos):  # tools differ on which copy they show: the bundle is ambiguous
        twice = sorted({i.filename for i in infos if sum(j.filename == i.filename for j in infos) > 1})
        raise CaseBundleError(f"{path} holds {twice[0]} more than once, so which copy is evidence is ambiguous")
    return files


def _entry(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One file's bytes; CaseBundleError naming it when the zip cannot give them: its bytes fail the zip's own
    CRC (changed in place), or it is encrypted or compressed by a method Python cannot read (RuntimeError,
    NotImplementedError: before, a traceback instead of the one sentence the expert reads)."""
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, ValueError, zlib.error) as exc:
        raise CaseBundleError(f"file {info.filename} in {path} cannot be read from the zip ({exc}), so it cannot be "
                              "checked: it was changed or damaged after export, or packed by another tool") from exc


def load_public_key(text_or_path: str) -> Ed25519PublicKey:
    """A verifying key given as 64 hex digits, or a file holding those or a PEM public key."""
    source = text_or_path.strip()
    path = Path(source)
    if path.is_file():
        source = path.read_text(errors="replace").strip()
    try:
        if source.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(source.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise CaseBundleError(f"the key in {text_or_path} is not an Ed25519 public key")
            return key
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(source))
    except ValueError as exc:
        raise CaseBundleError(f"{text_or_path!r} is neither 64 hex digits nor a PEM Ed25519 public key") from exc


def verify(files: Mapping[str, bytes], pinned: Ed25519PublicKey | None = None) -> Verification:
    """Check the manifest's signature, then every file's size and hash, and that no file is missing or extra."""
    result = Verification(pinned=pinned is not None)
    text = files.get(MANIFEST)
    if text is None:
        result.problems.append(f"the bundle has no {MANIFEST}, so nothing in it can be checked")
        return result
    try:
        result.manifest = manifest = Manifest.model_validate_json(text)
    except ValidationError as exc:
        result.problems.append(f"{MANIFEST} is not a case bundle manifest: {_first(exc)}")
        return result
    result.problems += _signature_problems(text, files.get(SIGNATURE), manifest, pinned)
    result.problems += _file_problems(files, manifest)
    return result


def _signature_problems(text: bytes, sig: bytes | None, manifest: Manifest, pinned: Ed25519PublicKey | None) -> list[str]:
    if sig is None:
        return [f"the bundle has no {SIGNATURE}, so nobody vouches for {MANIFEST}"]
    problems = []
    key = pinned
    if pinned is not None and public_hex(pinned) != manifest.key.public:
        problems.append(f"{MANIFEST} names signing key id {manifest.key.key_id} but the key given is key id "
                        f"{key_id(public_hex(pinned))}")
    if key is None:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(manifest.key.public))
    try:
        key.verify(bytes.fromhex(sig.decode("ascii", errors="replace").strip()), hashlib.sha256(text).hexdigest().encode())
    except (InvalidSignature, ValueError):
        problems.append(f"{SIGNATURE} does not verify {MANIFEST} against key id {key_id(public_hex(key))}: the "
                        "manifest was changed after signing or was signed by another key")
    return problems


def _file_problems(files: Mapping[str, bytes], manifest: Manifest) -> list[str]:
    problems = []
    listed = {e.path for e in manifest.files}
    for entry in manifest.files:
        data = files.get(entry.path)
        if data is None:
            problems.append(f"file {entry.path} is listed in the manifest but missing from the bundle")
        elif len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            problems.append(f"file {entry.path} does not match its sha256 in the manifest ({len(data)} bytes, "
                            f"{entry.size} listed): it was changed after export")
    for name in sorted(set(files) - listed - {MANIFEST, SIGNATURE}):
        problems.append(f"file {name} is in the bundle but not in the manifest")
    return problems


def report(result: Verification) -> list[str]:
    """The lines `case verify` prints: each problem, or what was verified and against which key."""
    if result.problems:
        return [f"REFUSED: {p}" for p in result.problems]
    m = result.manifest
    assert m is not None  # no problem means the manifest parsed
    how = "the key given" if result.pinned else "the key the manifest names (pass --key to pin it)"
    return [f"VERIFIED: case {m.case_id}, {len(m.files)} files, {len(m.records)} records, exported from "
            f"{m.side} {m.origin} by {m.exported_by} at {m.exported_at.isoformat()} (reason: {m.reason})",
            f"signed by key id {m.key.key_id}, checked against {how}"] + [f"note: {n}" for n in m.notes]


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"


def add_export_arguments(export: argparse.ArgumentParser, side: str) -> None:
    """What `case export` takes in `edge` and `edge-hub`: the case (records or an identity), why and by whom
    (audited), and the bundle's path; `side` ("station", "hub") names where the evidence leaves."""
    chosen = export.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--record", action="append", dest="records", help="a record id (repeat for more)")
    chosen.add_argument("--identity", help="every record that read it: KIND=VALUE, e.g. plate=AB1234")
    export.add_argument("--reason", required=True, help=f"why the evidence leaves the {side} (audited)")
    export.add_argument("--by", required=True, help="who exports (badge or name; audited)")
    export.add_argument("--out", required=True, type=Path, help="the bundle's .zip (must not exist)")


def add_verify_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """`case verify BUNDLE [--key PUBKEY]`, the same in `edge` and `edge-hub`."""
    v = sub.add_parser("verify", help="check a case bundle offline: its signature and every file's hash")
    v.add_argument("bundle", type=Path, help="the bundle's .zip, or the folder it was unpacked to")
    v.add_argument("--key", help="the exporting side's public key: 64 hex digits, or a file with those or a PEM key")
    v.set_defaults(handler=run_verify)
    return v


def run_verify(args: argparse.Namespace) -> int:
    """Print one line per problem (or what verified); exit status 0 only when everything verifies."""
    try:
        pinned = load_public_key(args.key) if args.key else None
        result = verify(read_bundle(args.bundle), pinned)
    except CaseBundleError as exc:
        print(f"REFUSED: {exc}")
        return 2
    print("\n".join(report(result)))
    return 0 if result.ok else 1


@dataclass(frozen=True)
class Selection:
    """Which records a case concerns, at a station or the hub: these ids, or every record that read this
    identity (matched as the hub's history matches it)."""

    record_ids: tuple[str, ...] = ()
    identity_kind: str = ""
    identity_value: str = ""

    def describe(self) -> dict[str, str]:
        if self.record_ids:
            return {"by": "record_ids", "ids": " ".join(self.record_ids)}
        return {"by": "identity", "kind": self.identity_kind, "value": self.identity_value}
