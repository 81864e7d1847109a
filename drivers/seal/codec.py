"""E-seal serial line protocol, version 1 ("ES1"): pure bytes <-> seal reports.

A fixed e-seal reader at the lane sends one line per seal in range, repeated while it stays in
range (9600 8N1, ASCII), like an NMEA sentence:

    $ES,<version>,<seal id>,<state>,<battery %>,<flags>,<event time>,<event count>*<CRC>\r\n

    $ES,1,HKEL0001234,I,87,00,1764763200,12*0DF4\r\n

    version      1 (a reader of version 1 rejects any other: the fields may mean something else)
    seal id      4-18 capital letters and digits, as printed on the seal
    state        I intact, O opened, T tampered
    battery %    0-100
    flags        2 hex digits; bit 0: the seal reports its battery low; other bits reserved (0)
    event time   UTC seconds since 1970 of the seal's last event (0: none yet)
    event count  0-65535, +1 at every event the seal records (a jump means an event was missed)
    CRC          CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the bytes between `$` and `*`,
                 4 upper-case hex digits

The decoder is incremental (any chunking), resynchronises on the next `$`, never raises, and
counts what it rejects by reason: `checksum`, `version`, `bad_field` (wrong number of fields or a
field out of its range), `too_long` (no line end within MAX_LINE bytes), `unframed` (a line that
does not start with `$ES,`).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

from drivers.seal.errors import SealFormatError
from drivers.seal.state import SEAL_ID, SealReport, SealState, event_time

VERSION = 1
START, TALKER = b"$", b"ES"
MAX_LINE = 96
STATE_LETTERS: dict[str, SealState] = {"I": "intact", "O": "opened", "T": "tampered"}
LETTER_OF = {v: k for k, v in STATE_LETTERS.items()}
FLAG_BATTERY_LOW = 0x01


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (binascii's crc_hqx started at 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_line(report: SealReport, version: int = VERSION) -> bytes:
    """The line a version-1 reader sends for this report."""
    when = int(report.last_event_at.timestamp()) if report.last_event_at else 0
    flags = FLAG_BATTERY_LOW if report.battery_low else 0
    body = (f"ES,{version},{report.seal_id},{LETTER_OF[report.state]},{report.battery_pct},{flags:02X},{when},"
            f"{report.events}").encode()
    return START + body + f"*{crc16(body):04X}\r\n".encode()


def parse_line(line: bytes) -> SealReport:
    """One line without its end (from `$`); SealFormatError with a one-sentence reason."""
    body, star, crc_text = line[1:].partition(b"*")
    if not line.startswith(START + TALKER + b",") or not star:
        raise SealFormatError(f"line {line[:40]!r} is not an ES sentence ($ES,...*CRC)", reason="unframed")
    if crc_text.upper() != f"{crc16(body):04X}".encode():
        raise SealFormatError(f"line {line[:40]!r} has CRC {crc_text[:8]!r}, computed {crc16(body):04X}",
                              reason="checksum")
    fields = body.decode("ascii", "replace").split(",")
    if len(fields) < 2 or fields[1] != str(VERSION):
        raise SealFormatError(f"line {line[:40]!r} is version {fields[1] if len(fields) > 1 else '?'}, this reader "
                              f"speaks version {VERSION}", reason="version")
    return _report(fields, line)


def _report(fields: list[str], line: bytes) -> SealReport:
    """The fields of a version-1 sentence as a report, each checked against its range."""
    try:
        _, _, seal_id, letter, battery, flags, when, count = fields
        state, pct, bits, seconds, events = STATE_LETTERS[letter], int(battery), int(flags, 16), int(when), int(count)
    except (ValueError, KeyError) as exc:
        raise SealFormatError(f"line {line[:60]!r} does not have the 8 fields of version {VERSION} in their "
                              f"formats: {exc}", reason="bad_field") from exc
    if not SEAL_ID.fullmatch(seal_id) or not 0 <= pct <= 100 or bits & ~FLAG_BATTERY_LOW or not 0 <= seconds < 2**32 \
            or not 0 <= events <= 0xFFFF or len(flags) != 2:
        raise SealFormatError(f"line {line[:60]!r} has a field out of its range (seal id {seal_id!r}, battery {pct}, "
                              f"flags {flags!r}, event time {seconds}, count {events})", reason="bad_field")
    return SealReport(seal_id, state, pct, bool(bits & FLAG_BATTERY_LOW), event_time(seconds), events)


@dataclass
class SealLineDecoder:
    """Incremental decoder: feed() any chunk, get the reports of the lines it completed."""

    rejects: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    lines: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _skipping: bool = False
    """After a line too long: its rest up to the line end is part of the same reject."""

    def feed(self, data: bytes) -> list[SealReport]:
        """Consume bytes; returns the reports of complete, valid lines."""
        out: list[SealReport] = []
        for b in data:
            report = self._byte(b)
            if report is not None:
                out.append(report)
        return out

    def _byte(self, b: int) -> SealReport | None:
        if b == START[0]:
            self._skipping = False
            if self._buf:
                self._reject("unframed" if not self._buf.startswith(START) else "too_long",
                             f"line {bytes(self._buf[:40])!r} ended without CR LF before the next $")
            self._buf = bytearray(START)
            return None
        if b in b"\r\n":
            line, self._buf, self._skipping = bytes(self._buf), bytearray(), False
            return self._line(line) if line else None
        if self._skipping:
            return None
        self._buf.append(b)
        if len(self._buf) > MAX_LINE:
            self._reject("too_long", f"line {bytes(self._buf[:40])!r} is longer than {MAX_LINE} bytes")
            self._skipping = True
        return None

    def _line(self, line: bytes) -> SealReport | None:
        try:
            report = parse_line(line)
        except SealFormatError as exc:
            self._count(exc.reason, str(exc))
            return None
        self.lines += 1
        return report

    def _reject(self, reason: str, why: str) -> None:
        self._buf = bytearray()
        self._count(reason, why)

    def _count(self, reason: str, why: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1
        self.last_error = why
