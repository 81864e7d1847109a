"""LLRP client against the simulated reader over real TCP on localhost: reads, keepalive loss,
malformed messages, dropped connections, refusals, and CLOSE_CONNECTION on stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from drivers.rfid import LlrpConfig, ReaderLink, TagRemoved, TagSeen, open_reader
from drivers.rfid.llrp import LlrpReader, UhfRead
from drivers.rfid.llrp.client import backoff
from drivers.rfid.llrp.codec import RoAccessReport, encode
from drivers.rfid.llrp.params import TagReport
from drivers.rfid.llrp.wire import encode_frame
from polling import until

EPC = "300833B2DDD9014000000001"
TID = "E2801160200073F1A2B3C4D5"
EPC2, TID2 = "300833B2DDD9014000000002", "E2801160200073F1A2B3C4D6"


def cfg(**kw: Any) -> LlrpConfig:
    base: dict[str, Any] = {"kind": "llrp", "antennas": (1, 2), "keepalive_s": 0.2, "removal_after_ms": 300,
                            "reconnect_min_ms": 20, "reconnect_max_ms": 100, "sim": {"read_ms": 30}}
    return LlrpConfig(**{**base, **kw})


class Recorder:
    """Collects a reader's events and reads in the background."""

    def __init__(self, reader: LlrpReader) -> None:
        self.reader, self.events, self.reads = reader, list[Any](), list[UhfRead]()

    async def _events(self) -> None:
        async for ev in self.reader.events():
            self.events.append(ev)

    async def _reads(self) -> None:
        async for read in self.reader.reads():
            self.reads.append(read)

    def kinds(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@asynccontextmanager
async def recording(config: LlrpConfig, name: str = "lane") -> AsyncIterator[tuple[LlrpReader, Recorder]]:
    async with open_reader(config, name) as reader:
        assert isinstance(reader, LlrpReader)
        rec = Recorder(reader)
        tasks = [asyncio.create_task(rec._events()), asyncio.create_task(rec._reads())]
        await asyncio.sleep(0)
        await until(lambda: reader.link_ok, "the LLRP session is up")
        try:
            yield reader, rec
        finally:
            for t in tasks:
                t.cancel()


async def test_a_tag_is_read_end_to_end_with_tid_antenna_rssi_and_timestamps() -> None:
    async with recording(cfg()) as (reader, rec):
        assert reader.sim is not None
        assert reader.capabilities is not None and reader.capabilities.max_antennas == 4
        reader.sim.present(EPC, TID, antenna=2, seconds=0.3, rssi_dbm=-61)
        await until(lambda: rec.kinds(TagRemoved), "the tag left")
    (seen,) = rec.kinds(TagSeen)
    assert (seen.tag.tech, seen.tag.hex, seen.epc, seen.antenna, seen.rssi_dbm) == ("uhf-tid", TID, EPC, 2, -61)
    assert rec.kinds(TagRemoved)[0].reason == "silence"
    first, last = rec.reads[0], rec.reads[-1]
    assert (first.epc, first.tid, first.antenna, first.rssi_dbm) == (EPC, TID, 2, -61)
    assert first.first_seen is not None and last.last_seen is not None and last.last_seen > first.first_seen
    assert last.seen_count == len(rec.reads) > 1


async def test_without_tid_reading_the_epc_is_the_identity() -> None:
    async with recording(cfg(read_tid=False)) as (reader, rec):
        assert reader.sim is not None
        reader.sim.present(EPC, TID, antenna=1, seconds=0.2)
        seen = await until(lambda: rec.kinds(TagSeen), "a tag seen")
    assert (seen[0].tag.tech, seen[0].tag.hex) == ("uhf-epc", EPC) and rec.reads[0].tid is None


async def test_only_the_configured_antennas_are_read() -> None:
    async with recording(cfg(antennas=(1,))) as (reader, rec):
        assert reader.sim is not None
        reader.sim.present(EPC2, TID2, antenna=3, seconds=5)
        reader.sim.present(EPC, TID, antenna=1, seconds=5)
        await until(lambda: rec.kinds(TagSeen), "the tag at antenna 1")
        await until(lambda: reader.sim is not None and reader.sim.reports_sent >= 5, "more reports")
    assert {e.tag.hex for e in rec.kinds(TagSeen)} == {TID}


async def test_keepalives_are_acknowledged_and_their_loss_reconnects() -> None:
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        await until(lambda: sim.acks >= 2, "KEEPALIVE_ACKs reach the reader")
        sim.keepalives = False
        lost = await until(lambda: [e for e in rec.kinds(ReaderLink) if not e.ok], "the link is lost")
        assert "sent no KEEPALIVE for 0.6 s (period 0.2 s)" in lost[0].reason
        assert reader.health.state == "lost"
        sim.keepalives = True
        await until(lambda: reader.link_ok, "the session is back")
    assert reader.reconnects >= 1 and sim.connections >= 2


async def test_a_reader_that_sets_up_and_never_keeps_alive_is_tried_again_at_growing_waits() -> None:
    """Set up, then no KEEPALIVE (a reader that drops its sessions, or two clients knocking each other off one):
    only a session the reader kept alive starts the back-off again, so the waits double up to the maximum."""
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        details: list[str] = []
        reader.on_health = lambda state, detail: details.append(detail)
        sim.keepalives = False

        def waits() -> list[int]:
            return [int(d.rsplit("reconnecting in ", 1)[1].split()[0]) for d in details if "reconnecting in" in d]
        await until(lambda: len(waits()) >= 4, "four sessions lost")
        assert waits()[:4] == [20, 40, 80, 100]
        assert "sent no KEEPALIVE" in details[0]
        acks, sim.keepalives = sim.acks, True
        await until(lambda: reader.link_ok and sim.acks > acks, "a session kept alive")
        sim.drop_connections()
        await until(lambda: len(waits()) >= 5, "that session lost")
        assert waits()[4] == 20  # it starts the back-off again


async def test_a_malformed_report_is_counted_and_the_session_goes_on() -> None:
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        truncated = encode_frame(61, 77, bytes.fromhex("00F0000A8D30"))  # TagReportData cut inside EPC-96
        sim.send_raw(truncated + encode(RoAccessReport((TagReport(bytes.fromhex(EPC), True),), 78)))
        await until(lambda: reader.decoder.stats.rejects, "the malformed message is counted")
        sim.present(EPC2, TID2, antenna=1, seconds=0.2)
        await until(lambda: [e for e in rec.kinds(TagSeen) if e.tag.hex == TID2], "a later tag is read")
    assert reader.decoder.stats.rejects == {"truncated": 1}
    assert reader.decoder.last_error.startswith("RO_ACCESS_REPORT id 77: parameter type 240 at offset 0 has length")
    assert reader.reconnects == 0
    assert [e.tag.hex for e in rec.kinds(TagSeen)][0] == EPC  # the good report after it, keyed by EPC (no TID)


async def test_a_timestamp_beyond_any_date_is_left_out_counted_and_the_session_goes_on() -> None:
    """FirstSeenTimestampUTC in nanoseconds (2**63 us: year 294247) raised ValueError out of the session task,
    which died while the reader still said ok: no reconnection, no tag seen or removed again."""
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        bad = TagReport(bytes.fromhex(EPC2), True, first_seen_us=2**63, last_seen_us=1_700_000_000_000_000)
        sim.send_raw(encode(RoAccessReport((bad,), 79)))
        await until(lambda: [r for r in rec.reads if r.epc == EPC2], "the read comes, without its first time")
        sim.present(EPC, TID, antenna=1, seconds=0.2)
        await until(lambda: [e for e in rec.kinds(TagSeen) if e.tag.hex == TID], "a later tag is read")
        assert reader._task is not None and not reader._task.done()
    (read,) = [r for r in rec.reads if r.epc == EPC2]
    assert read.first_seen is None and read.last_seen is not None and read.last_seen.year == 2023
    assert reader.decoder.stats.rejects == {"bad_field": 1} and reader.reconnects == 0
    assert reader.decoder.last_error == (f"RO_ACCESS_REPORT id 79: field FirstSeenTimestampUTC of tag {EPC2} is "
                                         f"{2**63} µs, beyond the dates a timestamp can hold")


async def test_an_unexpected_error_in_the_session_is_a_lost_link_and_the_client_reconnects(monkeypatch) -> None:
    """Any exception out of a session (here a fault injected into the report handling) removes the tags, reports
    the link lost naming the error and reconnects; before, only DriverError did and anything else ended the task."""
    import drivers.rfid.llrp.client as client

    real, failed = client.read_from, []

    def failing_once(report: TagReport, reader: str, t: float) -> UhfRead:
        if report.epc.hex().upper() == EPC2 and not failed:
            failed.append(True)
            raise KeyError("injected")
        return real(report, reader, t)

    monkeypatch.setattr(client, "read_from", failing_once)
    async with recording(cfg(removal_after_ms=5000)) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        sim.present(EPC, TID, antenna=1, seconds=30)
        await until(lambda: rec.kinds(TagSeen), "the tag is seen")
        sim.present(EPC2, TID2, antenna=1, seconds=30)
        lost = await until(lambda: [e for e in rec.kinds(ReaderLink) if not e.ok], "the link is lost")
        assert lost[0].reason == "reader lane at 127.0.0.1:%d session failed on an unexpected KeyError: 'injected'" \
            % reader.port
        assert [e.reason for e in rec.kinds(TagRemoved)] == ["link_lost"]
        await until(lambda: len([e for e in rec.kinds(TagSeen) if e.tag.hex == TID2]) == 1, "read after reconnecting")
        assert reader._task is not None and not reader._task.done()
    assert reader.session_failures == 1 and reader.reconnects >= 1


async def test_a_broken_header_drops_the_connection_and_the_client_reconnects() -> None:
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        sim.send_raw(bytes.fromhex("0C3E0000000A00000001"))  # version 3
        lost = await until(lambda: [e for e in rec.kinds(ReaderLink) if not e.ok], "the link is dropped")
        assert "sent a broken LLRP header, so the connection is dropped: LLRP message header has version 3" \
            in lost[0].reason
        await until(lambda: reader.link_ok, "the session is back")
        sim.present(EPC, TID, antenna=1, seconds=0.2)
        await until(lambda: rec.kinds(TagSeen), "a tag is read after the reconnect")
    assert reader.decoder.stats.rejects == {"bad_version": 1} and reader.reconnects >= 1


async def test_a_dropped_connection_removes_present_tags_and_reconnects() -> None:
    async with recording(cfg(removal_after_ms=5000)) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        sim.present(EPC, TID, antenna=1, seconds=30)
        await until(lambda: rec.kinds(TagSeen), "the tag is seen")
        sim.drop_connections()
        removed = await until(lambda: rec.kinds(TagRemoved), "the tag is removed with the link")
        assert removed[0].reason == "link_lost"
        await until(lambda: len(rec.kinds(TagSeen)) == 2, "the tag is seen again after the reconnect")
    assert reader.reconnects >= 1 and sim.connections == 2


async def test_a_second_client_is_refused_and_the_first_keeps_reading() -> None:
    async with recording(cfg()) as (first, rec):
        sim = first.sim
        assert sim is not None
        second_cfg = LlrpConfig(kind="llrp", host=sim.host, port=sim.port, reconnect_min_ms=5000)
        async with LlrpReader(second_cfg, "intruder") as second:
            await until(lambda: second.refusals and second.link_reason, "the second client is refused, and says why")
            assert "refused the connection: ConnectionAttemptEvent status 2 (a client-initiated connection " \
                   "already exists)" in second.link_reason
            assert not second.link_ok and second.health.state == "lost"
        sim.present(EPC, TID, antenna=1, seconds=0.2)
        await until(lambda: rec.kinds(TagSeen), "the first client still reads")
    assert sim.refused == 1 and first.reconnects == 0


async def test_a_refused_request_ends_the_session_with_the_status() -> None:
    async with open_reader(cfg(antennas=(5,)), "lane") as reader:
        assert isinstance(reader, LlrpReader)
        await until(lambda: reader.link_reason, "the session fails")
        assert reader.link_reason == ("reader lane at 127.0.0.1:%d refused ADD_ROSPEC: status 301 (A_OutOfRange): "
                                      "antennas [5] out of range 1..4" % reader.port)
        assert not reader.link_ok


async def test_an_antenna_event_is_followed() -> None:
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        sim.antenna(2, False)
        await until(lambda: reader.antennas_connected.get(2) is False, "antenna 2 is known disconnected")
        assert reader.health.state == "degraded" and "antennas [2] are reported disconnected" in reader.health.detail
        sim.present(EPC, TID, antenna=2, seconds=5)
        sim.present(EPC2, TID2, antenna=1, seconds=5)
        await until(lambda: rec.kinds(TagSeen), "the tag at antenna 1")
        await until(lambda: sim.reports_sent >= 5, "more reports")
    assert [e.tag.hex for e in rec.kinds(TagSeen)] == [TID2]


async def test_an_antenna_disconnected_before_the_session_shows_at_once() -> None:
    """GET_READER_CONFIG at connect reports the antennas' state; no event needs to come."""
    async with open_reader(cfg(), "lane") as reader:
        assert isinstance(reader, LlrpReader) and reader.sim is not None
        await until(lambda: reader.link_ok, "the first session is up")
        assert reader.health.state == "ok"
        reader.sim.connected_antennas[2] = False  # unplugged while nobody listens: no AntennaEvent
        reader.sim.drop_connections()
        await until(lambda: reader.reconnects >= 1 and reader.link_ok, "the session is back")
        assert reader.antennas_connected == {1: True, 2: False, 3: True, 4: True}
        assert reader.health.state == "degraded"


async def test_a_reconnected_antenna_makes_the_reader_ok_again() -> None:
    async with recording(cfg()) as (reader, _):
        assert reader.sim is not None
        reader.sim.antenna(1, False)
        await until(lambda: reader.health.state == "degraded", "the reader is degraded")
        reader.sim.antenna(1, True)
        await until(lambda: reader.health.state == "ok", "the reader is ok again")


async def test_stop_sends_close_connection() -> None:
    async with recording(cfg()) as (reader, _):
        sim = reader.sim
        assert sim is not None
        await until(lambda: sim.received.get("START_ROSPEC"), "the ROSpec is started")
        await reader.__aexit__(None, None, None)
        assert sim.received.get("CLOSE_CONNECTION") == 1
        await until(lambda: not sim.client_connected, "the reader sees the client gone")


async def test_an_unreachable_reader_is_lost_and_retried() -> None:
    async with open_reader(LlrpConfig(kind="llrp", host="127.0.0.1", port=1, reconnect_min_ms=10,
                                      reconnect_max_ms=20), "lane") as reader:
        assert isinstance(reader, LlrpReader)
        await until(lambda: reader.reconnects >= 2, "it keeps trying")
        assert reader.health.state == "lost" and "reader lane at 127.0.0.1:1 could not be connected to" \
            in reader.health.detail


def test_reconnection_backs_off_doubling_up_to_the_limit() -> None:
    delays = backoff(LlrpConfig(kind="llrp", host="r", reconnect_min_ms=500, reconnect_max_ms=3000))
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


async def test_garbage_from_the_reader_never_stops_the_client() -> None:
    import random

    garbage = random.Random(17).randbytes(4000)
    async with recording(cfg()) as (reader, rec):
        sim = reader.sim
        assert sim is not None
        for i in range(0, len(garbage), 500):
            sim.send_raw(garbage[i:i + 500])
            await until(lambda: reader.link_ok, "a session, again")
        sim.present(EPC, TID, antenna=1, seconds=0.2)
        await until(lambda: rec.kinds(TagSeen), "a tag is read after the garbage")
        assert reader._task is not None and not reader._task.done()
    assert sum(reader.decoder.stats.rejects.values()) >= 1


async def test_a_reader_gone_after_a_kept_alive_session_is_tried_at_growing_waits() -> None:
    """The flag saying a session was kept alive was cleared only once a connection succeeded: with the reader gone
    after such a session, every refused connection started the back-off again (59 tries in 3 s at 50 ms)."""
    import contextlib
    import socket

    from drivers.errors import LinkLost

    with socket.socket() as s:  # a port nothing listens on: the reader is gone
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reader = LlrpReader(LlrpConfig(kind="llrp", host="127.0.0.1", port=port, reconnect_min_ms=20,
                                   reconnect_max_ms=160), "r1")
    real, calls = reader._session, []

    async def session() -> None:
        calls.append(1)
        if len(calls) == 1:  # a session the reader kept alive, then lost
            reader._kept_alive = True
            raise LinkLost("the reader dropped the session")
        await real()

    reader._session = session  # type: ignore[method-assign]
    waits: list[float] = []
    lost = reader._lost
    reader._lost = lambda reason, now: (waits.append(reader.next_wait_s), lost(reason, now))  # type: ignore[method-assign]
    task = asyncio.create_task(reader._run())
    try:
        await until(lambda: len(waits) >= 5, "five sessions lost")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert waits[:5] == [0.02, 0.04, 0.08, 0.16, 0.16], waits
