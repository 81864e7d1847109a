"""Keys, entries and signed bundles for the risk tests (small, built with the hub's own helpers)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from risk.bundle import Bundle, Declaration, RandomPolicy, WatchEntry, bundle_dict, encode_bundle, open_bundle
from risk.engine import BundleState
from risk.rules import Rule

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0
KEY = Ed25519PrivateKey.generate()
KEYS = {"hub-1": KEY.public_key()}

ENTRIES = [
    WatchEntry("plate", "AB 1234", "stolen", "watch.stolen_vehicle", "police"),
    WatchEntry("container", "CSQU 305438 3", "smuggling", "watch.tobacco_route", "customs-intel", lane="amber",
               score=40),
    WatchEntry("rfid_tid", "E2801160 0000 0001", "cloned", "watch.cloned_tag", "customs-intel", level=2),
    WatchEntry("trader", "CN 0000000042", "traders", "watch.trader_seizures", "customs-intel", score=30),
]
RULES = [
    Rule("R-tobacco", "Tobacco from a listed trader", "rule.tobacco",
         {"all": [{"fact": "declaration.hs", "op": "prefix", "value": "2402"}, {"listed": "trader"}]}, 60, "red"),
    Rule("R-night", "Night crossings with past seizures", "rule.night_seizures",
         {"all": [{"fact": "time.hour", "op": "between", "value": [0, 4]},
                  {"fact": "history.seizures", "op": "gte", "value": 1}]}, 20, "amber"),
]
DECLARATIONS = [
    Declaration("D-1", "CN0000000042", container="MSKU 907032 3", goods=(("2402.20", "cigarettes"),),
                weight_kg=12000.0, origin="VN"),
    Declaration("D-2", "HK0000000007", container="TGHU 000001 0", declared_empty=True, origin="CN"),
    Declaration("D-3", "HK0000000008", plate="XY 9876", goods=(("8703.23", "car"),), origin="JP", sealed=True,
                seal_id="S1"),
]


def snapshot_doc(version: int = 1, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"version": version, "issued_at": T0 - 60, "expires_at": T0 + DAY, "entries": ENTRIES,
                            "rules": RULES, "declarations": DECLARATIONS,
                            "random": RandomPolicy(rate=0.02, stale_rate=0.10)}
    return bundle_dict(**(args | over))


def signed(doc: dict[str, Any], key: Ed25519PrivateKey = KEY, key_id: str = "hub-1") -> bytes:
    return encode_bundle(doc, key, key_id)


def opened(doc: dict[str, Any], current: int | None = None, now: float = T0) -> Bundle:
    return open_bundle(signed(doc), KEYS, now=now, current=current)


def state_of(doc: dict[str, Any] | None = None) -> BundleState:
    return BundleState.empty().apply(opened(doc or snapshot_doc()))
