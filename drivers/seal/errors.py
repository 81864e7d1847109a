"""E-seal errors: a branch under `drivers.errors.ProtocolError`.

    ProtocolError
    └── SealFormatError   a seal message (serial line, tag memory) that breaks its layout; `reason` is the counter's key
"""

from __future__ import annotations

from drivers.errors import ProtocolError


class SealFormatError(ProtocolError):
    """A malformed seal message; `reason` names the fault (checksum, version, bad_field, ...)."""

    def __init__(self, message: str, *, reason: str, device: str = "") -> None:
        super().__init__(message, device=device)
        self.reason = reason
