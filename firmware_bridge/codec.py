"""Pure bytes <-> values for the X-ray controller link (no IO).

Wire layout. Every frame is COBS-encoded and followed by one 0x00 delimiter:

    COBS( version:u8 | type:u8 | seq:u16 | length:u16 | payload[length] | crc:u32 ) 0x00

All integers are little-endian. `crc` is CRC-32/ISO-HDLC (zlib.crc32: poly 0x04C11DB7
reflected, init and xorout 0xFFFFFFFF, check value 0xCBF43926 for b"123456789") over
version..payload. CRC-32 rather than CRC-16 because line frames reach several kilobytes,
where a 16-bit CRC misses too many burst patterns.

Messages (payload layouts are the structs below). Every frame but ACK, NAK and HEARTBEAT is
reliable: the receiver answers ACK(seq, reply body) or NAK(seq, reason); ACK, NAK and HEARTBEAT
carry seq 0 and are never answered. Requests get their answer in the ACK body:

    HELLO        host -> fw   protocol, host max frame       ACK body: HelloInfo
    STATUS       host -> fw   -                              ACK body: Status
    ARM, DISARM  host -> fw   -                              NAK INTERLOCKS_OPEN when open
    START_SCAN   host -> fw   scan id                        NAK NOT_ARMED / BUSY / ...
    STOP_SCAN    host -> fw   scan id                        NAK NOT_SCANNING (not scanning that id)
    LINE         fw -> host   scan id, index, width, high[width], low[width]
    SCAN_END     fw -> host   scan id, lines sent, complete flag
    HEARTBEAT    both ways    boot id, uptime ms
    UPDATE_*     host -> fw   see update.py

The decoder never buffers more than the encoded size of `max_frame` bytes: a longer run
without a delimiter is discarded up to the next 0x00, and the header's length field is checked
against `max_frame` before any payload is sliced or any array is built.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np

from firmware_bridge.errors import FrameError, PayloadError, VersionMismatch

VERSION = 1
HEADER = struct.Struct("<BBHH")
CRC = struct.Struct("<I")
OVERHEAD = HEADER.size + CRC.size
MAX_FRAME = 16384
"""Hard upper bound of a decoded frame (header + payload + CRC); HELLO may negotiate less."""


def cobs_max(n: int) -> int:
    """Largest COBS encoding of n bytes (without the delimiter)."""
    return n + n // 254 + 1


class MsgType(IntEnum):
    """Frame types; ACK, NAK and HEARTBEAT are unacknowledged, all others are reliable."""

    HELLO = 0x01
    HEARTBEAT = 0x02
    ACK = 0x03
    NAK = 0x04
    STATUS = 0x10
    ARM = 0x11
    DISARM = 0x12
    START_SCAN = 0x13
    STOP_SCAN = 0x14
    BYPASS_INTERLOCKS = 0x15
    LINE = 0x20
    SCAN_END = 0x21
    UPDATE_BEGIN = 0x30
    UPDATE_CHUNK = 0x31
    UPDATE_COMMIT = 0x32


UNRELIABLE = frozenset({MsgType.ACK, MsgType.NAK, MsgType.HEARTBEAT})


class NakReason(IntEnum):
    """Why the peer refused a frame."""

    UNKNOWN_TYPE = 1
    BAD_PAYLOAD = 2
    INTERLOCKS_OPEN = 3
    NOT_ARMED = 4
    BUSY = 5
    REFUSED_SAFETY = 6
    NOT_SCANNING = 7
    NO_SESSION = 8
    BAD_IMAGE = 9
    FRAME_TOO_LARGE = 10


class Capability(IntFlag):
    """Capabilities announced in the HELLO reply."""

    DUAL_ENERGY = 1
    LINE_STREAM = 2
    FIRMWARE_UPDATE = 4


class Fault(IntFlag):
    """Controller fault bits reported in STATUS."""

    HOST_LOST = 1
    FIFO_OVERFLOW = 2
    HV_FAULT = 4
    TUBE_OVERTEMP = 8
    WATCHDOG_RESET = 16


# Fault bits that record something that happened (the host went silent, the FIFO overflowed, the watchdog reset
# the controller): latched until the controller reboots, and what they ended has ended (an incomplete scan, a lost
# session). Every other bit, HV_FAULT, TUBE_OVERTEMP and any this protocol version does not define, is a condition
# of the controller now: no scan is started while STATUS reports one (docs/xray-controller-link.md, section 4).
_FAULT_NAMES = {int(f): f.name or "" for f in Fault}
EVENT_FAULTS = Fault.HOST_LOST | Fault.FIFO_OVERFLOW | Fault.WATCHDOG_RESET


def blocking_faults(faults: int) -> int:
    """The bits of a STATUS `faults` word that forbid starting a scan (all but EVENT_FAULTS)."""
    return faults & 0xFFFFFFFF & ~int(EVENT_FAULTS)


def fault_names(faults: int) -> tuple[str, ...]:
    """The names of the bits set in a STATUS `faults` word; a bit this protocol does not define is `bit<N>`."""
    return tuple(_FAULT_NAMES.get(1 << n, f"bit{n}") for n in range(32) if faults >> n & 1)


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    type: int
    seq: int
    payload: bytes = b""
    version: int = VERSION


def encode_frame(frame: Frame) -> bytes:
    """Frame -> wire bytes including the trailing delimiter."""
    if len(frame.payload) + OVERHEAD > MAX_FRAME:
        raise FrameError(f"payload of {len(frame.payload)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    body = HEADER.pack(frame.version, frame.type, frame.seq & 0xFFFF, len(frame.payload)) + frame.payload
    return cobs_encode(body + CRC.pack(zlib.crc32(body))) + b"\x00"


def decode_frame(raw: bytes, max_frame: int = MAX_FRAME, version: int = VERSION) -> Frame:
    """COBS-encoded bytes (no delimiter) -> Frame, or FrameError naming the defect.

    An intact frame (its CRC holds) of another protocol version raises VersionMismatch.
    """
    if len(raw) > cobs_max(max_frame):
        raise FrameError(f"encoded frame of {len(raw)} bytes exceeds the limit for {max_frame}-byte frames")
    data = cobs_decode(raw)
    if len(data) < OVERHEAD:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the {OVERHEAD}-byte minimum")
    peer, mtype, seq, length = HEADER.unpack_from(data)
    (crc,) = CRC.unpack_from(data, len(data) - CRC.size)
    crc_ok = crc == zlib.crc32(data[: -CRC.size])
    if peer != version:
        if crc_ok:
            raise VersionMismatch(f"frame has protocol version {peer}, expected {version}", version=peer,
                                  expected=version)
        raise FrameError(f"frame has protocol version {peer}, expected {version}, and fails its CRC-32")
    if length + OVERHEAD > max_frame or length + OVERHEAD != len(data):
        raise FrameError(f"frame announces {length} payload bytes but carries {len(data) - OVERHEAD}")
    if not crc_ok:
        raise FrameError(f"frame type {mtype:#04x} seq {seq} fails its CRC-32")
    return Frame(type=mtype, seq=seq, payload=data[HEADER.size : -CRC.size], version=peer)


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing, canonical form, without the delimiter."""
    out = bytearray()
    parts = data.split(b"\x00")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        while len(part) >= 254:
            out.append(0xFF)
            out += part[:254]
            part = part[254:]
            if last and not part:
                return bytes(out)
        out.append(len(part) + 1)
        out += part
    return bytes(out)


def cobs_decode(enc: bytes) -> bytes:
    """Inverse of cobs_encode; FrameError on a zero byte or a block overrunning the data."""
    out = bytearray()
    i, n = 0, len(enc)
    while i < n:
        code = enc[i]
        end = i + code
        if code == 0 or end > n:
            raise FrameError(f"COBS block code {code} at offset {i} does not fit {n} bytes")
        block = enc[i + 1 : end]
        if 0 in block:
            raise FrameError(f"COBS data holds a zero byte near offset {i}")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


class FrameDecoder:
    """Incremental decoder: feed any chunks, get whole valid frames; garbage is counted, never raised."""

    def __init__(self, max_frame: int = MAX_FRAME, on_error: Callable[[bytes, str], None] | None = None,
                 version: int = VERSION) -> None:
        self.max_frame = max_frame
        self.version = version
        self.peer_version: int | None = None
        """The protocol version of the latest intact frame of another version, if one arrived."""
        self._buf = bytearray()
        self._discarding = False
        self._on_error = on_error
        self.frames = 0
        self.errors = 0

    @property
    def max_frame(self) -> int:
        """The largest decoded frame taken; setting it (HELLO's negotiation) sets the buffer's limit too."""
        return self._max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self._max_frame = value
        self._limit = cobs_max(value)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume bytes; return the frames completed by them."""
        out: list[Frame] = []
        *done, rest = bytes(data).split(b"\x00")
        for seg in done:
            self._take(seg)
            raw, discarding = bytes(self._buf), self._discarding
            self._buf.clear()
            self._discarding = False
            if discarding:
                self._error(raw[:64], f"run of more than {self._limit} bytes without a delimiter")
            elif raw:
                self._decode(raw, out)
        self._take(rest)
        return out

    def _take(self, seg: bytes) -> None:
        """Append a segment unless it would exceed the limit (then discard until the delimiter)."""
        if self._discarding:
            return
        if len(self._buf) + len(seg) > self._limit:
            self._buf.clear()
            self._discarding = True
            return
        self._buf += seg

    def _decode(self, raw: bytes, out: list[Frame]) -> None:
        try:
            out.append(decode_frame(raw, self.max_frame, self.version))
            self.frames += 1
        except VersionMismatch as exc:
            self.peer_version = exc.version
            self._error(raw, str(exc))
        except FrameError as exc:
            self._error(raw, str(exc))

    def _error(self, raw: bytes, reason: str) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error(raw, reason)


# ---- payloads -------------------------------------------------------------------------------

_ACK = struct.Struct("<H")
_NAK = struct.Struct("<HB")
_HELLO_REQ = struct.Struct("<BH")
_HELLO = struct.Struct("<IHI32sB")
_HEARTBEAT = struct.Struct("<II")
_STATUS = struct.Struct("<BHHI")
_SCAN_ID = struct.Struct("<I")
_LINE = struct.Struct("<IIH")
_SCAN_END = struct.Struct("<IIB")
MIN_SESSION_FRAME = OVERHEAD + _ACK.size + _STATUS.size
"""The largest fixed-size frame a session needs (the ACK carrying a STATUS, 21 bytes): a HELLO reply announcing a
smaller max_frame is refused."""


def _unpack(st: struct.Struct, payload: bytes, what: str, exact: bool = True) -> tuple:
    if len(payload) < st.size or (exact and len(payload) != st.size):
        raise PayloadError(f"{what} payload has {len(payload)} bytes, expected {st.size}")
    return st.unpack_from(payload)


def encode_ack(seq: int, body: bytes = b"") -> bytes:
    return _ACK.pack(seq & 0xFFFF) + body


def decode_ack(payload: bytes) -> tuple[int, bytes]:
    """ACK payload -> (acknowledged seq, reply body)."""
    (seq,) = _unpack(_ACK, payload, "ACK", exact=False)
    return seq, payload[_ACK.size :]


def encode_nak(seq: int, reason: int) -> bytes:
    return _NAK.pack(seq & 0xFFFF, reason)


def decode_nak(payload: bytes) -> tuple[int, int]:
    """NAK payload -> (refused seq, reason code)."""
    return _unpack(_NAK, payload, "NAK")


@dataclass(frozen=True)
class HelloRequest:
    """Host -> firmware: protocol version and the host's largest accepted frame."""

    protocol: int = VERSION
    max_frame: int = MAX_FRAME

    def encode(self) -> bytes:
        return _HELLO_REQ.pack(self.protocol, self.max_frame)

    @classmethod
    def decode(cls, payload: bytes) -> HelloRequest:
        return cls(*_unpack(_HELLO_REQ, payload, "HELLO"))


@dataclass(frozen=True)
class HelloInfo:
    """Firmware -> host in the ACK of HELLO: identity and limits of this boot."""

    boot_id: int
    max_frame: int
    capabilities: int
    firmware_hash: bytes
    firmware_version: str

    def encode(self) -> bytes:
        ver = self.firmware_version.encode()[:255]
        return _HELLO.pack(self.boot_id, self.max_frame, self.capabilities, self.firmware_hash, len(ver)) + ver

    @classmethod
    def decode(cls, payload: bytes) -> HelloInfo:
        boot, maxf, caps, fhash, n = _unpack(_HELLO, payload, "HELLO reply", exact=False)
        ver = payload[_HELLO.size :]
        if len(ver) != n:
            raise PayloadError(f"HELLO reply announces a {n}-byte version string but carries {len(ver)}")
        return cls(boot, maxf, caps, fhash, ver.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Heartbeat:
    """Sent both ways every heartbeat interval; `boot_id` changes when the firmware reboots."""

    boot_id: int
    uptime_ms: int

    def encode(self) -> bytes:
        return _HEARTBEAT.pack(self.boot_id & 0xFFFFFFFF, self.uptime_ms & 0xFFFFFFFF)

    @classmethod
    def decode(cls, payload: bytes) -> Heartbeat:
        return cls(*_unpack(_HEARTBEAT, payload, "HEARTBEAT"))


@dataclass(frozen=True)
class Status:
    """Controller state as read back (the body of the ACK of STATUS)."""

    interlocks_closed: bool
    armed: bool
    scanning: bool
    kv: float
    ma: float
    faults: int = 0

    def encode(self) -> bytes:
        flags = self.interlocks_closed | self.armed << 1 | self.scanning << 2
        return _STATUS.pack(flags, round(self.kv * 10), round(self.ma * 100), self.faults)

    @classmethod
    def decode(cls, payload: bytes) -> Status:
        flags, kv, ma, faults = _unpack(_STATUS, payload, "STATUS")
        return cls(bool(flags & 1), bool(flags & 2), bool(flags & 4), kv / 10, ma / 100, faults)


def encode_scan_id(scan_id: int) -> bytes:
    return _SCAN_ID.pack(scan_id & 0xFFFFFFFF)


def decode_scan_id(payload: bytes) -> int:
    return _unpack(_SCAN_ID, payload, "scan id")[0]


@dataclass(frozen=True)
class Line:
    """One detector line: both energies, `width` pixels each."""

    scan_id: int
    index: int
    high: np.ndarray
    low: np.ndarray

    def encode(self) -> bytes:
        w = len(self.high)
        return (
            _LINE.pack(self.scan_id, self.index, w)
            + self.high.astype("<u2", copy=False).tobytes()
            + self.low.astype("<u2", copy=False).tobytes()
        )

    @classmethod
    def decode(cls, payload: bytes) -> Line:
        scan_id, index, w = _unpack(_LINE, payload, "LINE", exact=False)
        if len(payload) != _LINE.size + 4 * w:
            raise PayloadError(f"LINE of width {w} needs {_LINE.size + 4 * w} bytes, got {len(payload)}")
        px = np.frombuffer(payload, dtype="<u2", offset=_LINE.size).astype(np.uint16)
        return cls(scan_id, index, px[:w], px[w:])


def line_frame_size(width: int) -> int:
    """Decoded size of a LINE frame for `width` pixels (header + payload + CRC)."""
    return OVERHEAD + _LINE.size + 4 * width


@dataclass(frozen=True)
class ScanEnd:
    """Firmware -> host after the last line: how many lines it sent and whether all got through."""

    scan_id: int
    line_count: int
    complete: bool

    def encode(self) -> bytes:
        return _SCAN_END.pack(self.scan_id, self.line_count, self.complete)

    @classmethod
    def decode(cls, payload: bytes) -> ScanEnd:
        sid, n, c = _unpack(_SCAN_END, payload, "SCAN_END")
        return cls(sid, n, bool(c))


_UPDATE_BEGIN = struct.Struct("<I32s")
_UPDATE_CHUNK = struct.Struct("<I")


@dataclass(frozen=True)
class UpdateBegin:
    """Host -> firmware: an image of `size` bytes whose SHA-256 is `sha256` follows in chunks."""

    size: int
    sha256: bytes

    def encode(self) -> bytes:
        return _UPDATE_BEGIN.pack(self.size, self.sha256)

    @classmethod
    def decode(cls, payload: bytes) -> UpdateBegin:
        return cls(*_unpack(_UPDATE_BEGIN, payload, "UPDATE_BEGIN"))


def encode_update_chunk(offset: int, data: bytes) -> bytes:
    return _UPDATE_CHUNK.pack(offset) + data


def decode_update_chunk(payload: bytes) -> tuple[int, bytes]:
    """UPDATE_CHUNK payload -> (offset, data)."""
    (offset,) = _unpack(_UPDATE_CHUNK, payload, "UPDATE_CHUNK", exact=False)
    return offset, payload[_UPDATE_CHUNK.size :]
