"""The gantry lane between the scanner and the barrier: which vehicles wait there, in order, and why.

A pure state (no IO; edge.stations.gantry drives the PLC from it). Vehicles join when their scan
starts and leave the lane in arrival order (FIFO) over the exit loop (released) or the search-bay
loop (sent to the search bay). A vehicle is released by a `clear` verdict or by an officer's or a
supervisor's decision, never by default or by time; a link loss or a release the PLC did not confirm
takes every pending way out back, so nothing moves without a new decision. At most `capacity`
vehicles may be in the lane: when it is full, the lane is held (the entry light stays red and no
new vehicle is scanned) until the first one leaves.

The lane outlives the daemon (`lane.json` in data_dir, edge.stations.statefile): vehicles left in it
by the last daemon are waiting for an officer again after a restart, whatever was decided before; each keeps the parts
the entry loop counted for it (a cab and its trailer are 2), so its exit is checked for a tailgate as before.
A file that cannot be read (or holds a vehicle that cannot be read) leaves the lane `unknown`: it may
hold vehicles the station does not know, so it is held (entry light red, no gate opened) until a
supervisor, having checked the lane, confirms on the screen that it holds no vehicle but those the
screen lists (`confirm_known`: the unreadable file is kept beside it for a technician), or a
technician removes the file and restarts the station.

The same hold follows an exit tailgate (`hold`): a vehicle that may have followed the released one out through the
open gate (edge.stations.gantry). The lane may then list vehicles that are gone (`missing`: those that stood behind
the released one), so no gate opens for any vehicle until a supervisor, having checked the lane, confirms which of
them are still there (`confirm_known`); the hold is kept in the lane file, so a restart does not end it.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import structlog

from edge.stations import statefile

log = structlog.get_logger()

FILE_NAME = "lane.json"
BREAKS_KEPT = 32  # the vehicle separator's latest broken edges kept, to look back at a trailer's time on the loop
Way = Literal["release", "search_bay"]
Hold = Literal["", "unreadable", "exit_tailgate"]
WAYS: tuple[Way, ...] = ("release", "search_bay")


@dataclass(frozen=True)
class LaneDecision:
    """What an officer's decision on a vehicle came to: `outcome` open (its gate is confirmed open),
    queued (it leaves when the vehicles ahead have), refused or failed; `code` names it for the screen
    and `message` says it in one sentence."""

    outcome: Literal["open", "queued", "confirmed", "refused", "failed"]
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Vehicle:
    """One vehicle in the lane: its inspection record id, since when, and what will happen to it."""

    id: str  # the inspection record's id
    since: str  # UTC RFC 3339: when its scan started
    verdict: str | None = None  # None while it is being scanned
    way: Way | None = None  # the way out decided for it (None: waiting for an officer)
    by: str = ""  # who decided: "verdict" for a clear verdict, else the officer's badge
    leaving: bool = False  # its gate is open (read back): it is on its way out
    opened: Way | None = None  # the gate last confirmed open for it (kept when a link loss withdraws its way)
    problem: str = ""  # why its last way out did not happen, in one sentence
    parts: int | None = 1  # its parts on the entry loop (a cab and its trailer are 2); None: not counted (recalled
    # from a lane file written before counts were kept)
    mono: float = field(default_factory=time.monotonic, compare=False)

    @property
    def waiting_for_officer(self) -> bool:
        return self.verdict is not None and self.way is None

    def public(self, now: float) -> dict[str, object]:
        """The vehicle as the screen and /healthz show it."""
        body = {k: v for k, v in asdict(self).items() if k != "mono"}
        return {**body, "waiting_s": round(now - self.mono, 1), "waiting_for_officer": self.waiting_for_officer}


@dataclass
class Loop:
    """A vehicle loop's edges as vehicles. A loop blocked again less than `gap_s` after it went free is still the
    same vehicle (a trailer behind its cab, a loop that chatters), and a vehicle has passed only once the loop was
    occupied `occupied_s` and then stayed free `gap_s` (`still_free`). Each edge that is no vehicle is a flap."""

    gap_s: float
    occupied_s: float
    blocked: bool = False
    since: float = -math.inf  # when the vehicle on it now (or last) first blocked it
    freed: float = -math.inf  # its last unblocked edge
    flaps: int = 0
    parts: int = 0  # the occupancies the vehicle on it now (or last) made: a cab and its trailer are 2

    def entered(self, t: float, parted: bool = False, coupled: bool = False) -> bool:
        """A blocked edge at t: True when it is a new vehicle (`parted`: the vehicle separator saw a gap between two
        vehicles since the loop went free, so a short gap is a vehicle following, not a trailer; `coupled`: it saw
        a drawbar all the while, so a long gap is a truck that stood with its drawbar over the loop)."""
        self.blocked = True
        if (t - self.freed < self.gap_s and not parted) or coupled:
            self.flaps += 1
            self.parts += 1
            return False
        self.since, self.parts = t, 1
        return True

    def was_vehicle(self, t: float) -> None:
        """The part that blocked it at t, taken for a trailer, was a vehicle of its own: the vehicle on it now (or
        last), one part so far."""
        self.since, self.parts = t, 1

    def cleared(self, t: float) -> bool:
        """An unblocked edge at t: True when a vehicle may have passed (it has once `still_free(t)` after gap_s)."""
        self.blocked, self.freed = False, t
        if t - self.since < self.occupied_s:
            self.flaps += 1
            return False
        return True

    def still_free(self, t: float) -> bool:
        """Nothing has blocked the loop since it went free at t."""
        return not self.blocked and self.freed == t


@dataclass
class Separator:
    """The vehicle separator over the entry loop (a light curtain at drawbar height) as its edges: broken along a
    vehicle and the coupling to its trailer, clear in a gap between two vehicles. Checked against the loop: a
    vehicle that never broke it (`not_broken_by`), or a vehicle that found it broken for the `gap_s` before it
    reached the free loop (`broken_before`), is a separator stuck, misplaced or seeing something the loop does
    not."""

    broken: bool = False
    last_clear: float = -math.inf  # until when it was last seen clear (its last broken edge)
    last_broken: float = -math.inf  # until when it was last seen broken (its last clear edge)
    faults: int = 0  # contradictions with the loop since start
    loop_faults: int = 0  # entry loop edges within the loop's gap that the beam never followed (a loop that chatters)
    breaks: deque[float] = field(default_factory=lambda: deque(maxlen=BREAKS_KEPT))  # its latest broken edges

    def edge(self, broken: bool, t: float, first: bool = False) -> None:
        """An edge at t (`first`: from nothing read, so it was not seen the other way until t)."""
        if not first:
            if broken:
                self.last_clear = t
                self.breaks.append(t)
            else:
                self.last_broken = t
        self.broken = broken

    def broke_between(self, start: float, end: float) -> list[float]:
        """When it broke (clear before) after `start` and up to `end`."""
        return [t for t in self.breaks if start < t <= end]

    def clear_since(self, t: float) -> bool:
        """Seen clear at some moment after t: a gap between two vehicles."""
        return not self.broken or self.last_clear > t

    def broke_since(self, t: float) -> bool:
        """Seen broken at some moment from t on."""
        return self.broken or self.last_clear >= t

    def broken_before(self, freed: float, t: float, gap_s: float, lead_s: float = 0.0) -> str:
        """Why a vehicle entering the loop at t, free since `freed` (at least gap_s before), contradicts the
        separator (it was not clear at any moment of those last gap_s, nor in the `lead_s` before them, within which
        a beam mounted ahead of the loop may have been broken by this vehicle's front); '' when it does not."""
        if self.clear_since(t - gap_s - lead_s):
            return ""
        free = "time since the station started" if freed == -math.inf else f"{t - freed:.1f} s"
        return f"the vehicle separator read broken throughout the last {gap_s:g} s of the {free} the entry loop " \
               f"was free before a vehicle entered it"

    def not_broken_by(self, entered: float, now: float) -> str:
        """Why a vehicle that entered the loop at `entered` contradicts the separator by `now`; '' when it does not."""
        if self.broken or self.last_broken > entered:
            return ""
        return f"the vehicle separator was not broken by the vehicle that entered the loop {now - entered:.1f} s ago"


@dataclass
class Lane:
    """The vehicles between the scanner and the barrier, first to leave first."""

    capacity: int
    file: Path | None = None
    vehicles: list[Vehicle] = field(default_factory=list)
    unexpected_exits: int = 0  # a loop saw a vehicle leave that the lane did not let go
    unknown: str = ""  # why the lane may not hold the vehicles it lists (held), in one sentence
    held_for: Hold = ""  # what holds it: its file could not be read, or a vehicle may have left undecided
    missing: list[str] = field(default_factory=list)  # vehicles it lists that may have left undecided (exit tailgate)

    def __post_init__(self) -> None:
        if self.file is not None:
            self._recall(self.file)

    # ---- what the flow asks -----------------------------------------------------------------
    @property
    def full(self) -> bool:
        """No room for one more vehicle (nor while the lane may hold vehicles it does not know)."""
        return bool(self.unknown) or len(self.vehicles) >= self.capacity

    @property
    def head(self) -> Vehicle | None:
        return self.vehicles[0] if self.vehicles else None

    def find(self, record_id: str) -> Vehicle | None:
        return next((v for v in self.vehicles if v.id == record_id), None)

    def position(self, vehicle: Vehicle) -> int:
        """0 for the vehicle at the barrier, 1 for the one behind it, ..."""
        return self.vehicles.index(vehicle)

    def waiting(self) -> Iterator[Vehicle]:
        return (v for v in self.vehicles if v.waiting_for_officer)

    # ---- what happens -------------------------------------------------------------------------
    def arrived(self, record_id: str) -> Vehicle:
        """A vehicle entered the scan zone: it joins the lane at the back, one part so far (`counted`)."""
        vehicle = Vehicle(record_id, datetime.now(timezone.utc).isoformat())
        self.vehicles.append(vehicle)
        self._save()
        return vehicle

    def counted(self, record_id: str, parts: int) -> None:
        """The entry loop counted `parts` for a vehicle (its trailer came in behind it): kept with it in the lane
        file, so that a restart still knows how many parts may leave with it (no vehicle in the lane: nothing)."""
        vehicle = self.find(record_id)
        if vehicle is not None and vehicle.parts != parts:
            vehicle.parts = parts
            self._save()

    def judged(self, vehicle: Vehicle, verdict: str) -> None:
        """Its verdict is known: `clear` releases it in turn; anything else waits for an officer."""
        vehicle.verdict = verdict
        if verdict == "clear":
            vehicle.way, vehicle.by = "release", "verdict"
        self._save()

    def decided(self, vehicle: Vehicle, way: Way, actor: str) -> None:
        """An officer's (or supervisor's) decision: the way out it takes when it is first in the lane."""
        vehicle.way, vehicle.by, vehicle.problem, vehicle.opened = way, actor, "", None
        self._save()

    def opened(self, vehicle: Vehicle, way: Way) -> bool:
        """The gate `way` is confirmed open for it: it is on its way out, when that is still its way. When its way
        was withdrawn meanwhile (a link loss during the read-back) it waits for a new decision (False), yet may
        still pass the gate standing open over it."""
        vehicle.opened = way
        vehicle.leaving = vehicle.way == way
        return vehicle.leaving

    def not_opened(self, vehicle: Vehicle, problem: str) -> None:
        """Its gate did not open (as read back): it waits for a new decision."""
        vehicle.way, vehicle.leaving, vehicle.problem = None, False, problem
        self._save()

    def left(self, way: Way) -> Vehicle | None:
        """A loop says a vehicle left by `way`: the first vehicle, when its gate that way was opened for it
        (also when a link loss withdrew its way meanwhile: the PLC keeps a gate open over a vehicle)."""
        head = self.head
        if head is None or head.opened != way:
            self.unexpected_exits += 1
            log.error("gantry.unexpected_exit", way=way, first=head.id if head else None,
                      first_way=head.way if head else None, leaving=head.leaving if head else None)
            return None
        self.vehicles.pop(0)
        self._save()
        return head

    def hold(self, problem: str, missing: list[str]) -> None:
        """A vehicle may have left undecided (`missing`: those it may have been): the lane is held until a supervisor
        confirms which vehicles it still holds. A hold for an unreadable file stands as it is."""
        if self.held_for == "unreadable":
            return
        self.missing = [*self.missing, *(m for m in missing if m not in self.missing)]
        if not self.unknown:
            self.unknown = problem
        self.held_for = "exit_tailgate"
        log.error("gantry.lane_held", detail=self.unknown, missing=self.missing)
        self._save()

    def link_lost(self, reason: str) -> None:
        """Safe state: every way out not yet taken is withdrawn; each vehicle needs a new decision."""
        for vehicle in self.vehicles:
            if vehicle.way is not None or vehicle.leaving:
                self.not_opened(vehicle, f"the PLC link was lost ({reason}) before it left: decide again")

    # ---- what the screen and health show ------------------------------------------------------
    def status(self) -> dict[str, object]:
        """The lane for /healthz and the screen: held, waiting for officers, or flowing, and why."""
        now = time.monotonic()
        waiting = list(self.waiting())
        oldest = max((now - v.mono for v in waiting), default=0.0)
        state = "held" if self.full and (waiting or self.unknown) else "waiting" if waiting else "flowing"
        detail = f"lane held: {self.unknown}" if self.unknown else self.describe(state, len(waiting), oldest)
        return {"state": state, "capacity": self.capacity, "vehicles": [v.public(now) for v in self.vehicles],
                "waiting_for_officer": len(waiting), "oldest_s": round(oldest, 1), "detail": detail,
                "unexpected_exits": self.unexpected_exits, "unknown": self.unknown, "held_for": self.held_for,
                "missing": list(self.missing)}

    def describe(self, state: str, waiting: int, oldest_s: float) -> str:
        """One sentence, e.g. 'lane held: 2 vehicles waiting for an officer (oldest 3 min)'."""
        if state == "flowing":
            return f"lane flowing: {len(self.vehicles)} of {self.capacity} places taken"
        vehicles = "1 vehicle" if waiting == 1 else f"{waiting} vehicles"
        age = f"{oldest_s / 60:.0f} min" if oldest_s >= 90 else f"{oldest_s:.0f} s"
        return f"lane {state}: {vehicles} waiting for an officer (oldest {age})"

    # ---- persistence ----------------------------------------------------------------------------
    def _save(self) -> None:
        if self.file is None or self.held_for == "unreadable":  # the file stays as it is: a restart is held again
            return
        try:
            statefile.save(self.file, self._file_body())
        except OSError as exc:
            log.error("gantry.lane_file_write_failed", path=str(self.file), error=str(exc))

    def confirm_known(self, gone: frozenset[str] = frozenset()) -> str | None:
        """A supervisor checked the lane: it holds no vehicle but those listed, so the hold ends; `gone` (of
        `missing` only) left undecided and are taken out of the lane. For an unreadable file, the file is copied
        beside (`lane.unreadable-<UTC time>.json`, for a technician), then replaced
        atomically by the vehicles listed: until that replace the unreadable file stays in place, so a failed write
        or a power cut leaves the lane held at the next start (a file moved away first read as a new, empty lane,
        forgetting the vehicles that stand in it). Why not, in one sentence, when it could not be done (held)."""
        if not self.unknown:
            return None
        gone = gone & set(self.missing)
        if self.held_for != "unreadable":
            before = self.vehicles, self.unknown, self.held_for, self.missing
            self.vehicles = [v for v in self.vehicles if v.id not in gone]
            self.unknown, self.held_for, self.missing = "", "", []
            try:
                if self.file is not None:
                    statefile.save(self.file, self._file_body())
            except OSError as exc:  # a restart would find the hold in the file: it stands
                self.vehicles, self.unknown, self.held_for, self.missing = before
                log.error("gantry.lane_file_write_failed", path=str(self.file), error=str(exc))
                return f"the lane file {self.file} could not be written, so the lane stays held: {exc}"
            for vehicle in gone:
                log.warning("gantry.vehicle_left_undecided", vehicle=vehicle,
                            detail="a supervisor confirmed it left the lane without a decision")
            return None
        if self.file is not None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            kept = self.file.with_name(f"{self.file.stem}.unreadable-{stamp}{self.file.suffix}")
            try:
                if self.file.exists():
                    shutil.copy2(self.file, kept)
                statefile.save(self.file, {"vehicles": self._body()})
            except OSError as exc:
                log.error("gantry.lane_file_write_failed", path=str(self.file), error=str(exc))
                return f"the lane file {self.file} could not be replaced, so the lane stays held: {exc}"
            log.warning("gantry.lane_file_kept", path=str(kept), detail="the unreadable lane file, for a technician")
        self.unknown, self.held_for = "", ""
        return None

    def _file_body(self) -> dict[str, object]:
        body: dict[str, object] = {"vehicles": self._body()}
        if self.held_for == "exit_tailgate":
            body |= {"held": self.unknown, "missing": list(self.missing)}
        return body

    def _body(self) -> list[dict[str, object]]:
        return [{"id": v.id, "since": v.since, "verdict": v.verdict, "parts": v.parts} for v in self.vehicles]

    def _recall(self, path: Path) -> None:
        """Vehicles the last daemon left in the lane wait for an officer: nothing it decided is carried out.
        A file or a vehicle in it that cannot be read leaves the lane `unknown` (held)."""
        try:
            data = statefile.load(path, "gantry.lane_file_unreadable")
        except statefile.StateFileUnreadable as exc:
            self._unknowable(str(exc))
            return
        if data is None and not path.exists():  # a new lane
            return
        entries = data.get("vehicles") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            self._unknowable(f"{path} holds no list of vehicles (found {repr(data)[:80]})")
            return
        for entry in entries:
            vehicle = _recalled(entry)
            if vehicle is None:
                log.error("gantry.lane_entry_unreadable", path=str(path), entry=repr(entry)[:200])
                self._unknowable(f"{path} holds a vehicle that cannot be read ({repr(entry)[:80]})")
                continue
            vehicle.problem = "the station software restarted while it was in the lane: decide again"
            self.vehicles.append(vehicle)
        held, missing = (data.get("held"), data.get("missing")) if isinstance(data, dict) else (None, None)
        if held and not self.unknown:
            missing = [m for m in missing if isinstance(m, str)] if isinstance(missing, list) else []
            self.unknown, self.held_for, self.missing = str(held)[:500], "exit_tailgate", missing
        if self.vehicles:
            log.warning("gantry.lane_recalled", vehicles=[v.id for v in self.vehicles])

    def _unknowable(self, problem: str) -> None:
        """The lane may hold vehicles it does not know: held until the file is removed and the station restarted."""
        if self.unknown:  # the first problem found is the one told
            return
        self.unknown = (f"{problem}; the lane may hold vehicles the station does not know, so no vehicle is let in or "
                        f"out until a supervisor, having checked the lane, confirms it on the screen")
        self.held_for, self.missing = "unreadable", []
        log.error("gantry.lane_unknown", detail=self.unknown)


def _recalled(entry: object) -> Vehicle | None:
    """A vehicle as the lane file holds it; None when it cannot be read."""
    if not isinstance(entry, dict):
        return None
    record_id, since, verdict, parts = entry.get("id"), entry.get("since"), entry.get("verdict"), entry.get("parts")
    if not (isinstance(record_id, str) and record_id and isinstance(since, str) and isinstance(verdict, str | None)):
        return None
    if parts is not None and (type(parts) is not int or parts < 1):  # absent or null: written before counts were kept
        return None
    try:
        if datetime.fromisoformat(since).tzinfo is None:
            return None
    except ValueError:
        return None
    return Vehicle(record_id, since, verdict or "manual", parts=parts)
