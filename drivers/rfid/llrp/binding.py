"""Vehicle tags bound by TID (pure): a TID whose EPC changed, or a TID in two lanes at once, is flagged.

The TID is written at the chip factory and cannot be changed; the EPC can be rewritten by anyone
with a writer. A vehicle's tag is therefore known by its TID, and its EPC is only remembered: a
later read of the same TID with another EPC means the tag was rewritten (or its TID cloned onto a
second chip). One tag cannot be in two lanes at once, so the same TID present at two lanes' readers
means a cloned tag, or a reader reaching into its neighbour's lane: either way it is flagged.

The bindings of the MAX_TIDS TIDs seen last are kept (a busy lane's year of vehicles, or a device answering as
thousands of tags, would otherwise grow them without end); an older TID is bound anew when it is seen again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MAX_TIDS = 100_000
"""TIDs whose EPC binding is kept, the last seen."""


@dataclass(frozen=True)
class BindingFlag:
    """Something wrong with a tag's binding; `detail` is one sentence with the values, `values` the same by name
    (epc_changed: tid, epc_before, epc, lane; two_lanes: tid, lane, lanes joined by ", ")."""

    kind: Literal["epc_changed", "two_lanes"]
    tid: str
    detail: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class TidBinder:
    """Follows TID -> EPC and TID -> lanes where the tag is present; `seen` returns the flags raised."""

    epc_of: dict[str, str] = field(default_factory=dict)
    lanes_of: dict[str, set[str]] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    """Flags raised so far by kind."""
    forgotten: int = 0
    """Bindings let go of past MAX_TIDS, the oldest seen first."""

    def seen(self, tid: str, epc: str, lane: str) -> list[BindingFlag]:
        """A tag arrived at `lane`'s reader with this TID and EPC."""
        out = []
        bound = self.epc_of.pop(tid, epc)  # put back below: the last seen come last
        if bound != epc:
            out.append(BindingFlag("epc_changed", tid, f"tag TID {tid} was bound to EPC {bound} and now reads "
                                                       f"EPC {epc} at lane {lane}",
                                   {"tid": tid, "epc_before": bound, "epc": epc, "lane": lane}))
        self.epc_of[tid] = epc
        if len(self.epc_of) > MAX_TIDS:
            del self.epc_of[next(iter(self.epc_of))]
            self.forgotten += 1
        lanes = self.lanes_of.setdefault(tid, set())
        others = sorted(lanes - {lane})
        if others:
            out.append(BindingFlag("two_lanes", tid, f"tag TID {tid} is seen at lane {lane} while present at lane "
                                                     f"{', '.join(others)}",
                                   {"tid": tid, "lane": lane, "lanes": ", ".join(others)}))
        lanes.add(lane)
        for flag in out:
            self.flags[flag.kind] = self.flags.get(flag.kind, 0) + 1
        return out

    def gone(self, tid: str, lane: str) -> None:
        """The tag left `lane`'s reader (removed after silence or with the link)."""
        lanes = self.lanes_of.get(tid)
        if lanes is not None:
            lanes.discard(lane)
            if not lanes:
                del self.lanes_of[tid]
