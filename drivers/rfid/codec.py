"""EM4100 (125 kHz) ASCII serial frames, pure bytes <-> values.

Wire layout (9600 8N1), 14 or 16 bytes:

    0x02 | 10 ASCII hex: version byte + 4 id bytes | 2 ASCII hex: XOR of the 5 bytes | [CR LF] | 0x03

The decoder is incremental (any chunking), resynchronises on the next STX after garbage, never
raises on input, and counts what it rejected.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

STX, ETX = 0x02, 0x03
BODY_LEN = 12  # 10 hex data + 2 hex checksum
MAX_FRAME = 1 + BODY_LEN + 2 + 1
HEX = frozenset(string.hexdigits.encode())


def checksum(raw: bytes) -> int:
    """XOR of the bytes."""
    x = 0
    for b in raw:
        x ^= b
    return x


@dataclass(frozen=True)
class Em4100Tag:
    """One tag read: the raw 5 bytes (version + 4 id bytes) and the usual display numbers."""

    raw: bytes

    @property
    def hex(self) -> str:
        return self.raw.hex().upper()

    @property
    def version(self) -> int:
        return self.raw[0]

    @property
    def decimal10(self) -> str:
        """The 4 id bytes as a 10-digit decimal (the number printed on most cards)."""
        return f"{int.from_bytes(self.raw[1:5], 'big'):010d}"

    @property
    def facility_card(self) -> str:
        """Wiegand-26 style 'fff,ccccc': byte 2 as facility, bytes 3-4 as card number."""
        return f"{self.raw[2]:03d},{int.from_bytes(self.raw[3:5], 'big'):05d}"


def encode_frame(raw: bytes, *, crlf: bool = False) -> bytes:
    """The frame a reader sends for these 5 bytes."""
    if len(raw) != 5:
        raise ValueError(f"EM4100 tag has 5 bytes, got {len(raw)}")
    body = raw.hex().upper() + f"{checksum(raw):02X}"
    return bytes([STX]) + body.encode() + (b"\r\n" if crlf else b"") + bytes([ETX])


@dataclass
class DecoderStats:
    """What the decoder accepted and rejected."""

    frames: int = 0
    checksum_errors: int = 0
    framing_errors: int = 0
    bytes_discarded: int = 0


@dataclass
class Em4100Decoder:
    """Incremental decoder: feed() any chunk, get the tags of the frames it completed."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _buf: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    last_error: str = ""

    def feed(self, data: bytes) -> list[Em4100Tag]:
        """Consume bytes; returns tags from complete, valid frames."""
        out: list[Em4100Tag] = []
        for b in data:
            tag = self._byte(b)
            if tag is not None:
                out.append(tag)
        return out

    def _byte(self, b: int) -> Em4100Tag | None:
        if b == STX:
            if self._in_frame:
                self._reject("STX inside a frame", framing=True)
            self._in_frame, self._buf = True, bytearray()
            return None
        if not self._in_frame:
            self.stats.bytes_discarded += 1
            return None
        if b == ETX:
            self._in_frame = False
            return self._finish(bytes(self._buf))
        self._buf.append(b)
        if len(self._buf) > MAX_FRAME - 2:
            self._in_frame = False
            self._reject(f"frame longer than {MAX_FRAME} bytes", framing=True)
        return None

    def _finish(self, body: bytes) -> Em4100Tag | None:
        if body.endswith(b"\r\n"):
            body = body[:-2]
        if len(body) != BODY_LEN or not all(c in HEX for c in body):
            self._reject(f"bad frame body {body!r}", framing=True)
            return None
        data = bytes.fromhex(body.decode())
        raw, chk = data[:5], data[5]
        if checksum(raw) != chk:
            self._reject(f"checksum {chk:02X} does not match {checksum(raw):02X} for {raw.hex().upper()}",
                         framing=False)
            return None
        self.stats.frames += 1
        return Em4100Tag(raw)

    def _reject(self, why: str, *, framing: bool) -> None:
        self.last_error = why
        if framing:
            self.stats.framing_errors += 1
            self.stats.bytes_discarded += len(self._buf)
        else:
            self.stats.checksum_errors += 1
        self._buf = bytearray()
