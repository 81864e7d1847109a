"""LLRP errors: a branch under `drivers.errors.ProtocolError`.

    ProtocolError
    └── LlrpError        malformed LLRP bytes; `reason` is the counter's key
        └── FramingError the message header itself is broken: the byte stream cannot be resynchronised
"""

from __future__ import annotations

from drivers.errors import ProtocolError


class LlrpError(ProtocolError):
    """A malformed LLRP message; `reason` names the kind of fault (bad_parameter, truncated, ...)."""

    def __init__(self, message: str, *, reason: str, device: str = "") -> None:
        super().__init__(message, device=device)
        self.reason = reason


class FramingError(LlrpError):
    """A broken message header (version, length): nothing after it on this connection can be trusted."""
