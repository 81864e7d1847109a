"""Retrofit image sources: files dropped by an existing X-ray machine, or its monitor's video.

    async with open_source(cfg, "retrofit") as source:
        async for scan in source.scans():     # models.scan.Scan (meta["source"] names the origin), or a RejectedFile
            ...

Kinds "sim-filedrop" and "sim-video" run the simulator (files written into the folder, or a
generated video file) and read it with the real file-drop or video driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from drivers.errors import LinkLost
from drivers.retrofit import sim
from drivers.retrofit.config import RetrofitConfig, SimRetrofitConfig
from drivers.retrofit.filedrop import FileDropSource, RejectedFile
from drivers.retrofit.video import VideoSource
from models.scan import Scan, load_scans

__all__ = ["FileDropSource", "ImageSource", "RejectedFile", "RetrofitConfig", "SimRetrofitConfig", "VideoSource", "open_source"]


class ImageSource(Protocol):
    """Anything that yields whole scans from an existing machine (and the files it had to reject)."""

    def scans(self) -> AsyncIterator[Scan | RejectedFile]: ...


def _sim_scans(cfg: RetrofitConfig) -> list[Scan]:
    assert cfg.sim is not None
    files = sorted(cfg.sim.scan_dir.glob("*.npz"))
    if not files:
        raise LinkLost(f"simulated retrofit source has no .npz scans in {cfg.sim.scan_dir}")
    return load_scans(files)


@contextlib.asynccontextmanager
async def open_source(cfg: RetrofitConfig, name: str) -> AsyncIterator[ImageSource]:
    """Open the source selected by `cfg.kind` (simulators run in-process)."""
    if cfg.kind == "filedrop":
        yield FileDropSource(cfg, name)
    elif cfg.kind == "video":
        device = cfg.device
        yield VideoSource(cfg, name, int(device) if isinstance(device, str) and device.isdigit() else device)
    elif cfg.kind == "sim-filedrop":
        assert cfg.folder is not None and cfg.sim is not None
        scans, s = await asyncio.to_thread(_sim_scans, cfg), cfg.sim
        writer = asyncio.create_task(sim.drop_scans(cfg.folder, scans, s.file_format, s.interval_ms / 1000,
                                                    repeat=True), name=f"retrofit-sim:{name}")
        try:
            yield FileDropSource(cfg, name, feeder=writer)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
    else:
        assert cfg.sim is not None
        scans = await asyncio.to_thread(_sim_scans, cfg)
        with tempfile.TemporaryDirectory(prefix="retrofit-video-") as tmp:
            path = Path(tmp) / "monitor.avi"
            items = [scans[i % len(scans)] for i in range(cfg.sim.items)]
            await asyncio.to_thread(sim.make_video, path, items, fps=cfg.sim.fps,
                                    hold_frames=cfg.still_frames * 2)
            yield VideoSource(cfg, name, str(path))
