"""The one form in which watchlist values, identities and rule values are compared."""

from __future__ import annotations

from central_sync.hub.search import normalise as _normalise_identity


def normalise(kind: str, value: str) -> str:
    """Unicode NFKC, upper case, without spaces, dots, hyphens and middle dots, as the hub's identity search.

    The same for every kind (plates, container codes, TIDs, seals, traders, routes, HS codes), so that the
    hub (when it writes a bundle) and the station (when it reads an identity) cannot disagree; NUL is
    dropped too (rules.SEP relies on it). `kind` is kept in the signature so that a kind may one day
    need its own form without changing the callers.
    """
    return _normalise_identity(value).replace("\x00", "")
