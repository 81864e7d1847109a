"""One frame's lines of text → typed reads: container codes (ISO 6346) and plates (format per jurisdiction).

A line that matches no format is ignored (it is a brand name, a company name, a warning sign). A
read below its confidence threshold is `low_confidence`; a container code whose check digit fails
is `check_failed`, with an empty value and what was read in `raw`: nothing is guessed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from models.ocr import iso6346, plates
from models.ocr.reader import TextLine

CONTAINER, PLATE = "container", "plate"
HK = "hk"
SIZE_TYPE = "size_type"
"""The slot of a container's ISO 6346 size/type code (45G1), painted under its number: a fact about the container
(edge/history.py: references of the same type), not an identity."""


@dataclass(frozen=True)
class Read:
    """A typed read of one frame: `slot` separates what one vehicle carries (hk plate, gd plate, container)."""

    kind: str  # "plate" or "container"
    slot: str  # the plate's jurisdiction ("hk", "gd_cross", "gd", "cn") or "container"
    value: str  # valid value, or "" when the read failed its check
    raw: str
    confidence: float
    status: str  # read, corrected, check_failed (a container code), low_confidence (a plate without its letters)
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


def container_reads(lines: list[TextLine]) -> list[Read]:
    """Container codes on the lines: any 11 consecutive characters with a code's shape."""
    found = []
    for line in lines:
        text = plates.normalise(line.text)
        best = _best_code(text)
        if best is not None:
            found.append(Read(CONTAINER, CONTAINER, best.value, best.raw, line.confidence, best.status, line.box))
    return found


def _best_code(text: str) -> iso6346.CodeRead | None:
    """The code's own 11-character window of the line: of those with a code's shape, the one that needs the fewest
    letters or digits forced by position (the first of equals). Its check decides; a window shifted onto a
    neighbouring mark (45G1, a digit) is never tried instead of it, as forcing it would make up a code."""
    reads = [r for i in range(max(0, len(text) - 10)) if (r := iso6346.read_code(text[i:i + 11])) is not None]
    return min(reads, key=lambda r: len(r.corrected)) if reads else None


def plate_reads(lines: list[TextLine]) -> list[Read]:
    """Plates on the lines, by jurisdiction (a cross-boundary vehicle shows two). A Hong Kong plate read without
    its letters (8123: mud over the B of B 8123) is `low_confidence` with its text in `raw`, unless the frame
    also gave a Hong Kong plate (then it is another number on the vehicle)."""
    found, partial = [], []
    for line in lines:
        text = plates.normalise(line.text)
        value, status = _plate_value(text)
        where = plates.jurisdiction(value) if value else None
        if where is not None:
            found.append(Read(PLATE, where, value, line.text, line.confidence, status, line.box))
        elif status == "low_confidence":
            partial.append(Read(PLATE, HK, "", line.text, line.confidence, status, line.box))
    return found + ([] if any(r.slot == HK for r in found) else partial)


def _plate_value(text: str) -> tuple[str, str]:
    """The plate as read, or forced by position (letters first, digits after) when exactly one split fits, the read
    has its letter group (a letter where the letters stand) and its digit group is mostly digits as read: digits
    alone (8123) are never made into a plate (B123), as the letter may be hidden (`low_confidence`), and a word
    (BUS, EXIT, EX1T) is no plate (BU5, EX17)."""
    if plates.jurisdiction(text) is not None:
        return text, "read"
    if not text.isascii():
        return "", "unread"
    fits = {_hk_split(text, k) for k in (1, 2)} - {""}
    if len(fits) != 1:
        return "", "unread"
    value = fits.pop()
    letters = len(value) - len(value.lstrip(string.ascii_uppercase))
    digits = text[letters:]
    if 2 * sum(c.isdigit() for c in digits) <= len(digits):
        return "", "unread"
    return (value, "corrected") if any(c.isalpha() for c in text[:letters]) else ("", "low_confidence")


def _hk_split(text: str, letters: int) -> str:
    """`text` with its first `letters` characters forced to letters and the rest to digits, if that is a HK plate."""
    head = "".join(iso6346.TO_LETTER.get(c, c) for c in text[:letters])
    tail = "".join(iso6346.TO_DIGIT.get(c, c) for c in text[letters:])
    value = head + tail
    return value if plates.jurisdiction(value) == "hk" else ""


def size_type_reads(lines: list[TextLine]) -> list[Read]:
    """ISO 6346 size/type codes on the lines: a line of exactly four characters that is one (`read`), or becomes
    one by a single confusable substitution where a digit or a letter must stand (`corrected`: 4561 -> 45G1)."""
    found = []
    for line in lines:
        text = plates.normalise(line.text)
        if len(text) != 4:
            continue
        if iso6346.SIZE_TYPE.match(text):
            found.append(Read(CONTAINER, SIZE_TYPE, text, line.text, line.confidence, "read", line.box))
            continue
        fixed = text[0] + iso6346.TO_DIGIT.get(text[1], text[1]) + iso6346.TO_LETTER.get(text[2], text[2]) + text[3]
        if iso6346.SIZE_TYPE.match(fixed) and sum(a != b for a, b in zip(text, fixed)) == 1:
            found.append(Read(CONTAINER, SIZE_TYPE, fixed, line.text, line.confidence, "corrected", line.box))
    return found


def reads_for(kind: str, lines: list[TextLine]) -> list[Read]:
    """The reads a camera of `kind` ("plate" or "container") looks for: a container camera also reads the size/type
    code (slot SIZE_TYPE)."""
    return plate_reads(lines) if kind == PLATE else container_reads(lines) + size_type_reads(lines)
