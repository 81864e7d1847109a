"""Publishing on both hub backends: the approved state becomes a signed snapshot that risk.bundle's
open_bundle accepts, the next version also a delta that turns the old state into the new one at a
station; tampered bytes or another key are refused; what is still a draft never goes out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, db
from central_sync.errors import PublishError
from central_sync.hub.store import HubStore
from central_sync.risk_delivery import Offer
from central_sync.riskhub import authoring, declarations, declgen, publish
from polling import until
from riskhub_fixtures import open_risk_store, risk_key, store  # noqa: F401 - the fixture
from central_sync.hub.search import normalise as identity_form
from risk import bundle as bundle_mod
from risk.bundle import open_bundle
from risk.engine import BundleState
from risk.errors import BundleError

T0 = 1_800_000_000.0
RULE = {"id": "heavy-empty", "name": "Declared empty but heavy", "reason": "declared_empty_heavy", "score": 60,
        "lane": "red", "enabled": True, "when": {"all": [{"fact": "declaration.declared_empty", "op": "eq", "value": True},
                                                          {"fact": "declaration.weight_kg", "op": "gte", "value": 4500}]}}


def approved(store: HubStore, op: str, payload: dict) -> None:
    authoring.approve(store, authoring.propose(store, "sam", op, payload).id, "ada")


def entry(list_id: str, value: str, **kw: object) -> dict:
    return {"list_id": list_id, "value": value, "reason": "intelligence", "owner": "sam", **kw}


def authored(store: HubStore) -> None:
    approved(store, "watchlist.put", {"id": "plates", "kind": "plate", "name": "Plates", "lane": "red", "owner": "sam"})
    approved(store, "watchlist.put", {"id": "traders", "kind": "trader", "name": "Traders", "lane": "amber", "owner": "sam"})
    approved(store, "entry.put", entry("plates", "ab 1234"))
    approved(store, "entry.put", entry("plates", "CD5678", valid_to=T0 - 1))  # expired: not published
    approved(store, "entry.put", entry("traders", "Golden Bay Imports"))
    approved(store, "rule.put", RULE)
    approved(store, "random.set", {"rate": 0.05, "stale_rate": 0.2, "per_lane": {"gantry": 0.1}})
    declarations.store_declarations(store, declgen.generate(3, seed=1), "test", now=T0 - 60)


def test_publish_gives_a_snapshot_open_bundle_accepts(store: HubStore, tmp_path: Path) -> None:
    key = risk_key(tmp_path)
    authored(store)
    authoring.propose(store, "sam", "entry.put", entry("plates", "ZZ999"))  # a draft: not published
    sent: list[Offer] = []
    out = publish.publish(store, key, "ada", sent.append, expiry_s=3600, now=T0)
    assert sent == [Offer(1, out.snapshot, None, None)] and out.delta is None
    b = open_bundle(sent[0].snapshot, {key.key_id: key.private.public_key()}, now=T0 + 10, current=None)
    assert (b.version, b.kind, b.expires_at, b.sha256) == (1, "snapshot", T0 + 3600, out.sha256)
    assert sorted((e.list_kind, e.value, e.lane) for e in b.watchlists) == [
        ("plate", "AB1234", "red"), ("trader", "GOLDENBAYIMPORTS", "amber")]
    assert [r.to_dict() for r in b.rules] == [RULE]
    assert (b.random.rate, b.random.stale_rate, b.random.per_lane) == (0.05, 0.2, {"gantry": 0.1})
    assert len(b.declarations) == 3
    stored = store.query("SELECT version, kind, sha256, entries, rules FROM risk_bundles")
    assert stored == [(1, "snapshot", out.sha256, 2, 1)]
    assert publish.bundle_bytes(store, 1, "snapshot") == out.snapshot
    logged = [json.loads(e["detail"]) for e in audit.entries(store) if e["action"] == "risk.publish"]
    assert logged[0]["sha256"] == out.sha256


def test_the_delta_turns_the_old_version_into_the_new_one(store: HubStore, tmp_path: Path) -> None:
    key = risk_key(tmp_path)
    keys = {key.key_id: key.private.public_key()}
    authored(store)
    v1 = publish.publish(store, key, "ada", now=T0)
    approved(store, "entry.delete", {"list_id": "plates", "value": "AB1234"})
    approved(store, "entry.put", entry("plates", "EF 4321", level=2))
    approved(store, "rule.put", RULE | {"score": 80})
    v2 = publish.publish(store, key, "ada", now=T0 + 60)
    assert publish.latest_offer(store) == Offer(2, v2.snapshot, v2.delta, 1)  # what a restarted hub offers again
    assert v2.delta is not None
    delta = open_bundle(v2.delta, keys, now=T0 + 61, current=1)
    assert (delta.kind, delta.base_version, delta.rules_changed) == ("delta", 1, True)
    assert delta.removed == (("plate", "AB1234"),)
    assert [e.value for e in delta.watchlists] == ["EF4321"]
    at_station = BundleState.empty().apply(open_bundle(v1.snapshot, keys, now=T0 + 61, current=None)).apply(delta)
    fresh = BundleState.empty().apply(open_bundle(v2.snapshot, keys, now=T0 + 61, current=1))
    for kind, value in (("plate", "AB1234"), ("plate", "EF4321"), ("trader", "GOLDENBAYIMPORTS")):
        assert at_station.lookup(kind, value) == fresh.lookup(kind, value)
    assert fresh.lookup("plate", "AB1234") == [] and fresh.lookup("plate", "EF4321")[0].level == 2
    assert [r.score for r in at_station.rules.rules] == [80]
    with pytest.raises(BundleError) as refused:
        open_bundle(v2.delta, keys, now=T0 + 61, current=None)  # a delta needs its base
    assert refused.value.code == "base_mismatch"


def test_tampered_or_foreign_bundles_do_not_open(store: HubStore, tmp_path: Path) -> None:
    key = risk_key(tmp_path)
    authored(store)
    out = publish.publish(store, key, "ada", now=T0)
    tampered = bytearray(out.snapshot)
    tampered[-5] ^= 0x01
    for data, keys, code in ((bytes(tampered), {key.key_id: key.private.public_key()}, "bad_signature"),
                             (out.snapshot, {key.key_id: Ed25519PrivateKey.generate().public_key()}, "bad_signature"),
                             (out.snapshot, {"other": key.private.public_key()}, "unknown_key")):
        with pytest.raises(BundleError) as err:
            open_bundle(data, keys, now=T0, current=None)
        assert err.value.code == code


def test_republish_is_due_before_expiry(store: HubStore, tmp_path: Path) -> None:
    key = risk_key(tmp_path)
    assert not publish.due(store, T0, 600)  # nothing published yet: nothing to renew
    publish.publish(store, key, "ada", expiry_s=3600, now=T0)
    assert not publish.due(store, T0 + 2000, 600)
    assert publish.due(store, T0 + 3000, 600)
    again = publish.publish(store, key, "hub", expiry_s=3600, now=T0 + 3000)
    assert again.version == 2 and not publish.due(store, T0 + 3000, 600)


async def test_the_hub_offers_the_newest_version_at_start_and_renews_it_before_expiry(tmp_path: Path) -> None:
    store = open_risk_store(str(tmp_path / "hub.db"))
    key = risk_key(tmp_path)
    first = publish.publish(store, key, "ada", expiry_s=300)  # expires within the renewal margin below
    offers: list[Offer] = []
    cfg = ControlRoomConfig(risk_key=tmp_path / "risk.key", risk_expiry_s=3600, risk_republish_s=600)
    async with ControlRoom(store, None, cfg, risk_deliver=offers.append):
        await until(lambda: [o.version for o in offers], "version 2 offered", check=lambda v: v == [1, 2])
    assert offers[0].snapshot == first.snapshot  # what a restarted hub offers before anything else
    renewed = publish.latest(store)
    assert renewed is not None and renewed["publisher"] == "hub" and renewed["expires_at"] - renewed["issued_at"] == 3600
    assert offers[1].base_version == 1 and offers[1].delta is not None


def same_at_station(key_pair: publish.RiskKey, old: publish.Published, new: publish.Published) -> None:
    """The station that applied `old` and then `new`'s delta holds exactly what `new`'s snapshot gives."""
    keys = {key_pair.key_id: key_pair.private.public_key()}
    assert new.delta is not None
    first = open_bundle(old.snapshot, keys, now=T0, current=None)
    at_station = BundleState.empty().apply(first).apply(open_bundle(new.delta, keys, now=T0, current=old.version))
    snap = open_bundle(new.snapshot, keys, now=T0, current=None)
    fresh = BundleState.empty().apply(snap)
    for kind, value in {(e.list_kind, e.value) for e in (*first.watchlists, *snap.watchlists)}:
        assert sorted(map(repr, at_station.lookup(kind, value))) == sorted(map(repr, fresh.lookup(kind, value))), value


def test_the_delta_follows_the_change_log_lists_expiry_and_shared_values(store: HubStore, tmp_path: Path) -> None:
    key = risk_key(tmp_path)
    authored(store)
    approved(store, "watchlist.put", {"id": "more", "kind": "plate", "name": "More", "lane": "amber", "owner": "sam"})
    approved(store, "entry.put", entry("more", "AB1234"))  # the same plate on two lists
    approved(store, "entry.put", entry("plates", "GH777", valid_to=T0 + 30))  # ends before version 2
    v1 = publish.publish(store, key, "ada", now=T0)
    approved(store, "entry.delete", {"list_id": "more", "value": "AB1234"})  # the other list's entry stays
    approved(store, "watchlist.put", {"id": "traders", "kind": "trader", "name": "Traders", "lane": "red",
                                      "owner": "sam"})  # every trader entry changes lane
    v2 = publish.publish(store, key, "ada", now=T0 + 60)
    assert v2.delta is not None
    delta = open_bundle(v2.delta, {key.key_id: key.private.public_key()}, now=T0, current=1)
    assert sorted(delta.removed) == [("plate", "AB1234"), ("plate", "GH777"), ("trader", "GOLDENBAYIMPORTS")]
    assert sorted((e.value, e.lane) for e in delta.watchlists) == [("AB1234", "red"), ("GOLDENBAYIMPORTS", "red")]
    same_at_station(key, v1, v2)
    approved(store, "watchlist.delete", {"id": "traders"})
    v3 = publish.publish(store, key, "ada", now=T0 + 120)
    same_at_station(key, v2, v3)
    assert store.query("SELECT count(*) FROM risk_published_drafts")[0][0] == len(authoring.drafts(store, "approved"))


def test_an_approved_entry_the_bundle_cannot_carry_is_a_publish_error_naming_it(store: HubStore, tmp_path: Path) -> None:
    """A value stored empty (drafting refuses one now; an older hub stored '-' so) failed every publish with a
    ValueError (HTTP 500 without a sentence, the republisher's traceback every minute)."""
    key = risk_key(tmp_path)
    authored(store)
    db.execute(store, "INSERT INTO risk_entries (list_id, value, reason, owner, valid_from, valid_to, level,"
                      " updated_at) VALUES ('plates', '', 'typo', 'sam', NULL, NULL, 0, 0)")
    with pytest.raises(PublishError, match="bundle version 1 cannot be built from the approved state: watchlist "
                                           "entry '' of list 'plates' is empty once normalised"):
        publish.publish(store, key, "ada", now=T0)
    approved(store, "entry.delete", {"list_id": "plates", "value": "-"})  # the way out: delete it
    assert publish.publish(store, key, "ada", now=T0).version == 1


def test_a_delta_after_the_normalisation_became_stricter_replaces_the_values_it_changed(
        store: HubStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 by a hub that normalised as the identity search does (an en dash and a Cyrillic С kept), the
    next by one that folds them: the station on the delta holds what the snapshot gives."""
    key = risk_key(tmp_path)
    authored(store)
    for value in ("AB\u20135", "\u0421D77"):  # as the older hub stored them
        db.execute(store, "INSERT INTO risk_entries (list_id, value, reason, owner, valid_from, valid_to, level,"
                          " updated_at) VALUES ('plates', ?, 'r', 'sam', NULL, NULL, 0, 0)", (value,))
    with monkeypatch.context() as older:
        older.setattr(bundle_mod, "normalise", lambda kind, value: identity_form(value).replace("\x00", ""))
        v1 = publish.publish(store, key, "ada", now=T0)
    v2 = publish.publish(store, key, "ada", now=T0 + 60)
    same_at_station(key, v1, v2)
    keys = {key.key_id: key.private.public_key()}
    at_station = BundleState.empty().apply(open_bundle(v1.snapshot, keys, now=T0, current=None))
    at_station = at_station.apply(open_bundle(v2.delta or b"", keys, now=T0, current=1))
    assert [len(at_station.lookup("plate", v)) for v in ("AB5", "CD77", "AB\u20135")] == [1, 1, 0]


def test_stations_on_the_delta_and_on_the_snapshot_take_the_same_declaration(store: HubStore, tmp_path: Path) -> None:
    """A container declared loaded (DEC-9000, version 1), then declared empty (DEC-1000, version 2): the station
    on version 1 and the delta took DEC-1000 (red with a load), the one on the snapshot DEC-9000 (green)."""
    key = risk_key(tmp_path)
    keys = {key.key_id: key.private.public_key()}
    box = "MSKU9070323"
    declarations.store_declarations(store, [declarations.DeclarationIn(
        ref="DEC-9000", container=box, trader="ACME", origin="CN", weight_kg=9000,
        goods=({"hs": "8471.30", "description": "laptops"},)).normalised()], "test", now=T0)
    v1 = publish.publish(store, key, "ada", now=T0 + 10)
    declarations.store_declarations(store, [declarations.DeclarationIn(
        ref="DEC-1000", container=box, trader="ACME", origin="CN", declared_empty=True).normalised()], "test",
        now=T0 + 100)
    v2 = publish.publish(store, key, "ada", now=T0 + 200)
    on_delta = BundleState.empty().apply(open_bundle(v1.snapshot, keys, now=T0 + 300, current=None))
    on_delta = on_delta.apply(open_bundle(v2.delta or b"", keys, now=T0 + 300, current=1))
    on_snapshot = BundleState.empty().apply(open_bundle(v2.snapshot, keys, now=T0 + 300, current=None))
    for state in (on_delta, on_snapshot):
        found = state.declaration((("container", box),))
        assert found is not None and (found.ref, found.declared_empty) == ("DEC-1000", True)


def test_a_restarted_hub_builds_the_delta_on_the_stored_snapshot(store: HubStore, tmp_path: Path) -> None:
    key = risk_key(tmp_path)
    authored(store)
    v1 = publish.publish(store, key, "ada", now=T0)
    publish._LAST.clear()  # what a new process starts with
    approved(store, "entry.put", entry("plates", "JK 42"))
    v2 = publish.publish(store, key, "ada", now=T0 + 60)
    delta = open_bundle(v2.delta or b"", {key.key_id: key.private.public_key()}, now=T0, current=1)
    assert [e.value for e in delta.watchlists] == ["JK42"] and delta.removed == ()
    same_at_station(key, v1, v2)


def test_a_hub_restarted_with_a_new_key_publishes_a_snapshot_only(store: HubStore, tmp_path: Path) -> None:
    """After the risk key was rotated and the hub restarted, the previous snapshot (signed with the old key) did not
    open with the new one: every publish, and every republish before expiry, was a PublishError (HTTP 500), so no
    watchlist change reached a station again and every station went stale."""
    authored(store)
    (tmp_path / "old").mkdir()
    publish.publish(store, risk_key(tmp_path / "old"), "ada", now=T0)
    publish._LAST.clear()  # the hub restarted with --risk-key naming the new key
    new_key = risk_key(tmp_path)
    approved(store, "entry.put", entry("plates", "JK 42"))
    v2 = publish.publish(store, new_key, "ada", now=T0 + 60)
    assert v2.version == 2 and v2.delta is None and publish.latest_offer(store) == Offer(2, v2.snapshot)
    snap = open_bundle(v2.snapshot, {new_key.key_id: new_key.private.public_key()}, now=T0 + 60, current=1)
    assert "JK42" in snap.table.values("plate")
    v3 = publish.publish(store, new_key, "ada", now=T0 + 120)  # the next one has its delta again
    assert v3.delta is not None


def test_every_full_every_th_version_is_a_snapshot_only_so_a_station_holds_few_deltas(store: HubStore,
                                                                                      tmp_path: Path) -> None:
    """A station keeps each delta on top of its last snapshot and replays them all at each start: without a
    whole version now and then its files and its start time grow with every version (the hub republishes
    before expiry, so versions come daily even with nothing approved)."""
    from edge.risk import BundleFiles, RiskRuntime

    key = risk_key(tmp_path)
    authored(store)
    station = RiskRuntime("st-1", {key.key_id: key.private.public_key()}, BundleFiles(tmp_path / "risk"), "seed")
    offers: list[Offer] = []
    kinds, held_counts = [], []
    for n in range(1, 8):
        approved(store, "entry.put", entry("plates", f"XY{n:04d}"))
        out = publish.publish(store, key, "ada", offers.append, now=T0 + 60 * n, full_every=3)
        kinds.append("snapshot" if out.delta is None else "delta")
        envelope = offers[-1].for_station(station.version)
        assert station.receive(n, envelope, now=T0 + 60 * n + 1).outcome == "applied"
        held = [p.name for p in station.files.stored()]
        assert held[0].endswith("-snapshot.cperb"), held
        held_counts.append(len(held))
    assert kinds == ["snapshot", "delta", "snapshot", "delta", "delta", "snapshot", "delta"]
    assert held_counts == [1, 2, 1, 2, 3, 1, 2]  # the snapshot and the deltas on it; a whole version drops them
    assert publish.FULL_EVERY == 30
    restarted = RiskRuntime("st-1", {key.key_id: key.private.public_key()}, BundleFiles(tmp_path / "risk"), "seed")
    restarted.reload(now=T0 + 1000)
    assert restarted.version == 7 and restarted.engine.state.lookup("plate", "XY0007")
