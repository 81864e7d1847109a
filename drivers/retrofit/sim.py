"""Simulators of retrofit machines: a vendor writing files into a folder, a monitor video."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import structlog

from models.scan import Scan

log = structlog.get_logger(__name__)


def encode_scan_file(scan: Scan, fmt: str) -> bytes:
    """The bytes a vendor machine would write: .npz as is, PNG/TIFF as 16-bit grey of `high`."""
    if fmt == "npz":
        return scan.to_bytes()
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".tiff", scan.high)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {scan.shape} scan as {fmt}")
    return buf.tobytes()


async def drop_file(folder: Path, name: str, data: bytes, *, chunks: int = 4, pause_s: float = 0.05,
                    atomic: bool = False) -> Path:
    """Write like a vendor does: in chunks with pauses under the final name, or as .part then rename."""
    path = folder / name
    target = path.with_name(name + ".part") if atomic else path
    step = max(1, -(-len(data) // chunks))
    with open(target, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            await asyncio.sleep(pause_s)
    if atomic:
        target.replace(path)
    return path


async def drop_scans(folder: Path, scans: Sequence[Scan], fmt: str, interval_s: float,
                     repeat: bool = False) -> None:
    """Drop the scans one after another (alternating chunked and atomic writers), forever if `repeat`."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        for scan in scans:
            await drop_file(folder, f"sim_{n:06d}.{fmt}", encode_scan_file(scan, fmt), atomic=n % 2 == 1)
            n += 1
            await asyncio.sleep(interval_s)
        if not repeat:
            return


def to_display(scan: Scan, size: tuple[int, int] | None = None) -> np.ndarray:
    """8-bit grey picture of a scan as a monitor shows it (white = air)."""
    img = (scan.high >> 8).astype(np.uint8)
    return img if size is None else cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def make_video(path: Path, scans: Sequence[Scan], *, fps: float = 25.0, size: tuple[int, int] = (160, 120),
               scroll_frames: int = 12, hold_frames: int = 20, lead_frames: int = 8) -> int:
    """Write a monitor video: each item scrolls in, then the belt stops for `hold_frames`; returns frames."""
    w, h = size
    writer = _writer(path, fps, size)
    frames = 0
    screen = np.full((h, w), 255, np.uint8)
    try:
        for _ in range(lead_frames):
            writer.write(screen)
            frames += 1
        for scan in scans:
            item = to_display(scan, size)
            for k in range(1, scroll_frames + 1):
                shift = w - (w * k) // scroll_frames
                screen = np.full((h, w), 255, np.uint8)
                screen[:, shift:] = item[:, : w - shift]
                writer.write(screen)
                frames += 1
            for _ in range(hold_frames):
                writer.write(item)
                frames += 1
    finally:
        writer.release()
    return frames


def _writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    for fourcc in ("FFV1", "MJPG"):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size, isColor=False)
        if writer.isOpened():
            return writer
    raise OSError(f"OpenCV cannot write a video to {path} with FFV1 or MJPG")
