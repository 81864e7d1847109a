"""Frames and the camera base every source shares: trigger, pacing, bad-frame counting, reconnect back-off.

A source implements `_open`, `_grab` and `_close` (blocking; run in a thread). `_grab` returns an
image, None for a frame that could not be decoded, raises `LinkLost` for a lost stream and
`EOFError` when a file or folder has ended. A bad frame is one sentence in the log and a count by
reason; it never ends the stream, but BAD_IN_A_ROW of them with no good frame make the camera degraded
until the next good one. A lost stream is reopened with back-off, the camera degraded meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import structlog

from drivers.camera.config import CameraConfig
from drivers.errors import LinkLost

log = structlog.get_logger()
BAD_IN_A_ROW = 10
"""Bad frames in a row, with no good frame between them, that make a camera degraded."""


@dataclass(frozen=True)
class Frame:
    """One good frame: BGR pixels, when it was taken (epoch s, as its grab began) and its number on this camera."""

    image: np.ndarray
    ts: float
    seq: int
    camera: str


@dataclass(frozen=True)
class CameraHealth:
    state: Literal["ok", "degraded", "lost"]
    detail: str = ""


def bad_frame(image: np.ndarray | None, cfg: CameraConfig) -> str | None:
    """Why a grabbed image is unusable ("decode", "size", "empty"), or None when it is good."""
    if image is None:
        return "decode"
    if image.ndim not in (2, 3) or image.size == 0 or image.dtype != np.uint8:
        return "empty"
    h, w = image.shape[:2]
    if (cfg.width is not None and w != cfg.width) or (cfg.height is not None and h != cfg.height):
        return "size"
    return None


class CameraBase:
    """What every camera does; subclasses only open, grab and close."""

    def __init__(self, cfg: CameraConfig, name: str) -> None:
        self.cfg, self.name = cfg, name
        self.bad_frames: Counter[str] = Counter()
        self.reconnects = 0
        self.frames_taken = 0
        self._bad_in_a_row = 0
        self.health = CameraHealth("lost", "not opened yet")
        self.on_health: Callable[[Literal["ok", "degraded", "lost"], str], None] | None = None
        self._triggered = asyncio.Event()
        if cfg.trigger == "continuous":
            self._triggered.set()
        self._grabbing = asyncio.Lock()  # one grab at a time: the frame stream's and a snapshot's

    @property
    def link_ok(self) -> bool:
        return self.health.state == "ok"

    def trigger(self, on: bool) -> None:
        """Start (a vehicle at the eyes) or stop taking frames; a continuous camera always takes them."""
        if on:
            self._on_trigger()
        if on or self.cfg.trigger == "continuous":
            self._triggered.set()
        else:
            self._triggered.clear()

    def _on_trigger(self) -> None:
        """A new vehicle: the simulator draws the next one."""

    async def __aenter__(self) -> CameraBase:
        try:
            await asyncio.to_thread(self._open)
            self._set_health("ok")
        except LinkLost as exc:
            self._set_health("degraded", str(exc))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._close)

    async def frames(self) -> AsyncGenerator[Frame, None]:
        """Good frames while triggered, paced at the configured rate; ends when a file or folder ends."""
        period, backoff = 1.0 / self.cfg.fps, self.cfg.reconnect_min_ms / 1000
        while True:
            await self._triggered.wait()
            started = time.monotonic()
            try:
                async with self._grabbing:
                    taken = time.time()
                    image = await asyncio.to_thread(self._grab)
            except EOFError:
                return
            except LinkLost as exc:
                backoff = await self._reconnect(exc, backoff)
                continue
            frame = self._checked(image, taken)
            if frame is not None:
                backoff = self.cfg.reconnect_min_ms / 1000  # a good frame, not a bad one, proves the stream
                yield frame
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def snapshot(self) -> Frame:
        """One good frame now, triggered or not (an officer's photo for a search report); LinkLost when the
        camera gives none (the frame stream reconnects on its own)."""
        try:
            async with self._grabbing:
                taken = time.time()
                image = await asyncio.to_thread(self._grab)
        except EOFError as exc:
            raise LinkLost(f"camera {self.name} has no more frames to take a photo from") from exc
        frame = self._checked(image, taken)
        if frame is None:
            raise LinkLost(f"camera {self.name} gave no usable frame for a photo")
        return frame

    def _checked(self, image: np.ndarray | None, taken: float) -> Frame | None:
        """The frame if it is good (the camera ok again: back when a reopened source or one that gave only bad
        frames gives a good frame, not when it opens); None, counted, if it is bad. `taken` is when its grab began:
        a grab under way when the next vehicle came in holds the one before (edge.stations.cameras)."""
        reason = bad_frame(image, self.cfg)
        if reason is not None:
            self._bad(reason, None if image is None else image.shape)
            return None
        assert image is not None
        self._bad_in_a_row = 0
        if self.health.state != "ok":
            self._set_health("ok")
        self.frames_taken += 1
        return Frame(image, taken, self.frames_taken, self.name)

    def _bad(self, reason: str, shape: tuple[int, ...] | None) -> None:
        """Count a bad frame; degraded at BAD_IN_A_ROW of them with no good frame between them."""
        self.bad_frames[reason] += 1
        self._bad_in_a_row += 1
        total = sum(self.bad_frames.values())
        if total & (total - 1) == 0:  # the 1st, 2nd, 4th, 8th ...: a camera giving only those cannot flood
            log.warning("camera.bad_frame", camera=self.name, reason=reason, shape=shape,
                        detail=f"camera {self.name} gave a bad frame ({reason}, shape {shape}); {total} so far")
        if self._bad_in_a_row == BAD_IN_A_ROW:
            detail = (f"camera {self.name} gave {BAD_IN_A_ROW} bad frames in a row with no good one, the last "
                      f"{reason} (shape {shape})")
            log.warning("camera.only_bad_frames", camera=self.name, detail=detail)
            self._set_health("degraded", detail)

    async def _reconnect(self, exc: LinkLost, backoff: float) -> float:
        """Close, wait `backoff`, reopen; the next wait doubles up to the configured maximum. The camera stays
        degraded, and the wait goes on doubling, until the reopened source gives a good frame (`frames`): a source
        that opens and gives none (an empty folder, a stream that accepts and sends nothing) would otherwise read
        ok between every two tries and be reopened at the shortest wait for ever."""
        self._set_health("degraded", f"{exc}; reconnecting in {backoff * 1000:.0f} ms")
        await asyncio.to_thread(self._close)
        await asyncio.sleep(backoff)
        self.reconnects += 1
        try:
            await asyncio.to_thread(self._open)
        except LinkLost as again:
            self._set_health("degraded", str(again))
        else:
            self._set_health("degraded", f"{exc}; reopened, ok again with its first good frame")
        return min(backoff * 2, self.cfg.reconnect_max_ms / 1000)

    def _set_health(self, state: Literal["ok", "degraded", "lost"], detail: str = "") -> None:
        self.health = CameraHealth(state, detail)
        if self.on_health is not None:
            self.on_health(state, detail)

    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        """Nothing to release by default."""
