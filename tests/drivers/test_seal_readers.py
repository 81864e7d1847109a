"""E-seal readers against their simulators: the ES1 serial reader on a real pty, seal tags over LLRP on real TCP.

Each proves what a lane needs: a seal in range is reported with its state, a tamper event while it is in
range is reported, malformed input is counted and reading goes on, and a seal out of range leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import TypeAdapter

from drivers.seal import SealGone, SealReaderConfig, SealSeen, open_seal_reader
from drivers.seal.codec import encode_line
from drivers.seal.llrp import LlrpSealReader
from drivers.seal.memory import encode_memory
from drivers.seal.serial import SerialSealReader
from drivers.seal.state import SealReport, SimSeal
from polling import until

SERIAL = {"kind": "seal-serial-sim", "removal_after_ms": 400, "reconnect_delay_ms": 20, "sim": {"repeat_ms": 40}}
LLRP = {"kind": "seal-llrp", "removal_after_ms": 400,
        "reader": {"kind": "llrp", "keepalive_s": 0.2, "removal_after_ms": 300, "read_user_words": 16,
                   "reconnect_min_ms": 20, "reconnect_max_ms": 100, "sim": {"read_ms": 30}}}


def config(raw: dict[str, Any]) -> SealReaderConfig:
    return TypeAdapter(SealReaderConfig).validate_python(raw)


@asynccontextmanager
async def following(raw: dict[str, Any]) -> AsyncIterator[tuple[Any, list[Any]]]:
    """The configured reader and the events it gives, collected in the background."""
    async with open_seal_reader(config(raw), "seals") as reader:
        seen: list[Any] = []

        async def collect() -> None:
            async for event in reader.events():
                seen.append(event)
        task = asyncio.create_task(collect())
        await asyncio.sleep(0)
        await until(lambda: reader.link_ok, "the seal reader's link is up")
        try:
            yield reader, seen
        finally:
            task.cancel()


def states(events: list[Any], seal_id: str) -> list[str]:
    return [e.report.state for e in events if isinstance(e, SealSeen) and e.report.seal_id == seal_id]


async def test_serial_seal_in_range_then_tampered_then_gone() -> None:
    async with following(SERIAL) as (reader, events):
        assert isinstance(reader, SerialSealReader) and reader.sim is not None
        reader.sim.present(SimSeal("HKEL0001234", battery_pct=12), 1.5)
        await until(lambda: states(events, "HKEL0001234") == ["intact"], "the seal is reported intact")
        first = events[0].report
        assert first.battery_low and first.events == 0 and first.last_event_at is None
        reader.sim.event("HKEL0001234", "tampered")
        await until(lambda: states(events, "HKEL0001234") == ["intact", "tampered"], "the tamper event is reported")
        assert events[-1].report.events == 1 and events[-1].report.last_event_at is not None
        await until(lambda: any(isinstance(e, SealGone) for e in events), "the seal leaves after silence")


async def test_serial_malformed_lines_are_counted_and_reading_goes_on() -> None:
    async with following(SERIAL) as (reader, events):
        version2 = encode_line(SealReport("HKEL0001234", "intact", 87, False, None, 1), version=2)
        reader.sim.send_raw(b"$ES,1,HKEL0001234,I,87,00,0,1*FFFF\r\n" + version2 + b"\x00\xff garbage\r\n")
        await until(lambda: sum(reader.rejects.values()) == 3, "three malformed lines counted")
        assert reader.rejects == {"checksum": 1, "version": 1, "unframed": 1}
        reader.sim.present(SimSeal("CNSL20250001"), 0.5)
        await until(lambda: states(events, "CNSL20250001") == ["intact"], "a good seal is still read")


async def test_serial_unplug_drops_the_seals_and_the_reader_reopens() -> None:
    async with following(SERIAL) as (reader, events):
        reader.sim.present(SimSeal("HKEL0001234"), 5)
        await until(lambda: states(events, "HKEL0001234"), "the seal is reported")
        reader.sim.pty.unplug()
        await until(lambda: any(isinstance(e, SealGone) and e.reason == "link_lost" for e in events), "the seal leaves")
        reader.sim.pty.replug()
        await until(lambda: reader.link_ok and len(states(events, "HKEL0001234")) == 2, "read again after replug")


async def test_llrp_seal_tag_in_range_then_opened_and_a_vehicle_tag_is_not_a_seal() -> None:
    async with following(LLRP) as (reader, events):
        assert isinstance(reader, LlrpSealReader) and reader.sim is not None and reader.reader.sim is not None
        reader.reader.sim.present("300833B2DDD9014000000001", "E2801160200073F1A2B3C4D5", seconds=3)  # a vehicle tag
        reader.sim.present(SimSeal("HKEL0009999"), 3, tid="E28011602000AAAA0001", epc="3034257BF7194E4000001A85")
        await until(lambda: states(events, "HKEL0009999") == ["intact"], "the seal tag is reported intact")
        assert reader.tid_of["HKEL0009999"] == "E28011602000AAAA0001"
        reader.sim.event("HKEL0009999", "opened")
        await until(lambda: states(events, "HKEL0009999") == ["intact", "opened"], "the opening is reported")
        assert {e.report.seal_id for e in events if isinstance(e, SealSeen)} == {"HKEL0009999"}
        assert reader.rejects == {}
        await until(lambda: any(isinstance(e, SealGone) for e in events), "the seal leaves after silence", timeout=60)
        reader.sim.present(SimSeal("HKEL0008888"), 0.5, tid="E28011602000AAAA0002", epc="3034257BF7194E4000001A86")
        await until(lambda: states(events, "HKEL0008888") == ["intact"], "a later seal is still read")


async def test_llrp_broken_seal_memory_is_counted_and_reading_goes_on() -> None:
    async with following(LLRP) as (reader, events):
        assert reader.reader.sim is not None
        good = encode_memory(SealReport("HKEL0000001", "intact", 80, False, None, 0))
        reader.reader.sim.present("3034257BF7194E4000000001", "E28011602000BBBB0001", seconds=3,
                                  user=(good[:-2] + b"\x00\x00").hex())
        await until(lambda: reader.rejects.get("checksum", 0) >= 1, "the broken memory is counted")
        reader.reader.sim.present("3034257BF7194E4000000002", "E28011602000BBBB0002", seconds=3, user=good.hex())
        await until(lambda: states(events, "HKEL0000001") == ["intact"], "a good seal is still read")
        assert reader.reader.link_ok


@pytest.mark.parametrize("base", [SERIAL, LLRP], ids=["serial-pty", "llrp-tcp"])
async def test_the_scheduled_simulator_plays_two_seals_and_a_tamper_event(base: dict[str, Any]) -> None:
    raw = {**base, "sim": {"repeat_ms": 40, "schedule": [
        {"at_s": 0.1, "seconds": 1.5, "seal_id": "HKEL0004321", "event_at_s": 0.4, "event_state": "tampered"},
        {"at_s": 0.1, "seconds": 0.8, "seal_id": "HKEL0004322"}], "repeat_s": 2.5}}
    async with following(raw) as (_, events):
        await until(lambda: states(events, "HKEL0004321") == ["intact", "tampered"], "the schedule's tamper event")
        assert states(events, "HKEL0004322") == ["intact"]
        await until(lambda: states(events, "HKEL0004322") == ["intact", "intact"], "the schedule again", timeout=60)
