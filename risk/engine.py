"""Evaluation on the station: the applied bundle's state, an item's facts, and the assessment.

`BundleState` is immutable: `apply(bundle)` builds a new one beside it (a snapshot from nothing, a delta
on top of the current one), so the station builds it in a worker thread and swaps one reference
(`Engine.swap`); an evaluation running meanwhile finishes on the state it started with.

Evaluation order (docs/risk.md): watchlist hits on the item's identities (and the declaration's trader
and the route), valid at the item's time; the rules; the built-in checks that a container declared empty
shows no load, that no plate or container read failed (`identity_unread`) and that the reads do not conflict
(`identity_conflict`); the fail-safe entries (no bundle: at least amber; expired bundle: stale, with the stale
random rate); the random draw. The lane is the strictest lane of everything that fired, the score the sum.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from risk import index
from risk.bundle import CLOCK_SKEW_S, Bundle, Declaration, ListMeta, RandomPolicy
from risk.errors import BundleError
from risk.normal import normalise
from risk.rules import IDENTITY_KINDS, LANES, LIST_KINDS, SEP, CompiledRules, Lane, compile_rules

FiredKind = Literal["rule", "watchlist", "random", "no_bundle", "stale"]
KIND_ALIASES = {"eseal": "seal", "rfid": "em4100"}
"""Identity kinds of older records and the kind they are looked up as."""
DECLARED_EMPTY_NOT_EMPTY = "declared_empty_not_empty"
IDENTITY_UNREAD = "identity_unread"
"""Fired (amber) when a camera's plate or container read failed, or an item expected to carry one has no identity
read at all: its watchlists could not be checked, so it is no clearer than an item on a station without a bundle."""
IDENTITY_CONFLICT = "identity_conflict"
"""Fired (amber) when the item's reads conflict (edge.identity: two plates of one jurisdiction, two EPCs from one tag
TID, a tag flood): which identity is the vehicle's is not known, so a clean watchlist check of one of them clears
nothing."""
CAMERA_KINDS = ("plate", "container")
"""Identity kinds read by cameras: a read that failed or saw nothing is recorded with an empty value."""
NO_BUNDLE_POLICY = RandomPolicy()
"""The random policy while no bundle has ever been applied (stale rate applies)."""


@dataclass(frozen=True)
class Facts:
    """What is known of an item when it is evaluated (identities as (kind, value) read, not yet normalised)."""

    item_id: str
    at: float  # UTC epoch seconds: validity periods, expiry and the local hour are judged at this time
    identities: tuple[tuple[str, str], ...] = ()
    station_id: str = ""
    station_kind: str = ""
    declaration: Declaration | None = None  # None: looked up in the bundle by container number or plate
    history_passes: int | None = None
    history_seizures: int | None = None
    history_last_outcome: str | None = None
    detector_verdict: str = "pending"  # clear | suspect | manual | pending (before the scan's verdict)
    detector_labels: tuple[str, ...] = ()
    load_present: bool | None = None
    route: str | None = None  # origin-destination, e.g. "CN-HK"; None: the declaration's origin and Engine.country
    identity_expected: bool = False  # a vehicle or container: an item without any identity read is amber
    identity_conflicts: int = 0  # conflicts flagged between the item's reads (edge.identity.conflicts): amber


@dataclass(frozen=True, slots=True)
class Fired:
    """One thing that raised the lane: a rule, a watchlist entry, the random draw or a fail-safe."""

    id: str
    kind: FiredKind
    reason: str
    score: int
    lane: Lane
    level: int = 0  # need-to-know level of a watchlist entry: who may see the reason


@dataclass(frozen=True)
class RandomDraw:
    """The auditable draw: value = first 8 bytes of sha256(f"{seed}:{item_id}") / 2**64; selected when < rate."""

    seed: str
    value: float
    rate: float
    selected: bool


@dataclass(frozen=True)
class Assessment:
    lane: Lane
    score: int
    fired: tuple[Fired, ...]
    random_draw: RandomDraw | None
    bundle_version: int | None
    stale: bool

    def to_record(self) -> dict[str, Any]:
        """The record's `risk` field (docs/architecture.md)."""
        draw = self.random_draw
        return {"lane": self.lane, "score": self.score, "stale": self.stale, "bundle": self.bundle_version,
                "rules": [{"id": f.id, "kind": f.kind, "reason": f.reason, "score": f.score, "lane": f.lane,
                           "level": f.level} for f in self.fired],
                "random": None if draw is None else {"seed": draw.seed, "draw": draw.value, "rate": draw.rate,
                                                     "selected": draw.selected}}


def draw(seed: str, item_id: str, rate: float) -> RandomDraw:
    """The random draw for an item: reproducible from (seed, item id), uniform in [0, 1)."""
    value = int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:8], "big") / 2**64
    return RandomDraw(seed, value, rate, value < rate)


@dataclass(frozen=True, eq=False)
class BundleState:
    """An applied bundle (or none): the watchlist index, compiled rules, declarations, random policy."""

    version: int | None = None
    sha256: str | None = None
    issued_at: float | None = None
    expires_at: float | None = None
    metas: tuple[ListMeta, ...] = ()
    lists: Mapping[str, index.KindIndex] = field(default_factory=dict)
    rules: CompiledRules = field(default_factory=CompiledRules)
    random: RandomPolicy = NO_BUNDLE_POLICY
    declarations: Mapping[str, Declaration] = field(default_factory=dict)  # by ref
    by_identity: Mapping[tuple[str, str], Declaration] = field(default_factory=dict)  # (container|plate, normalised)

    @classmethod
    def empty(cls) -> BundleState:
        return cls()

    @property
    def entries(self) -> int:
        return sum(len(i) for i in self.lists.values())

    def stale(self, at: float) -> bool:
        """Expired at `at`, or issued more than CLOCK_SKEW_S after it: the station's clock is behind (not yet set, a
        flat clock battery), so the bundle's age is unknown and every newer one is refused as not yet valid."""
        if self.expires_at is not None and at >= self.expires_at:
            return True
        return self.issued_at is not None and at < self.issued_at - CLOCK_SKEW_S

    def lookup(self, kind: str, value: str) -> list[ListMeta]:
        """Every list entry of this kind with exactly this normalised value (validity not checked)."""
        idx = self.lists.get(kind)
        return [self.metas[m] for m in idx.lookup(value)] if idx is not None else []

    def declaration(self, identities: tuple[tuple[str, str], ...]) -> Declaration | None:
        """The declaration of an item's container (first) or plate, identities as read; None if none is carried."""
        return _declaration_for(self, _normalised(identities))

    def apply(self, bundle: Bundle) -> BundleState:
        """A new state with the bundle applied; this one is left as it was. BundleError if a delta does not fit."""
        if bundle.kind == "delta" and bundle.base_version != self.version:
            raise BundleError("base_mismatch", f"delta {bundle.version} is made on version {bundle.base_version}, "
                                               f"the state is at {self.version}")
        base = self if bundle.kind == "delta" else BundleState()
        metas, meta_map = _merged_metas(base.metas, bundle.table.metas)
        dropped: dict[str, list[str]] = {}
        for kind, value in bundle.removed:
            dropped.setdefault(kind, []).append(value)
        lists = dict(base.lists)
        for kind in set(bundle.table.columns) | set(dropped):
            values, idx = bundle.table.columns.get(kind, ("", index.NO_ROWS))
            lists[kind] = index.build(values, idx, meta_map, base.lists.get(kind, index.EMPTY), dropped.get(kind, ()))
        decls = dict(base.declarations)
        for ref in bundle.removed_declarations:
            decls.pop(ref, None)
        decls.update((d.ref, d) for d in bundle.declaration_table.rows())
        rules = compile_rules(bundle.rules) if bundle.rules_changed else base.rules
        return BundleState(version=bundle.version, sha256=bundle.sha256, issued_at=bundle.issued_at,
                           expires_at=bundle.expires_at, metas=metas, lists=lists, rules=rules, random=bundle.random,
                           declarations=decls, by_identity=_by_identity(decls.values()))


def _merged_metas(old: tuple[ListMeta, ...],
                  new: tuple[ListMeta, ...]) -> tuple[tuple[ListMeta, ...], npt.NDArray[np.int32]]:
    """The old metas plus the new ones not already there, and where each new one now sits."""
    where = {m: i for i, m in enumerate(old)}
    mapped = [where.setdefault(m, len(where)) for m in new]
    merged = tuple(sorted(where, key=where.__getitem__))
    return merged, np.asarray(mapped, dtype=np.int32)


def _by_identity(decls: Iterable[Declaration]) -> dict[tuple[str, str], Declaration]:
    """The declarations by normalised container number and plate: of several, the one the hub received last
    (then the greatest ref), whatever order they came in, so a station on deltas and one on the snapshot agree."""
    out: dict[tuple[str, str], Declaration] = {}
    for d in decls:
        for kind, value in (("container", d.container), ("plate", d.plate)):
            key = (kind, normalise(kind, value)) if value else None
            if key is not None and ((held := out.get(key)) is None or _newness(d) > _newness(held)):
                out[key] = d
    return out


def _newness(d: Declaration) -> tuple[float, str]:
    return (-math.inf if d.received_at is None else d.received_at, d.ref)


class Engine:
    """Evaluates items against the current state; `swap` replaces the state with one assignment. `country` (ISO
    3166 alpha-2, the station's) is the destination of an item's route, its declaration's origin the start."""

    def __init__(self, state: BundleState | None = None, *, seed: str = "", tz: str | tzinfo = "UTC",
                 country: str = "") -> None:
        self._state = state if state is not None else BundleState.empty()
        self.seed = seed
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.country = country

    @property
    def state(self) -> BundleState:
        return self._state

    def swap(self, state: BundleState) -> None:
        """Make `state` the one evaluated from now on (atomic: one reference)."""
        self._state = state

    def evaluate(self, facts: Facts) -> Assessment:
        """The item's lane, score, what fired and the random draw, on the state current at the call."""
        st = self._state
        idents = _normalised(facts.identities)
        decl = facts.declaration or _declaration_for(st, idents)
        route = facts.route if facts.route is not None else self._route(decl)
        fired = _watch_hits(st, idents, decl, facts.at, route)
        view = self._view(facts, idents, decl, route, {f.id.split(":", 1)[0] for f in fired})
        fired += [Fired(r.id, "rule", r.reason, r.score, r.lane) for r in st.rules.fired(view)]
        if decl is not None and decl.declared_empty and facts.load_present is True:
            fired.append(Fired(DECLARED_EMPTY_NOT_EMPTY, "rule", DECLARED_EMPTY_NOT_EMPTY, 100, "red"))
        if _unread(facts, idents):
            fired.append(Fired(IDENTITY_UNREAD, "rule", IDENTITY_UNREAD, 0, "amber"))
        if facts.identity_conflicts:
            fired.append(Fired(IDENTITY_CONFLICT, "rule", IDENTITY_CONFLICT, 0, "amber"))
        stale = st.stale(facts.at)
        if st.version is None:
            fired.append(Fired("no_bundle", "no_bundle", "no_bundle", 0, "amber"))
        elif stale:
            fired.append(Fired("stale", "stale", "stale", 0, "green"))
        rnd = draw(self.seed, facts.item_id,
                   st.random.rate_for(facts.station_id, facts.station_kind, stale or st.version is None))
        if rnd.selected:
            fired.append(Fired("random", "random", "random", 0, st.random.lane))
        lane: Lane = max((f.lane for f in fired), key=LANES.index, default="green")
        return Assessment(lane, sum(f.score for f in fired), tuple(fired), rnd, st.version, stale)

    def _route(self, decl: Declaration | None) -> str | None:
        """The item's route as the declaration's origin and this station's country; None unless both are known."""
        return f"{decl.origin}-{self.country}" if decl is not None and decl.origin and self.country else None

    def _view(self, facts: Facts, idents: list[tuple[str, str]], decl: Declaration | None, route: str | None,
              listed: set[str]) -> dict[str, Any]:
        """The facts by the names the rule language uses (rules.FACTS), normalised like the rules' values."""
        local = datetime.fromtimestamp(facts.at, self.tz)
        view: dict[str, Any] = {"listed": listed, "time.hour": local.hour, "time.weekday": local.weekday(),
                                "station.id": facts.station_id, "station.kind": facts.station_kind,
                                "detector.verdict": facts.detector_verdict,
                                "detector.labels": [x.replace(SEP, "") for x in facts.detector_labels],
                                "detector.load_present": facts.load_present,
                                "history.passes": facts.history_passes, "history.seizures": facts.history_seizures,
                                "history.last_outcome": facts.history_last_outcome,
                                "route": None if route is None else normalise("route", route),
                                "declaration.present": decl is not None}
        for kind, value in idents:
            view.setdefault(f"identity.{kind}", []).append(value)
        if decl is not None:
            view |= {"declaration.trader": normalise("trader", decl.trader),
                     "declaration.hs": [normalise("hs", h) for h, _ in decl.goods],
                     "declaration.declared_empty": decl.declared_empty, "declaration.weight_kg": decl.weight_kg,
                     "declaration.origin": normalise("origin", decl.origin) or None, "declaration.sealed": decl.sealed}
        return view


def _unread(facts: Facts, idents: list[tuple[str, str]]) -> bool:
    """A camera's plate or container read came back empty (low confidence, a failed check digit, nothing seen),
    or the item is expected to carry an identity and none of its own was read (an officer's badge is none)."""
    failed = any(kind in CAMERA_KINDS and not normalise(kind, value) for kind, value in facts.identities)
    return failed or (facts.identity_expected and not any(kind in IDENTITY_KINDS for kind, _ in idents))


def _normalised(identities: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for kind, value in identities:
        kind = KIND_ALIASES.get(kind, kind)
        norm = normalise(kind, value) if value else ""
        if norm and (kind, norm) not in out:
            out.append((kind, norm))
    return out


def _declaration_for(st: BundleState, idents: list[tuple[str, str]]) -> Declaration | None:
    """The declaration of the item's container (first) or plate, if the bundle carries one."""
    for wanted in ("container", "plate"):
        for kind, value in idents:
            if kind == wanted and (found := st.by_identity.get((kind, value))) is not None:
                return found
    return None


def _watch_hits(st: BundleState, idents: list[tuple[str, str]], decl: Declaration | None, at: float,
                route: str | None) -> list[Fired]:
    """Watchlist entries, valid at the item's time, on its identities, its declaration's trader and its route."""
    keys = [(k, v) for k, v in idents if k in LIST_KINDS]
    if decl is not None and decl.trader:
        keys.append(("trader", normalise("trader", decl.trader)))
    if route:
        keys.append(("route", normalise("route", route)))
    fired: list[Fired] = []
    for kind, value in keys:
        for meta in st.lookup(kind, value):
            if meta.valid_at(at):
                fired.append(Fired(f"{kind}:{meta.list_id}", "watchlist", meta.reason, meta.score, meta.lane,
                                   meta.level))
    return fired
