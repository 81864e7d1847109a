"""A station's data_dir is used by one process at a time: the daemon, or `edge diag` driving the same devices."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.errors import StationUnusable


@contextmanager
def data_dir_lock(station: str, data_dir: Path) -> Iterator[None]:
    """Hold `data_dir/daemon.lock` while the station runs (or `edge diag` drives its devices): a second daemon, a
    second station of this one, or diagnostics on the same data_dir is StationUnusable, naming the holder's pid.
    Two daemons wrote one database and drove one lane; diagnostics moved the belt under a running daemon."""
    path = data_dir / "daemon.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StationUnusable(f"station {station}'s data_dir {data_dir} is in use by another process (pid {holder}: a "
                              f"station daemon or edge diag); two would write one database and drive one lane") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def fsync_dir(path: Path) -> None:
    """Make the names in directory `path` durable: a file renamed into it (os.replace) or removed from it is only
    on disk once the directory is fsynced too, and a power cut before that can bring the old name back."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
