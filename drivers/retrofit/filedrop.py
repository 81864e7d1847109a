"""File-drop ingestion: a vendor machine writes image files into a folder.

A file is ingested when its size and mtime have not changed for `settle_ms` and it parses; names
that look temporary are ignored. After the consumer takes a scan (asks for the next one), the file
moves to `processed/`; so a restart ingests only what was not yet handed over (each file once;
a crash between hand-over and move hands it over again, which the record's scan sha256 reveals).
A file that does not parse is moved to `rejected/` with `<name>.reason.txt` holding one sentence,
and yielded as a `RejectedFile` so that the consumer can record the item (manual) and alarm.

DICOS/DICOM DX images (`.dcm`, `.dcs`, models/dicos.py) hold one energy each: a file marked
HIGH ENERGY or LOW ENERGY waits up to `dicos_pair_ms` for the other half of its series and the
two become one scan; a half whose partner does not come is rejected (the item goes to manual).
A DX image that names no energy is a single-energy scan, as a PNG is.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import structlog

from drivers.retrofit.config import RetrofitConfig
from models.dicos import HIGH, LOW, DxHeader, read_dx_header, read_dx_scan
from models.errors import ScanFormatError
from models.scan import Scan, load_scan

log = structlog.get_logger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dcs")
SUFFIXES = (".npz", *IMAGE_SUFFIXES, *DICOM_SUFFIXES)
PRUNE_EVERY_S = 3600.0  # how often processed/ and rejected/ are pruned to `keep_days`
Parsed = tuple["Scan | RejectedFile", list[Path]]  # what was read, and the files it came from


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


@dataclass(frozen=True)
class _Half:
    """One energy of a DX series waiting for the other."""

    header: DxHeader
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
        self._halves: dict[tuple[str, str], _Half] = {}  # (series UID, energy) -> the half that waits
        self.counters = {"ingested": 0, "rejected": 0, "pruned": 0}
        self._next_prune = 0.0

    async def scans(self) -> AsyncGenerator[Scan | RejectedFile, None]:
        """Yield scans as files settle, and the files rejected; a scan's file moves to processed/ when
        the next one is asked for."""
        await asyncio.to_thread(self._prepare)
        while True:
            for path in await asyncio.to_thread(self._settled):
                parsed = await asyncio.to_thread(self._parse, path)
                if parsed is None:
                    continue
                scan, files = parsed
                yield scan
                if isinstance(scan, RejectedFile):
                    continue
                for file in files:
                    await asyncio.to_thread(_move, file, self.processed)
                self.counters["ingested"] += 1
                log.info("retrofit.file_ingested", source=self.name, file=path.name, shape=scan.shape)
            for orphan in await asyncio.to_thread(self._orphans):
                yield orphan
            if self.cfg.keep_days and time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY_S
                await asyncio.to_thread(self._prune)
            await asyncio.sleep(self.cfg.poll_ms / 1000)

    def _prune(self) -> None:
        """Delete what processed/ and rejected/ hold from before `keep_days` (by the files' own times): a
        station ingesting 2,000 files a day of 2 to 12 MB would otherwise fill its disk in weeks."""
        before = time.time() - self.cfg.keep_days * 86400
        gone = 0
        for folder in (self.processed, self.rejected):
            for entry in os.scandir(folder):
                try:
                    if entry.is_file() and entry.stat().st_mtime < before:
                        os.unlink(entry.path)
                        gone += 1
                except OSError as exc:
                    log.warning("retrofit.prune_failed", source=self.name, file=entry.name, error=str(exc))
        if gone:
            self.counters["pruned"] += gone
            log.info("retrofit.files_pruned", source=self.name, files=gone, keep_days=self.cfg.keep_days)

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

    def _parse(self, path: Path) -> Parsed | None:
        """Parse a settled file; reject it (moved, reason written) if it cannot be used; None: look later."""
        seen = self._seen.pop(path.name, None)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None  # the other half of a DX pair, already taken with its partner
        if size > self.cfg.max_file_mb << 20:
            return self._reject(path, f"{path.name} has {size} bytes, more than the {self.cfg.max_file_mb} MB limit"), [path]
        try:
            if path.suffix.lower() in DICOM_SUFFIXES:
                return self._parse_dicom(path)
            return read_scan_file(path, f"filedrop:{self.name}"), [path]
        except ScanFormatError as exc:
            st = path.stat()
            if seen is not None and (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                return None  # still being written after all: look again later
            return self._reject(path, str(exc)), [path]

    def _parse_dicom(self, path: Path) -> Parsed | None:
        """A single-energy DX image, or a pair once both halves of its series are here."""
        header = read_dx_header(path)
        if not header.energy:
            return read_dx_scan([path], f"filedrop:{self.name}"), [path]
        other = self._halves.get((header.series_uid, LOW if header.energy == HIGH else HIGH))
        if other is None or not other.header.path.exists():
            self._halves.setdefault((header.series_uid, header.energy), _Half(header, time.monotonic()))
            return None
        del self._halves[(other.header.series_uid, other.header.energy)]
        self._halves.pop((header.series_uid, header.energy), None)
        pair = [path, other.header.path]
        try:
            return read_dx_scan(sorted(pair), f"filedrop:{self.name}"), pair
        except ScanFormatError as exc:
            self._reject(other.header.path, str(exc))
            raise

    def _orphans(self) -> list[RejectedFile]:
        """Reject the DX halves whose partner did not arrive within dicos_pair_ms."""
        now, out = time.monotonic(), []
        for key, half in list(self._halves.items()):
            if now - half.since < self.cfg.dicos_pair_ms / 1000:
                continue
            del self._halves[key]
            h = half.header
            if h.path.exists():
                want = LOW if h.energy == HIGH else HIGH
                out.append(self._reject(h.path, f"{h.path.name} is the {h.energy.lower()} half of DX series {h.series_uid}; "
                                                f"its {want.lower()} half did not arrive within {self.cfg.dicos_pair_ms} ms"))
        return out

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

