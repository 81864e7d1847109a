"""Errors of the `drivers` package.

    DriverError              base; `device` names the device, message says what was sent/received
    ├── LinkLost             the device does not answer (timeout, closed port, refused)
    ├── ProtocolError        the device answered with garbage or a malformed frame
    │   ├── LlrpError        malformed LLRP bytes; `reason` is the counter's key (rfid/llrp/errors.py)
    │   │   └── FramingError the message header itself is broken: the stream cannot be resynchronised
    │   └── SealFormatError  an e-seal line or tag memory that breaks its format (seal/errors.py)
    ├── DeviceRefused        a negative acknowledgement / Modbus exception response
    │   └── ReadOnlyPoint    the simulated PLC refuses a write to a point that is not a request (plc/sim.py)
    ├── ReadbackMismatch     a commanded state was not confirmed by the feedback read back
    ├── ScanUnavailable      no scan result: asked before the scan ended, or no line arrived (xray/errors.py)
    ├── ControllerFault      the X-ray controller's STATUS reports a fault that forbids a scan (xray/errors.py)
    └── ScannerHeld          ARM or START_SCAN not sent: the station holds the X-ray controller disarmed (xray/errors.py)
"""

from __future__ import annotations


class DriverError(Exception):
    """Root of driver errors; `device` is the configured device name."""

    def __init__(self, message: str, *, device: str = "", last_frames: tuple[bytes, ...] = ()) -> None:
        super().__init__(message)
        self.device = device
        self.last_frames = last_frames


class LinkLost(DriverError):
    """The device did not answer or the link closed."""


class ProtocolError(DriverError):
    """The device sent bytes that break its protocol."""


class DeviceRefused(DriverError):
    """The device answered with a negative acknowledgement; `code` is its reason code when it sent one."""

    def __init__(self, message: str, *, device: str = "", last_frames: tuple[bytes, ...] = (),
                 code: int | None = None) -> None:
        super().__init__(message, device=device, last_frames=last_frames)
        self.code = code


class ReadbackMismatch(DriverError):
    """A requested state was not confirmed by reading back."""
