"""Seal policy (pure): a container declared sealed whose seal is missing, opened or tampered goes to manual.

Where "declared sealed" comes from: each container's declaration when the station's risk bundle carries
one for it declared sealed, else the plate's (`sealed`, `seal_id`: `for_item`); without one (or one declared
unsealed: a declaration never takes the lane's check away), the station config's lane
setting (`[seals]`: `declared_sealed`, and the seal numbers `expected` on this lane). An item with several
containers takes the strictest of their expectations (`strictest`). Seal numbers are
compared normalised (as identities are: risk.normal). A seal counts as intact only when its reader reported it intact
and no event heard while the item was in the lane said otherwise: a seal read without a state, a
seal tampered and then reported intact again, and a declared seal never read are all problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from central_sync.schema import Identity, ItemKind, SealEventOut
from risk.bundle import Declaration
from risk.normal import normalise

if TYPE_CHECKING:
    from edge.config import StationConfig

SEAL_KINDS = ("seal", "eseal")
HOLD_S = 300.0
"""Seconds a seal that left the range stays the item's it joined, by default (`[seals] hold_s`): reader link drops
and silences are short; a vehicle waits at the barrier for minutes at most. A gantry ends it when the vehicle left
the lane."""
HOLD_S_RANGE = (30.0, 3600.0)  # shorter: a silence at the barrier hands the seal to the vehicle behind


@dataclass(frozen=True)
class SealExpectation:
    """What the lane expects of the items' seals: declared sealed, the numbers (none = any seal), for which kinds;
    `source` names where it comes from when that is not the lane (e.g. "declaration D-1")."""

    declared_sealed: bool
    seal_ids: tuple[str, ...] = ()
    item_kinds: tuple[ItemKind, ...] = (ItemKind.CONTAINER, ItemKind.VEHICLE)
    source: str = ""
    required: bool = True   # False: no seal need be read, but every seal read must be intact

    def problem(self, kind: ItemKind, identities: Sequence[Identity],
                events: Sequence[SealEventOut] = ()) -> str | None:
        """Why the item's declared seals are not intact (one sentence), or None when they are or none is declared."""
        if not self.declared_sealed or kind not in self.item_kinds:
            return None
        seals = {normalise("seal", i.value): i for i in identities if i.kind in SEAL_KINDS}
        wanted = tuple(normalise("seal", s) for s in self.seal_ids) or tuple(seals)
        by = f" by {self.source}" if self.source else ""
        if self.required:
            if not wanted:
                return f"the item is declared sealed{by} and no seal was read"
            missing = [s for s in wanted if s not in seals]
            if missing and seals:
                read = ", ".join(i.value for i in seals.values())
                return f"seal {', '.join(missing)} declared{by} differs from the seal read ({read})"
            if missing:
                return f"declared seal {', '.join(missing)}{by} was not read"
        # every seal read on the item must be intact, the declared ones first: a tampered seal on a container of the
        # item that needs none (declared unsealed beside one declared sealed) was cleared
        read_in_order = [*wanted, *(s for s in seals if s not in wanted)]
        return next((p for s in read_in_order if (p := _not_intact(seals[s], events)) is not None), None)


def for_item(declaration: Declaration | None, lane: SealExpectation | None) -> SealExpectation | None:
    """The item's seal expectation: its declaration's (sealed, seal id) where the bundle carries one, else the
    lane's setting. A declaration declared unsealed on a lane whose `[seals]` says sealed requires no seal, but a
    seal read on the item must still be intact (it took the lane's check away: a tampered seal read was cleared)."""
    if declaration is None:
        return lane
    if not declaration.sealed:   # no seal required; one read must still be intact where the lane says sealed
        if lane is None:
            return None
        return replace(lane, seal_ids=(), required=False, source=f"the lane ([seals]; declaration {declaration.ref} "
                                                                   f"declares no seal)")
    return SealExpectation(True, (declaration.seal_id,) if declaration.seal_id else (),
                           lane.item_kinds if lane is not None else SealExpectation(True).item_kinds,
                           f"declaration {declaration.ref}")


def strictest(expectations: Sequence[SealExpectation | None]) -> SealExpectation | None:
    """One expectation for an item's containers: sealed when any is, every seal number any of them names, for
    every kind any of them covers; None when none is sealed."""
    sealed = list(dict.fromkeys(e for e in expectations if e is not None and e.declared_sealed))
    if len(sealed) <= 1:
        return sealed[0] if sealed else None
    required = [e for e in sealed if e.required]   # what requires no seal adds no source: every seal read is checked
    return SealExpectation(True, tuple(dict.fromkeys(s for e in sealed for s in e.seal_ids)),
                           tuple(dict.fromkeys(k for e in sealed for k in e.item_kinds)),
                           " and ".join(dict.fromkeys(e.source for e in (required or sealed) if e.source)),
                           required=bool(required))


def _not_intact(seal: Identity, events: Sequence[SealEventOut]) -> str | None:
    broken = sorted({e.state for e in events if e.seal_id == seal.value and e.state != "intact"})
    if broken:
        return f"seal {seal.value} reported {' and '.join(broken)} while the item was in the lane"
    if seal.seal is None:
        return f"seal {seal.value} was read without its state"
    if seal.seal.state != "intact":
        return f"seal {seal.value} is {seal.seal.state}"
    return None


def seal_expectation(config: StationConfig) -> SealExpectation | None:
    """The lane's declared seals from the station config's [seals] table; None when none is declared."""
    section = config.seals
    if not section.declared_sealed:
        return None
    return SealExpectation(True, section.expected, section.item_kinds)
