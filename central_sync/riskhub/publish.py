"""Publishing: the approved state becomes a signed snapshot (and a delta from the last version),
stored in risk_bundles and handed to the delivery layer.

Every version has a snapshot (any station can apply it: its version is above what it runs) and,
from the second on, a delta whose base is the previous version (a station that runs exactly that
one applies the smaller message). A delta removes by (list kind, value), so when an entry leaves one
list while another list of the same kind still holds that value, the delta carries the remaining
entry again. Each bundle is opened with the hub's own public key before it is stored, so what goes
out is known to verify. `due()` tells when the newest bundle is close enough to expiry to publish
the same state again under a new version (stations on an expired bundle go stale).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import commands
from central_sync.control_room import audit
from central_sync.errors import PublishError
from central_sync.hub.store import Cursor, HubStore
from central_sync.riskhub import authoring, declarations
from risk.bundle import Bundle, encode_bundle, open_bundle
from risk.errors import BundleError

Deliver = Callable[[bytes, int], None]  # (envelope bytes, version): the MQTT delivery (central_sync/risk_delivery.py)
ENTRY_FIELDS = ("list_kind", "value", "list_id", "reason", "owner", "valid_from", "valid_to", "level")


@dataclass(frozen=True, slots=True)
class RiskKey:
    """The hub's bundle-signing key: stations pin its public half under `key_id`."""

    key_id: str
    private: Ed25519PrivateKey

    @classmethod
    def load(cls, path: Path, key_id: str | None = None) -> "RiskKey":
        """The PEM key written by `control-room-admin keygen`; key id by default from the public key."""
        private = commands.load_private_key(path)
        return cls(key_id or key_id_of(private), private)


def key_id_of(private: Ed25519PrivateKey) -> str:
    """A stable id of a key pair: `hub-` and the first 12 hex digits of the raw public key's sha256."""
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "hub-" + hashlib.sha256(raw).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Published:
    version: int
    snapshot: bytes
    delta: bytes | None
    sha256: str
    issued_at: float
    expires_at: float
    entries: int
    rules: int

    def view(self) -> dict:
        return {"version": self.version, "sha256": self.sha256, "issued_at": self.issued_at,
                "expires_at": self.expires_at, "entries": self.entries, "rules": self.rules,
                "snapshot_bytes": len(self.snapshot), "delta_bytes": len(self.delta) if self.delta else None}


# ---- the approved state as bundle content --------------------------------------------------------
def state(store: HubStore, now: float, declarations_s: float) -> dict[str, Any]:
    """Watchlist entries not yet expired, enabled and disabled rules, the random policy, recent declarations."""
    kinds = {w["id"]: w["kind"] for w in authoring.watchlists(store)}
    rows = store.query(f"SELECT {authoring.ENTRY_COLS} FROM risk_entries WHERE valid_to IS NULL OR valid_to > ?"
                       " ORDER BY list_id, value", (now,))
    entries = [{"list_kind": kinds[r[0]], "value": r[1], "list_id": r[0], "reason": r[2], "owner": r[3],
                "valid_from": r[4], "valid_to": r[5], "level": r[6]} for r in rows if r[0] in kinds]
    decls = [{k: d[k] for k in ("ref", "container", "plate", "trader", "declared_empty", "weight_kg", "origin",
                                "sealed", "seal_id")} | {"goods": d["goods"]}
             for d in declarations.recent(store, now - declarations_s)]
    return {"watchlists": entries, "rules": authoring.rules(store), "random": authoring.random_policy(store),
            "declarations": sorted(decls, key=lambda d: d["ref"])}


def _entry_key(e: dict) -> tuple:
    return tuple(e[f] for f in ENTRY_FIELDS)


def delta_of(prev: Bundle, now_state: dict[str, Any]) -> dict[str, Any]:
    """What turns the previous snapshot's content into the current state (see the module docstring)."""
    before = {_entry_key(_entry_dict(e)) for e in prev.watchlists}
    after = {_entry_key(e): e for e in now_state["watchlists"]}
    present = {(e["list_kind"], e["value"]) for e in now_state["watchlists"]}
    removed = sorted({(k[0], k[1]) for k in before - set(after)} - present)
    touched = {(k[0], k[1]) for k in (before ^ set(after))}
    changed = [e for k, e in after.items() if k not in before or (k[0], k[1]) in touched]
    prev_rules = sorted((_rule_dict(r) for r in prev.rules), key=lambda r: r["id"])
    rules_changed = prev_rules != sorted(now_state["rules"], key=lambda r: r["id"])
    known = {d.ref for d in prev.declarations}
    return {"watchlists": changed, "removed": [list(r) for r in removed], "rules_changed": rules_changed,
            "rules": now_state["rules"] if rules_changed else [], "random": now_state["random"],
            "declarations": [d for d in now_state["declarations"] if d["ref"] not in known]}


def _entry_dict(e: Any) -> dict:
    return {f: getattr(e, f) for f in ENTRY_FIELDS}


def _rule_dict(r: Any) -> dict:
    """A bundle's rule back as the JSON the hub stores (risk.rules keeps the source of each rule)."""
    return dict(r.source) if hasattr(r, "source") else dict(r)


# ---- publishing ---------------------------------------------------------------------------------
def publish(store: HubStore, key: RiskKey, publisher: str, deliver: Deliver | None = None, *,
            expiry_s: float = 24 * 3600.0, declarations_s: float = 72 * 3600.0, now: float | None = None) -> Published:
    """Build, sign, check, store and hand over the next version; PublishError when it cannot."""
    now = time.time() if now is None else now
    current = state(store, now, declarations_s)
    prev = latest(store)
    version = (prev["version"] if prev else 0) + 1
    head = {"version": version, "issued_at": now, "expires_at": now + expiry_s, "key_id": key.key_id}
    snapshot = _sign(key, head | {"kind": "snapshot", "base_version": None, "removed": [], "rules_changed": True}
                     | current, now, None)
    delta = None
    if prev is not None:
        base = _open(key, prev["snapshot"], prev["issued_at"], None)
        delta = _sign(key, head | {"kind": "delta", "base_version": prev["version"]} | delta_of(base, current),
                      now, prev["version"])
    out = Published(version, snapshot[0], delta[0] if delta else None, snapshot[1].sha256, now, now + expiry_s,
                    len(current["watchlists"]), len(current["rules"]))
    _store(store, out, publisher, prev["version"] if prev else None, delta[1].sha256 if delta else "")
    audit.append(store, publisher, "risk.publish", f"bundle:{version}",
                 {"sha256": out.sha256, "entries": out.entries, "rules": out.rules, "expires_at": out.expires_at})
    if deliver is not None:
        deliver(out.snapshot, version)  # the one call site of the delivery layer
    return out


def _sign(key: RiskKey, body: dict, now: float, current: int | None) -> tuple[bytes, Bundle]:
    try:
        data = encode_bundle(body, key.private, key.key_id)
    except (BundleError, ValueError, TypeError) as exc:
        raise PublishError(f"bundle version {body['version']} ({body['kind']}) cannot be encoded: {exc}") from exc
    return data, _open(key, data, now, current)


def _open(key: RiskKey, data: bytes, now: float, current: int | None) -> Bundle:
    try:
        return open_bundle(data, {key.key_id: key.private.public_key()}, now=now, current=current)
    except BundleError as exc:
        raise PublishError(f"a bundle the hub signed does not open with its own key {key.key_id}: {exc}") from exc


def _store(store: HubStore, out: Published, publisher: str, base: int | None, delta_sha: str) -> None:
    rows = [(out.version, "snapshot", None, out.sha256, out.snapshot)]
    if out.delta is not None:
        rows.append((out.version, "delta", base, delta_sha, out.delta))

    def write(cur: Cursor) -> None:
        for version, kind, base_version, sha, data in rows:
            cur.execute(store.sql("INSERT INTO risk_bundles (version, kind, base_version, sha256, issued_at, expires_at,"
                                  " publisher, entries, rules, data) VALUES (?,?,?,?,?,?,?,?,?,?)"),
                        (version, kind, base_version, sha, out.issued_at, out.expires_at, publisher, out.entries,
                         out.rules, data))
    store.run_in_transaction(write)


BUNDLE_KEYS = ("version", "kind", "base_version", "sha256", "issued_at", "expires_at", "publisher", "entries", "rules")


def latest(store: HubStore) -> dict | None:
    """The newest snapshot: its row and its bytes (`snapshot`)."""
    rows = store.query(f"SELECT {', '.join(BUNDLE_KEYS)}, data FROM risk_bundles WHERE kind='snapshot'"
                       " ORDER BY version DESC LIMIT 1")
    return dict(zip(BUNDLE_KEYS, rows[0][:-1])) | {"snapshot": bytes(rows[0][-1])} if rows else None


def bundles(store: HubStore, limit: int = 50) -> list[dict]:
    rows = store.query(f"SELECT {', '.join(BUNDLE_KEYS)}, length(data) FROM risk_bundles ORDER BY version DESC, kind"
                       " LIMIT ?", (limit,))
    return [dict(zip((*BUNDLE_KEYS, "bytes"), r)) for r in rows]


def bundle_bytes(store: HubStore, version: int, kind: str) -> bytes | None:
    rows = store.query("SELECT data FROM risk_bundles WHERE version=? AND kind=?", (version, kind))
    return bytes(rows[0][0]) if rows else None


def due(store: HubStore, now: float, margin_s: float) -> bool:
    """True when a bundle was published and the newest expires within `margin_s` (publish it again)."""
    newest = latest(store)
    return newest is not None and newest["expires_at"] - now <= margin_s
