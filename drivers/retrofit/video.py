"""Video capture of an X-ray machine's monitor output; a scan is cut when the belt stops.

Each frame is reduced to grey (and to `roi` when set) and compared with the previous one by
mean absolute difference. Once the picture has changed (the belt moved an item through) and then
stays unchanged for `still_frames` frames, the still picture is the scan: grey intensity maps to
transmission (255 -> 65535 = air), copied to both channels, meta says it is single-energy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import structlog

from drivers.errors import LinkLost
from drivers.retrofit.config import RetrofitConfig
from models.scan import Scan

log = structlog.get_logger(__name__)


@dataclass
class CutDetector:
    """Frame-by-frame state machine: changing -> still for N frames -> cut."""

    threshold: float
    still_frames: int
    _prev: np.ndarray | None = None
    _changed: bool = False
    _still: int = 0

    def feed(self, grey: np.ndarray) -> bool:
        """True when this frame completes a cut (the frame itself is the scan)."""
        small = cv2.resize(grey, (max(1, grey.shape[1] // 4), max(1, grey.shape[0] // 4)),
                           interpolation=cv2.INTER_AREA)
        prev, self._prev = self._prev, small
        if prev is None or prev.shape != small.shape:
            return False
        if float(cv2.absdiff(prev, small).mean()) > self.threshold:
            self._changed, self._still = True, 0
            return False
        self._still += 1
        if self._changed and self._still >= self.still_frames:
            self._changed = False
            return True
        return False


def frame_to_scan(frame: np.ndarray, source: str, meta: dict[str, object]) -> Scan:
    """A monitor frame (grey or BGR, 8-bit) -> single-energy scan in the project's format."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    trans = grey.astype(np.uint16) * 257
    return Scan(high=trans, low=trans.copy(), meta={"source": source, "single_energy": True, **meta})


class VideoSource:
    """Reads frames from cv2.VideoCapture off the event loop and yields cut scans."""

    def __init__(self, cfg: RetrofitConfig, name: str, device: str | int | None = None) -> None:
        self.cfg = cfg
        self.name = name
        chosen = cfg.device if device is None else device
        if chosen is None:
            raise ValueError(f"video source {name} has no capture device: set [devices.retrofit] device")
        self.device: str | int = chosen
        self.counters = {"frames": 0, "scans": 0}

    def _crop(self, frame: np.ndarray) -> np.ndarray:
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.cfg.roi is None:
            return grey
        x, y, w, h = self.cfg.roi
        return grey[y : y + h, x : x + w]

    async def scans(self) -> AsyncIterator[Scan]:
        """Yield a scan per belt stop; a file ends the iteration, a failing device or stream raises LinkLost."""
        cap = await asyncio.to_thread(self._open)
        try:
            detector = CutDetector(self.cfg.change_threshold, self.cfg.still_frames)
            while True:
                ok, frame = await asyncio.to_thread(cap.read)
                if not ok:
                    if not (isinstance(self.device, str) and Path(self.device).is_file()):
                        raise LinkLost(f"video capture {self.device} of {self.name} stopped delivering frames "
                                       f"after {self.counters['frames']}", device=self.name)
                    return
                self.counters["frames"] += 1
                grey = self._crop(frame)
                if detector.feed(grey):
                    self.counters["scans"] += 1
                    log.info("retrofit.video_cut", source=self.name, frame=self.counters["frames"])
                    yield frame_to_scan(grey, f"video:{self.name}", self._meta())
        finally:
            await asyncio.to_thread(cap.release)

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            raise LinkLost(f"video capture {self.device!r} of {self.name} could not be opened", device=self.name)
        return cap

    def _meta(self) -> dict[str, object]:
        meta: dict[str, object] = {"frame": self.counters["frames"], "device": str(self.device)}
        for key in ("pixel_mm", "kvp"):
            if getattr(self.cfg, key) is not None:
                meta[key] = getattr(self.cfg, key)
        return meta
