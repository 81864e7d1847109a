"""Search inspections by identity value (exact or prefix), on both hub backends, through an index.

Each record's identities are written to `record_identities` with the record (same transaction),
keyed by a normalised value (`normalise`): Unicode NFKC, upper case, without the spaces, dots, hyphens,
middle dots, slashes, underscores and invisible characters that plates and container codes are written
with, and Cyrillic and Greek letters drawn like Latin ones read as those Latin letters, as the station's
risk engine reads a plate ("粤Z·A123港" and "粤ZA123港", "CSQU 305438 3" and "CSQU3054383", "АВ1234" with
Cyrillic А and В and "AB1234" match). Legal holds on a vehicle are keyed by the same form
(central_sync/hub/retention.py, and the stations' `central_sync.retention.Holds`). A prefix search is a
range on that column
(`norm >= p AND norm < p || U+10FFFF`), which a B-tree index answers on both backends because the
column compares code point by code point: SQLite's default BINARY collation, and `COLLATE "C"` on
PostgreSQL (its default collation would not order the range that way).

A search is bounded however broad its value: `search_clause` first counts the index rows the value
matches, reading at most `BROAD_ROWS` + 1 of them. A selective value (a whole plate, a long prefix)
is answered through the index as above, collecting at most `BROAD_ROWS` record ids. A broad one (one
character, a common owner code) is answered newest record first, each record checked through the
index on its own id, so that the query stops at the page's end instead of collecting every match.
Callers fetch one row more than the page to say whether more results exist (`X-More-Results` in the
API, a note in the control room).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Literal, Protocol

from central_sync.schema import InspectionRecord
from risk.normal import normalise as risk_normalise

Match = Literal["exact", "prefix"]
TOP = "\U0010ffff"
_SEPARATORS = re.compile(r"[\s.\-·・]+")
KIND_ALIASES: dict[str, tuple[str, ...]] = {"seal": ("seal", "eseal"), "eseal": ("seal", "eseal"),
                                            "em4100": ("em4100", "rfid"), "rfid": ("rfid", "em4100")}
"""Kinds that name the same thing in older and newer records."""
BROAD_ROWS = 1000
"""Above this many matching index rows a search is broad: answered newest record first (see the module's note)."""
MORE_HEADER = "X-More-Results"
"""The response header that says whether a search had more results than the page holds ("true" / "false")."""


class Queryable(Protocol):
    """A hub store as the search needs it (central_sync.hub.store.HubStore)."""

    def query(self, sql: str, args: tuple = ()) -> list[tuple]: ...

INSERT_IDENTITY = ("INSERT INTO record_identities (record_id, station, kind, value, norm, decided_ts)"
                   " SELECT ?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM records WHERE id = ? AND station = ? AND seq = ?"
                   " AND decided_ts = ?) ON CONFLICT DO NOTHING")
"""Only under the station's own record, that very one (args: the row's six values, record id, station, seq,
decision time: a record refused as another under the same id adds nothing)."""


INDEX_IDENTITY = ("INSERT INTO record_identities (record_id, station, kind, value, norm, decided_ts)"
                  " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING")
"""Indexing a record already stored (a hub migrating to the index)."""


def normalise(value: str) -> str:
    """The form identity values are indexed, searched and held by (the module's note), whatever their kind.

    The form this index had before (NFKC, the separators above dropped, upper case), then the station's form of
    a plate (`risk.normal.normalise`): so two values that matched before still match (a legal hold keeps every
    record it held: `HubStore._rekey_norms`), and a plate read with a Cyrillic А matches the one read with a Latin A.
    Look-alikes are folded for every kind: the index finds and holds, and a mixed-up letter typed into a seal
    or tag number is the same mix-up."""
    return risk_normalise("plate", _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper())


def identity_rows(record: InspectionRecord) -> list[tuple]:
    """The INSERT_IDENTITY arguments for each identity of the record, each (kind, value) once."""
    seen = dict.fromkeys((i.kind, i.value) for i in record.identities)
    decided = record.decided_at.timestamp()
    return [(record.id, record.station, kind, value, normalise(value), decided, record.id, record.station,
             record.seq, decided) for kind, value in seen]


def stored_identity_rows(record_id: str, station: str, decided_ts: float, body: str) -> list[tuple]:
    """The INDEX_IDENTITY arguments for a record as the hub stored it (its JSON body)."""
    idents = json.loads(body).get("identities") or []
    seen = dict.fromkeys((str(i["kind"]), str(i["value"])) for i in idents)
    return [(record_id, station, kind, value, normalise(value), decided_ts) for kind, value in seen]


def _condition(value: str, kind: str | None, match: Match, table: str = "") -> tuple[str, list[object]]:
    """The condition on record_identities rows (columns prefixed with `table.` when given) and its arguments."""
    col = f"{table}." if table else ""
    norm = normalise(value)
    cond, args = (f"{col}norm = ?", [norm]) if match == "exact" else \
        (f"{col}norm >= ? AND {col}norm < ?", [norm, norm + TOP])
    if kind:
        kinds = KIND_ALIASES.get(kind, (kind,))
        cond += f" AND {col}kind IN ({','.join('?' * len(kinds))})"
        args += kinds
    return cond, list(args)


def identity_clause(value: str, kind: str | None = None, match: Match = "prefix",
                    broad: bool = False) -> tuple[str, tuple]:
    """A `WHERE` condition (and its arguments) on `records`: records with an identity matching the value.

    Not `broad`: the matching record ids collected through the index on `norm`. `broad`: each record
    checked through the index on its id (the outer query's order and LIMIT then bound the work)."""
    if broad:
        cond, args = _condition(value, kind, match, "ri")
        return f"EXISTS (SELECT 1 FROM record_identities ri WHERE ri.record_id = records.id AND {cond})", tuple(args)
    cond, args = _condition(value, kind, match)
    return f"id IN (SELECT record_id FROM record_identities WHERE {cond})", tuple(args)


def matching_rows(store: Queryable, value: str, kind: str | None = None, match: Match = "prefix",
                  cap: int | None = None) -> int:
    """How many index rows match the value, counted up to `cap` (default BROAD_ROWS) + 1: never more are read."""
    cap = BROAD_ROWS if cap is None else cap
    cond, args = _condition(value, kind, match)
    rows = store.query(f"SELECT count(*) FROM (SELECT 1 FROM record_identities WHERE {cond} LIMIT ?) AS m",
                       (*args, cap + 1))
    return int(rows[0][0])


def search_clause(store: Queryable, value: str, kind: str | None = None,
                  match: Match = "prefix") -> tuple[str, tuple]:
    """`identity_clause`, broad or not as the bounded count of matching index rows says."""
    return identity_clause(value, kind, match, broad=matching_rows(store, value, kind, match) > BROAD_ROWS)
