"""Plate format rules per jurisdiction at the Hong Kong–Guangdong boundary.

Values are kept without separators (spaces, the middle dot), so that search by prefix works:
`AB1234` for the Hong Kong plate AB 1234, `粤ZA123港` for the cross-boundary plate 粤Z·A123港,
`粤B12345` for the blue mainland plate 粤B·12345, `粤BD12345` for the green new-energy plate 粤B D12345.
Mainland plates (GA 36-2018): a province character, the issuing office's letter, then five letters or
digits (blue, ordinary) or six on a new-energy plate: D (electric) or F (hybrid) first and four digits
last on a small vehicle's, five digits then D or F on a large one's.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SEPARATORS = re.compile(r"[\s·.•\-_:'\"]")


@dataclass(frozen=True)
class PlateRule:
    """One jurisdiction's plate format."""

    jurisdiction: str
    pattern: re.Pattern[str]


PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
"""The one-character abbreviations of the mainland's provinces, regions and municipalities, as on plates."""
_OTHER_PROVINCES = PROVINCES.replace("粤", "")
_ORDINARY = r"[A-HJ-NP-Z0-9]{5}"  # blue plate: five letters (no I, O) or digits
_NEW_ENERGY = r"(?:[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF])"  # green plate: a small vehicle's | a large vehicle's

RULES: tuple[PlateRule, ...] = (
    # Hong Kong: 1-2 letters (no I, O, Q) and 1-4 digits without a leading zero
    PlateRule("hk", re.compile(r"^[A-HJ-NPR-Z]{1,2}[1-9]\d{0,3}$")),
    # Guangdong cross-boundary series for Hong Kong and Macao vehicles: 粤Z + 4 letters/digits + 港 or 澳
    PlateRule("gd_cross", re.compile(r"^粤Z[A-HJ-NP-Z0-9]{4}[港澳]$")),
    # ordinary Guangdong plate, blue or new-energy green: 粤 + issuing-office letter (Z is the series above)
    PlateRule("gd", re.compile(rf"^粤[A-HJ-NP-Y](?:{_ORDINARY}|{_NEW_ENERGY})$")),
    # another province's plate, blue or new-energy green
    PlateRule("cn", re.compile(rf"^[{_OTHER_PROVINCES}][A-HJ-NP-Z](?:{_ORDINARY}|{_NEW_ENERGY})$")),
)


def normalise(text: str) -> str:
    """Upper case, compatibility forms folded (④ → 4, Ａ → A), separators removed (OCR reads the
    middle dot of 粤Z·A123港 in several ways)."""
    return SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()


def jurisdiction(value: str) -> str | None:
    """The jurisdiction whose format the normalised value matches, or None."""
    for rule in RULES:
        if rule.pattern.match(value):
            return rule.jurisdiction
    return None


def display(value: str, where: str) -> str:
    """A plate as issued: `AB 1234`, `粤Z·A123港`."""
    if where == "hk":
        split = len(value) - len(value.lstrip("ABCDEFGHJKLMNPRSTUVWXYZ"))
        return f"{value[:split]} {value[split:]}"
    return f"{value[:2]}·{value[2:]}"
