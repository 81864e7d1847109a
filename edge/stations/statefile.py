"""Small JSON state files in a station's data_dir that must outlive the daemon (belt latch, gantry lane).

Each is replaced atomically and durably (written, fsynced, renamed, directory fsynced), so that a
power cut leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog

from edge.errors import EdgeError

log = structlog.get_logger()


class StateFileUnreadable(EdgeError):
    """The file exists but cannot be read as JSON (the caller decides what an unknown state means)."""


def load(path: Path, event: str) -> Any | None:
    """The file's JSON; None when it does not exist; StateFileUnreadable (logged as `event`) when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error(event, path=str(path), error=str(exc))
        raise StateFileUnreadable(f"{path} cannot be read: {exc}") from exc


def save(path: Path, data: Any) -> None:
    """Replace the file atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
