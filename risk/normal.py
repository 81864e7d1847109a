"""The one form in which watchlist values, identities and rule values are compared."""

from __future__ import annotations

import re
import unicodedata

PLAIN = re.compile(r"[A-Z0-9]+")
"""A value already in normal form (upper-case ASCII letters and digits): returned as it is, quickly (the hub
reads a million of them when it publishes)."""
_DROPPED = re.compile(r"[\s.·・/_\u2212\x00]")
"""Separators plates and codes are written or pasted with (white space, dots, middle dots, slash, underscore,
the minus sign U+2212) and NUL (rules.SEP relies on it); dashes and invisible format characters go by category."""
_DROPPED_CATEGORIES = ("Pd", "Cf")  # every dash (hyphen-minus, en dash, U+2011...), zero-width and bidi marks
_LOOK_ALIKES = str.maketrans("АВЕЅІЈКМНОРСТУХԚԜΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABESIJKMHOPCTYXQWABEZHIKMNOPTYX")
"""Upper-case Cyrillic and Greek letters drawn like Latin ones, as plate readers and keyboards mix them."""
FOLDED_KINDS = ("plate", "container")
"""Kinds whose Cyrillic and Greek look-alikes are folded to Latin (a plate's А and A are the same paint)."""


def normalise(kind: str, value: str) -> str:
    """Unicode NFKC, upper case, without separators, dashes and invisible characters; for plates and container
    codes Cyrillic and Greek look-alikes as Latin letters ("а123вс", "A 123-BC" and "A123BC" are one plate).

    The hub (when it drafts and publishes) and the station (when it reads an identity) both use this, so
    they cannot disagree; applying it again changes nothing (the hub normalises a value when it is drafted
    and again when it is published). The hub's identity search and legal holds (central_sync.hub.search) key
    values by the plate form of this, whatever their kind.
    """
    if PLAIN.fullmatch(value):
        return value
    return full_form(kind, value)


def full_form(kind: str, value: str) -> str:
    """`normalise` without its quick path: repeated until it holds still (dropping a character may bring two
    together that NFKC composes, upper case may leave a value that is not NFKC), at most a few rounds."""
    out = _once(kind, value)
    for _ in range(3):
        again = _once(kind, out)
        if again == out:
            break
        out = again
    return out


def _once(kind: str, value: str) -> str:
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).upper())
    text = "".join(c for c in _DROPPED.sub("", text) if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    return text.translate(_LOOK_ALIKES) if kind in FOLDED_KINDS else text
