"""UHF readers over LLRP: session up, every configured antenna reported connected, and the test tag read at each
antenna, with its RSSI.

The reader reports its antennas' state when the session starts (GET_READER_CONFIG) and whenever one
changes (AntennaEvent); a configured antenna it reports disconnected, or does not report at all,
fails. The test tag (known by its TID, as vehicle tags are bound) is held at each connected antenna
in turn; it must be read there within the wait, and its peak RSSI must clear the limit.
"""

from __future__ import annotations

import asyncio

from drivers.rfid.llrp import LlrpReader, UhfRead
from edge.diag.context import PhaseContext
from edge.diag.hand import Action
from edge.diag.phases.links import reader_up
from edge.diag.phases.rfid import REFERENCE_TID

HOLD_S = 1.5
SPARE_S = 1.0  # the wait for the tag ends this much before the prompt timeout, so "no tag" fails instead of aborting


async def run(ctx: PhaseContext) -> None:
    for name, cfg in ctx.station.cfg.devices.readers.items():
        if cfg.kind != "llrp":
            continue
        reader = ctx.station.readers.get(name)
        up = isinstance(reader, LlrpReader) and await reader_up(reader)
        detail = ctx.station.problems.get(f"reader:{name}") or (reader.link_reason if reader is not None else "")
        ctx.measure("llrp.connected", up, target=name, detail="" if up else detail or "no LLRP session")
        if not up or not isinstance(reader, LlrpReader):
            continue
        for antenna in reader.cfg.antennas:
            if _antenna(ctx, name, reader, antenna):
                await _test_tag(ctx, name, reader, antenna)
            else:
                ctx.unmeasurable("llrp.test_tag_seen", target=f"{name}/{antenna}",
                                 why=f"antenna {antenna} is not reported connected")


def _antenna(ctx: PhaseContext, name: str, reader: LlrpReader, antenna: int) -> bool:
    """Configured antenna against the reader's report: connected, disconnected, or not reported at all."""
    state = reader.antennas_connected.get(antenna)
    reported = sorted(reader.antennas_connected)
    detail = {True: "reported connected", False: "reported disconnected"}.get(
        state, f"not reported by the reader, which reports antennas {reported}")  # type: ignore[arg-type]
    ctx.measure("llrp.antenna_connected", state is True, target=f"{name}/{antenna}", detail=detail)
    return state is True


async def _test_tag(ctx: PhaseContext, name: str, reader: LlrpReader, antenna: int) -> None:
    tid = (ctx.station.reference_tag or REFERENCE_TID).upper()
    target = f"{name}/{antenna}"
    wait_s = max(ctx.prompt_timeout_s - SPARE_S, SPARE_S)
    reads: asyncio.Queue[UhfRead] = asyncio.Queue()

    async def pump() -> None:
        async for read in reader.reads():
            if read.tid is not None and read.tid.upper() == tid and read.antenna == antenna:
                reads.put_nowait(read)

    task = asyncio.create_task(pump(), name=f"diag-llrp-{name}-{antenna}")
    await asyncio.sleep(0)
    try:
        _, read = await ctx.prompt("prompt.present_test_tag",
                                   Action("present_test_tag", target, {"tid": tid, "seconds": HOLD_S}),
                                   until=lambda: _first(reads, wait_s))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if read is None:
        ctx.measure("llrp.test_tag_seen", False, target=target,
                    detail=f"no read of TID {tid} at antenna {antenna} within {wait_s:g} s")
        return
    ctx.measure("llrp.test_tag_seen", True, target=target, detail=f"TID {tid}, EPC {read.epc}")
    ctx.measure("llrp.test_tag_rssi_dbm", read.rssi_dbm, target=target)


async def _first(reads: asyncio.Queue[UhfRead], wait_s: float) -> UhfRead | None:
    """The first matching read within `wait_s`, or None (no tag: a failure, not an unanswered prompt)."""
    try:
        async with asyncio.timeout(wait_s):
            return await reads.get()
    except TimeoutError:
        return None
