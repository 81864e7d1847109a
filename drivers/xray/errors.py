"""Errors of the X-ray scanner driver (a branch of drivers.errors).

    DriverError
    ├── ScanUnavailable      no scan result: asked before the scan ended, or not one line arrived
    ├── ControllerFault      the controller's STATUS reports a fault that forbids starting a scan
    └── ScannerHeld          ARM or START_SCAN not sent: the station holds the controller disarmed (a safe state)
"""

from __future__ import annotations

from drivers.errors import DriverError


class ScanUnavailable(DriverError):
    """A scan result was asked for that does not exist (yet)."""


class ControllerFault(DriverError):
    """The controller reports a fault condition (HV_FAULT, TUBE_OVERTEMP, a bit unknown to the protocol): no scan
    is started; `faults` is the STATUS word."""

    def __init__(self, message: str, *, device: str = "", faults: int = 0) -> None:
        super().__init__(message, device=device)
        self.faults = faults


class ScannerHeld(DriverError):
    """ARM or START_SCAN not sent because the station holds the controller disarmed (a safe state, not a fault of the
    controller); `reason` is the safe state."""

    def __init__(self, message: str, *, device: str = "", reason: str = "") -> None:
        super().__init__(message, device=device)
        self.reason = reason
