"""The conveyor belt's latch, kept on disk so that a restart of the software never runs the belt.

One small JSON file in the station's data_dir, replaced atomically (written, fsynced, renamed):
`latch` (why the belt is latched stopped, or null), `since` (UTC RFC 3339) and `clean` (false
while a daemon runs the flow; true once it stopped on request). A file that says `clean: false`
at start means the last daemon died (crash, watchdog kill, power cut) with the belt in a state
nobody knows; a file that cannot be read counts the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edge.stations import statefile

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
        data = statefile.load(path, "conveyor.belt_file_unreadable")
        return None if data is None else SavedBelt(data["latch"], data["since"], bool(data["clean"]))
    except (statefile.StateFileUnreadable, KeyError, TypeError):
        return UNKNOWN


def save(path: Path, belt: SavedBelt) -> None:
    """Replace the file atomically and durably."""
    statefile.save(path, asdict(belt))


def not_clean(path: Path) -> None:
    """A stop on request that did not finish (the daemon forced itself out, edge.daemon): the next start must
    not run the belt as after a clean stop, so `clean` goes back to false (the latch is kept as it was)."""
    saved = load(path)
    if saved is not None and saved.clean:
        save(path, SavedBelt(saved.latch, saved.since, clean=False))
