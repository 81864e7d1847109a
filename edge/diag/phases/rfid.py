"""RFID: the reference badge (or, at a UHF/LLRP reader, the reference tag's TID) at each reader, read and time to read."""

from __future__ import annotations

import asyncio

from drivers.rfid import Em4100SerialReader, TagSeen
from drivers.rfid.llrp import LlrpReader
from edge.diag.context import PhaseContext
from edge.diag.hand import Action

REFERENCE_TAG = "0F00C0FFEE"  # the twin's reference badge; real stations pass --reference-tag
REFERENCE_TID = "E2801160200073F10F00C0FE"  # the twin's reference UHF tag, known by its TID
HOLD_S = 1.0
UNDECODABLE = 3  # frames rejected, none decoded, while the badge is held: the reader's output is the fault


async def run(ctx: PhaseContext) -> None:
    for name in ctx.station.cfg.devices.readers:
        reader = ctx.station.readers.get(name)
        if reader is None or not reader.link_ok:
            detail = ctx.station.problems.get(f"reader:{name}", "the reader's port is not open")
            ctx.measure("rfid.reader_connected", False, target=name, detail=detail)
            continue
        ctx.measure("rfid.reader_connected", True, target=name)
        await _badge(ctx, name, reader)


async def _badge(ctx: PhaseContext, name: str, reader: Em4100SerialReader | LlrpReader) -> None:
    default = REFERENCE_TID if isinstance(reader, LlrpReader) else REFERENCE_TAG
    expect = (ctx.station.reference_tag or default).upper()
    seen: list[TagSeen] = []
    got = asyncio.Event()

    async def pump() -> None:
        async for ev in reader.events():
            if isinstance(ev, TagSeen):
                seen.append(ev)
                got.set()

    task = asyncio.create_task(pump(), name=f"diag-rfid-{name}")
    await asyncio.sleep(0)
    rejects = Rejects(reader)
    try:
        t_act, _ = await ctx.prompt("prompt.present_badge",
                                    Action("present_badge", name, {"tag_hex": expect, "seconds": HOLD_S}),
                                    until=lambda: _tag_or_garbage(got, rejects))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if not seen:
        ctx.measure("rfid.frames_decode", False, target=name, detail=rejects.detail())
        return
    ctx.measure("rfid.frames_decode", True, target=name, detail=rejects.detail())
    tag = seen[0]
    ctx.measure("rfid.read_ok", True, target=name)
    ctx.measure("rfid.right_tag", tag.tag.hex.upper() == expect, target=name, detail=tag.tag.hex)
    if t_act is not None:
        ctx.measure("rfid.time_to_read_ms", (tag.t - t_act) * 1000, target=name)


class Rejects:
    """The reader's decoder counts from now on: frames decoded and rejected (a hook for driver health)."""

    def __init__(self, reader: Em4100SerialReader | LlrpReader) -> None:
        self.stats = getattr(getattr(reader, "decoder", None), "stats", None)
        self.reader = reader
        self._frames0, self._rejected0 = self._counts()

    def _counts(self) -> tuple[int, int]:
        st = self.stats
        return (st.frames, st.checksum_errors + st.framing_errors) if st is not None else (0, 0)

    @property
    def only_garbage(self) -> bool:
        frames, rejected = self._counts()
        return frames == self._frames0 and rejected - self._rejected0 >= UNDECODABLE

    def detail(self) -> str:
        frames, rejected = self._counts()
        last = getattr(self.reader.decoder, "last_error", "") if self.stats is not None else ""
        return f"{rejected - self._rejected0} frames rejected, {frames - self._frames0} decoded" + \
            (f"; last: {last}" if last else "")


async def _tag_or_garbage(got: asyncio.Event, rejects: Rejects) -> None:
    """Until a tag is read, or the reader has sent only frames that do not decode."""
    while not got.is_set() and not rejects.only_garbage:
        try:
            async with asyncio.timeout(0.05):
                await got.wait()
        except TimeoutError:
            continue
