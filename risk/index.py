"""The watchlist index: per list kind, sorted 64-bit hashes of the values with the values kept for an exact check.

A million entries take about 30 MB (8 bytes of hash, 16 of offset, length and list index, the value's
bytes), where a dict of Python strings would take over 100 MB. The bundle carries a kind's values as
one string separated by single spaces, so building the index creates no Python object per entry: the
bytes go into one blob, the offsets come from the separators, and the hashes (64-bit FNV-1a) are
computed by numpy one byte position at a time over the rows still that long. A lookup hashes the
normalised value the same way, finds its run in the sorted hashes by binary search and compares the
stored bytes, so a hash collision can never give a false hit (it costs one more comparison).

Applying a delta builds new arrays (the old index is untouched, so evaluations running on it are not
disturbed): kept rows plus added rows, sorted again; the added values' bytes are appended to a copy of
the old blob, which is compacted when less than half of it is in use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1
SEPARATOR = 0x20  # b" ": a normalised value holds no white space


def value_hash(value: bytes) -> int:
    """64-bit FNV-1a of a normalised value's UTF-8 bytes (the same as `hashes_of` computes for many)."""
    h = FNV_OFFSET
    for byte in value:
        h = ((h ^ byte) * FNV_PRIME) & MASK
    return h


def hashes_of(blob: npt.NDArray[np.uint8], starts: I64, lengths: I32) -> U64:
    """FNV-1a of every row blob[start:start+length], vectorised over the rows at each byte position."""
    h = np.full(starts.size, FNV_OFFSET, dtype=np.uint64)
    live = np.arange(starts.size)
    prime = np.uint64(FNV_PRIME)
    for j in range(int(lengths.max()) if lengths.size else 0):
        live = live[lengths[live] > j]
        h[live] = (h[live] ^ blob[starts[live] + j].astype(np.uint64)) * prime
    return h


@dataclass(frozen=True, eq=False)
class KindIndex:
    """The entries of one list kind; row i is (hashes[i], the bytes blob[starts[i]:starts[i]+lengths[i]], metas[i])."""

    hashes: U64
    starts: I64
    lengths: I32
    metas: I32
    blob: bytes

    def __len__(self) -> int:
        return int(self.hashes.size)

    def rows(self, value: str) -> list[int]:
        """Row numbers of every entry whose value is exactly `value` (normalised)."""
        raw = value.encode()
        h = np.uint64(value_hash(raw))
        i = int(np.searchsorted(self.hashes, h, "left"))
        found: list[int] = []
        while i < self.hashes.size and self.hashes[i] == h:
            start = int(self.starts[i])
            if self.blob[start:start + int(self.lengths[i])] == raw:
                found.append(i)
            i += 1
        return found

    def lookup(self, value: str) -> list[int]:
        """The meta indexes of every entry whose value is exactly `value` (normalised)."""
        return [int(self.metas[i]) for i in self.rows(value)]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.hashes, self.starts, self.lengths, self.metas)) + len(self.blob)


NO_ROWS = np.zeros(0, np.int32)
EMPTY = KindIndex(np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), b"")


def build(values: str, metas: Sequence[int] | I32, meta_map: I32, base: KindIndex = EMPTY,
          drop: Iterable[str] = ()) -> KindIndex:
    """A new index: `base` without the entries whose value is in `drop`, plus `values` (space-separated; their
    metas through `meta_map`)."""
    keep = np.ones(len(base), dtype=bool)
    keep[[row for value in drop for row in base.rows(value)]] = False
    old = _compacted(base, keep) if len(base) and keep.sum() * 2 < len(base) else _subset(base, keep)
    if not values:
        return old
    raw = np.frombuffer(values.encode(), dtype=np.uint8)
    seps = np.flatnonzero(raw == SEPARATOR)
    starts = np.concatenate([[0], seps + 1]).astype(np.int64)
    lengths = (np.concatenate([seps, [raw.size]]) - starts).astype(np.int32)
    new_hashes = hashes_of(raw, starts, lengths)
    hashes = np.concatenate([old.hashes, new_hashes])
    order = np.argsort(hashes, kind="stable")
    new_metas = meta_map[np.asarray(metas, dtype=np.int64)]
    return KindIndex(hashes=hashes[order], starts=np.concatenate([old.starts, starts + len(old.blob)])[order],
                     lengths=np.concatenate([old.lengths, lengths])[order],
                     metas=np.concatenate([old.metas, new_metas]).astype(np.int32)[order],
                     blob=old.blob + raw.tobytes())


def _subset(index: KindIndex, keep: npt.NDArray[np.bool_]) -> KindIndex:
    if keep.all():
        return index
    return KindIndex(index.hashes[keep], index.starts[keep], index.lengths[keep], index.metas[keep], index.blob)


def _compacted(index: KindIndex, keep: npt.NDArray[np.bool_]) -> KindIndex:
    """The kept rows with a blob holding only their bytes (when removals left most of it unused)."""
    starts, lengths = index.starts[keep], index.lengths[keep].astype(np.int64)
    new_starts = np.cumsum(lengths) - lengths
    gather = np.repeat(starts - new_starts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
    blob = np.frombuffer(index.blob, dtype=np.uint8)[gather].tobytes()
    return KindIndex(index.hashes[keep], new_starts, index.lengths[keep], index.metas[keep], blob)
