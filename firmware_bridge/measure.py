"""Figures of the controller link over real ptys: frame sizes, line throughput, recovery times.

    .venv/bin/python -m firmware_bridge.measure [--width 640] [--json bench/results/firmware_bridge.json]

Prints figures and writes JSON; it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import numpy as np

from firmware_bridge import codec
from firmware_bridge.codec import Frame, MsgType
from firmware_bridge.emulator import FaultSettings, FirmwareEmulator
from firmware_bridge.link import HostLink, LinkSettings
from models.scan import Scan


class _Sink:
    """Host-side handler counting lines and scan ends."""

    def __init__(self) -> None:
        self.lines = 0
        self.end = asyncio.Event()

    def __call__(self, frame: Frame) -> bytes:
        if frame.type == MsgType.LINE:
            self.lines += 1
        elif frame.type == MsgType.SCAN_END:
            self.end.set()
        return b""


def _scan(lines: int, width: int) -> Scan:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 65535, (lines, width), dtype=np.uint16)
    return Scan(high=img, low=img)


def frame_sizes(width: int) -> dict[str, int]:
    line = codec.line_frame_size(width)
    hello = codec.HelloInfo(1, codec.MAX_FRAME, 3, bytes(32), "emu-1.0.0").encode()
    return {"line_decoded": line, "line_wire_max": codec.cobs_max(line) + 1,
            "ack_wire": len(codec.encode_frame(Frame(MsgType.ACK, 0, codec.encode_ack(1)))),
            "hello_reply_wire": len(codec.encode_frame(Frame(MsgType.ACK, 0, codec.encode_ack(1, hello)))),
            "heartbeat_wire": len(codec.encode_frame(Frame(MsgType.HEARTBEAT, 0, bytes(8)))),
            "max_frame": codec.MAX_FRAME, "max_width": (codec.MAX_FRAME - codec.line_frame_size(0)) // 4}


async def throughput(width: int, lines: int, baud: int, throttle: bool,
                     faults: FaultSettings = FaultSettings()) -> dict[str, object]:
    """Lines per second of one scan streamed as fast as the link allows."""
    sink = _Sink()
    async with FirmwareEmulator([_scan(lines, width)], line_rate=1e6, fifo_lines=10**9, baudrate=baud,
                                throttle=throttle, faults=faults) as emu:
        async with HostLink(LinkSettings(port=emu.port, baudrate=baud), sink) as link:
            await link.wait_up(5)
            await link.request(MsgType.ARM)
            t0 = time.perf_counter()
            await link.request(MsgType.START_SCAN, codec.encode_scan_id(1))
            await sink.end.wait()
            dt = time.perf_counter() - t0
    wire = codec.cobs_max(codec.line_frame_size(width)) + 1
    return {"baud": baud, "throttled": throttle, "faults": faults.corrupt + faults.drop + faults.duplicate,
            "lines": sink.lines, "seconds": round(dt, 3),
            "lines_per_s": round(sink.lines / dt, 1), "uart_limit_lines_per_s": round(baud / 10 / wire, 1)}


async def recovery(kind: str, runs: int) -> dict[str, object]:
    """Seconds from a fault (reboot, unplug+replug, 2 s stall) until the link is up again."""
    times: list[float] = []
    async with FirmwareEmulator([_scan(4, 8)]) as emu:
        async with HostLink(LinkSettings(port=emu.port), lambda f: b"") as link:
            for _ in range(runs):
                await link.wait_up(10)
                t0 = time.perf_counter()
                if kind == "reboot":
                    await emu.reboot()
                elif kind == "stall_2s":
                    emu.stall(2.0)
                else:
                    emu.unplug()
                while link.up:
                    await asyncio.sleep(0.002)
                if kind == "unplug_replug":
                    emu.replug()
                while not link.up:
                    await asyncio.sleep(0.002)
                times.append(time.perf_counter() - t0)
    return {"fault": kind, "runs": runs, "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3)}


async def main(width: int, out: Path | None) -> None:
    res: dict[str, object] = {"width": width, "frame_sizes": frame_sizes(width)}
    runs = [await throughput(width, 3000, 115200, False),
            await throughput(width, 3000, 3_000_000, False),
            await throughput(width, 3000, 3_000_000, False, FaultSettings(0.05, 0.05, 0.05, 1))]
    for baud, n in ((115200, 20), (921600, 150), (3_000_000, 400)):
        runs.append(await throughput(width, n, baud, True))
    res["throughput"] = runs
    res["recovery"] = [await recovery(k, 5) for k in ("reboot", "unplug_replug", "stall_2s")]
    text = json.dumps(res, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    asyncio.run(main(args.width, args.json))
