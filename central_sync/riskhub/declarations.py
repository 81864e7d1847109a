"""Pre-arrival declarations from the customs declaration system: import (CSV, JSON) and storage.

Formats (docs/risk-authoring.md): one declaration per CSV row or JSON object with the fields of
`DeclarationIn`; in CSV the goods are `HS:description` pairs separated by `;` and booleans are
true/false/yes/no/1/0. A bad row never stops an import: it becomes one sentence with its row number
and values, is counted, and the good rows are stored (a declaration sent again replaces the old one).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from central_sync.hub.store import Cursor, HubStore
from risk.bundle import normalise

CSV_COLUMNS = ("ref", "container", "plate", "trader", "goods", "declared_empty", "weight_kg", "origin", "sealed", "seal_id")
TRUE, FALSE = ("true", "yes", "1", "y"), ("false", "no", "0", "n", "")


class Goods(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hs: str = Field(pattern=r"^\d{4}(\.?\d{2}){0,3}$", description="HS code, 4 to 10 digits")
    description: str = Field(min_length=1, max_length=300)


class DeclarationIn(BaseModel):
    """One declaration as the import accepts it (the bundle's Declaration, risk/bundle.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str = Field(min_length=1, max_length=64)
    container: str | None = Field(None, max_length=16)
    plate: str | None = Field(None, max_length=16)
    trader: str = Field(min_length=1, max_length=200)
    goods: tuple[Goods, ...] = ()
    declared_empty: bool = False
    weight_kg: float | None = Field(None, ge=0, le=200_000)
    origin: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2 country")
    sealed: bool = False
    seal_id: str | None = Field(None, max_length=64)

    @field_validator("container", "plate", "seal_id", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    def normalised(self) -> "DeclarationIn":
        """Container and plate as the watchlists hold them (upper case, no separators)."""
        return self.model_copy(update={"container": self.container and normalise("container", self.container),
                                       "plate": self.plate and normalise("plate", self.plate)})

    def problem(self) -> str | None:
        """A contradiction the schema cannot see, as a sentence; None when consistent."""
        if not (self.container or self.plate):
            return "names neither a container nor a plate"
        if self.declared_empty and self.goods:
            return f"is declared empty but lists {len(self.goods)} goods"
        if self.sealed and not self.seal_id:
            return "is sealed but gives no seal_id"
        return None


@dataclass
class ImportResult:
    """Good declarations and one sentence per refused row."""

    good: list[DeclarationIn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def view(self) -> dict:
        return {"accepted": len(self.good), "refused": len(self.errors), "errors": self.errors}


def parse_csv(text: str) -> ImportResult:
    """Rows of a CSV with the CSV_COLUMNS header (row 1 is the header, so data starts at row 2)."""
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("ref", "trader", "origin") if c not in (reader.fieldnames or ())]
    if missing:
        result.errors.append(f"row 1: the header {reader.fieldnames!r} lacks the column(s) {', '.join(missing)}")
        return result
    for n, row in enumerate(reader, start=2):
        extra = row.pop(None, None)  # DictReader keeps surplus cells under the key None
        if extra:
            result.errors.append(f"row {n}: {len(extra)} cell(s) more than the header has ({extra!r})")
            continue
        try:
            _keep(result, n, _from_csv(row))
        except (ValueError, ValidationError) as exc:
            result.errors.append(f"row {n}: {_sentence(exc)} in {_brief(row)}")
    return result


def parse_json(text: str) -> ImportResult:
    """A JSON list of declaration objects (or {"declarations": [...]}); items are numbered from 1."""
    result = ImportResult()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        result.errors.append(f"the upload is not JSON: {exc}")
        return result
    except RecursionError:  # '[' * 100000: nested deeper than any declaration (it failed the request with 500)
        result.errors.append(f"the upload of {len(text)} characters is nested too deep to be a list of declarations")
        return result
    items = data.get("declarations") if isinstance(data, dict) else data
    if not isinstance(items, list):
        result.errors.append(f"the upload holds a {type(items).__name__}, not a list of declarations")
        return result
    for n, item in enumerate(items, start=1):
        try:
            _keep(result, n, DeclarationIn.model_validate(item))
        except (ValueError, ValidationError) as exc:
            result.errors.append(f"row {n}: {_sentence(exc)} in {_brief(item)}")
    return result


def _keep(result: ImportResult, n: int, decl: DeclarationIn) -> None:
    decl = decl.normalised()
    if why := decl.problem():
        result.errors.append(f"row {n}: declaration {decl.ref} {why}")
    else:
        result.good.append(decl)


def _from_csv(row: dict[str, str | None]) -> DeclarationIn:
    cell = {k: (v or "").strip() for k, v in row.items()}
    goods = []
    for part in filter(None, (p.strip() for p in cell.get("goods", "").split(";"))):
        hs, sep, desc = part.partition(":")
        if not sep:
            raise ValueError(f"goods item {part!r} is not HS:description")
        goods.append({"hs": hs.strip(), "description": desc.strip()})
    weight = cell.get("weight_kg", "")
    return DeclarationIn.model_validate({
        "ref": cell.get("ref", ""), "container": cell.get("container"), "plate": cell.get("plate"),
        "trader": cell.get("trader", ""), "goods": goods, "declared_empty": _bool(cell, "declared_empty"),
        "weight_kg": float(weight) if weight else None, "origin": cell.get("origin", ""),
        "sealed": _bool(cell, "sealed"), "seal_id": cell.get("seal_id")})


def _bool(cell: dict[str, str], key: str) -> bool:
    v = cell.get(key, "").lower()
    if v in TRUE or v in FALSE:
        return v in TRUE
    raise ValueError(f"{key} {cell[key]!r} is not true or false")


def _sentence(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        return f"{where} {e['msg'].lower()} (got {e.get('input')!r})"
    return str(exc).replace("could not convert string to float: ", "weight_kg is not a number: ")


def _brief(row: object) -> str:
    """The row's values, short enough for one line."""
    text = json.dumps(row, ensure_ascii=False, default=str) if not isinstance(row, str) else row
    return text if len(text) <= 200 else text[:197] + "..."


def store_declarations(store: HubStore, decls: list[DeclarationIn], source: str, now: float | None = None) -> int:
    """Insert or replace by ref, in one transaction, received `now`; how many were written."""
    now = time.time() if now is None else now
    rows = [(d.ref, d.container, d.plate, d.trader, json.dumps([[g.hs, g.description] for g in d.goods], ensure_ascii=False),
             int(d.declared_empty), d.weight_kg, d.origin, int(d.sealed), d.seal_id, source, now) for d in decls]

    def write(cur: Cursor) -> None:
        cur.executemany(store.sql(
            "INSERT INTO risk_declarations (ref, container, plate, trader, goods, declared_empty, weight_kg, origin,"
            " sealed, seal_id, source, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (ref) DO UPDATE SET"
            " container=excluded.container, plate=excluded.plate, trader=excluded.trader, goods=excluded.goods,"
            " declared_empty=excluded.declared_empty, weight_kg=excluded.weight_kg, origin=excluded.origin,"
            " sealed=excluded.sealed, seal_id=excluded.seal_id, source=excluded.source, received_at=excluded.received_at"),
            rows)
    if rows:
        store.run_in_transaction(write)
    return len(rows)


DECL_KEYS = ("ref", "container", "plate", "trader", "goods", "declared_empty", "weight_kg", "origin", "sealed", "seal_id",
             "source", "received_at")


def recent(store: HubStore, since: float, limit: int = 100_000) -> list[dict]:
    """Declarations received since a time (newest first), as dicts with goods as [[hs, description], ...]."""
    rows = store.query(f"SELECT {', '.join(DECL_KEYS)} FROM risk_declarations WHERE received_at>=?"
                       " ORDER BY received_at DESC, ref LIMIT ?", (since, limit))
    out = []
    for r in rows:
        d = dict(zip(DECL_KEYS, r))
        d.update(goods=json.loads(d["goods"]), declared_empty=bool(d["declared_empty"]), sealed=bool(d["sealed"]))
        out.append(d)
    return out
