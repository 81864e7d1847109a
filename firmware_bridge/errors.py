"""Errors of the `firmware_bridge` package.

    BridgeError              base; `last_frames` holds the last raw frames seen (newest last)
    ├── FrameError           bytes that do not decode to a valid frame (COBS, length, CRC, version)
    │   └── VersionMismatch  an intact frame (CRC good) of another protocol version (`version`)
    ├── PayloadError         a valid frame whose payload does not match its message type
    ├── LinkDown             the port is closed, vanished, or the link is being re-established
    ├── AckTimeout           a reliable frame was not acknowledged after all attempts
    ├── Nak                  the peer answered with a negative acknowledgement (`reason`)
    └── UpdateFailed         the firmware did not come back running the image sent (update.py)
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of the firmware bridge's errors."""

    def __init__(self, message: str, *, last_frames: tuple[bytes, ...] = ()) -> None:
        super().__init__(message)
        self.last_frames = last_frames


class FrameError(BridgeError):
    """Bytes that do not decode to a valid frame."""


class VersionMismatch(FrameError):
    """An intact frame of another protocol version: the peer speaks `version`, we speak `expected`."""

    def __init__(self, message: str, *, version: int, expected: int) -> None:
        super().__init__(message)
        self.version = version
        self.expected = expected


class PayloadError(BridgeError):
    """A frame whose payload does not fit its message type."""


class LinkDown(BridgeError):
    """The serial link is not up."""


class AckTimeout(BridgeError):
    """A reliable frame was not acknowledged within its attempts."""


class Nak(BridgeError):
    """The peer refused a request; `reason` is a codec.NakReason."""

    def __init__(self, message: str, *, reason: int, last_frames: tuple[bytes, ...] = ()) -> None:
        super().__init__(message, last_frames=last_frames)
        self.reason = reason
