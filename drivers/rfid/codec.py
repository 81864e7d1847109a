"""EM4100 (125 kHz) ASCII serial frames, pure bytes <-> values.

Wire layout (9600 8N1), 14 or 16 bytes:

    0x02 | 10 ASCII hex: version byte + 4 id bytes | 2 ASCII hex: XOR of the 5 bytes | [CR LF] | 0x03

The decoder is incremental (any chunking), resynchronises on the next STX after garbage, never
raises on input, and counts what it rejected by reason:

    checksum     a well-formed frame whose XOR does not match (line noise, or a phantom)
    bad_body     STX..ETX around something other than 12 hex digits (another reader format)
    too_long     STX without ETX within the longest frame
    interrupted  STX inside a frame (a frame cut short)
    unframed     a text line (ended by CR or LF) outside STX..ETX, e.g. a decimal or Wiegand ASCII reader
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

STX, ETX = 0x02, 0x03
BODY_LEN = 12  # 10 hex data + 2 hex checksum
MAX_FRAME = 1 + BODY_LEN + 2 + 1
HEX = frozenset(string.hexdigits.encode())
LINE_END = frozenset(b"\r\n")
MAX_UNFRAMED = 64
"""A longer run of bytes outside any frame without a line end is counted as one unframed reject."""


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
    rejects: dict[str, int] = field(default_factory=dict)
    """Rejected frames and lines by reason (see the module docstring)."""


@dataclass
class Em4100Decoder:
    """Incremental decoder: feed() any chunk, get the tags of the frames it completed."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _buf: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    _outside: bytearray = field(default_factory=bytearray)
    last_error: str = ""
    last_reject: tuple[str, bytes] | None = None
    """The latest reject's reason and up to the first 16 bytes of what was rejected."""

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
            self._outside.clear()
            if self._in_frame:
                self._reject("interrupted", "STX inside a frame")
            self._in_frame, self._buf = True, bytearray()
            return None
        if not self._in_frame:
            self._unframed(b)
            return None
        if b == ETX:
            self._in_frame = False
            return self._finish(bytes(self._buf))
        self._buf.append(b)
        if len(self._buf) > MAX_FRAME - 2:
            self._in_frame = False
            self._reject("too_long", f"frame longer than {MAX_FRAME} bytes")
        return None

    def _unframed(self, b: int) -> None:
        """A byte outside any frame: discarded; a text line of them counts as one reject."""
        self.stats.bytes_discarded += 1
        if b == ETX:
            self._outside.clear()
        elif b in LINE_END or len(self._outside) >= MAX_UNFRAMED:
            if self._outside:
                self._count("unframed", bytes(self._outside), f"text outside STX/ETX framing {bytes(self._outside)!r}")
            self._outside.clear()
        else:
            self._outside.append(b)

    def _finish(self, body: bytes) -> Em4100Tag | None:
        if body.endswith(b"\r\n"):
            body = body[:-2]
        if len(body) != BODY_LEN or not all(c in HEX for c in body):
            self._reject("bad_body", f"bad frame body {body!r}")
            return None
        data = bytes.fromhex(body.decode())
        raw, chk = data[:5], data[5]
        if checksum(raw) != chk:
            self._reject("checksum", f"checksum {chk:02X} does not match {checksum(raw):02X} for {raw.hex().upper()}")
            return None
        self.stats.frames += 1
        return Em4100Tag(raw)

    def _reject(self, reason: str, why: str) -> None:
        if reason == "checksum":
            self.stats.checksum_errors += 1
        else:
            self.stats.framing_errors += 1
            self.stats.bytes_discarded += len(self._buf)
        self._count(reason, bytes(self._buf), why)
        self._buf = bytearray()

    def _count(self, reason: str, sample: bytes, why: str) -> None:
        self.stats.rejects[reason] = self.stats.rejects.get(reason, 0) + 1
        self.last_error = why
        self.last_reject = (reason, sample[:16])
