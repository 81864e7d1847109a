"""Cameras: stream open, focus and exposure on the test target, and the test target read by the station's reader.

The technician holds the station's test plate (plate cameras) or test container code (container
cameras) square in front of each camera; the phase takes a few frames, measures focus (variance of
the Laplacian) and exposure (mean grey level, share of clipped pixels) on them, and reads them with
the text reader the lane uses (models/ocr), voted as the lane votes.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics

import cv2
import numpy as np

from drivers.camera import CameraBase, Frame
from edge.diag.context import PhaseContext
from edge.diag.hand import Action
from models.errors import InferenceError
from models.ocr.frame import FrameReader
from models.ocr.vote import vote

TEST_PLATE = "TK1234"  # the station's test plate (Hong Kong format, shown as "TK 1234")
TEST_CONTAINER = "CSQU3054383"  # the station's test container code (ISO 6346, check digit 3)
FRAMES = 3
FRAME_WAIT_S = 5.0
CLIPPED_DARK, CLIPPED_BRIGHT = 2, 253


async def run(ctx: PhaseContext) -> None:
    reader: FrameReader | None = None
    unloadable = ""  # why the text reader could not be loaded (it is tried once per run)
    for name, cfg in ctx.station.cfg.devices.cameras.items():
        camera = ctx.station.cameras.get(name)
        if camera is None or not camera.link_ok:
            detail = ctx.station.problems.get(f"camera:{name}") or (camera.health.detail if camera else "")
            ctx.measure("cameras.link_ok", False, target=name, detail=detail or "the camera is not open")
            continue
        ctx.measure("cameras.link_ok", True, target=name)
        expect = TEST_PLATE if cfg.reads == "plate" else TEST_CONTAINER
        frames = await _test_frames(ctx, name, camera, expect)
        ctx.measure("cameras.frames", bool(frames), target=name,
                    detail=f"{len(frames)} of {FRAMES} frames within {FRAME_WAIT_S:g} s; bad frames "
                           f"{dict(camera.bad_frames) or 'none'}")
        if not frames:
            continue
        _optics(ctx, name, [f.image for f in frames])
        if reader is None and not unloadable:
            reader, unloadable = await _load_reader()
        if reader is None:
            ctx.measure("cameras.test_read", False, target=name,
                        detail=f"the text reader could not be loaded: {unloadable}")
        else:
            await _test_read(ctx, name, camera, reader, frames, expect)
        ok, png = cv2.imencode(".png", frames[-1].image)
        if ok:
            ctx.attach(f"camera-{name}.png", png.tobytes(), "image/png")


async def _test_frames(ctx: PhaseContext, name: str, camera: CameraBase, expect: str) -> list[Frame]:
    """Frames of the test target: shown, taken while the camera is triggered, then put away."""
    await ctx.prompt("prompt.show_test_target", Action("show_test_target", name, {"value": expect}), confirm=True)
    frames: list[Frame] = []
    camera.trigger(True)
    try:
        async with asyncio.timeout(FRAME_WAIT_S), contextlib.aclosing(camera.frames()) as stream:
            async for frame in stream:
                frames.append(frame)
                if len(frames) >= FRAMES:
                    break
    except TimeoutError:
        pass
    finally:
        camera.trigger(False)
        await ctx.prompt("prompt.hide_test_target", Action("hide_test_target", name), confirm=True)
    return frames


def _optics(ctx: PhaseContext, name: str, images: list[np.ndarray]) -> None:
    """Focus and exposure, the median over the frames (one frame caught mid-movement does not decide)."""
    greys = [cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) if i.ndim == 3 else i for i in images]
    focus = statistics.median(float(cv2.Laplacian(g, cv2.CV_64F).var()) for g in greys)
    mean = statistics.median(float(g.mean()) for g in greys)
    clipped = statistics.median(float(((g <= CLIPPED_DARK) | (g >= CLIPPED_BRIGHT)).mean()) for g in greys)
    ctx.measure("cameras.focus", focus, target=name)
    ctx.measure("cameras.exposure_mean", mean, target=name)
    ctx.measure("cameras.clipped_share", clipped, target=name,
                detail=f"grey levels <= {CLIPPED_DARK} or >= {CLIPPED_BRIGHT}")


async def _load_reader() -> tuple[FrameReader | None, str]:
    """The lane's text reader, or why it could not be loaded (the test reads then fail, saying so)."""
    try:
        return await asyncio.to_thread(FrameReader), ""
    except (ImportError, OSError, InferenceError) as exc:
        return None, str(exc) or type(exc).__name__


async def _test_read(ctx: PhaseContext, name: str, camera: CameraBase, reader: FrameReader, frames: list[Frame],
                     expect: str) -> None:
    """The frames read and voted as the lane does; the test passes when the vote is the test target's value."""
    kind = camera.cfg.reads
    try:
        reads = [await asyncio.to_thread(reader.read, kind, f.image) for f in frames]
    except InferenceError as exc:
        ctx.measure("cameras.test_read", False, target=name, detail=str(exc))
        return
    voted = vote(kind, reads, camera.cfg.min_confidence)
    got = [v.value or v.raw for v in voted if v.status in ("read", "corrected")]
    seen = ", ".join(f"{v.value or v.raw or '-'} ({v.status}, {v.confidence:.2f})" for v in voted)
    ctx.measure("cameras.test_read", expect in got, target=name, detail=f"expected {expect}, read {seen}")
