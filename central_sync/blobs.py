"""Station side of an image upload: one scan file or search photo sent as hashed chunks, resumable.

An image row's payload names the file: a scan's sha256 (`data_dir/scans/ab/<sha>.npz`), or `photo:<sha256>`
for a search report's photo (`data_dir/photos/ab/<sha>`, JPEG or PNG, at most MAX_PHOTO_BYTES). Both travel
and land alike (the hub's `blobs`, by sha256). A row whose file is missing, unreadable, damaged, not an image
or too large is refused when it is opened: the row is parked with the reason and counted (`parked`), never sent.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from central_sync.errors import WireFormatError
from central_sync.protocol import SHA256_HEX, BlobChunkHeader, blob_topic, encode_chunk
from central_sync.station_db import Row


PHOTO_PREFIX = "photo:"
MAX_PHOTO_BYTES = 8 * 1024 * 1024
"""The largest search photo a station keeps and sends, and the control room shows."""
PHOTO_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}


def scan_path(scans_dir: Path, sha256: str) -> Path:
    return scans_dir / sha256[:2] / f"{sha256}.npz"


def photo_path(data_dir: Path, sha256: str) -> Path:
    """Where a station keeps a search photo (edge.store.Store.photo_path)."""
    return data_dir / "photos" / sha256[:2] / sha256


def photo_type(data: bytes) -> str | None:
    """The photo's media type by its first bytes (JPEG or PNG), None for anything else."""
    return next((kind for kind, magic in PHOTO_MAGIC.items() if data.startswith(magic)), None)


PHOTO_FAULTS = {"too_large": "{size} bytes, over the limit of {max} for a search photo",
                "not_photo": "not a JPEG or PNG (it starts with {head})"}
"""Why a file is not a search photo, by code (the control room's error.search.photo_<code>), as a sentence."""


def photo_fault(size: int, head: bytes) -> tuple[str, dict[str, int | str]] | None:
    """Why a file of `size` bytes starting with `head` is not a photo to keep or send (a PHOTO_FAULTS code and its
    values), or None."""
    if size > MAX_PHOTO_BYTES:
        return "too_large", {"size": size, "max": MAX_PHOTO_BYTES}
    if photo_type(head) is None:
        return "not_photo", {"head": head[:8].hex()}
    return None


def photo_problem(size: int, head: bytes) -> str | None:
    """photo_fault's reason as one sentence, or None."""
    fault = photo_fault(size, head)
    return None if fault is None else PHOTO_FAULTS[fault[0]].format(**fault[1])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class BlobJob:
    """Chunks still to send (`todo`), on the wire (`inflight`) and stored by the hub (`done`)."""

    row: Row
    sha256: str
    path: Path
    size: int
    chunk_bytes: int
    done: set[int]
    todo: deque[int] = field(default_factory=deque)
    inflight: set[int] = field(default_factory=set)
    last_sent: float = 0.0
    dirty: bool = False

    @property
    def count(self) -> int:
        return max(1, math.ceil(self.size / self.chunk_bytes))

    @classmethod
    def open(cls, row: Row, scans_dir: Path, chunk_bytes: int, done: set[int]) -> "BlobJob":
        """Check the row and its file; WireFormatError names what is wrong (the row is then parked)."""
        text = row.payload.decode(errors="replace").strip()
        photo = text.startswith(PHOTO_PREFIX)
        sha = text.removeprefix(PHOTO_PREFIX).lower()
        if not SHA256_HEX.match(sha):
            raise WireFormatError(f"blob row {row.id} names {sha[:80]!r}, not a sha256")
        what, path = ("search photo", photo_path(scans_dir.parent, sha)) if photo else ("scan", scan_path(scans_dir, sha))
        if not path.is_file():
            raise WireFormatError(f"{what} file {path} of blob row {row.id} is missing")
        try:  # a bad block (EIO) ended every session that opened the row, and held back the hub's acks
            if photo:
                with path.open("rb") as f:
                    problem = photo_problem(path.stat().st_size, f.read(16))
                if problem is not None:
                    raise WireFormatError(f"search photo {path} of record {row.record_id} is refused: {problem}")
            actual, size = file_sha256(path), path.stat().st_size
        except OSError as exc:
            raise WireFormatError(f"{what} file {path} of blob row {row.id} cannot be read: {exc}") from exc
        if actual != sha:
            raise WireFormatError(f"{what} file {path} hashes to {actual}, not its name")
        job = cls(row, sha, path, size, chunk_bytes, done)
        job.plan()
        return job

    def plan(self) -> None:
        """Queue every chunk the hub has not stored; if it has them all, re-send the last to finish."""
        missing = [i for i in range(self.count) if i not in self.done and i not in self.inflight]
        self.todo = deque(missing or ([] if self.inflight else [self.count - 1]))

    def chunk(self, station: str, index: int) -> tuple[str, bytes]:
        """Topic and payload of chunk `index`."""
        with self.path.open("rb") as f:
            f.seek(index * self.chunk_bytes)
            data = f.read(self.chunk_bytes)
        header = BlobChunkHeader(station=station, msg=self.row.id, seq=self.row.seq, record_id=self.row.record_id,
                                 sha256=self.sha256, index=index, count=self.count, size=self.size,
                                 chunk_sha256=hashlib.sha256(data).hexdigest())
        return blob_topic(station, self.sha256, index), encode_chunk(header, data)
