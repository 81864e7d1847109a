"""Risk bundles from the hub to a station over a real Mosquitto: delivered in chunks, verified with the
pinned key, applied, kept across a restart, acknowledged end to end; refusals reported and counted."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.config import BrokerConfig, SyncConfig
from central_sync.devtools import Mosquitto, open_station_db
from central_sync.hub.store import HubStore, open_store
from central_sync.publisher import Publisher
from central_sync.risk_delivery import Offer, RiskAck, RiskDelivery
from edge.risk import BundleFiles, RiskConfig, RiskReceiver, RiskRuntime, load_keys
from polling import until
from risk_bundles import envelope, pinned
from risk.bundle import RandomPolicy
from risk.engine import Facts

STATION = "gate-1"


@dataclass
class Rig:
    broker: Mosquitto
    hub: RiskDelivery
    store: HubStore
    tmp: Path

    @asynccontextmanager
    async def station(self, max_bundle_bytes: int | None = None) -> AsyncIterator[RiskRuntime]:
        """A station as the daemon composes it: runtime (reloads data_dir/risk), receiver, status publisher."""
        cfg = pinned(self.tmp)
        if max_bundle_bytes is not None:
            cfg = cfg.model_copy(update={"max_bundle_bytes": max_bundle_bytes})
        runtime = RiskRuntime.start(STATION, cfg, self.tmp / "data")
        open_station_db(self.tmp / "station.db").close()
        sync = SyncConfig(port=self.broker.port, status_period_s=0.2)
        async with RiskReceiver(BrokerConfig(port=self.broker.port), STATION, runtime) as rx, \
                Publisher(sync, STATION, self.tmp / "station.db", self.tmp / "scans", extra_status=runtime.status):
            await rx.link.ready()
            yield runtime

    def acks(self) -> list[tuple]:
        return self.store.query("SELECT version, outcome, code FROM bundle_acks WHERE station = ? ORDER BY at", (STATION,))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()

    def keep(station: str, ack: RiskAck, at: float) -> None:
        store.record_bundle_ack(station, ack.version, ack.sha256, ack.outcome, ack.code, at)

    with Mosquitto(tmp_path / "broker") as broker:
        async with RiskDelivery(BrokerConfig(port=broker.port), "hub-t", keep, resend_s=30, chunk_bytes=4096) as hub:
            await hub.link.ready()
            yield Rig(broker, hub, store, tmp_path)
    store.close()


def facts(plate: str, at: float | None = None) -> Facts:
    return Facts(item_id="item-1", at=time.time() if at is None else at, identities=(("plate", plate),),
                 station_id=STATION, station_kind="gantry", detector_verdict="clear")


async def test_a_bundle_is_delivered_applied_acknowledged_and_evaluated(rig: Rig) -> None:
    big = tuple(secrets.token_hex(5).upper() for _ in range(3000))  # several chunks of 4 KiB
    async with rig.station() as runtime:
        before = runtime.evaluate(facts("AB123CD"))
        assert before.lane in ("amber", "red") and "no_bundle" in [f.kind for f in before.fired]  # at least amber
        rig.hub.offer(Offer(1, envelope(1, plates=("AB 123 CD", *big))))
        await until(lambda: runtime.version, "the station runs bundle 1")
        await until(rig.acks, "the hub stored the ack", in_thread=True, check=lambda a: a == [(1, "applied", None)])
        hit = runtime.evaluate(facts("ab-123-cd"))
        assert hit.lane == "red" and hit.bundle_version == 1
        assert [f.reason for f in hit.fired if f.kind == "watchlist"] == ["reported stolen"]
        await until(rig.hub.stats, "the hub sees the station on the offered version", check=lambda s: s["stale"] == [])
    assert rig.hub.counters["chunks_sent"] > 3


async def test_a_delta_on_the_base_the_station_runs(rig: Rig) -> None:
    async with rig.station() as runtime:
        rig.hub.offer(Offer(1, envelope(1)))
        await until(lambda: runtime.version == 1, "bundle 1 applied")
        await until(lambda: rig.hub.core.stations[STATION].runs == 1, "the hub knows the station runs 1")
        delta = envelope(2, plates=("ZZ 999",), kind="delta", base=1)
        rig.hub.offer(Offer(2, envelope(2, plates=("AB 123 CD", "ZZ 999")), delta, base_version=1))
        await until(lambda: runtime.version == 2, "the delta applied")
        assert runtime.evaluate(facts("ZZ999")).lane == "red" and runtime.evaluate(facts("AB123CD")).lane == "red"
        assert runtime.files.stored()[-1].name == "000000000002-delta.cperb"


@pytest.mark.parametrize(("bad", "code"), [
    (lambda: envelope(1, key=Ed25519PrivateKey.generate()), "bad_signature"),
    (lambda: envelope(1, key_id="risk-9"), "unknown_key"),
    (lambda: envelope(1, expires_in=-10), "expired"),
    (lambda: envelope(1)[:-40] + b"tampered" * 5, "bad_signature"),
])
async def test_a_bad_bundle_is_refused_reported_in_the_ack_and_counted(rig: Rig, bad: Callable[[], bytes], code: str) -> None:
    async with rig.station() as runtime:
        rig.hub.offer(Offer(1, bad()))
        await until(rig.acks, "the refusal reached the hub", in_thread=True, check=lambda a: a == [(1, "refused", code)])
        assert runtime.version is None and runtime.counters[f"refused_{code}"] == 1
        assert rig.hub.stats()["stale"] == [STATION]


async def test_a_bundle_larger_than_the_station_takes_is_refused_in_the_ack_and_not_sent_again(rig: Rig) -> None:
    """Its chunks were dropped unanswered: the hub sent the whole bundle again every resend period for good, and the
    control room never learnt why the station stayed on its old version."""
    big = envelope(1, plates=tuple(secrets.token_hex(5).upper() for _ in range(3000)))  # several chunks of 4 KiB
    async with rig.station(max_bundle_bytes=4096) as runtime:
        rig.hub.offer(Offer(1, big))
        await until(rig.acks, "the refusal reached the hub", in_thread=True,
                    check=lambda a: a == [(1, "refused", "too_large")])
        assert runtime.version is None and runtime.counters["refused_too_large"] == 1
        held = rig.hub.core.stations[STATION]  # refused in this session: not sent again
        assert hashlib.sha256(big).hexdigest() in held.refused and held.sent_sha is None


def test_a_refused_bundle_sent_again_is_refused_again_and_counted_once(tmp_path: Path) -> None:
    """The hub offers a bundle as the station comes up and again when it says it is ready: each copy is
    checked and refused, the bundle counted once as refused (the copies as `repeat_refused`, as the model
    roll-out counts them); another bad bundle counts again."""
    runtime = RiskRuntime("gate-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed")
    forged, other = envelope(1, key=Ed25519PrivateKey.generate()), envelope(1, key=Ed25519PrivateKey.generate())
    acks = [runtime.receive(1, forged), runtime.receive(1, forged), runtime.receive(1, other)]
    assert [(a.outcome, a.code) for a in acks] == [("refused", "bad_signature")] * 3
    assert runtime.counters["refused_bad_signature"] == 2 and runtime.counters["repeat_refused"] == 1
    assert runtime.version is None


async def test_a_replayed_older_bundle_is_refused_and_the_newer_one_runs_on(rig: Rig) -> None:
    old = envelope(1)
    async with rig.station() as runtime:
        rig.hub.offer(Offer(2, envelope(2)))
        await until(lambda: runtime.version == 2, "bundle 2 applied")
        rig.hub.offer(Offer(1, old))  # e.g. a hub restored from an old backup, or a replay
        await until(rig.acks, "the refusal reached the hub", in_thread=True, check=lambda a: (1, "refused", "older") in a)
        assert runtime.version == 2 and runtime.counters["refused_older"] == 1


async def test_a_restart_keeps_the_bundle_and_says_so_in_its_status(rig: Rig) -> None:
    async with rig.station() as runtime:
        rig.hub.offer(Offer(1, envelope(1)))
        await until(lambda: runtime.version == 1, "bundle 1 applied")
    async with rig.station() as again:  # a new session: the hub reads the version from the status alone
        assert again.version == 1
        await until(lambda: rig.hub.core.stations[STATION].session == 2 and rig.hub.core.stations[STATION].online,
                    "the hub saw the new session's status")
        assert rig.hub.core.stations[STATION].runs == 1 and rig.hub.counters["sent"] == 1  # nothing sent again


async def test_a_corrupt_stored_file_is_set_aside_and_the_last_good_bundle_runs(rig: Rig) -> None:
    async with rig.station() as runtime:
        rig.hub.offer(Offer(1, envelope(1)))
        await until(lambda: runtime.version == 1, "bundle 1 applied")
    folder = rig.tmp / "data" / "risk"
    (folder / "000000000002-delta.cperb").write_bytes(b"CPERB1\nnot a bundle")
    again = RiskRuntime.start(STATION, pinned(rig.tmp), rig.tmp / "data")
    assert again.version == 1 and again.evaluate(facts("AB123CD")).lane == "red"
    assert again.counters["refused_stored"] == 1 and (folder / "000000000002-delta.cperb.refused").exists()


def test_a_start_with_the_clock_behind_or_the_key_not_pinned_keeps_the_last_good_bundle(tmp_path: Path) -> None:
    """A station booting before its clock was set renamed its good bundle `.refused` (not_yet_valid, as if
    corrupt): it ran with none (every item amber) and, at the next start with the right time, still none."""
    data = tmp_path / "data"
    first = RiskRuntime.start(STATION, pinned(tmp_path), data)
    assert first.receive(1, envelope(1)).outcome == "applied"
    stored = sorted(p.name for p in (data / "risk").iterdir())
    behind = RiskRuntime(STATION, load_keys(pinned(tmp_path)), BundleFiles(data / "risk"), "seed")
    behind.reload(now=time.time() - 3600)  # the clock an hour behind: the bundle is issued "in the future"
    assert behind.version == 1 and behind.counters["refused_stored"] == 0
    assert behind.status(now=time.time() - 3600)["risk_stale"] is True  # its age unknown while the clock is behind
    no_key = RiskRuntime.start(STATION, RiskConfig(), data)  # the key file not readable at this start
    assert no_key.version is None and no_key.counters["refused_stored"] == 1
    assert sorted(p.name for p in (data / "risk").iterdir()) == stored  # nothing set aside
    assert RiskRuntime.start(STATION, pinned(tmp_path), data).version == 1


async def test_an_expired_bundle_runs_on_stale_at_the_stale_rate(rig: Rig) -> None:
    async with rig.station() as runtime:
        rig.hub.offer(Offer(1, envelope(1, expires_in=3600, random=RandomPolicy(rate=0.02, stale_rate=0.10))))
        await until(lambda: runtime.version == 1, "bundle 1 applied")
    later = time.time() + 7200
    again = RiskRuntime.start(STATION, pinned(rig.tmp), rig.tmp / "data")
    assessment = again.evaluate(facts("XX000", at=later))
    assert again.version == 1 and again.status(now=later)["risk_stale"] is True
    assert assessment.stale and assessment.random_draw is not None and assessment.random_draw.rate == 0.10
    assert "stale" in [f.kind for f in assessment.fired]


async def test_a_station_offline_at_the_publish_gets_the_bundle_when_it_comes_online(rig: Rig) -> None:
    rig.hub.offer(Offer(1, envelope(1)))  # no station has spoken yet
    await until(lambda: rig.hub.core.offer is not None, "the hub holds the offer")
    assert rig.hub.counters["sent"] == 0
    async with rig.station() as runtime:
        await until(lambda: runtime.version == 1, "bundle 1 applied once the station is online")
        await until(rig.acks, "the ack at the hub", in_thread=True, check=lambda a: a == [(1, "applied", None)])


async def test_a_bundle_sent_before_the_stations_link_subscribed_is_sent_again_when_it_has(rig: Rig) -> None:
    """The station's status (one connection) reaches the hub before its risk link (another) has subscribed: the
    first send is lost. The link says it is ready, and the hub sends again at once, not after resend_s."""
    runtime = RiskRuntime.start(STATION, pinned(rig.tmp), rig.tmp / "data")
    open_station_db(rig.tmp / "station.db").close()
    rig.hub.offer(Offer(1, envelope(1)))
    sync = SyncConfig(port=rig.broker.port, status_period_s=0.2)
    async with Publisher(sync, STATION, rig.tmp / "station.db", rig.tmp / "scans", extra_status=runtime.status):
        await until(lambda: rig.hub.counters["chunks_sent"], "the hub sent to a station not yet subscribed")
        async with RiskReceiver(BrokerConfig(port=rig.broker.port), STATION, runtime):
            await until(lambda: runtime.version == 1, "bundle 1 applied", timeout=60)
    assert rig.hub.counters["ready"] >= 1 and rig.hub.counters["resent"] == 0  # sent on ready, not on the resend


def test_the_ack_names_the_signed_version_the_station_runs_not_the_chunk_headers(tmp_path: Path) -> None:
    """The chunk header's version is not signed: the v7 envelope re-sent under header version 8 was acked
    'applied, version 8' while the station ran 7, and the hub, taking it for running 8, never sent it v8."""
    runtime = RiskRuntime.start("gate-1", pinned(tmp_path), tmp_path / "data")
    v7 = envelope(7)
    assert (runtime.receive(7, v7).version, runtime.version) == (7, 7)
    replayed = runtime.receive(8, v7)
    assert (replayed.outcome, replayed.version, runtime.version) == ("applied", 7, 7)
    fresh = RiskRuntime.start("gate-2", pinned(tmp_path), tmp_path / "data2")
    assert fresh.receive(9, v7).version == 7  # applied under another header version: the signed one is acked


def test_the_assembler_holds_no_more_than_an_envelope_says_and_survives_a_stray_chunk() -> None:
    """It checked only the size a chunk's header states: 200 chunks of 1 MiB under a 1 MiB limit were all held.
    And one chunk of another envelope abandoned the one under way (complete only after the hub's resend, 60 s)."""
    import hashlib

    from central_sync.risk_delivery import RiskChunk, chunks, decode_chunk
    from edge.risk import Assembler

    asm = Assembler(1 << 20)
    sha = hashlib.sha256(b"x").hexdigest()
    for i in range(200):
        assert asm.add(RiskChunk(version=3, sha256=sha, index=i, count=200, size=1 << 20), bytes(1 << 20)) is None
    assert sum(len(b) for parts in asm.partials.values() for b in parts.values()) <= 1 << 20
    assert asm.counters["chunk_refused"] == 199
    wanted, stray = bytes(range(256)) * 20, b"another envelope" * 100
    parts = [decode_chunk(c) for c in chunks(4, wanted, chunk_bytes=1024)]
    other = decode_chunk(chunks(5, stray, chunk_bytes=1024)[0])
    got = [asm.add(*parts[0]), asm.add(*other), *[asm.add(*part) for part in parts[1:]]]
    assert got[-1] == wanted and got[:-1] == [None] * (len(got) - 1)


def test_a_snapshot_is_on_disk_under_its_name_before_the_bundles_it_replaces_are_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot was renamed into data_dir/risk and the bundles it replaces unlinked with the folder never fsynced:
    a power cut could keep the unlinks and lose the rename, and the station start with no bundle. The folder is
    fsynced after the rename, before anything is dropped."""
    import os

    runtime = RiskRuntime.start("gate-1", pinned(tmp_path), tmp_path / "data")
    runtime.receive(7, envelope(7))
    folder = tmp_path / "data" / "risk"
    events: list[tuple[str, object]] = []
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, Path.unlink

    def fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append(("replace", Path(str(dst)).name))
        real_replace(src, dst)  # type: ignore[arg-type]

    def unlink(self: Path, missing_ok: bool = False) -> None:
        events.append(("unlink", self.name))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    assert runtime.receive(8, envelope(8)).version == 8
    kinds = [e[0] for e in events]
    renamed, dropped = kinds.index("replace"), kinds.index("unlink")
    assert ("fsync", folder.stat().st_ino) in events[renamed:dropped], events
