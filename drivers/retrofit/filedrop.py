"""File-drop ingestion: a vendor machine writes image files into a folder.

A file is ingested when its size and mtime have not changed for `settle_ms` and it parses; names
that look temporary are ignored. After the consumer takes a scan (asks for the next one), the file
moves to `processed/`; so a restart ingests only what was not yet handed over (each file once;
a crash between hand-over and move hands it over again, which the record's scan sha256 reveals).
A file replaced meanwhile (a machine writing each scan under one name) is not the one that was read:
it stays, counted (`replaced`) and logged, and is ingested as its own scan. A file that changed while it
was read (an uncompressed TIFF rewritten in place parses as a mix of two scans) is not handed over: counted
the same way, it is read again once it has settled.
A file that does not parse is moved to `rejected/` with `<name>.reason.txt` holding one sentence,
and yielded as a `RejectedFile` so that the consumer can record the item (manual) and alarm.

DICOS/DICOM DX images (`.dcm`, `.dcs`, models/dicos.py) hold one energy each: a file marked
HIGH ENERGY or LOW ENERGY waits up to `dicos_pair_ms` for the other half of its series and the
two become one scan; a half whose partner does not come is rejected (the item goes to manual).
A DX image that names no energy is a single-energy scan, as a PNG is.

An .npz whose members declare more than the largest scan channel (models/dicos.py's MAX_PIXELS
uint16 pixels), or a PNG/TIFF whose header declares more pixels, is rejected before anything is
allocated, and any other failure to parse a file rejects that file: one file never stops the source.
A symbolic link in the folder is rejected unread (it would have the station read, and pass off as
this machine's scan, whatever file it points to). A drop folder that cannot be listed (a share
remounted) makes the source degraded with the reason; it looks again with a doubling wait and is ok
again when the folder is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
import warnings
import zipfile
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import cv2
import numpy as np
import PIL.Image
import structlog

from drivers.errors import LinkLost
from drivers.retrofit.config import RetrofitConfig
from models.dicos import HIGH, LOW, MAX_PIXELS, DxHeader, read_dx_header, read_dx_scan
from models.errors import ScanFormatError
from models.scan import Scan, load_scan

log = structlog.get_logger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dcs")
SUFFIXES = (".npz", *IMAGE_SUFFIXES, *DICOM_SUFFIXES)
PRUNE_EVERY_S = 3600.0  # how often processed/ and rejected/ are pruned to `keep_days`
MAX_MEMBER_BYTES = MAX_PIXELS * 2  # the largest uint16 channel a scan may have
NPY_HEADER_BYTES = 65536  # room for an .npy member's header beyond its array
RETRY_MAX_S = 30.0  # the longest wait between two looks at a drop folder that cannot be listed
FileIdentity = tuple[int, int, int, int]  # device, inode, size, mtime_ns: a file replaced or rewritten differs
Parsed = tuple["Scan | RejectedFile", dict[Path, FileIdentity]]  # what was read; its files as they were before


@dataclass(frozen=True)
class RejectedFile:
    """A dropped file that could not be used: moved to `rejected/`; `reason` is one sentence."""

    file: str
    source: str
    reason: str


@dataclass(frozen=True)
class SourceHealth:
    """What the screen shows for the source: ok, or degraded with one sentence."""

    state: Literal["ok", "degraded", "lost"]
    detail: str = ""


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


def check_image_size(path: Path) -> None:
    """ScanFormatError when a PNG/TIFF declares more than MAX_PIXELS pixels, read from its header before anything
    is decoded (a few hundred KB of PNG can declare a gigapixel image, which OpenCV would allocate whole)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # the limit is MAX_PIXELS, below
            with PIL.Image.open(path) as img:
                width, height = img.size
    except PIL.Image.DecompressionBombError as exc:
        raise ScanFormatError(f"{path.name} declares too many pixels: {exc}") from exc
    except (OSError, ValueError):
        return  # not an image PIL knows: OpenCV says what it makes of it
    if width * height > MAX_PIXELS:
        raise ScanFormatError(f"{path.name} declares {width} x {height} pixels; 1 to {MAX_PIXELS} are accepted")


def read_image_scan(path: Path, source: str) -> Scan:
    """A greyscale PNG/TIFF (8 or 16 bit) as a single-energy scan: grey -> both channels."""
    check_image_size(path)
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


def check_npz_sizes(path: Path) -> None:
    """ScanFormatError when an .npz member declares more than MAX_MEMBER_BYTES, read from the zip directory and
    each .npy header before anything is allocated (np.load allocates whatever a header declares)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.file_size > MAX_MEMBER_BYTES + NPY_HEADER_BYTES:
                    raise ScanFormatError(f"{path.name} holds member {info.filename} of {info.file_size} bytes; "
                                          f"at most {MAX_MEMBER_BYTES + NPY_HEADER_BYTES} are accepted")
                if info.filename.endswith(".npy"):
                    with zf.open(info) as fh:
                        _check_npy_header(path, info.filename, fh)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ScanFormatError(f"scan {path} is not a readable .npz scan file: {exc}") from exc


def _check_npy_header(path: Path, member: str, fh: IO[bytes]) -> None:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ScanFormatError(f"{path.name} member {member} is .npy format version {version}; 1.0 and 2.0 are read")
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_MEMBER_BYTES:
        raise ScanFormatError(f"{path.name} declares array {member} of shape {shape} and type {dtype} ({size} bytes); "
                              f"at most {MAX_MEMBER_BYTES} bytes ({MAX_PIXELS} uint16 pixels) are accepted")


def read_scan_file(path: Path, source: str) -> Scan:
    """Parse one dropped file by its suffix; ScanFormatError says why it is unusable."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image_scan(path, source)
    check_npz_sizes(path)
    scan = load_scan(path)
    return Scan(high=scan.high, low=scan.low, meta={**scan.meta, "source": source, "file": path.name},
                complete=scan.complete)


class FileDropSource:
    """Watches `cfg.folder` and yields each complete dropped scan once."""

    def __init__(self, cfg: RetrofitConfig, name: str, feeder: asyncio.Task[None] | None = None) -> None:
        assert cfg.folder is not None
        self._feeder = feeder  # the simulator writing into the folder (sim-filedrop): its failure ends the source
        self.cfg = cfg
        self.name = name
        self.folder = cfg.folder
        self.processed = self.folder / "processed"
        self.rejected = self.folder / "rejected"
        self._seen: dict[str, _Seen] = {}
        self._halves: dict[tuple[str, str], _Half] = {}  # (series UID, energy) -> the half that waits
        self.counters = {"ingested": 0, "rejected": 0, "replaced": 0, "pruned": 0, "folder_lost": 0}
        self._next_prune = 0.0
        self.health = SourceHealth("ok")
        self.on_health: Callable[[Literal["ok", "degraded", "lost"], str], None] | None = None

    async def scans(self) -> AsyncGenerator[Scan | RejectedFile, None]:
        """Yield scans as files settle, and the files rejected; a scan's file moves to processed/ when
        the next one is asked for. A folder that cannot be used is waited for (degraded meanwhile)."""
        await asyncio.to_thread(self._prepare)
        wait = self.cfg.poll_ms / 1000
        while True:
            self._check_feeder()
            try:
                async with contextlib.aclosing(self._round()) as round_:
                    async for item in round_:
                        yield item
            except OSError as exc:
                await self._folder_unavailable(exc, wait)
                wait = min(wait * 2, RETRY_MAX_S)
                continue
            if self.health.state != "ok":
                self._set_health("ok")
                log.info("retrofit.folder_back", source=self.name, folder=str(self.folder))
            wait = self.cfg.poll_ms / 1000
            await asyncio.sleep(wait)

    def _check_feeder(self) -> None:
        """LinkLost when the simulator writing the files failed: nothing would come, the source fails with it."""
        task = self._feeder
        if task is None or not task.done() or task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        raise LinkLost(f"the simulated machine writing into {self.folder} for source {self.name} failed: {exc}",
                       device=self.name) from exc

    async def _folder_unavailable(self, exc: OSError, wait: float) -> None:
        """Degraded, naming the folder and the error; then wait before the next look."""
        detail = (f"drop folder {self.folder} of source {self.name} cannot be used: {exc}; "
                  f"looking again in {wait * 1000:.0f} ms")
        if self.health.state == "ok":
            self.counters["folder_lost"] += 1
            log.warning("retrofit.folder_unavailable", source=self.name, detail=detail)
        self._set_health("degraded", detail)
        await asyncio.sleep(wait)

    def _set_health(self, state: Literal["ok", "degraded", "lost"], detail: str = "") -> None:
        self.health = SourceHealth(state, detail)
        if self.on_health is not None:
            self.on_health(state, detail)

    async def _round(self) -> AsyncGenerator[Scan | RejectedFile, None]:
        """One look at the folder: the files settled, the DX halves orphaned, pruning when due."""
        await asyncio.to_thread(self._subfolders)
        for path in await asyncio.to_thread(self._settled):
            parsed = await asyncio.to_thread(self._parse, path)
            if parsed is None:
                continue
            scan, files = parsed
            yield scan
            if isinstance(scan, RejectedFile):
                continue
            for file, read in files.items():
                await asyncio.to_thread(self._processed, file, read)
            self.counters["ingested"] += 1
            log.info("retrofit.file_ingested", source=self.name, file=path.name, shape=scan.shape)
        for orphan in await asyncio.to_thread(self._orphans):
            yield orphan
        if self.cfg.keep_days and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            await asyncio.to_thread(self._prune)

    def _processed(self, path: Path, read: FileIdentity) -> None:
        """Move a handed-over file to processed/, unless another file took its name since it was read: that one
        is a scan of its own, left for the next look."""
        if self._replaced(path, read, f"while its scan was handed over; the new file is left in {self.folder} and "
                                      f"ingested as a scan of its own"):
            return
        with contextlib.suppress(FileNotFoundError):  # taken away by its writer: nothing to move
            _move(path, self.processed)

    def _replaced(self, path: Path, read: FileIdentity, then: str) -> bool:
        """Whether another file, or other bytes, stand at `path` than those `read` (one taken away left what was
        read whole): counted and logged."""
        try:
            now = _identity(path.stat())
        except FileNotFoundError:
            return False
        if now == read:
            return False
        self.counters["replaced"] += 1
        log.warning("retrofit.file_replaced", source=self.name, file=path.name,
                    detail=f"{path.name} was replaced or rewritten {then}")
        return True

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

    def _subfolders(self) -> None:
        """processed/ and rejected/ in the folder (again, after a share came back without them); never the
        folder itself: one that is gone is waited for."""
        for d in (self.processed, self.rejected):
            d.mkdir(exist_ok=True)

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
        if path.is_symlink():
            return self._reject(path, f"{path.name} is a symbolic link to {os.readlink(path)}; only files written "
                                      f"into the drop folder are read"), {}
        try:
            read = _identity(path.stat())
        except FileNotFoundError:
            return None  # the other half of a DX pair, already taken with its partner
        size = read[2]
        if size > self.cfg.max_file_mb << 20:
            return self._reject(path, f"{path.name} has {size} bytes, more than the {self.cfg.max_file_mb} MB limit"), {}
        try:
            if path.suffix.lower() in DICOM_SUFFIXES:
                parsed = self._parse_dicom(path, read)
            else:
                parsed = read_scan_file(path, f"filedrop:{self.name}"), {path: read}
            if parsed is not None and any(self._replaced(file, before, "while it was read (what was read may mix "
                                                                       "two scans); it is read again")
                                          for file, before in parsed[1].items()):
                return None
            return parsed
        except ScanFormatError as exc:
            st = path.stat()
            if seen is not None and (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                return None  # still being written after all: look again later
            return self._reject(path, str(exc)), {}
        except Exception as exc:  # MemoryError or a reader's own fault: this file is rejected, the source goes on
            return self._reject(path, f"{path.name} could not be read: {type(exc).__name__}: {exc}"), {}

    def _parse_dicom(self, path: Path, read: FileIdentity) -> Parsed | None:
        """A single-energy DX image, or a pair once both halves of its series are here."""
        header = read_dx_header(path)
        if not header.energy:
            return read_dx_scan([path], f"filedrop:{self.name}"), {path: read}
        other = self._halves.get((header.series_uid, LOW if header.energy == HIGH else HIGH))
        if other is None or not other.header.path.exists():
            self._halves.setdefault((header.series_uid, header.energy), _Half(header, time.monotonic()))
            return None
        del self._halves[(other.header.series_uid, other.header.energy)]
        self._halves.pop((header.series_uid, header.energy), None)
        pair = {path: read, other.header.path: _identity(other.header.path.stat())}
        try:
            return read_dx_scan(sorted(pair), f"filedrop:{self.name}"), pair
        except Exception as exc:
            self._reject(other.header.path, str(exc) or type(exc).__name__)
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


def _identity(st: os.stat_result) -> FileIdentity:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _move(path: Path, folder: Path) -> Path:
    """Move into `folder`, never overwriting (a repeated vendor file name gets a time suffix)."""
    dest = folder / path.name
    if dest.exists():
        dest = folder / f"{path.stem}.{time.time_ns()}{path.suffix}"
    path.replace(dest)
    return dest

