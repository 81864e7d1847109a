"""Errors of the X-ray scanner driver (a branch of drivers.errors).

    DriverError
    └── ScanUnavailable      no scan result: asked before the scan ended, or not one line arrived
"""

from __future__ import annotations

from drivers.errors import DriverError


class ScanUnavailable(DriverError):
    """A scan result was asked for that does not exist (yet)."""
