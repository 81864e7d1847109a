"""Salted scrypt hashes of secrets people type (station PINs, control-room passwords).

Stored as `scrypt$n$r$p$salt-hex$digest-hex`, so the cost can rise later without breaking old hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    """True when `secret` matches the stored hash (constant-time comparison)."""
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got.hex(), digest)
