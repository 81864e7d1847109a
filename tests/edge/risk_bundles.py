"""Signed risk bundles for the station's tests: one hub key, pinned as `risk-1`."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.risk import RiskConfig
from risk.bundle import RandomPolicy, WatchEntry, bundle_dict, encode_bundle

HUB_KEY = Ed25519PrivateKey.generate()
NO_RANDOM = RandomPolicy(rate=0.0, stale_rate=0.0)


def envelope(version: int, *, key: Ed25519PrivateKey = HUB_KEY, key_id: str = "risk-1", expires_in: float = 3600.0,
             plates: tuple[str, ...] = ("AB 123 CD",), kind: str = "snapshot", base: int | None = None,
             random: RandomPolicy = NO_RANDOM, now: float | None = None) -> bytes:
    """A bundle listing `plates` as stolen (lane red), signed by `key`."""
    now = time.time() if now is None else now
    entries = [WatchEntry("plate", p, "wl-stolen", "reported stolen", "ops") for p in plates]
    doc = bundle_dict(version=version, issued_at=now - 60, expires_at=now + expires_in, entries=entries,
                      kind=kind, base_version=base, random=random)  # type: ignore[arg-type]
    return encode_bundle(doc, key, key_id)


def pinned(tmp_path: Path, seed: str = "seed-gate-1") -> RiskConfig:
    """A [risk] section pinning HUB_KEY's public key."""
    path = tmp_path / "risk-1.pub"
    path.write_bytes(HUB_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return RiskConfig(keys={"risk-1": path}, seed=seed)
