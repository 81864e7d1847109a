"""Errors of the `central_sync` package (wire protocol, station publisher, hub).

    SyncError
    ├── ProtocolError       a payload or topic that breaks the wire contract (counted, never fatal)
    ├── BrokerError         the broker refused a connection or a publish (a failure reason code)
    ├── SessionLost         the MQTT session ended or stopped making progress; the client is rebuilt
    └── HubStoreError       the hub database refused or failed a write
"""

from __future__ import annotations


class SyncError(Exception):
    """Root of the central_sync package's errors."""


class ProtocolError(SyncError):
    """A payload or topic that breaks the wire contract."""


class BrokerError(SyncError):
    """The broker answered a connect or publish with a failure reason code."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class SessionLost(SyncError):
    """The MQTT session ended or stopped acknowledging; the client must be rebuilt."""


class HubStoreError(SyncError):
    """The hub database refused or failed a write."""
