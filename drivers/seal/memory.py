"""E-seal state in a UHF tag's user memory (LLRP family), layout version 1: pure words <-> seal reports.

The seal is an EPC Gen2 tag; its controller writes its state into user memory (bank 3), which the
station's UHF reader reads with an LLRP AccessSpec (drivers.rfid.llrp, `read_user_words = 16`).
16 words, big-endian:

    word 0      0x5345 ("SE"): this tag is a seal using this layout
    word 1      layout version (high byte, 1) | state (low byte: 0 intact, 1 opened, 2 tampered)
    word 2      battery % (high byte, 0-100) | flags (low byte; bit 0: battery low, others 0)
    words 3-4   UTC seconds since 1970 of the last event (0: none yet)
    word 5      event counter, +1 at every event
    words 6-14  seal number, ASCII, NUL-padded (4-18 capital letters and digits)
    word 15     CRC-16/CCITT-FALSE of words 0-14

A tag whose memory does not start with the magic word is not a seal (None); a seal's memory that
breaks the layout raises SealFormatError (reasons `checksum`, `version`, `bad_field`, `truncated`).
"""

from __future__ import annotations

import struct

from drivers.seal.codec import FLAG_BATTERY_LOW, crc16
from drivers.seal.errors import SealFormatError
from drivers.seal.state import SEAL_ID, STATES, SealReport, event_time

MAGIC, LAYOUT = 0x5345, 1
WORDS = 16
ID_BYTES = 18
_LAYOUT = struct.Struct(">HBBBBIH18s")


def encode_memory(report: SealReport, layout: int = LAYOUT) -> bytes:
    """The 16 words of user memory a seal in this state holds."""
    when = int(report.last_event_at.timestamp()) if report.last_event_at else 0
    body = _LAYOUT.pack(MAGIC, layout, STATES.index(report.state), report.battery_pct,
                        FLAG_BATTERY_LOW if report.battery_low else 0, when, report.events,
                        report.seal_id.encode().ljust(ID_BYTES, b"\0"))
    return body + struct.pack(">H", crc16(body))


def is_seal_memory(user_hex: str | None) -> bool:
    """Whether a tag's user memory (hex, as read) says it is a seal, well formed or not (its magic word)."""
    if not user_hex or len(user_hex) < 4:
        return False
    try:
        return int(user_hex[:4], 16) == MAGIC
    except ValueError:
        return False


def decode_memory(data: bytes) -> SealReport | None:
    """The seal report in these user-memory words; None for a tag that is not a seal."""
    if len(data) < 2 or struct.unpack_from(">H", data)[0] != MAGIC:
        return None
    if len(data) < 2 * WORDS:
        raise SealFormatError(f"seal memory has {len(data) // 2} words, layout {LAYOUT} needs {WORDS}",
                              reason="truncated")
    body, (crc,) = data[:_LAYOUT.size], struct.unpack_from(">H", data, _LAYOUT.size)
    if crc != crc16(body):
        raise SealFormatError(f"seal memory {data[12:30]!r} has CRC {crc:04X}, computed {crc16(body):04X}",
                              reason="checksum")
    _, layout, state, pct, flags, when, events, raw_id = _LAYOUT.unpack(body)
    if layout != LAYOUT:
        raise SealFormatError(f"seal memory is layout version {layout}, this reader knows {LAYOUT}", reason="version")
    seal_id = raw_id.rstrip(b"\0").decode("ascii", "replace")
    if state >= len(STATES) or pct > 100 or flags & ~FLAG_BATTERY_LOW or not SEAL_ID.fullmatch(seal_id):
        raise SealFormatError(f"seal memory has a field out of its range (state {state}, battery {pct}, flags "
                              f"{flags:#04x}, seal number {seal_id!r})", reason="bad_field")
    return SealReport(seal_id, STATES[state], pct, bool(flags & FLAG_BATTERY_LOW), event_time(when), events)
