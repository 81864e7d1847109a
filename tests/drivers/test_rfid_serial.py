"""EM4100 reader over real pseudo-terminals: dedup, removal after silence, garbage, unplug/replug."""

from __future__ import annotations

import asyncio
import os
import tty

import pytest

from drivers.errors import LinkLost
from drivers.rfid import (
    ReaderLink,
    RfidConfig,
    TagRemoved,
    TagSeen,
    encode_frame,
    open_reader,
)
from drivers.rfid.serial import SerialTransport
from polling import until


async def collect(reader, until, limit_s: float = 10.0, events: list | None = None) -> list:
    """Events until `until(events)` holds (bounded); into `events` where given, for a test to watch them come."""
    events = [] if events is None else events
    async with asyncio.timeout(limit_s):
        async for ev in reader.events():
            events.append(ev)
            if until(events):
                return events
    return events


def tag_events(events: list) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.tag.hex) for e in events if isinstance(e, (TagSeen, TagRemoved))]


async def test_transport_reads_bytes_from_a_pty() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        async with SerialTransport(os.ttyname(slave), 9600, device="r1") as tr:
            os.write(master, b"\x02hello")
            got = b""
            async with asyncio.timeout(5):
                while len(got) < 6:
                    got += await tr.read()
            assert got == b"\x02hello"
            os.close(master)
            master = -1
            with pytest.raises(LinkLost, match="r1"):
                async with asyncio.timeout(5):
                    await tr.read()
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)


async def test_a_port_lost_while_the_chunks_queue_is_full_is_still_link_lost() -> None:
    """The decoding task is behind (QUEUE_CHUNKS chunks waiting, more dropped and counted) when the reader is
    unplugged: once the waiting chunks are taken the loss is raised, never swallowed by the full queue (the reader
    waited for ever and stayed `ok`)."""
    from drivers.rfid.serial import QUEUE_CHUNKS

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        async with SerialTransport(os.ttyname(slave), 9600, device="r1") as tr:
            # each its own chunk, mostly: a port read late (a loaded machine) takes several writes as one chunk, so
            # writes go on until the queue has overflowed (QUEUE_CHUNKS + 20 writes once left it short of full)
            for _ in range(20 * QUEUE_CHUNKS):
                if tr.overflows:
                    break
                os.write(master, b"noise")
                await asyncio.sleep(0.001)
            await until(lambda: tr.overflows >= 1, "the queue full")
            os.close(master)
            master = -1
            await asyncio.sleep(0.05)  # the port's hang-up is read while the queue is still full
            with pytest.raises(LinkLost, match="r1"):
                async with asyncio.timeout(5):
                    while True:
                        await tr.read()
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)


async def test_missing_port_is_link_lost() -> None:
    with pytest.raises(LinkLost, match="/nonexistent/ttyX"):
        async with SerialTransport("/nonexistent/ttyX", 9600, device="r1"):
            pass


@pytest.mark.parametrize("crlf", [False, True])
async def test_repeats_are_deduplicated_and_removal_follows_silence(crlf: bool) -> None:
    cfg = RfidConfig(kind="sim", removal_after_ms=200, sim={"repeat_ms": 20, "crlf": crlf})
    async with open_reader(cfg, "badge") as reader:
        events: list = []
        task = asyncio.create_task(collect(reader, lambda evs: len(tag_events(evs)) >= 4, events=events))
        await asyncio.sleep(0.05)
        reader.sim.present("1A2B3C4D5E", 0.4)
        await until(lambda: ("TagRemoved", "1A2B3C4D5E") in tag_events(events), "the first tag removed")
        reader.sim.present("0102030405", 0.2)
        await task
    assert tag_events(events) == [("TagSeen", "1A2B3C4D5E"), ("TagRemoved", "1A2B3C4D5E"),
                                  ("TagSeen", "0102030405"), ("TagRemoved", "0102030405")]
    seen = next(e for e in events if isinstance(e, TagSeen))
    assert seen.tag.decimal == "0725372254" and seen.tag.facility_card == "060,19806"
    assert seen.reader == "badge" and seen.tag.raw == bytes.fromhex("1A2B3C4D5E")
    assert reader.sim.frames_sent >= 10 and reader.decoder.stats.frames >= 10


async def test_garbage_and_split_frames_on_the_wire() -> None:
    cfg = RfidConfig(kind="sim", removal_after_ms=300)
    async with open_reader(cfg, "badge") as reader:
        task = asyncio.create_task(collect(reader, lambda evs: len(tag_events(evs)) >= 1))
        await asyncio.sleep(0.05)
        frame = encode_frame(bytes.fromhex("00DEADBEEF"))
        reader.sim.send_raw(b"\xff\xfe\x021A2B")  # noise and a truncated frame
        reader.sim.send_raw(frame[:5])
        await asyncio.sleep(0.05)
        reader.sim.send_raw(frame[5:] + frame)  # the second identical frame confirms the tag
        events = await task
    assert tag_events(events) == [("TagSeen", "00DEADBEEF")]
    assert reader.decoder.stats.framing_errors == 1


async def test_unplug_reports_removal_and_replug_recovers() -> None:
    cfg = RfidConfig(kind="sim", removal_after_ms=2000, reconnect_delay_ms=50, sim={"repeat_ms": 20})
    async with open_reader(cfg, "badge") as reader:
        events: list = []
        task = asyncio.create_task(collect(
            reader, lambda evs: sum(isinstance(e, TagSeen) for e in evs) >= 2, events=events))
        await asyncio.sleep(0.05)
        reader.sim.present("1A2B3C4D5E", 0.2)
        await until(lambda: any(isinstance(e, TagSeen) for e in events), "the tag seen")
        reader.sim.unplug()
        await until(lambda: any(isinstance(e, ReaderLink) and not e.ok for e in events), "the unplug noticed")
        reader.sim.replug()
        await until(lambda: [e.ok for e in events if isinstance(e, ReaderLink)][-1], "the reader back")
        reader.sim.present("1A2B3C4D5E", 0.1)
        await task
    lost = next(i for i, e in enumerate(events) if isinstance(e, TagRemoved))
    assert events[lost].reason == "link_lost"
    assert isinstance(events[lost + 1], ReaderLink) and not events[lost + 1].ok
    assert [e.ok for e in events if isinstance(e, ReaderLink)][-1] is True
    assert isinstance(events[-1], TagSeen)


async def test_a_tag_is_accepted_only_after_two_identical_frames() -> None:
    cfg = RfidConfig(kind="sim", removal_after_ms=2000)
    async with open_reader(cfg, "lane") as reader:
        task = asyncio.create_task(collect(reader, lambda evs: len(tag_events(evs)) >= 1))
        await asyncio.sleep(0.05)
        good, phantom = encode_frame(bytes.fromhex("1A2B3C4D5E")), encode_frame(bytes.fromhex("0A3B3C4D5E"))
        reader.sim.send_raw(phantom + good + good)
        events = await task
        assert tag_events(events) == [("TagSeen", "1A2B3C4D5E")]
        assert reader.decoder.stats.frames == 3


async def test_a_single_frame_is_accepted_when_confirm_frames_is_one() -> None:
    cfg = RfidConfig(kind="sim", removal_after_ms=2000, confirm_frames=1)
    async with open_reader(cfg, "lane") as reader:
        task = asyncio.create_task(collect(reader, lambda evs: len(tag_events(evs)) >= 1))
        await asyncio.sleep(0.05)
        reader.sim.send_raw(encode_frame(bytes.fromhex("0A3B3C4D5E")))
        assert tag_events(await task) == [("TagSeen", "0A3B3C4D5E")]


async def test_unplugged_reader_is_lost_with_its_reason_and_ok_again_once_it_reads() -> None:
    cfg = RfidConfig(kind="sim", reconnect_delay_ms=50)
    async with open_reader(cfg, "lane") as reader:
        changes: list[tuple[str, str]] = []
        reader.on_health = lambda state, detail: changes.append((state, detail))
        await until(lambda: reader.health.state == "ok")
        changes.clear()
        reader.sim.unplug()
        await until(lambda: reader.health.state == "lost")
        assert reader.sim.port in reader.health.detail
        await asyncio.sleep(0.3)  # several reopen attempts while it is away: still lost, reported once
        assert reader.health.state == "lost" and [s for s, _ in changes].count("lost") == 1
        reader.sim.replug()
        await until(lambda: reader.health.state == "ok")
        assert [s for s, _ in changes] == ["lost", "ok"]


async def test_a_reader_in_another_format_is_degraded_and_says_so() -> None:
    cfg = RfidConfig(kind="sim")
    async with open_reader(cfg, "lane") as reader:
        await until(lambda: reader.health.state == "ok")
        for _ in range(4):
            reader.sim.send_raw(b"\x021A2B3C4D5E\r\n\x03")  # ten hex digits without checksum
            await asyncio.sleep(0.02)
        await until(lambda: reader.health.state == "degraded")  # from the third such frame on
        assert "frames in a format we do not decode" in reader.health.detail
        assert "1A2B3C4D5E" in reader.health.detail
        await until(lambda: reader.decoder.stats.rejects["bad_body"] == 4, "the fourth frame rejected too")
        frame = encode_frame(bytes.fromhex("1A2B3C4D5E"))
        reader.sim.send_raw(frame + frame)
        await until(lambda: reader.health.state == "ok")
