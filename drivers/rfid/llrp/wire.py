"""LLRP 1.0.1 binary framing: message headers, TLV and TV parameter headers, and the frame splitter.

Message header (10 bytes, big endian):

    bits 15-13 reserved (0) | bits 12-10 version (1) | bits 9-0 message type   (2 bytes)
    message length, header included                                            (4 bytes)
    message id                                                                 (4 bytes)

TLV parameter: `6 bits reserved | 10 bits type` (2 bytes), length including this 4-byte header
(2 bytes), then the fields and sub-parameters. TV parameter (types 1-127): one byte `1 | 7 bits
type` and a value whose size is fixed by the type (table `TV_SIZES`); a TV parameter whose type we
do not know cannot be skipped, so it is an error, while an unknown TLV parameter is skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from drivers.rfid.llrp.errors import FramingError, LlrpError

VERSION = 1
HEADER = struct.Struct(">HII")
HEADER_LEN = HEADER.size
MAX_MESSAGE = 1 << 20
"""Largest message accepted (1 MiB): a report of thousands of tags fits; a corrupt length does not hang us."""
TLV_HEADER = struct.Struct(">HH")

TV_SIZES = {1: 2, 2: 8, 3: 8, 4: 8, 5: 8, 6: 1, 7: 2, 8: 2, 9: 4, 10: 2, 11: 2, 12: 2, 13: 12,
            14: 2, 15: 2, 16: 4, 17: 2, 18: 4}
"""Value size in bytes of each TV parameter type (LLRP 1.0.1 section 16.2.7 and 16.2.3)."""


@dataclass(frozen=True)
class Frame:
    """One whole LLRP message: its type, id and the bytes after the header."""

    type: int
    msg_id: int
    body: bytes


def encode_frame(msg_type: int, msg_id: int, body: bytes) -> bytes:
    """Header plus body."""
    return HEADER.pack((VERSION << 10) | msg_type, HEADER_LEN + len(body), msg_id) + body


def check_header(data: bytes) -> tuple[int, int, int]:
    """(type, length, id) of the header at the start of `data`, or FramingError naming the bad field."""
    first, length, msg_id = HEADER.unpack_from(data)
    version, msg_type = (first >> 10) & 0x7, first & 0x3FF
    if version != VERSION:
        raise FramingError(f"LLRP message header has version {version} (type {msg_type}, id {msg_id}), "
                           f"expected {VERSION}", reason="bad_version")
    if length < HEADER_LEN:
        raise FramingError(f"LLRP message type {msg_type} id {msg_id} has length {length}, "
                           f"smaller than the {HEADER_LEN}-byte header", reason="bad_length")
    if length > MAX_MESSAGE:
        raise FramingError(f"LLRP message type {msg_type} id {msg_id} has length {length}, "
                           f"over the {MAX_MESSAGE}-byte limit", reason="bad_length")
    return msg_type, length, msg_id


@dataclass
class Framer:
    """Splits a TCP byte stream into frames: feed() any chunk, then take next_frame() until None.

    After a FramingError the framer stays broken (it raises the same error again): the stream has
    no resynchronisation marker, so the connection has to be dropped and opened again.
    """

    _buf: bytearray = field(default_factory=bytearray)
    broken: FramingError | None = None

    def feed(self, data: bytes) -> None:
        """Buffer bytes from the stream."""
        self._buf += data

    def next_frame(self) -> Frame | None:
        """The next whole frame, None if it has not all arrived, or FramingError for a broken header."""
        if self.broken is not None:
            raise self.broken
        if len(self._buf) < HEADER_LEN:
            return None
        try:
            msg_type, length, msg_id = check_header(bytes(self._buf[:HEADER_LEN]))
        except FramingError as exc:
            self.broken = exc
            raise
        if len(self._buf) < length:
            return None
        body = bytes(self._buf[HEADER_LEN:length])
        del self._buf[:length]
        return Frame(msg_type, msg_id, body)


@dataclass(frozen=True)
class RawParam:
    """A parameter as found: type, TV or TLV, and the bytes of its value (fields and sub-parameters)."""

    type: int
    value: bytes
    tv: bool = False


def tlv(param_type: int, value: bytes) -> bytes:
    """A TLV parameter around already encoded fields and sub-parameters."""
    return TLV_HEADER.pack(param_type & 0x3FF, 4 + len(value)) + value


def tv(param_type: int, value: bytes) -> bytes:
    """A TV parameter; the value must have the type's fixed size."""
    assert len(value) == TV_SIZES[param_type], (param_type, len(value))
    return bytes([0x80 | param_type]) + value


def split_params(data: bytes, where: str) -> list[RawParam]:
    """The parameters that fill `data` (the rest of a message or parameter after its fields)."""
    out: list[RawParam] = []
    pos = 0
    while pos < len(data):
        if data[pos] & 0x80:
            out.append(_tv_at(data, pos, where))
            pos += 1 + len(out[-1].value)
            continue
        if len(data) - pos < 4:
            raise LlrpError(f"{where} ends with {len(data) - pos} bytes at offset {pos}, "
                            "too few for a parameter header", reason="truncated")
        param_type, length = TLV_HEADER.unpack_from(data, pos)
        param_type &= 0x3FF
        if length < 4 or pos + length > len(data):
            raise LlrpError(f"{where}: parameter type {param_type} at offset {pos} has length {length} "
                            f"with {len(data) - pos} bytes left", reason="truncated")
        out.append(RawParam(param_type, data[pos + 4:pos + length]))
        pos += length
    return out


def _tv_at(data: bytes, pos: int, where: str) -> RawParam:
    param_type = data[pos] & 0x7F
    size = TV_SIZES.get(param_type)
    if size is None:
        raise LlrpError(f"{where}: unknown TV parameter type {param_type} at offset {pos}, whose length "
                        "cannot be known", reason="unknown_parameter")
    if pos + 1 + size > len(data):
        raise LlrpError(f"{where}: TV parameter type {param_type} at offset {pos} needs {size} bytes "
                        f"and {len(data) - pos - 1} are left", reason="truncated")
    return RawParam(param_type, data[pos + 1:pos + 1 + size], tv=True)


@dataclass
class Fields:
    """Reads fixed fields from the start of a value; a value too short raises naming the field."""

    data: bytes
    where: str
    pos: int = 0

    def take(self, fmt: str, name: str) -> tuple[int, ...]:
        """Unpack `fmt` (struct, big endian) as field `name`."""
        size = struct.calcsize(">" + fmt)
        if self.pos + size > len(self.data):
            raise LlrpError(f"{self.where} is truncated at field {name}: it needs {size} bytes at offset "
                            f"{self.pos} and has {len(self.data) - self.pos}", reason="truncated")
        values = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def one(self, fmt: str, name: str) -> int:
        """One integer field."""
        return self.take(fmt, name)[0]

    def raw(self, size: int, name: str) -> bytes:
        """`size` bytes as field `name`."""
        if self.pos + size > len(self.data):
            raise LlrpError(f"{self.where} is truncated at field {name}: it needs {size} bytes at offset "
                            f"{self.pos} and has {len(self.data) - self.pos}", reason="truncated")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def utf8(self, name: str) -> str:
        """A UTF-8 string field: u16 byte count then the bytes."""
        raw = self.raw(self.one("H", f"{name} length"), name)
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise LlrpError(f"{self.where} field {name} is not UTF-8: {raw[:16]!r}", reason="bad_field") from exc

    def params(self) -> list[RawParam]:
        """The sub-parameters after the fields."""
        return split_params(self.data[self.pos:], self.where)


def utf8(text: str) -> bytes:
    """A UTF-8 string field."""
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw
