"""File-drop ingestion: a vendor machine writes image files into a folder.

A file is ingested when its size and mtime have not changed for `settle_ms` and it parses; names
that look temporary are ignored. After the consumer takes a scan (asks for the next one), the file
moves to `processed/`; so a restart ingests only what was not yet handed over (each file once;
a crash between hand-over and move hands it over again, which the record's scan sha256 reveals).
A file that does not parse is moved to `rejected/` with `<name>.reason.txt` holding one sentence,
and yielded as a `RejectedFile` so that the consumer can record the item (manual) and alarm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import structlog

from drivers.retrofit.config import RetrofitConfig
from models.errors import ScanFormatError
from models.scan import Scan, load_scan

log = structlog.get_logger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
SUFFIXES = (".npz", *IMAGE_SUFFIXES)


@dataclass(frozen=True)
class RejectedFile:
    """A dropped file that could not be used: moved to `rejected/`; `reason` is one sentence."""

    file: str
    source: str
    reason: str


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


def read_image_scan(path: Path, source: str) -> Scan:
    """A greyscale PNG/TIFF (8 or 16 bit) as a single-energy scan: grey -> both channels."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ScanFormatError(f"{path.name} is not an image OpenCV can read")
    if img.ndim != 2:
        raise ScanFormatError(f"{path.name} has {img.shape[2]} channels; only greyscale images are accepted")
    if img.dtype == np.uint8:
        img = img.astype(np.uint16) * 257
    elif img.dtype != np.uint16:
        raise ScanFormatError(f"{path.name} has pixel type {img.dtype}; 8- or 16-bit greyscale is accepted")
    meta = {"source": source, "file": path.name, "single_energy": True}
    return Scan(high=img, low=img.copy(), meta=meta)


def read_scan_file(path: Path, source: str) -> Scan:
    """Parse one dropped file by its suffix; ScanFormatError says why it is unusable."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image_scan(path, source)
    scan = load_scan(path)
    return Scan(high=scan.high, low=scan.low, meta={**scan.meta, "source": source, "file": path.name},
                complete=scan.complete)


class FileDropSource:
    """Watches `cfg.folder` and yields each complete dropped scan once."""

    def __init__(self, cfg: RetrofitConfig, name: str) -> None:
        assert cfg.folder is not None
        self.cfg = cfg
        self.name = name
        self.folder = cfg.folder
        self.processed = self.folder / "processed"
        self.rejected = self.folder / "rejected"
        self._seen: dict[str, _Seen] = {}
        self.counters = {"ingested": 0, "rejected": 0}

    async def scans(self) -> AsyncIterator[Scan | RejectedFile]:
        """Yield scans as files settle, and the files rejected; a scan's file moves to processed/ when
        the next one is asked for."""
        await asyncio.to_thread(self._prepare)
        while True:
            for path in await asyncio.to_thread(self._settled):
                scan = await asyncio.to_thread(self._parse, path)
                if scan is None:
                    continue
                yield scan
                if isinstance(scan, RejectedFile):
                    continue
                await asyncio.to_thread(_move, path, self.processed)
                self.counters["ingested"] += 1
                log.info("retrofit.file_ingested", source=self.name, file=path.name, shape=scan.shape)
            await asyncio.sleep(self.cfg.poll_ms / 1000)

    def _prepare(self) -> None:
        for d in (self.folder, self.processed, self.rejected):
            d.mkdir(parents=True, exist_ok=True)

    def _candidates(self) -> list[Path]:
        out = []
        for p in self.folder.iterdir():
            name = p.name.lower()
            if (name.startswith((".", "~")) or name.endswith(self.cfg.ignore_suffixes)
                    or not name.endswith(SUFFIXES) or not p.is_file()):
                continue
            out.append(p)
        return sorted(out)

    def _settled(self) -> list[Path]:
        """Files whose size and mtime held still for settle_ms (oldest name order)."""
        now, ready, live = time.monotonic(), [], set()
        for p in self._candidates():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            live.add(p.name)
            seen = self._seen.get(p.name)
            if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._seen[p.name] = _Seen(st.st_size, st.st_mtime_ns, now)
            elif now - seen.since >= self.cfg.settle_ms / 1000:
                ready.append(p)
        for gone in set(self._seen) - live:
            del self._seen[gone]
        return ready

    def _parse(self, path: Path) -> Scan | RejectedFile | None:
        """Parse a settled file; reject it (moved, reason written) if it cannot be used."""
        seen = self._seen.pop(path.name, None)
        size = path.stat().st_size
        if size > self.cfg.max_file_mb << 20:
            return self._reject(path, f"{path.name} has {size} bytes, more than the {self.cfg.max_file_mb} MB limit")
        try:
            return read_scan_file(path, f"filedrop:{self.name}")
        except ScanFormatError as exc:
            st = path.stat()
            if seen is not None and (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                return None  # still being written after all: look again later
            return self._reject(path, str(exc))

    def _reject(self, path: Path, reason: str) -> RejectedFile:
        dest = _move(path, self.rejected)
        dest.with_name(dest.name + ".reason.txt").write_text(reason + "\n")
        self.counters["rejected"] += 1
        log.warning("retrofit.file_rejected", source=self.name, file=path.name, reason=reason)
        return RejectedFile(path.name, self.name, reason)


def _move(path: Path, folder: Path) -> Path:
    """Move into `folder`, never overwriting (a repeated vendor file name gets a time suffix)."""
    dest = folder / path.name
    if dest.exists():
        dest = folder / f"{path.stem}.{time.time_ns()}{path.suffix}"
    path.replace(dest)
    return dest

