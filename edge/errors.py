"""Errors of the station daemon. Each package roots its own branch:

    EdgeError                 (edge)        station daemon
    ├── ConfigError           a station config that does not validate (exit status 78)
    ├── StationUnusable       a station that cannot start until its config or host is mended (exit status 78)
    ├── StoreError            the SQLite store cannot be opened, migrated or written
    │   ├── StoreCorrupt      integrity check failed at start
    │   └── DiskFull          not even a record fits any more
    ├── StationFault          a device or the model prevents a decision (the item goes to manual, with a reason)
    ├── AuthError             a badge sign-in or user change refused; the message is safe to show (auth.py)
    ├── CommandRefused        a hub command refused, with a stable reason code (commands.py)
    ├── CaseError             a case request the screen cannot serve: HTTP status and catalogue key (web/cases.py)
    ├── DicosExportError      a record that cannot be exported as DICOS: no scan, or its file is gone (dicos.py)
    ├── CaseExportRefused     a case bundle not exported as asked: no reason, no such record (case_export.py)
    ├── SearchReportRefused   a search report not signed or countersigned as asked: status and key (search_report.py)
    ├── TwinError             the config names an endpoint the twin cannot serve (twin.py)
    ├── StateFileUnreadable   a state file that must outlive the daemon cannot be read (stations/statefile.py)
    ├── StationKeyError       the station key cannot be read, or others can read it (diag/signing.py)
    ├── HistoryUnavailable    the hub's history of a vehicle could not be fetched (history.py)
    └── DiagError             the diagnostics' own branch (diag/context.py)
        ├── PromptTimedOut    nobody acted on a prompt in time: the phase is ABORTED, not failed
        ├── PhaseSkipped      the phase does not apply to this station (SKIPPED, with the reason)
        ├── SignInRefused     the technician may not run diagnostics (diag/signin.py)
        ├── DrillRefused      a fault drill asked for on hardware or without its device (diag/runner.py)
        ├── RunInterrupted    Ctrl-C stopped a run: it carries the run, recorded ABORTED (diag/runner.py)
        └── HubUnreachable    the hub's broker did not connect or echo in time (diag/phases/hub.py)
    DriverError               (drivers)            see drivers/errors.py
    └── LinkLost
        └── IoTimeout         grafted by edge: a driver call past the diagnostics' I/O timeout (diag/context.py)
    BridgeError               (firmware_bridge)    see firmware_bridge/errors.py
    ModelError                (models)             see models/errors.py
    SyncError                 (central_sync)       see central_sync/errors.py
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.verdict import Reason


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


class StationUnusable(EdgeError):
    """A station that cannot start until its config or its host is mended (its screen's port taken or refused,
    its data_dir not writable, its TLS certificate unusable): not restarted; exit status 78."""


class HistoryUnavailable(EdgeError):
    """The hub's history of a vehicle could not be fetched (unreachable, refused, or a damaged answer)."""


class StationFault(EdgeError):
    """A device or the model prevents a decision; the pipeline ends the item in `manual` with `reason`."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
