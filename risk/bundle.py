"""Risk bundles: what the hub publishes and the station applies, their wire format and signature.

Envelope (docs/risk.md has the full layout and an example):

    b"CPERB1\\n" + header + b"\\n" + payload
    header   one line of JSON {"key_id": str, "sig": base64 Ed25519 signature of the payload bytes, "len": int}
    payload  zlib-compressed canonical JSON (sorted keys, separators "," ":", UTF-8) of the bundle dict

The bundle dict is columnar so that a million watchlist entries parse in a fraction of a second: the
entries' shared attributes (list, reason, owner, validity, level, lane, score) are one `metas` table and
each list kind is two parallel columns: `values` (normalised, one string separated by single spaces) and
`metas` (base64 of little-endian int32 indexes into the table). Neither makes a Python object per entry.

`open_bundle` refuses with a BundleError whose `code` is stable (acknowledged to the hub): bad_format,
bad_signature, unknown_key, replayed (the version the station runs), older, base_mismatch (a delta not
made on the version the station runs), not_yet_valid, expired (unless `allow_expired`: the station keeps
its last good bundle and knows it is stale). Any bytes give a Bundle or a BundleError, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from risk.errors import BundleError, RuleError
from risk.normal import PLAIN as _PLAIN
from risk.normal import normalise
from risk.rules import LANES, LIST_KINDS, Lane, Rule, check_rules

__all__ = ["Bundle", "Declaration", "DeclarationTable", "ListMeta", "RandomPolicy", "WatchEntry", "WatchTable",
           "EntryColumns", "bundle_dict", "diff_entries", "encode_bundle", "normalise", "open_bundle"]

MAGIC = b"CPERB1\n"
# 2: values normalised as risk.normal does since look-alikes were folded; a station still opens a format 1 bundle
# (an older hub's) and normalises its values again, and an older station refuses a format 2 one (bad_format: it
# keeps the bundle it runs) instead of comparing values normalised one way with reads normalised the other
FORMAT = 2
FORMATS = (1, 2)
MAX_HEADER = 4096
MAX_PAYLOAD = 512 * 1024 * 1024
"""Largest decompressed payload accepted (a million entries are about 30 MB)."""
CLOCK_SKEW_S = 300.0
"""A bundle issued up to this far in the station's future is accepted (clocks differ a little)."""
BundleKind = Literal["snapshot", "delta"]


@dataclass(frozen=True, slots=True)
class ListMeta:
    """What the entries of one list share (deduplicated in the bundle)."""

    list_id: str
    reason: str
    owner: str
    valid_from: float | None = None
    valid_to: float | None = None
    level: int = 0  # need-to-know 0..3: the officer's level must reach it to see the reason
    lane: Lane = "red"  # the lane a hit gives, red unless the list says otherwise
    score: int = 100

    def as_row(self) -> list[Any]:
        return [self.list_id, self.reason, self.owner, self.valid_from, self.valid_to, self.level, self.lane,
                self.score]

    def valid_at(self, at: float) -> bool:
        """Whether the entry is in force at `at`, a station's time, give or take CLOCK_SKEW_S (bounds inclusive, None =
        open). A station's clock may be that far off (a bundle issued that far in its future is accepted): an entry
        that has just come into force counts on a station whose clock is behind, and one about to end counts on a
        station whose clock is ahead. So an entry counts up to CLOCK_SKEW_S before its start and after its end: a
        hit only makes the verdict stricter (at worst an inspection in those minutes), a miss lets a listed vehicle
        through. The hub stops publishing an entry at its end by its own clock (riskhub.publish)."""
        return (self.valid_from is None or self.valid_from - CLOCK_SKEW_S <= at) and \
            (self.valid_to is None or at <= self.valid_to + CLOCK_SKEW_S)


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One watchlist entry; `value` normalised (see `normalise`)."""

    list_kind: str
    value: str
    list_id: str
    reason: str
    owner: str
    valid_from: float | None = None
    valid_to: float | None = None
    level: int = 0
    lane: Lane = "red"
    score: int = 100

    @property
    def meta(self) -> ListMeta:
        return ListMeta(self.list_id, self.reason, self.owner, self.valid_from, self.valid_to, self.level, self.lane,
                        self.score)


@dataclass(frozen=True, slots=True)
class Declaration:
    """A pre-arrival declaration from the customs declaration system."""

    ref: str
    trader: str
    container: str | None = None
    plate: str | None = None
    goods: tuple[tuple[str, str], ...] = ()  # (hs_code, description)
    declared_empty: bool = False
    weight_kg: float | None = None
    origin: str = ""
    sealed: bool = False
    seal_id: str | None = None
    received_at: float | None = None  # when the hub received it: of two for one container or plate, the newest counts

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "trader": self.trader, "container": self.container, "plate": self.plate,
                "goods": [list(g) for g in self.goods], "declared_empty": self.declared_empty,
                "weight_kg": self.weight_kg, "origin": self.origin, "sealed": self.sealed, "seal_id": self.seal_id}


@dataclass(frozen=True)
class RandomPolicy:
    """Random selection: the minimum share of items selected, per station kind or station id where overridden."""

    rate: float = 0.02
    stale_rate: float = 0.10  # used instead when the bundle has expired (if higher)
    per_lane: dict[str, float] = field(default_factory=dict)  # station id or station kind -> rate
    lane: Lane = "red"  # the lane a random selection gives

    def rate_for(self, station_id: str, station_kind: str, stale: bool) -> float:
        """The rate for a station: its own override, else its kind's, else the default; raised when stale."""
        rate = self.per_lane.get(station_id, self.per_lane.get(station_kind, self.rate))
        return max(rate, self.stale_rate) if stale else rate

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "stale_rate": self.stale_rate, "per_lane": dict(self.per_lane), "lane": self.lane}


DECLARATION_COLUMNS = ("ref", "trader", "container", "plate", "hs", "goods", "declared_empty", "weight_kg", "origin",
                       "sealed", "seal_id")
"""The columns of the bundle's `declarations` object, one list each, a declaration per index."""
RECEIVED_KEY = "declarations_received_at"
"""The bundle's list of when the hub received each declaration (parallel to the columns; outside the object so
that a station that predates it, which takes exactly DECLARATION_COLUMNS, still opens the bundle)."""


@dataclass(frozen=True)
class DeclarationTable:
    """The bundle's declarations, columnar as on the wire; `rows()` builds Declaration objects."""

    columns: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    received_at: Sequence[float | None] = ()  # empty: a bundle of a hub that did not say

    def __len__(self) -> int:
        return len(self.columns.get("ref", ()))

    def rows(self) -> Iterator[Declaration]:
        c, received = self.columns, self.received_at or [None] * len(self)
        for i in range(len(self)):
            yield Declaration(ref=c["ref"][i], trader=c["trader"][i], container=c["container"][i],
                              plate=c["plate"][i], goods=tuple(zip(c["hs"][i], c["goods"][i])),
                              declared_empty=c["declared_empty"][i], weight_kg=c["weight_kg"][i],
                              origin=c["origin"][i], sealed=c["sealed"][i], seal_id=c["seal_id"][i],
                              received_at=received[i])

    @staticmethod
    def to_json(declarations: Iterable[Declaration]) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {name: [] for name in DECLARATION_COLUMNS}
        for d in declarations:
            for name in DECLARATION_COLUMNS:
                cols[name].append([h for h, _ in d.goods] if name == "hs" else [t for _, t in d.goods]
                                  if name == "goods" else getattr(d, name))
        return cols if cols["ref"] else {}


@dataclass(frozen=True)
class WatchTable:
    """The columnar watchlists of a bundle: per list kind, the values (one string, separated by single spaces:
    a normalised value holds no white space) and a parallel int32 array of indexes into `metas`."""

    metas: tuple[ListMeta, ...] = ()
    columns: Mapping[str, tuple[str, npt.NDArray[np.int32]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(metas) for _, metas in self.columns.values())

    def values(self, kind: str) -> list[str]:
        joined = self.columns[kind][0] if kind in self.columns else ""
        return joined.split(" ") if joined else []

    def entries(self) -> Iterator[WatchEntry]:
        for kind, (_, metas) in self.columns.items():
            for value, m in zip(self.values(kind), metas.tolist()):
                meta = self.metas[m]
                yield WatchEntry(kind, value, meta.list_id, meta.reason, meta.owner, meta.valid_from, meta.valid_to,
                                 meta.level, meta.lane, meta.score)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle. `watchlists` builds WatchEntry objects on demand; the engine reads `table`."""

    version: int
    kind: BundleKind
    base_version: int | None
    issued_at: float
    expires_at: float
    key_id: str
    table: WatchTable
    removed: tuple[tuple[str, str], ...]
    rules: tuple[Rule, ...]
    rules_changed: bool
    random: RandomPolicy
    declaration_table: DeclarationTable
    sha256: str
    removed_declarations: tuple[str, ...] = ()

    @property
    def watchlists(self) -> tuple[WatchEntry, ...]:
        return tuple(self.table.entries())

    @property
    def declarations(self) -> tuple[Declaration, ...]:
        return tuple(self.declaration_table.rows())

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


class EntryColumns:
    """Watchlist entries gathered straight into the bundle's columns: per list kind the normalised values and
    the indexes of their shared attributes (a tuple as ListMeta.as_row gives) in one deduplicated table.

    The hub reads a million approved entries into this without a Python object per entry.
    """

    def __init__(self) -> None:
        self.metas: dict[tuple[Any, ...], int] = {}
        self.columns: dict[str, tuple[list[str], array[int]]] = {}

    def __len__(self) -> int:
        return sum(len(values) for values, _ in self.columns.values())

    def add(self, list_kind: str, value: str, meta: tuple[Any, ...]) -> None:
        """One entry; ValueError when its value is empty once normalised."""
        self.extend(((list_kind, value, meta),))

    def extend(self, rows: Iterable[tuple[str, str, tuple[Any, ...]]]) -> None:
        """(list kind, value, meta) rows, one loop with its lookups held locally (a million rows at the hub)."""
        metas, columns, plain = self.metas, self.columns, _PLAIN.fullmatch
        for list_kind, value, meta in rows:
            col = columns.get(list_kind) or columns.setdefault(list_kind, ([], array("i")))
            norm = value if plain(value) else normalise(list_kind, value)
            if not norm:
                raise ValueError(f"watchlist entry {value!r} of list {meta[0]!r} is empty once normalised")
            col[0].append(norm)
            m = metas.get(meta)
            col[1].append(m if m is not None else metas.setdefault(meta, len(metas)))

    def select(self, keys: Mapping[str, set[str]]) -> "EntryColumns":
        """The entries whose normalised value of their kind is in `keys[kind]`."""
        rows = list(self.metas)
        out = EntryColumns()
        for kind, (values, idx) in self.columns.items():
            wanted = keys.get(kind) or set()
            for value, m in zip(values, idx) if wanted else ():
                if value in wanted:
                    out.add(kind, value, rows[m])
        return out

    def to_json(self) -> tuple[list[list[Any]], dict[str, dict[str, str]]]:
        """The bundle's `metas` rows and `watchlists` columns."""
        lists = {k: {"values": " ".join(v), "metas": base64.b64encode(_little_endian(i)).decode()}
                 for k, (v, i) in sorted(self.columns.items())}
        return [list(m) for m in self.metas], lists


def _little_endian(values: array[int]) -> bytes:
    if sys.byteorder == "big":
        values = array("i", values)
        values.byteswap()
    return values.tobytes()


def bundle_dict(*, version: int, issued_at: float, expires_at: float, entries: Iterable[WatchEntry] = (),
                rules: Iterable[Rule] = (), random: RandomPolicy | None = None,
                declarations: Iterable[Declaration] = (), kind: BundleKind = "snapshot",
                base_version: int | None = None, removed: Iterable[tuple[str, str]] = (),
                rules_changed: bool = True, removed_declarations: Iterable[str] = (),
                columns: EntryColumns | None = None) -> dict[str, Any]:
    """The bundle's JSON form from Python objects (values normalised here), ready for `encode_bundle`;
    `columns` (already gathered) stands for `entries`."""
    if columns is None:
        columns = EntryColumns()
        for e in entries:
            columns.add(e.list_kind, e.value, tuple(e.meta.as_row()))
    gone: dict[str, list[str]] = {}
    for list_kind, value in removed:
        norm = normalise(list_kind, value)
        # and the value as given, when a station may hold it so (published before normalisation was stricter)
        forms = (norm, value) if value != norm and value and not any(c.isspace() for c in value) else (norm,)
        gone.setdefault(list_kind, []).extend(forms)
    decls = list(declarations)
    rules_changed = rules_changed or kind == "snapshot"
    rule_list = list(rules) if rules_changed else []  # a delta without rule changes keeps the station's rules
    metas, lists = columns.to_json()
    return {"format": FORMAT, "version": version, "kind": kind, "base_version": base_version,
            "issued_at": issued_at, "expires_at": expires_at, "random": (random or RandomPolicy()).to_dict(),
            "rules_changed": rules_changed, "rules": [r.to_dict() for r in rule_list],
            "metas": metas, "watchlists": lists,
            "removed": {k: v for k, v in sorted(gone.items())},
            "declarations": DeclarationTable.to_json(decls), RECEIVED_KEY: [d.received_at for d in decls],
            "removed_declarations": list(removed_declarations)}


def diff_entries(old: Iterable[WatchEntry],
                 new: Iterable[WatchEntry]) -> tuple[list[WatchEntry], list[tuple[str, str]]]:
    """What a delta from `old` to `new` carries: entries to add, and (kind, value) pairs to remove first.

    A removal drops every entry of that value of that kind, so a changed value is removed and all of its
    new entries are added again.
    """
    def by_key(entries: Iterable[WatchEntry]) -> dict[tuple[str, str], set[WatchEntry]]:
        out: dict[tuple[str, str], set[WatchEntry]] = {}
        for e in entries:
            e = replace(e, value=normalise(e.list_kind, e.value))
            out.setdefault((e.list_kind, e.value), set()).add(e)
        return out
    before, after = by_key(old), by_key(new)
    removed = [key for key, es in before.items() if after.get(key) != es]
    changed = [key for key, es in after.items() if before.get(key) != es]
    added = [e for key in changed for e in sorted(after[key], key=lambda e: e.list_id)]
    return added, [key for key in removed if key in before]


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8; NaN and infinities refused (ValueError)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def encode_bundle(bundle_json: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str) -> bytes:
    """The signed envelope of a bundle dict (see the module docstring)."""
    payload = zlib.compress(canonical_json(bundle_json), 6)
    sig = base64.b64encode(private_key.sign(payload)).decode()
    header = json.dumps({"key_id": key_id, "sig": sig, "len": len(payload)}, sort_keys=True, separators=(",", ":"))
    return MAGIC + header.encode() + b"\n" + payload


def open_bundle(data: bytes, keys: Mapping[str, Ed25519PublicKey], *, now: float, current: int | None,
                allow_expired: bool = False, allow_future: bool = False) -> Bundle:
    """Verify, decompress and parse an envelope against the pinned keys and the version the station runs.

    `allow_future`: a bundle the station accepted and kept, opened again at start, is not refused as
    not_yet_valid (the clock may be behind until it is set; it was checked when it arrived)."""
    key_id, sig, payload = _envelope(data)
    key = keys.get(key_id)
    if key is None:
        raise BundleError("unknown_key", f"bundle signed with key {key_id!r}, which is not one of "
                                         f"{sorted(keys)}")
    try:
        key.verify(sig, payload)
    except InvalidSignature:
        raise BundleError("bad_signature", f"bundle signature does not verify with key {key_id!r}") from None
    bundle = _parse(_decoded(payload), key_id, hashlib.sha256(payload).hexdigest())
    _check_version(bundle, current)
    if bundle.issued_at > now + CLOCK_SKEW_S and not allow_future:
        raise BundleError("not_yet_valid", f"bundle {bundle.version} is issued at {bundle.issued_at:.0f}, "
                                           f"after now ({now:.0f})")
    if bundle.expired(now) and not allow_expired:
        raise BundleError("expired", f"bundle {bundle.version} expired at {bundle.expires_at:.0f} (now {now:.0f})")
    return bundle


def _envelope(data: bytes) -> tuple[str, bytes, bytes]:
    """Key id, signature and payload of an envelope; BundleError bad_format otherwise."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BundleError("bad_format", f"a bundle is bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise BundleError("bad_format", f"bundle does not start with {MAGIC!r} (starts {data[:8]!r})")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER)
    if end < 0:
        raise BundleError("bad_format", f"bundle header has no end of line within {MAX_HEADER} bytes")
    try:
        header = json.loads(data[len(MAGIC):end])
        key_id, sig_text, length = header["key_id"], header["sig"], header["len"]
        sig = base64.b64decode(sig_text, validate=True)
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError) as exc:
        raise BundleError("bad_format", f"bundle header is not the expected JSON ({exc})") from None
    payload = data[end + 1:]
    if not isinstance(key_id, str) or type(length) is not int or length != len(payload) or len(sig) != 64:
        raise BundleError("bad_format", f"bundle header does not match the payload (len {length!r} for "
                                        f"{len(payload)} bytes, signature {len(sig)} bytes)")
    return key_id, sig, payload


def _decoded(payload: bytes) -> dict[str, Any]:
    """The payload's JSON object (decompressed within MAX_PAYLOAD)."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(payload, MAX_PAYLOAD)
        if inflater.unconsumed_tail:
            raise BundleError("bad_format", f"bundle payload inflates to more than {MAX_PAYLOAD} bytes")
        doc = _loads_in_pieces(raw.decode())
    except (zlib.error, ValueError, RecursionError) as exc:
        raise BundleError("bad_format", f"bundle payload is not compressed JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") not in FORMATS:
        raise BundleError("bad_format", f"bundle payload is not a format {' or '.join(map(str, FORMATS))} bundle "
                                        f"object")
    return doc


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a bundle may hold")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """The offset after the JSON white space at `at`."""
    found = _SPACE.match(text, at)
    return found.end() if found else at


def _loads_in_pieces(text: str, depth: int = 2) -> Any:
    """json.loads, but objects down to `depth` levels are walked here and only their members are parsed by C.

    One json.loads of a large bundle holds the interpreter lock for its whole parse (most of a second for
    a million entries and tens of thousands of declarations), which would stall the station's event loop
    while a worker thread applies the bundle; parsed member by member, each hold is one column's worth.
    ValueError when the text is not one JSON value (as json.loads).
    """
    value, end = _piece(text, _skip(text, 0), depth)
    if _skip(text, end) != len(text):
        raise ValueError(f"extra data after the JSON value at offset {end}")
    return value


def _piece(text: str, at: int, depth: int) -> tuple[Any, int]:
    """The JSON value starting at `at` (no white space before it) and the offset after it."""
    if depth == 0 or not text.startswith("{", at):
        return _DECODER.raw_decode(text, at)
    out: dict[str, Any] = {}
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        return out, at + 1
    while True:
        key, at = _DECODER.raw_decode(text, at)
        if not isinstance(key, str):
            raise ValueError(f"an object key at offset {at} is not a string")
        at = _skip(text, at)
        if not text.startswith(":", at):
            raise ValueError(f"expected ':' at offset {at}")
        out[key], at = _piece(text, _skip(text, at + 1), depth - 1)
        at = _skip(text, at)
        if text.startswith("}", at):
            return out, at + 1
        if not text.startswith(",", at):
            raise ValueError(f"expected ',' or '}}' at offset {at}")
        at = _skip(text, at + 1)


def _check_version(bundle: Bundle, current: int | None) -> None:
    """A snapshot must be newer than what runs; a delta must be made on exactly what runs."""
    if current is not None and bundle.version == current:
        raise BundleError("replayed", f"bundle {bundle.version} is the version the station already runs")
    if current is not None and bundle.version < current:
        raise BundleError("older", f"bundle {bundle.version} is older than the version the station runs ({current})")
    if bundle.kind == "delta" and bundle.base_version != current:
        raise BundleError("base_mismatch", f"delta {bundle.version} is made on version {bundle.base_version}, "
                                           f"the station runs {current}")


def _parse(doc: dict[str, Any], key_id: str, sha256: str) -> Bundle:
    """A Bundle from its JSON object; BundleError bad_format naming the first field that is wrong."""
    try:
        return _build(doc, key_id, sha256)
    except RuleError as exc:
        raise BundleError("bad_format", f"bundle rule refused: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise BundleError("bad_format", f"bundle field missing or of the wrong type ({type(exc).__name__}: "
                                        f"{exc!s:.120})") from None


def _build(doc: dict[str, Any], key_id: str, sha256: str) -> Bundle:
    version, kind, base = doc["version"], doc["kind"], doc["base_version"]
    _need(type(version) is int and version >= 1, "version", version)
    _need(kind in ("snapshot", "delta"), "kind", kind)
    _need(base is None if kind == "snapshot" else (type(base) is int and base < version), "base_version", base)
    issued, expires = _number(doc["issued_at"], "issued_at"), _number(doc["expires_at"], "expires_at")
    _need(expires > issued, "expires_at", expires)
    rules_changed = doc["rules_changed"]
    _need(isinstance(rules_changed, bool), "rules_changed", rules_changed)
    rules = tuple(Rule.from_dict(r) for r in _list(doc["rules"], "rules"))
    check_rules(rules)
    return Bundle(version=version, kind=kind, base_version=base, issued_at=issued, expires_at=expires,
                  key_id=key_id, table=_table(doc), removed=_removed(doc["removed"], doc["format"]), rules=rules,
                  rules_changed=rules_changed, random=_random(doc["random"]),
                  declaration_table=_declarations(doc["declarations"], doc.get(RECEIVED_KEY)),
                  sha256=sha256, removed_declarations=tuple(_strings(doc["removed_declarations"],
                                                                     "removed_declarations")))


def _table(doc: dict[str, Any]) -> WatchTable:
    metas = tuple(_meta(row) for row in _list(doc["metas"], "metas"))
    columns: dict[str, tuple[str, npt.NDArray[np.int32]]] = {}
    lists = doc["watchlists"]
    _need(isinstance(lists, dict), "watchlists", lists)
    for kind, col in lists.items():
        _need(kind in LIST_KINDS, "watchlists kind", kind)
        values, idx = col["values"], _indexes(col["metas"], f"watchlists.{kind}.metas")
        _need(type(values) is str and (values.count(" ") + 1 if values else 0) == len(idx)
              and "  " not in values and not values.startswith(" ") and not values.endswith(" "),
              f"watchlists.{kind}.values", "not one value per meta index, separated by single spaces")
        _need(not idx.size or 0 <= int(idx.min()) and int(idx.max()) < len(metas),
              f"watchlists.{kind}.metas", "an index outside the metas table")
        if doc["format"] == 1 and values:  # an older hub's normalisation: the reads are normalised as now
            values = " ".join(_renormalised(kind, values.split(" ")))
        columns[kind] = (values, idx)
    return WatchTable(metas, columns)


def _indexes(text: object, name: str) -> npt.NDArray[np.int32]:
    """A base64 column of little-endian int32."""
    _need(type(text) is str, name, text)
    step = 1 << 20  # a multiple of 4: decoded a megabyte at a time, never holding the interpreter lock long
    try:
        raw = b"".join(base64.b64decode(cast(str, text)[i:i + step], validate=True)
                       for i in range(0, len(cast(str, text)), step))
    except binascii.Error:
        raise BundleError("bad_format", f"bundle field {name} is not base64") from None
    _need(len(raw) % 4 == 0, name, f"{len(raw)} bytes, not a whole number of int32")
    return np.frombuffer(raw, dtype="<i4").astype(np.int32)


def _meta(row: object) -> ListMeta:
    _need(isinstance(row, list) and len(row) == 8, "metas row", row)
    list_id, reason, owner, vfrom, vto, level, lane, score = cast(list[Any], row)
    _need(all(isinstance(s, str) for s in (list_id, reason, owner)), "metas row", row)
    _need(type(level) is int and 0 <= level <= 3, "metas level", level)
    _need(lane in LANES and type(score) is int, "metas lane/score", row)
    return ListMeta(list_id, reason, owner, None if vfrom is None else _number(vfrom, "valid_from"),
                    None if vto is None else _number(vto, "valid_to"), level, lane, score)


def _renormalised(kind: str, values: Iterable[str]) -> Iterator[str]:
    """Values a format 1 bundle holds, normalised as now (one that would be empty stays as it was: it matches
    nothing either way, and the column keeps one value per index)."""
    plain = _PLAIN.fullmatch
    for v in values:
        yield v if plain(v) else normalise(kind, v) or v


def _removed(doc: object, fmt: int) -> tuple[tuple[str, str], ...]:
    _need(isinstance(doc, dict), "removed", doc)
    out: list[tuple[str, str]] = []
    for kind, values in cast(dict[str, Any], doc).items():
        _need(kind in LIST_KINDS, "removed kind", kind)
        given = _strings(values, f"removed.{kind}")
        out += [(kind, v) for v in given]
        if fmt == 1:  # an older hub's form, and the form this station holds it in
            out += [(kind, v) for v in dict.fromkeys(_renormalised(kind, given)) if v not in given]
    return tuple(out)


def _random(doc: object) -> RandomPolicy:
    _need(isinstance(doc, dict), "random", doc)
    d = cast(dict[str, Any], doc)
    rate, stale, per_lane, lane = d["rate"], d["stale_rate"], d["per_lane"], d["lane"]
    _need(isinstance(per_lane, dict) and lane in LANES, "random", doc)
    for r in (rate, stale, *per_lane.values()):
        _need(0.0 <= _number(r, "random rate") <= 1.0, "random rate", r)
    return RandomPolicy(float(rate), float(stale), {str(k): float(v) for k, v in per_lane.items()}, lane)


def _declarations(doc: object, received: object) -> DeclarationTable:
    """The declaration columns, each checked in one pass (tens of thousands of declarations parse quickly), and
    when each was received (absent from a bundle of an older hub)."""
    _need(isinstance(doc, dict), "declarations", doc)
    cols = cast(dict[str, Any], doc)
    times = [] if received is None else _list(received, RECEIVED_KEY)
    _need(all(v is None or _is_finite(v) for v in times), RECEIVED_KEY, "a value not a number")
    _need(not times or len(times) == len(cols.get("ref") or ()), f"{RECEIVED_KEY} length", len(times))
    if not cols:
        return DeclarationTable({})
    _need(set(cols) == set(DECLARATION_COLUMNS), "declarations columns", sorted(cols))
    n = len(_list(cols["ref"], "declarations.ref"))
    for name in DECLARATION_COLUMNS:
        _need(len(_list(cols[name], f"declarations.{name}")) == n, f"declarations.{name} length", len(cols[name]))
    for name in ("ref", "trader", "origin"):
        _strings(cols[name], f"declarations.{name}")
    for name in ("container", "plate", "seal_id"):
        _need(all(v is None or type(v) is str for v in cols[name]), f"declarations.{name}", "a value not text or null")
    for name in ("declared_empty", "sealed"):
        _need(all(type(v) is bool for v in cols[name]), f"declarations.{name}", "a value not true or false")
    _need(all(v is None or _is_finite(v) for v in cols["weight_kg"]), "declarations.weight_kg", "a value not a number")
    for name in ("hs", "goods"):
        _need(all(type(v) is list and all(type(x) is str for x in v) for v in cols[name]), f"declarations.{name}",
              "a value not a list of text")
    _need(all(len(h) == len(g) for h, g in zip(cols["hs"], cols["goods"])), "declarations.goods", "lengths differ")
    return DeclarationTable(cols, times)


def _is_finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _need(ok: bool, name: str, value: object) -> None:
    if not ok:
        raise BundleError("bad_format", f"bundle field {name} is not valid: {value!r:.80}")


def _number(value: object, name: str) -> float:
    _need(_is_finite(value), name, value)
    return float(cast(float, value))


def _list(value: object, name: str) -> list[Any]:
    _need(isinstance(value, list), name, value)
    return cast(list[Any], value)


def _strings(value: object, name: str) -> list[str]:
    items = _list(value, name)
    _need(all(type(v) is str for v in items), name, "a list with a value that is not a string")
    return items
