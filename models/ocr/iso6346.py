"""ISO 6346 container codes: the check digit, and letters and digits forced by position.

A code is an owner code (3 letters), a category (U, J or Z), a 6-digit serial and a check digit.
Letters count 10..38 skipping multiples of 11; each of the first 10 characters is weighted by
2**position; the check digit is the sum mod 11, then mod 10. CSQU3054383 is valid.

A code whose check digit fails is never corrected: which character is wrong is unknown, and one
confusable substitution tried at every position made misread codes into other valid ones (KEMU0181590
read KEMU6781590 was recorded KEMU6787590).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

CODE = re.compile(r"^[A-Z]{3}[UJZ]\d{7}$")
SHAPE = re.compile(r"^[A-Z]{4}\d{7}$")
"""What a container code looks like before its category letter is checked (a misread U is still a code)."""
SIZE_TYPE = re.compile(r"^[0-9LM][0-9][A-Z][0-9A-Z]$")
"""ISO 6346 size/type code such as 45G1 or 22G1 (length, height/width, type group, detail)."""

LETTER_VALUES: dict[str, int] = {}
_value = 10
for _letter in string.ascii_uppercase:
    if _value % 11 == 0:
        _value += 1
    LETTER_VALUES[_letter] = _value
    _value += 1

TO_LETTER = {"0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "8": "B"}
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "A": "4", "S": "5", "G": "6", "B": "8",
            "T": "7"}


@dataclass(frozen=True)
class CodeRead:
    """A container code read: `value` is valid or empty; `corrected` names the characters forced by position."""

    value: str
    raw: str
    status: str  # "read", "corrected" or "check_failed"
    corrected: tuple[str, ...] = ()


def check_digit(first10: str) -> int:
    """The check digit of an owner code + category + serial (10 characters)."""
    total = sum((LETTER_VALUES[c] if c.isalpha() else int(c)) << i for i, c in enumerate(first10))
    return total % 11 % 10


def is_valid(code: str) -> bool:
    """True for a well-formed code whose check digit matches."""
    return bool(CODE.match(code)) and check_digit(code[:10]) == int(code[10])


def coerce(text: str) -> tuple[str, tuple[str, ...]]:
    """Force each position to its class (letters in the first 4, digits after) using confusable pairs."""
    out, changes = [], []
    for i, c in enumerate(text):
        table = TO_LETTER if i < 4 else TO_DIGIT
        fixed = table.get(c, c)
        if fixed != c:
            changes.append(f"{i}:{c}>{fixed}")
        out.append(fixed)
    return "".join(out), tuple(changes)


def read_code(text: str) -> CodeRead | None:
    """Validate an 11-character candidate after forcing letters and digits by position; a check digit that fails
    is `check_failed` (what was read stays in `raw`, the value empty).

    None when the text does not have a container code's shape at all (not a container code)."""
    raw = text
    if len(text) != 11:
        return None
    text, changes = coerce(text)
    if not SHAPE.match(text):
        return None
    if is_valid(text):
        return CodeRead(text, raw, "corrected" if changes else "read", changes)
    return CodeRead("", raw, "check_failed", changes)
