"""Publishing: the approved state becomes a signed snapshot (and a delta from the last version),
stored in risk_bundles and handed to the delivery layer.

Every version has a snapshot (any station can apply it: its version is above what it runs) and,
from the second on, a delta whose base is the previous version (a station that runs exactly that
one applies the smaller message) — but for every `FULL_EVERY`-th version, which every station takes
whole: a station keeps each delta on top of its last snapshot and replays them all at each start
(edge/risk.py), so without it the files and the start time grew with every version for ever. The delta is built from the hub's change log, the approved drafts
since the last version (riskhub/changes.py), not by comparing the two versions' entries; the approved
state is read with one streaming query straight into the bundle's columns, and the last snapshot stays
opened in memory as the next delta's base. Each bundle is opened with the hub's own public key before it
is stored, so what goes out is known to verify. `due()` tells when the newest bundle is close enough to expiry to publish
the same state again under a new version (stations on an expired bundle go stale).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import commands
from central_sync.control_room import audit
from central_sync.errors import PublishError
from central_sync.hub.store import Cursor, HubStore
from central_sync.risk_delivery import Offer
from central_sync.riskhub import authoring, changes, declarations
from risk.bundle import Bundle, Declaration, EntryColumns, RandomPolicy, bundle_dict, encode_bundle, open_bundle
from risk.errors import BundleError, RiskError
from risk.rules import Rule

log = structlog.get_logger("central_sync.riskhub")
Deliver = Callable[[Offer], None]  # the MQTT delivery: RiskDelivery.offer (central_sync/risk_delivery.py)
FULL_EVERY = 30  # every 30th version is offered as a snapshot only: a station holds at most 29 deltas


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

    def offer(self, base_version: int | None) -> Offer:
        return Offer(self.version, self.snapshot, self.delta, base_version if self.delta else None)

    def view(self) -> dict:
        return {"version": self.version, "sha256": self.sha256, "issued_at": self.issued_at,
                "expires_at": self.expires_at, "entries": self.entries, "rules": self.rules,
                "snapshot_bytes": len(self.snapshot), "delta_bytes": len(self.delta) if self.delta else None}


# ---- the approved state as bundle content --------------------------------------------------------
@dataclass(frozen=True)
class Content:
    """What a snapshot carries: entries in force (columnar), rules (enabled or not), the random policy,
    declarations; `kinds` is every list's kind."""

    entries: EntryColumns
    rules: tuple[Rule, ...]
    random: RandomPolicy
    declarations: tuple[Declaration, ...]
    kinds: dict[str, str]


def content(store: HubStore, now: float, declarations_s: float) -> Content:
    """The approved state: entries not yet expired (with their list's lane), rules, policy, recent declarations."""
    lists = {r[0]: (r[1], r[2]) for r in store.query("SELECT id, kind, lane FROM risk_watchlists")}
    rnd = authoring.random_policy(store)
    decls = tuple(Declaration(ref=d["ref"], trader=d["trader"], container=d["container"], plate=d["plate"],
                              goods=tuple((hs, desc) for hs, desc in d["goods"]), declared_empty=d["declared_empty"],
                              weight_kg=d["weight_kg"], origin=d["origin"], sealed=d["sealed"], seal_id=d["seal_id"],
                              received_at=d["received_at"])
                  for d in sorted(declarations.recent(store, now - declarations_s), key=lambda d: d["ref"]))
    return Content(store.run_in_transaction(_entries, store, lists, now),
                   tuple(Rule.from_dict(r) for r in authoring.rules(store)),
                   RandomPolicy(rnd["rate"], rnd["stale_rate"], dict(rnd.get("per_lane") or {})), decls,
                   {list_id: kind for list_id, (kind, _) in lists.items()})


def _entries(cur: Cursor, store: HubStore, lists: dict[str, tuple[str, str]], now: float) -> EntryColumns:
    """One streaming query straight into the bundle's columns (rows of lists that are gone are skipped), in the
    table's own order: no sort, and the order of a kind's values means nothing to a station."""
    out = EntryColumns()
    cur.execute(store.sql(f"SELECT {authoring.ENTRY_COLS} FROM risk_entries WHERE valid_to IS NULL OR valid_to > ?"),
                (now,))
    out.extend((lists[row[0]][0], row[1], (row[0], *row[2:], lists[row[0]][1], 100)) for row in cur if row[0] in lists)
    return out


def snapshot_dict(c: Content, head: dict[str, Any]) -> dict[str, Any]:
    return bundle_dict(**head, columns=c.entries, rules=c.rules, random=c.random, declarations=c.declarations)


def delta_dict(prev: Bundle, c: Content, log: list[changes.Change], head: dict[str, Any]) -> dict[str, Any]:
    """What turns the previous snapshot into the current content: the keys the change log touched are removed
    (where the previous version holds them) and their current entries added (riskhub/changes.py)."""
    keys = changes.touched(log, prev, c.entries, c.kinds, head["issued_at"])
    rules_changed = [r.to_dict() for r in prev.rules] != [r.to_dict() for r in c.rules]
    before = set(prev.declarations)
    refs = {d.ref for d in c.declarations}
    return bundle_dict(**head, kind="delta", base_version=prev.version, columns=c.entries.select(keys),
                       removed=changes.present(prev, keys), rules=c.rules if rules_changed else (),
                       rules_changed=rules_changed, random=c.random,
                       declarations=[d for d in c.declarations if d not in before],
                       removed_declarations=sorted({d.ref for d in before} - refs))


# ---- publishing ---------------------------------------------------------------------------------
_LAST: dict[str, Bundle] = {}
"""The last snapshot this process published, opened, by database: the base of the next delta without
reading and opening it again (a restarted hub opens it once)."""


def publish(store: HubStore, key: RiskKey, publisher: str, deliver: Deliver | None = None, *,
            expiry_s: float = 24 * 3600.0, declarations_s: float = 72 * 3600.0, now: float | None = None,
            full_every: int = FULL_EVERY) -> Published:
    """Build, sign, check, store and hand over the next version; PublishError when it cannot. Every
    `full_every`-th version has no delta (every station takes the snapshot and drops its deltas)."""
    now = time.time() if now is None else now
    carried = changes.unpublished(store)  # approved before the content is read: this version carries them
    prev = latest(store, with_data=False)
    version = (prev["version"] if prev else 0) + 1
    try:
        current = content(store, now, declarations_s)
    except (ValueError, TypeError, KeyError, RiskError) as exc:  # an approved row the bundle cannot carry
        raise PublishError(f"bundle version {version} cannot be built from the approved state: {exc}") from exc
    head = {"version": version, "issued_at": now, "expires_at": now + expiry_s}
    snapshot = _sign(key, snapshot_dict(current, head), now, None)
    delta = None
    base = _base(store, key, prev) if prev is not None and version % full_every != 0 else None
    if prev is not None and base is not None:
        delta = _sign(key, delta_dict(base, current, changes.unpublished(store), head), now, prev["version"])
    out = Published(version, snapshot[0], delta[0] if delta else None, snapshot[1].sha256, now, now + expiry_s,
                    len(current.entries), len(current.rules))
    _store(store, out, publisher, prev["version"] if prev else None, delta[1].sha256 if delta else "", carried)
    _LAST[store.url] = snapshot[1]
    audit.append(store, publisher, "risk.publish", f"bundle:{version}",
                 {"sha256": out.sha256, "entries": out.entries, "rules": out.rules, "expires_at": out.expires_at})
    if deliver is not None:
        deliver(out.offer(prev["version"] if prev else None))  # the one call site of the delivery layer
    return out


def _base(store: HubStore, key: RiskKey, prev: dict) -> Bundle | None:
    """The previous snapshot, opened: this process's copy when it published it, else read and opened; None when it
    does not open with the hub's key (signed before the key was rotated): the new version is a snapshot only."""
    cached = _LAST.get(store.url)
    if cached is not None and (cached.version, cached.sha256) == (prev["version"], prev["sha256"]):
        return cached
    data = bundle_bytes(store, prev["version"], "snapshot")
    assert data is not None  # `latest` found its row
    try:
        return open_bundle(data, {key.key_id: key.private.public_key()}, now=prev["issued_at"], current=None)
    except BundleError as exc:
        log.warning("risk.publish_snapshot_only", version=prev["version"] + 1,
                    detail=f"bundle version {prev['version'] + 1} goes out as a snapshot only: the previous version "
                           f"does not open with the hub's key {key.key_id} (the key was rotated): {exc}")
        return None


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


def _store(store: HubStore, out: Published, publisher: str, base: int | None, delta_sha: str,
           carried: list[changes.Change]) -> None:
    rows: list[tuple[int, str, int | None, str, bytes]] = [(out.version, "snapshot", None, out.sha256, out.snapshot)]
    if out.delta is not None:
        rows.append((out.version, "delta", base, delta_sha, out.delta))

    def write(cur: Cursor) -> None:
        for version, kind, base_version, sha, data in rows:
            cur.execute(store.sql("INSERT INTO risk_bundles (version, kind, base_version, sha256, issued_at, expires_at,"
                                  " publisher, entries, rules, data) VALUES (?,?,?,?,?,?,?,?,?,?)"),
                        (version, kind, base_version, sha, out.issued_at, out.expires_at, publisher, out.entries,
                         out.rules, data))
        changes.mark(cur, store, carried, out.version)
    store.run_in_transaction(write)


BUNDLE_KEYS = ("version", "kind", "base_version", "sha256", "issued_at", "expires_at", "publisher", "entries", "rules")


def latest(store: HubStore, with_data: bool = True) -> dict | None:
    """The newest snapshot: its row and (`with_data`) its bytes (`snapshot`)."""
    data = ", data" if with_data else ""
    rows = store.query(f"SELECT {', '.join(BUNDLE_KEYS)}{data} FROM risk_bundles WHERE kind='snapshot'"
                       " ORDER BY version DESC LIMIT 1")
    if not rows:
        return None
    row = dict(zip(BUNDLE_KEYS, rows[0]))
    return row | {"snapshot": bytes(rows[0][-1])} if with_data else row


def bundles(store: HubStore, limit: int = 50) -> list[dict]:
    rows = store.query(f"SELECT {', '.join(BUNDLE_KEYS)}, length(data) FROM risk_bundles ORDER BY version DESC, kind"
                       " LIMIT ?", (limit,))
    return [dict(zip((*BUNDLE_KEYS, "bytes"), r)) for r in rows]


def bundle_bytes(store: HubStore, version: int, kind: str) -> bytes | None:
    rows = store.query("SELECT data FROM risk_bundles WHERE version=? AND kind=?", (version, kind))
    return bytes(rows[0][0]) if rows else None


def latest_offer(store: HubStore) -> Offer | None:
    """The newest version as delivery offers it (a hub that restarts offers it again)."""
    newest = latest(store)
    if newest is None:
        return None
    delta = bundle_bytes(store, newest["version"], "delta")
    base = store.query("SELECT base_version FROM risk_bundles WHERE version=? AND kind='delta'", (newest["version"],))
    return Offer(newest["version"], newest["snapshot"], delta, base[0][0] if base else None)


def due(store: HubStore, now: float, margin_s: float) -> bool:
    """True when a bundle was published and the newest expires within `margin_s` (publish it again)."""
    newest = latest(store)
    return newest is not None and newest["expires_at"] - now <= margin_s
