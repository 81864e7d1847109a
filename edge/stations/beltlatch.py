"""The conveyor belt's latch, kept on disk so that a restart of the software never runs the belt.

One small JSON file in the station's data_dir, replaced atomically (written, fsynced, renamed):
`latch` (why the belt is latched stopped, or null), `since` (UTC RFC 3339) and `clean` (false
while a daemon runs the flow; true once it stopped on request). A file that says `clean: false`
at start means the last daemon died (crash, watchdog kill, power cut) with the belt in a state
nobody knows; a file that cannot be read counts the same.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

log = structlog.get_logger()

FILE_NAME = "belt.json"


@dataclass(frozen=True)
class SavedBelt:
    latch: str | None
    since: str | None
    clean: bool


UNKNOWN = SavedBelt(None, None, clean=False)


def load(path: Path) -> SavedBelt | None:
    """The belt as the last daemon left it; None when no daemon ever ran on this data_dir."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SavedBelt(data["latch"], data["since"], bool(data["clean"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("conveyor.belt_file_unreadable", path=str(path), error=str(exc))
        return UNKNOWN


def save(path: Path, belt: SavedBelt) -> None:
    """Replace the file atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(belt), fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
