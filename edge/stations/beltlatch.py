"""The conveyor belt's latch, kept on disk so that a restart of the software never runs the belt.

One small JSON file in the station's data_dir, replaced atomically (written, fsynced, renamed):
`latch` (why the belt is latched stopped, or null), `since` (UTC RFC 3339) and `clean` (false
while a daemon runs the flow; true once it stopped on request). A file that says `clean: false`
at start means the last daemon died (crash, watchdog kill, power cut) with the belt in a state
nobody knows; a file that cannot be read counts the same.

`items` lists the bags on the belt whose route the daemon has not seen yet (`record`: the record id
each was given when it entered the tunnel, `since`: when, or null), rewritten as bags enter and
leave, so that the next daemon knows them after a restart (edge.stations.conveyor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from edge.stations import statefile

log = structlog.get_logger()

FILE_NAME = "belt.json"


@dataclass(frozen=True)
class SavedItem:
    record: str
    since: str | None = None


@dataclass(frozen=True)
class SavedBelt:
    latch: str | None
    since: str | None
    clean: bool
    items: tuple[SavedItem, ...] = ()


UNKNOWN = SavedBelt(None, None, clean=False)


def load(path: Path) -> SavedBelt | None:
    """The belt as the last daemon left it; None when no daemon ever ran on this data_dir."""
    try:
        data = statefile.load(path, "conveyor.belt_file_unreadable")
        if data is None:
            return None
        return SavedBelt(data["latch"], data["since"], bool(data["clean"]), _items(path, data.get("items", [])))
    except (statefile.StateFileUnreadable, KeyError, TypeError, AttributeError):
        return UNKNOWN


def _items(path: Path, entries: Any) -> tuple[SavedItem, ...]:
    """The bags the file lists; an entry that cannot be read is logged and left out (the others are kept)."""
    items = []
    for entry in entries if isinstance(entries, list) else [entries]:
        try:
            since = entry.get("since")
            items.append(SavedItem(str(entry["record"]), None if since is None else str(since)))
        except (KeyError, TypeError, AttributeError) as exc:
            log.error("conveyor.belt_item_unreadable", path=str(path), entry=repr(entry)[:200], error=repr(exc))
    return tuple(items)


def save(path: Path, belt: SavedBelt) -> None:
    """Replace the file atomically and durably."""
    statefile.save(path, asdict(belt))


def not_clean(path: Path) -> None:
    """A stop on request that did not finish (the daemon forced itself out, edge.daemon): the next start must
    not run the belt as after a clean stop, so `clean` goes back to false (the latch and items are kept as they
    were)."""
    saved = load(path)
    if saved is not None and saved.clean:
        save(path, replace(saved, clean=False))
