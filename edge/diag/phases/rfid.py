"""RFID: the reference badge at each reader, read and time to read."""

from __future__ import annotations

import asyncio
from typing import Any

from drivers.rfid import TagSeen
from edge.diag.context import PhaseContext
from edge.diag.hand import Action

REFERENCE_TAG = "0F00C0FFEE"  # the twin's reference badge; real stations pass --reference-tag
HOLD_S = 1.0


async def run(ctx: PhaseContext) -> None:
    for name in ctx.station.cfg.devices.readers:
        reader = ctx.station.readers.get(name)
        if reader is None or not reader.link_ok:
            detail = ctx.station.problems.get(f"reader {name}", "the reader's port is not open")
            ctx.measure("rfid.reader_connected", False, target=name, detail=detail)
            continue
        ctx.measure("rfid.reader_connected", True, target=name)
        await _badge(ctx, name, reader)


async def _badge(ctx: PhaseContext, name: str, reader: Any) -> None:
    expect = (ctx.station.reference_tag or REFERENCE_TAG).upper()
    seen: list[TagSeen] = []
    got = asyncio.Event()

    async def pump() -> None:
        async for ev in reader.events():
            if isinstance(ev, TagSeen):
                seen.append(ev)
                got.set()

    task = asyncio.create_task(pump(), name=f"diag-rfid-{name}")
    await asyncio.sleep(0)
    try:
        t_act, _ = await ctx.prompt("prompt.present_badge",
                                    Action("present_badge", name, {"tag_hex": expect, "seconds": HOLD_S}),
                                    until=got.wait)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    tag = seen[0]
    ctx.measure("rfid.read_ok", True, target=name)
    ctx.measure("rfid.right_tag", tag.tag.hex.upper() == expect, target=name, detail=tag.tag.hex)
    if t_act is not None:
        ctx.measure("rfid.time_to_read_ms", (tag.t - t_act) * 1000, target=name)
