"""Retention at the station: it prunes by the hub's signed state only what the hub holds (clear past its days,
suspect kept longer, seizures until released, unsynced never), a legal hold keeps a record and its files until
the hub releases it, the state survives a restart and a replayed older one cannot lift a hold."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import retention as r
from central_sync.commands import CommandLink
from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto
from central_sync.schema import (Identity, InspectionRecord, Review, SearchReport, SearchResult, SearchSignature,
                                 Verdict)
from edge.commands import CommandHandlers, CommandReceiver, CommandsConfig
from edge.store import Store, StoreLimits
from edge_factories import make_record
from polling import until

HUB_KEY = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
POLICY = r.RetentionPolicy(clear_days=30, suspect_days=365, manual_days=365)
NOW = time.time()


def state(version: int, holds: list[r.Hold] = [], released: list[str] = [], policy=POLICY) -> bytes:
    return r.sign(HUB_KEY, r.new_state(version, policy, holds, released, NOW))


def commit(s: Store, verdict: Verdict, days: float, synced: bool = True, plate: str | None = None,
           review: Review | None = None, scan: str | None = None, photo: str | None = None) -> InspectionRecord:
    at = datetime.fromtimestamp(NOW, timezone.utc) - timedelta(days=days)
    rec = make_record(verdict, "detection" if verdict is Verdict.SUSPECT else verdict.value, scan_sha=scan)
    idents = [Identity(kind="plate", value=plate, source="cam", status="read")] if plate else []
    reports = [SearchReport(version=1, vehicle_type="saloon", minutes=5, outcome="nothing_found", photos=[photo],
                            officer=SearchSignature(badge="B-1", role="officer", signed_at=at, digest="0" * 64))
               ] if photo else []
    rec = rec.model_copy(update={"decided_at": at, "started_at": at, "identities": idents, "review": review,
                                 "search_reports": reports})
    if photo:
        assert s.put_photo(photo, b"jpeg")
    if scan:
        assert s.put_scan(scan, b"s" * 100)
    rec = s.commit(rec, scan_stored=bool(scan))
    if synced:
        s.conn.execute("DELETE FROM outbox WHERE record_id = ?", (rec.id,))
    return rec


def kept(s: Store, *recs: InspectionRecord) -> set[str]:
    return {rec.id for rec in recs if s.get(rec.id) is not None}


def test_without_a_state_from_the_hub_the_station_keeps_everything(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=0)) as s:
        old = commit(s, Verdict.CLEAR, 900)
        s.prune(now=NOW)
        assert s.get(old.id) is not None and s.figures(NOW)["next_prune"] == 0


def test_the_hubs_state_prunes_exactly_what_it_should(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=0)) as s:
        clear_old = commit(s, Verdict.CLEAR, 40, scan="c1" * 32, photo="f0" * 32)
        clear_young = commit(s, Verdict.CLEAR, 20)
        clear_unsynced = commit(s, Verdict.CLEAR, 400, synced=False)
        suspect_mid = commit(s, Verdict.SUSPECT, 40)
        suspect_old = commit(s, Verdict.SUSPECT, 400)
        seized = commit(s, Verdict.CLEAR, 400, review=Review(officer="B-1", decided_at=clear_old.decided_at,
                                                             outcome="override", search=SearchResult(outcome="seized")))
        assert s.retention.receive(HUB_KEY.public_key(), state(1)) == "applied"
        fig = s.figures(NOW)
        assert fig["next_prune"] == 2 and fig["kept"] == {"not_released": 1}
        assert fig["records"] == {"clear": 4, "suspect": 2} and fig["data_bytes"] > 100
        s.prune(now=NOW)
        every = (clear_old, clear_young, clear_unsynced, suspect_mid, suspect_old, seized)
        assert kept(s, *every) == {clear_young.id, clear_unsynced.id, suspect_mid.id, seized.id}
        assert not s.scan_path("c1" * 32).exists() and s.counters.pruned_records == 2
        assert not s.photo_path("f0" * 32).exists()  # its search photo went with it

        assert s.retention.receive(HUB_KEY.public_key(), state(2, released=[seized.id])) == "applied"
        s.prune(now=NOW)
        assert s.get(seized.id) is None


def test_a_hold_keeps_a_record_and_its_scan_until_released_and_survives_a_restart(tmp_path):
    limits = StoreLimits(reserve_bytes=0, scan_cap_bytes=250)
    with Store(tmp_path, limits) as s:
        by_plate = commit(s, Verdict.CLEAR, 400, plate="AB 1234", scan="a1" * 32)
        by_id = commit(s, Verdict.CLEAR, 400, scan="b2" * 32)
        held = [r.Hold(kind="plate", value="AB1234"), r.Hold(kind="record", value=by_id.id)]
        assert s.retention.receive(HUB_KEY.public_key(), state(3, held)) == "applied"
        assert not s.put_scan("d4" * 32, b"z" * 100)  # over the cap, and every synced scan is held: none evicted
        assert s.scan_path("a1" * 32).exists() and s.scan_path("b2" * 32).exists()
        s.prune(now=NOW)
        assert kept(s, by_plate, by_id) == {by_plate.id, by_id.id}
        assert s.hold_of(by_plate) == "plate" and s.hold_of(by_id) == "record"
    with Store(tmp_path, limits) as s:  # a restart keeps the state
        assert s.retention.state is not None and s.retention.state.version == 3
        assert s.retention.receive(HUB_KEY.public_key(), state(2)) == "older"  # a replay cannot lift the holds
        s.prune(now=NOW)
        assert kept(s, by_plate, by_id) == {by_plate.id, by_id.id}
        assert s.retention.receive(HUB_KEY.public_key(), state(4, held[1:])) == "applied"
        s.prune(now=NOW)
        assert kept(s, by_plate, by_id) == {by_id.id} and not s.scan_path("a1" * 32).exists()


def test_a_forged_or_unreadable_state_is_refused_and_changes_nothing(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=0)) as s:
        old = commit(s, Verdict.CLEAR, 400)
        forged = r.sign(Ed25519PrivateKey.generate(), r.new_state(9, POLICY, [], [], NOW))
        assert s.retention.receive(HUB_KEY.public_key(), forged) == "bad_signature"
        assert s.retention.receive(HUB_KEY.public_key(), b"{not json") == "bad_format"
        assert s.retention.receive(None, state(1)) == "no_key"
        s.prune(now=NOW)
        assert s.get(old.id) is not None and s.retention.counters["refused_bad_signature"] == 1
    (tmp_path / "retention.json").write_text("{broken")
    with Store(tmp_path) as s:
        assert s.retention.state is None and (tmp_path / "retention.refused").exists()


async def test_the_retained_state_reaches_a_station_that_connects_later(tmp_path):
    pub = tmp_path / "hub.pub"
    pub.write_bytes(HUB_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    with Mosquitto(tmp_path / "broker") as broker, Store(tmp_path / "st", StoreLimits(reserve_bytes=0)) as s:
        cfg = BrokerConfig(port=broker.port)
        old = commit(s, Verdict.CLEAR, 400)
        echoed: list[bytes] = []
        async with CommandLink(cfg, "hub-test", [r.TOPIC], lambda t, p: echoed.append(p)) as hub:
            await hub.ready()
            hub.publish(r.TOPIC, state(5), retain=True)
            await until(lambda: echoed, "the broker took the retained state", timeout=10)
        async with CommandReceiver(cfg, "gate-1", s, CommandHandlers(), CommandsConfig(hub_public_key=pub),
                                   retention=s.retention) as rx:
            await until(lambda: rx.counters["retention_applied"] == 1, "the retained state applied", timeout=10)
        s.prune(now=NOW)
        assert s.get(old.id) is None


def test_a_hold_arriving_between_the_choice_and_the_deletion_keeps_the_record(tmp_path):
    """A new state arrives on the sync thread: a plate hold landing after the prune chose the record, before it
    deleted it, let the record and its scan go."""
    with Store(tmp_path, StoreLimits(reserve_bytes=0)) as s:
        rec = commit(s, Verdict.CLEAR, 400, plate="AB 1234", scan="a1" * 32)
        assert s.retention.receive(HUB_KEY.public_key(), state(1)) == "applied"
        chose = s.prunable

        def hold_meanwhile(now, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            chosen = chose(now, *args, **kwargs)
            assert [c[0] for c in chosen] == [rec.id]
            assert s.retention.receive(HUB_KEY.public_key(), state(2, [r.Hold(kind="plate", value="ab-1234")])) == "applied"
            return chosen
        s.prunable = hold_meanwhile  # type: ignore[method-assign]
        s.prune(now=NOW)
        assert kept(s, rec) == {rec.id} and s.scan_path("a1" * 32).exists()


def test_a_review_queued_by_the_screen_after_the_choice_keeps_the_record(tmp_path):
    """The screen writes on its own connection: an officer's review queued for the hub after the prune chose the
    record, before it deleted it, was deleted with the record (its outbox row left naming nothing) unsent."""
    with Store(tmp_path, StoreLimits(reserve_bytes=0)) as s, Store(tmp_path, StoreLimits(reserve_bytes=0)) as screen:
        rec = commit(s, Verdict.CLEAR, 400, scan="a1" * 32)
        assert s.retention.receive(HUB_KEY.public_key(), state(1)) == "applied"
        chose = s.prunable

        def review_meanwhile(now, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            chosen = chose(now, *args, **kwargs)
            assert [c[0] for c in chosen] == [rec.id]
            screen.add_review(rec.id, Review(officer="B-7", decided_at=datetime.now(timezone.utc), outcome="false_alarm"))
            return chosen
        s.prunable = review_meanwhile  # type: ignore[method-assign]
        s.prune(now=NOW)
        assert kept(s, rec) == {rec.id} and s.scan_path("a1" * 32).exists()
        assert s.get(rec.id).review is not None  # type: ignore[union-attr]
        s.conn.execute("DELETE FROM outbox WHERE record_id = ?", (rec.id,))  # the hub acknowledged the review
        s.prunable = chose  # type: ignore[method-assign]
        s.prune(now=NOW)
        assert kept(s, rec) == set()


def test_a_file_another_record_still_names_is_not_deleted_with_a_pruned_record(tmp_path):
    """Scans, crops and search photos are kept by content: two records may name one. Pruning the old one
    deleted the file a held record still needed."""
    with Store(tmp_path, StoreLimits(reserve_bytes=0)) as s:
        photo, scan = "f0" * 32, "a2" * 32
        old = commit(s, Verdict.CLEAR, 400, photo=photo, scan=scan)
        held = commit(s, Verdict.CLEAR, 400, plate="HELD1", photo=photo, scan=scan)
        assert s.retention.receive(HUB_KEY.public_key(), state(1, [r.Hold(kind="plate", value="HELD1")])) == "applied"
        s.prune(now=NOW)
        assert kept(s, old, held) == {held.id}
        assert s.photo_path(photo).exists() and s.scan_path(scan).exists()
        assert s.retention.receive(HUB_KEY.public_key(), state(2)) == "applied"  # the hold is lifted
        s.prune(now=NOW)
        assert kept(s, held) == set() and not s.photo_path(photo).exists() and not s.scan_path(scan).exists()


def test_a_damaged_state_file_keeps_everything_even_with_retention_days(tmp_path):
    """The file held the legal holds; the config's retention_days fallback has none: after a restart with a
    damaged file the held record was pruned with its scan."""
    limits = StoreLimits(reserve_bytes=0, retention_days=30)
    with Store(tmp_path, limits) as s:
        rec = commit(s, Verdict.CLEAR, 400, plate="AB 1234", scan="a1" * 32)
        assert s.retention.receive(HUB_KEY.public_key(), state(1, [r.Hold(kind="plate", value="AB1234")])) == "applied"
    raw = (tmp_path / "retention.json").read_bytes()
    (tmp_path / "retention.json").write_bytes(raw[:-5])  # a torn write, a disk error
    with Store(tmp_path, limits) as s:
        s.prune(now=NOW)
        assert kept(s, rec) == {rec.id} and s.retention.counters["refused_stored"] == 1
        assert s.retention.receive(HUB_KEY.public_key(), state(2)) == "applied"  # the hub's next state: holds none
        s.prune(now=NOW)
        assert kept(s, rec) == set()


def test_the_scan_cap_keeps_an_unreleased_seizures_crops(tmp_path):
    """Crops are not synced: the station holds the only copy. The cap evicted those of a seizure the hub had
    not released (it skipped only held records)."""
    import hashlib

    with Store(tmp_path, StoreLimits(reserve_bytes=0, scan_cap_bytes=300)) as s:
        png = b"\x89PNG\r\n\x1a\n" + b"x" * 200
        crop = hashlib.sha256(png).hexdigest()
        assert s.put_crop(crop, png)
        rec = commit(s, Verdict.CLEAR, 1)
        seized = rec.model_copy(update={
            "identities": [Identity(kind="plate", value="AB1", source="cam", status="read", crop=crop)],
            "review": Review(officer="B", decided_at=rec.decided_at, outcome="override",
                             search=SearchResult(outcome="seized"))})
        s.conn.execute("UPDATE inspections SET record = ?, crops = ? WHERE id = ?", (seized.to_json(), crop, rec.id))
        assert s.retention.receive(HUB_KEY.public_key(), state(1)) == "applied"
        s.put_scan("c3" * 32, b"s" * 90)  # more data arrives: over 0.9 of the cap
        s.prune(now=NOW)
        assert kept(s, rec) == {rec.id} and s.crop_path(crop).exists()


def test_the_scan_cap_keeps_every_crop_while_the_kept_state_is_damaged(tmp_path):
    """A kept state that no longer parses held the legal holds: until the hub's next state the station does not know
    them, and the cap evicted a held record's crop (its only copy) to make room; the scans, which the hub holds,
    may still go."""
    import hashlib

    limits = StoreLimits(reserve_bytes=0, scan_cap_bytes=400)
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 200
    crop = hashlib.sha256(png).hexdigest()
    with Store(tmp_path, limits) as s:
        assert s.put_crop(crop, png)
        held = commit(s, Verdict.CLEAR, 2, plate="AB 1234", scan="a4" * 32)  # its 100-byte scan: 308 bytes in all
        s.conn.execute("UPDATE inspections SET crops = ? WHERE id = ?", (crop, held.id))
        assert s.retention.receive(HUB_KEY.public_key(), state(1, [r.Hold(kind="plate", value="AB1234")])) == "applied"
    raw = (tmp_path / "retention.json").read_bytes()
    (tmp_path / "retention.json").write_bytes(raw[:-5])  # a torn write, a disk error
    with Store(tmp_path, limits) as s:
        assert s.retention.refused_file
        assert s.put_scan("c4" * 32, b"t" * 150)  # room made by the held record's scan alone
        assert not s.scan_path("a4" * 32).exists() and s.crop_path(crop).exists()
        assert not s.put_scan("c5" * 32, b"u" * 150)  # no room left but the crop's: dropped, counted
        assert s.crop_path(crop).exists() and kept(s, held) == {held.id}
        assert s.retention.receive(HUB_KEY.public_key(), state(2)) == "applied"  # the hub's next state: no hold
        assert s.put_scan("c5" * 32, b"u" * 150) and not s.crop_path(crop).exists()
