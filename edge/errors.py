"""Errors of the station daemon. Each package roots its own branch:

    EdgeError                 (edge)        station daemon
    ├── ConfigError           a station config that does not validate (exit status 78)
    ├── StoreError            the SQLite store cannot be opened, migrated or written
    │   ├── StoreCorrupt      integrity check failed at start
    │   └── DiskFull          not even a record fits any more
    └── StationFault          a device or the model prevents decisions (items go to manual)
    DriverError               (drivers)            see drivers/errors.py
    BridgeError               (firmware_bridge)    see firmware_bridge/errors.py
    ModelError                (models)             see models/errors.py
    SyncError                 (central_sync)       see central_sync/errors.py
"""

from __future__ import annotations

from pathlib import Path


class EdgeError(Exception):
    """Root of the station daemon's errors."""


class ConfigError(EdgeError):
    """A station config that does not validate; `problems` lists (key path, message)."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {key}: {msg}" for key, msg in problems))


class StoreError(EdgeError):
    """The station store cannot be opened, migrated or written."""


class StoreCorrupt(StoreError):
    """The SQLite integrity check failed."""


class DiskFull(StoreError):
    """The disk has no room left even for records."""


class StationFault(EdgeError):
    """A device or the model prevents a decision; the item goes to manual."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
