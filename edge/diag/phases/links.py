"""Links: PLC round trip and heartbeat, controller HELLO (firmware version and hash), readers, source."""

from __future__ import annotations

import asyncio
import statistics
import time

import zlib
from collections import Counter
from collections.abc import Iterable

from drivers.errors import DeviceRefused, DriverError, ProtocolError
from drivers.plc import PlcState
from drivers.rfid import TagReader
from drivers.xray import Scanner
from edge.diag.context import PhaseContext
from edge.diag.phases._watch import wait_state
from firmware_bridge import codec

ROUND_TRIPS = 10
STATUS_REQUESTS = 20
READER_OPEN_S = 1.5
AGREEING_REJECTS = 3  # truncated rejects all announcing one foreign version: that version (noise does not agree)


async def run(ctx: PhaseContext) -> None:
    st = ctx.station
    if st.cfg.devices.plc is not None:
        await _plc(ctx)
    if st.cfg.devices.scanner is not None:
        await _controller(ctx)
    for name in st.cfg.devices.readers:
        reader = st.readers.get(name)
        ok = reader is not None and await reader_up(reader)
        ctx.measure("links.reader_link_ok", ok, target=name,
                    detail=st.problems.get(f"reader:{name}", "" if ok else "its port is not open"))
    if st.cfg.devices.source is not None:
        ctx.measure("links.source_ok", st.source is not None, target="source", detail=st.problems.get("source", ""))


async def reader_up(reader: TagReader, wait_s: float = READER_OPEN_S) -> bool:
    """The reader opens its port in the background: give it a moment."""
    end = time.monotonic() + wait_s
    while not reader.link_ok and time.monotonic() < end:
        await asyncio.sleep(0.02)
    return bool(reader.link_ok)


async def _plc(ctx: PhaseContext) -> None:
    plc = ctx.station.plc
    if plc is None:
        ctx.measure("links.plc_link_ok", False, target="plc", detail=ctx.station.problems.get("plc", ""))
        return
    first = await wait_state(plc, lambda s: s.link_ok, plc.cfg.timeout_ms / 1000 * 4 + 1.0)
    times: list[float] = []
    problem = "" if first is not None else (await plc.read_state()).link_reason
    error: DriverError | None = None
    for _ in range(ROUND_TRIPS):
        t0 = time.perf_counter()
        try:
            await ctx.io(f"PLC {plc.name} read of holding registers", plc.read_points("holding"),
                         plc.cfg.timeout_ms / 1000 * (plc.cfg.retries + 1) + 0.5)
        except DriverError as exc:
            problem, error = str(exc), exc
            break
        times.append((time.perf_counter() - t0) * 1000)
    ok = not problem
    if not ok and error is None:
        error = _link_fault(await plc.read_state())
    if error is not None:
        ctx.failed("links.plc_link_ok", error, target="plc", value=False)
    else:
        ctx.measure("links.plc_link_ok", ok, target="plc", detail=problem)
    if ok:
        ctx.measure("links.plc_round_trip_ms", statistics.median(times), target="plc")
        state = await plc.read_state()
        ctx.measure("links.plc_heartbeat_age_ms", state.heartbeat_age_s * 1000, target="plc")
    ctx.attach("modbus-trace.txt", _trace(plc.frames), "text/plain")


def _link_fault(state: PlcState) -> DriverError | None:
    """The kind of fault the PLC driver names for a link that is down (`link_fault`, where the driver has it)."""
    kind = {"refused": DeviceRefused, "protocol": ProtocolError}.get(getattr(state, "link_fault", ""))
    return kind(state.link_reason) if kind is not None else None


def _trace(frames: Iterable[bytes]) -> bytes:
    return "\n".join(f"{'TX' if f[:1] == b'>' else 'RX'} {f[1:].hex(' ')}" for f in frames).encode()


async def _controller(ctx: PhaseContext) -> None:
    scanner = ctx.station.scanner
    if scanner is None:
        ctx.measure("links.controller_hello", False, target="controller",
                    detail=ctx.station.problems.get("scanner", ""))
        return
    wait = scanner.cfg.ready_timeout_ms / 1000
    try:
        hello = await ctx.io(f"HELLO of X-ray controller {scanner.name}", scanner.link.wait_up(wait), wait + 0.5)
    except (DriverError, TimeoutError) as exc:
        if not _protocol(ctx, scanner):  # a foreign protocol explains the missing HELLO; else power/cabling
            ctx.measure("links.controller_hello", False, target="controller", detail=str(exc) or "no HELLO")
        _frames(ctx, scanner)
        return
    ctx.measure("links.controller_hello", True, target="controller",
                detail=f"firmware {hello.firmware_version} sha256 {hello.firmware_hash.hex()}")
    ctx.note(f"controller firmware {hello.firmware_version}, hash {hello.firmware_hash.hex()}")
    before = scanner.link.stats.get("retries", 0)
    times: list[float] = []
    error: DriverError | None = None
    for _ in range(STATUS_REQUESTS):
        t0 = time.perf_counter()
        try:
            await ctx.io(f"STATUS of X-ray controller {scanner.name}", scanner.status(), wait + 0.5)
        except DriverError as exc:
            error = exc
            break
        times.append((time.perf_counter() - t0) * 1000)
    problem = str(error) if error is not None else ""
    retries = scanner.link.stats.get("retries", 0) - before
    ctx.measure("links.controller_retries", retries, target="controller", detail=problem)
    if error is not None:
        ctx.failed("links.controller_answers", error, target="controller", value=False)
    else:
        ctx.measure("links.controller_answers", True, target="controller")
    if times and not problem:
        ctx.measure("links.controller_status_ms", statistics.median(times), target="controller")
    _frames(ctx, scanner)


def _protocol(ctx: PhaseContext, scanner: Scanner) -> bool:
    """A controller that answers in another protocol version: say so (the link itself only logs it at debug)."""
    found = peer_protocol(getattr(scanner, "link").last_frames)
    if found is None:
        return False
    version, certain = found
    how = "whole frames with a valid CRC" if certain else f"{AGREEING_REJECTS} or more rejected frames agree"
    ctx.measure("links.controller_protocol", False, target="controller",
                detail=f"its frames announce protocol version {version}, this station speaks {codec.VERSION} ({how})")
    return True


def peer_protocol(history: tuple[bytes, ...]) -> tuple[int, bool] | None:
    """The foreign protocol version the rejected frames (b"!" history entries) announce, and whether it is certain.

    Certain: a whole rejected frame whose CRC holds. Likely: enough truncated rejects announce the
    same version. Noise neither holds a CRC nor agrees, so it names no version."""
    announced: list[int] = []
    for entry in history:
        if entry[:1] != b"!" or len(entry) < 3:
            continue
        whole = _whole_version(entry[1:])
        if whole is not None and whole != codec.VERSION:
            return whole, True
        announced.append(0 if entry[1] == 1 else entry[2])  # the first byte COBS decodes to
    common = Counter(v for v in announced if v != codec.VERSION).most_common(1)
    if common and common[0][1] >= AGREEING_REJECTS and common[0][1] == len(announced):
        return common[0][0], False
    return None


def _whole_version(raw: bytes) -> int | None:
    try:
        data = codec.cobs_decode(raw)
    except codec.FrameError:
        return None
    body = data[:-codec.CRC.size]
    if len(body) < codec.HEADER.size or codec.CRC.unpack_from(data, len(body))[0] != zlib.crc32(body):
        return None
    return body[0]


def _frames(ctx: PhaseContext, scanner: Scanner) -> None:
    frames = getattr(scanner, "link").last_frames
    text = "\n".join(f"{f[:1].decode(errors='replace')} {f[1:].hex(' ')}" for f in frames)
    ctx.attach("controller-frames.txt", text.encode(), "text/plain")
