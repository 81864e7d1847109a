"""Search inspections by identity value (exact or prefix), on both hub backends, through an index.

Each record's identities are written to `record_identities` with the record (same transaction),
keyed by a normalised value: Unicode NFKC, upper case, without the spaces, dots, hyphens and
middle dots that plates and container codes are written with ("粤Z·A123港" and "粤ZA123港",
"CSQU 305438 3" and "CSQU3054383" match). A prefix search is a range on that column
(`norm >= p AND norm < p || U+10FFFF`), which a B-tree index answers on both backends because the
column compares code point by code point: SQLite's default BINARY collation, and `COLLATE "C"` on
PostgreSQL (its default collation would not order the range that way).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Literal

from central_sync.schema import InspectionRecord

Match = Literal["exact", "prefix"]
TOP = "\U0010ffff"
_SEPARATORS = re.compile(r"[\s.\-·・]+")
KIND_ALIASES: dict[str, tuple[str, ...]] = {"seal": ("seal", "eseal"), "eseal": ("seal", "eseal"),
                                            "em4100": ("em4100", "rfid"), "rfid": ("rfid", "em4100")}
"""Kinds that name the same thing in older and newer records."""

INSERT_IDENTITY = ("INSERT INTO record_identities (record_id, station, kind, value, norm, decided_ts)"
                   " SELECT ?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM records WHERE id = ? AND station = ?)"
                   " ON CONFLICT DO NOTHING")
"""Only under the station's own record (args: the row's six values, record id, station)."""


INDEX_IDENTITY = ("INSERT INTO record_identities (record_id, station, kind, value, norm, decided_ts)"
                  " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING")
"""Indexing a record already stored (a hub migrating to the index)."""


def normalise(value: str) -> str:
    """The form identity values are indexed and searched by."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def identity_rows(record: InspectionRecord) -> list[tuple]:
    """The INSERT_IDENTITY arguments for each identity of the record, each (kind, value) once."""
    seen = dict.fromkeys((i.kind, i.value) for i in record.identities)
    return [(record.id, record.station, kind, value, normalise(value), record.decided_at.timestamp(), record.id,
             record.station) for kind, value in seen]


def stored_identity_rows(record_id: str, station: str, decided_ts: float, body: str) -> list[tuple]:
    """The INDEX_IDENTITY arguments for a record as the hub stored it (its JSON body)."""
    idents = json.loads(body).get("identities") or []
    seen = dict.fromkeys((str(i["kind"]), str(i["value"])) for i in idents)
    return [(record_id, station, kind, value, normalise(value), decided_ts) for kind, value in seen]


def identity_clause(value: str, kind: str | None = None, match: Match = "prefix") -> tuple[str, tuple]:
    """A `WHERE` condition (and its arguments) on records.id: records with an identity matching the value."""
    norm = normalise(value)
    cond, args = ("norm = ?", [norm]) if match == "exact" else ("norm >= ? AND norm < ?", [norm, norm + TOP])
    if kind:
        kinds = KIND_ALIASES.get(kind, (kind,))
        cond += f" AND kind IN ({','.join('?' * len(kinds))})"
        args += kinds
    return f"id IN (SELECT record_id FROM record_identities WHERE {cond})", tuple(args)
