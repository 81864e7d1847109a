"""Station side of an image upload: one scan file sent as hashed chunks, resumable."""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from central_sync.errors import WireFormatError
from central_sync.protocol import SHA256_HEX, BlobChunkHeader, blob_topic, encode_chunk
from central_sync.station_db import Row


def scan_path(scans_dir: Path, sha256: str) -> Path:
    return scans_dir / sha256[:2] / f"{sha256}.npz"


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
        sha = row.payload.decode(errors="replace").strip().lower()
        if not SHA256_HEX.match(sha):
            raise WireFormatError(f"blob row {row.id} names {sha[:80]!r}, not a sha256")
        path = scan_path(scans_dir, sha)
        if not path.is_file():
            raise WireFormatError(f"scan file {path} of blob row {row.id} is missing")
        actual = file_sha256(path)
        if actual != sha:
            raise WireFormatError(f"scan file {path} hashes to {actual}, not its name")
        job = cls(row, sha, path, path.stat().st_size, chunk_bytes, done)
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
