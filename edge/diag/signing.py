"""The station's key for diagnostic records: Ed25519, in the station's data_dir, created 0600 on first use.

Each record's hash is signed and the record names the public key. A hash chain alone does not
stop a forger who recomputes every hash after a change; a signature does, as long as the
verifier pins the station's public key (from the key file, or as printed when it was created)
rather than trusting the key a record names.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from central_sync import case_bundle
from edge.errors import EdgeError

KEY_FILE = "diag-signing.key"
ALG = "ed25519"


class StationKeyError(EdgeError):
    """The station key cannot be read, or is readable by others."""


@dataclass(frozen=True)
class StationKey:
    """The private key and where it lives."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public_hex(self) -> str:
        return public_hex(self.private.public_key())

    def sign(self, digest_hex: str) -> str:
        """Hex Ed25519 signature of a record's hash."""
        return self.private.sign(digest_hex.encode()).hex()


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public: str) -> str:
    """Short fingerprint of a public key for people to compare (first 16 hex digits of its sha256)."""
    try:
        return case_bundle.key_id(public)
    except ValueError:
        return f"(not a key: {public[:16]!r})"


def load_or_create(data_dir: Path) -> tuple[StationKey, bool]:
    """The station key in data_dir (created 0600 when absent); True when it was created now."""
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        return StationKey(_read(path), path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return StationKey(private, path), True


def _read(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise StationKeyError(f"station key {path} is readable by others (mode {mode:04o}); chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise StationKeyError(f"station key {path} cannot be read: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise StationKeyError(f"station key {path} is not an Ed25519 key")
    return key


def pinned_public(data_dir: Path) -> str | None:
    """The public key of the station key in data_dir, or None when there is none."""
    path = Path(data_dir) / KEY_FILE
    return public_hex(_read(path).public_key()) if path.exists() else None


def verifies(public: str, digest_hex: str, signature: str) -> bool:
    """Whether `signature` is the key's signature of the hash."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(bytes.fromhex(signature),
                                                                         digest_hex.encode())
    except (InvalidSignature, ValueError):
        return False
    return True
