"""The one form in which watchlist values, identities and rule values are compared."""

from __future__ import annotations

import re

from central_sync.hub.search import normalise as _normalise_identity

PLAIN = re.compile(r"[A-Z0-9]+")
"""A value already in normal form (upper-case ASCII letters and digits): returned as it is, quickly (the hub
reads a million of them when it publishes)."""


def normalise(kind: str, value: str) -> str:
    """Unicode NFKC, upper case, without spaces, dots, hyphens and middle dots, as the hub's identity search.

    The same for every kind (plates, container codes, TIDs, seals, traders, routes, HS codes), so that the
    hub (when it writes a bundle) and the station (when it reads an identity) cannot disagree; NUL is
    dropped too (rules.SEP relies on it). `kind` is kept in the signature so that a kind may one day
    need its own form without changing the callers.
    """
    if PLAIN.fullmatch(value):
        return value
    return _normalise_identity(value).replace("\x00", "")
