"""Cameras: the `Camera` interface, its frames, and the `open_camera` factory.

`kind = "opencv"` opens an RTSP/HTTP stream, a V4L2 device, a video file, an image file or a
folder of images (drivers/camera/source.py); `kind = "sim"` renders vehicles with plates and
container codes under the lane's conditions (drivers/camera/sim.py). Frames are BGR numpy arrays
with their timestamp; bad frames are counted by reason and never end the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drivers.camera.config import CameraConfig, CameraSim, Role
from drivers.camera.frames import CameraBase, CameraHealth, Frame

__all__ = ["CameraBase", "CameraConfig", "CameraHealth", "CameraSim", "Frame", "Role", "open_camera"]


@asynccontextmanager
async def open_camera(cfg: CameraConfig, name: str) -> AsyncIterator[CameraBase]:
    """The configured camera, open; a source that cannot be opened yet is returned degraded and keeps trying."""
    if cfg.kind == "sim":
        from drivers.camera.sim import SimCamera

        camera: CameraBase = SimCamera(cfg, name)
    else:
        from drivers.camera.source import opencv_camera

        camera = opencv_camera(cfg, name)
    async with camera:
        yield camera
