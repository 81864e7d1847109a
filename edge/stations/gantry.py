"""Drive-through gantry: vehicles are scanned one at a time at the entry loop, queue towards the barrier,
and leave in arrival order over the exit loop (released) or into the search bay.

Safe state is red lights, a closed barrier and a closed search-bay gate. A vehicle leaves only when
its gate is confirmed open by read-back, and only for a `clear` verdict or an officer's decision
(edge.stations.lane): never by default, by time, or after a link loss or a restart without a new
decision. The entry light lets one vehicle into the scan zone per green, only while the scanner is
free and the lane (`[gantry] queue` vehicles between scanner and barrier) has room; otherwise the
lane is held and health says why.

A vehicle following the one ahead closer than `loop_gap_s` on the entry loop is that one's trailer, unless the
PLC maps the vehicle separator (`vehicle_separator`, docs/plc-register-map.md): a gap it saw then makes the
follower a vehicle of its own once its beam breaks (within `separator_wait_s` and SEPARATOR_POLLS polls of the loop's
edge, as the beam may be mounted a little past the loop; else the loop chatters: a loop fault, no vehicle). A loop
free longer than `loop_gap_s` while the beam, broken by the vehicle's front, stayed broken is a truck standing with its
drawbar over the loop: what follows is its trailer. Every part taken for a trailer is checked once it leaves the loop:
the beam must clear behind the vehicle's last part (else it is stuck) and must not break again with no vehicle's front
on the loop (a vehicle shorter than the beam's distance past the loop): else the part is a vehicle of its own, recorded
unscanned and `manual`, and the vehicle ahead is not cleared (or the lane is held).
A separator that contradicts the loop sends the vehicles concerned to `manual`.

The exit loops cannot tell a vehicle following the released one out through the open gate from its trailer, but the
entry loop counted the released vehicle's parts (a cab and its trailer are 2; kept with it in the lane file, so a
vehicle recalled after a restart has its count): more parts leaving over the exit loop, or a vehicle leaving that the
lane had not let go, is an exit tailgate. The alarm `exit_tailgate` names the vehicles
that may have left undecided, and the lane is held (no gate opens, entry light red) until a supervisor, having checked
the lane, confirms which vehicles are still in it: a vehicle that left undecided is never taken for the released one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from prometheus_client import CollectorRegistry, Gauge

from appliance.watchdog import Progress, follow_turns
from central_sync.schema import InspectionRecord, ItemKind, Verdict
from drivers.errors import DriverError
from drivers.plc.config import SEPARATOR
from drivers.plc.state import EyeEdge, Light, LinkChanged, Plc
from edge.devices import Devices
from edge.errors import DiskFull, StationFault, StoreError
from edge.history import HISTORY_EVENTS, VehicleHistory
from edge.inspection import Inspector, Item
from edge.metrics import count_since_start
from edge.stations import FlowParts, InspectorParts, lane
from edge.stations.acquisition import (LIVENESS_S, FailedAcquisition, LineScan, current_link,
                                      hold_scanner_while_unsafe, plc_turns, start_line_scan)
from edge.stations.cameras import CameraWindow
from edge.stations.identify import TagWindow
from edge.stations.lane import Lane, LaneDecision, Loop, Separator, Vehicle, Way
from edge.verdict import Reason
from models.errors import ModelError
from models.scan import load_scan

log = structlog.get_logger()
CLOSE_AGAIN_S = 2.0  # how often a gate that did not close is asked to close again
ROOM_CHECK_S = 2.0  # how often records the full store refused are tried again
SEPARATOR_POLLS = 2  # PLC polls after an entry loop edge the separator's beam is waited for at least
SEPARATOR_LOOK_S = 0.01  # how often the wait for those polls looks at the PLC's poll count
FRONTS_KEPT = 32  # entry loop edges taken for vehicles' fronts kept, to explain the separator's beam breaking

GATE: dict[Way, str] = {"release": "barrier", "search_bay": "search-bay gate"}
EXIT_LOOPS: dict[str, Way] = {"eye_exit": "release", "eye_search_bay": "search_bay"}
LANE_UNKNOWN = "lane_unknown"  # the alarm (and decision refusal) while the lane may hold vehicles it does not know
EXIT_TAILGATE = "exit_tailgate"  # the alarm (and decision refusal) while a vehicle may have left the lane undecided


@dataclass
class GantryFlow:
    devices: Devices
    parts: InspectorParts  # the inspector is built with this flow's actuation
    progress: Progress
    item_kind: ItemKind
    tags: TagWindow
    lane: Lane
    cameras: CameraWindow | None = None  # plates and container codes read while the vehicle is scanned
    history: VehicleHistory | None = None  # references asked for as identities are read, compared after the record
    identify_s: float = 2.0  # [gantry] identify_s: how long a vehicle whose scan failed is read at the entry
    loop_gap_s: float = 0.5  # [gantry] loop_gap_s: how long a loop stays free between two vehicles
    loop_occupied_s: float = 0.2  # [gantry] loop_occupied_s: how long a vehicle passing an exit loop occupies it
    separator: int | None = None  # the vehicle separator's place among the PLC's eyes (None: the PLC has none)
    separator_wait_s: float = 0.5  # [gantry] separator_wait_s: how long after the loop's edge the beam may break
    inspector: Inspector = field(init=False)
    belt: None = field(default=None, init=False)  # no belt for the screen to restart
    _scanning: bool = False
    _gates: asyncio.Lock = field(default_factory=asyncio.Lock)  # one gate operation at a time
    _entry: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: asyncio.TaskGroup | None = None
    _not_closed: dict[Way, str] = field(default_factory=dict)  # a way out whose gate did not close, and why
    _unrecorded: dict[str, InspectionRecord] = field(default_factory=dict)  # records the full store refused
    _loops: dict[str, Loop] = field(init=False)
    _separator: Separator | None = field(init=False)
    _entered_at: dict[str, float] = field(default_factory=dict)  # vehicle -> when it blocked the entry loop
    _doubted: dict[str, str] = field(default_factory=dict)  # vehicle -> how the separator contradicted the loop
    _unseparated: tuple[EyeEdge, float] | None = None  # an entry loop edge waiting for the beam, and when it went free
    _last_entered: str | None = None  # the vehicle the entry loop's next flap belongs to (its trailer)
    _trailer_on_loop: tuple[str, EyeEdge] | None = None  # the vehicle whose part (a trailer) is on the entry loop,
    # taken for its part with the separator's beam broken, and the entry loop edge that part blocked it with
    _behind: dict[str, float] = field(default_factory=dict)  # vehicle -> when its last part left the entry loop, the
    # separator's beam not yet clear behind it (a road train's drawbar over the loop, or the beam stuck)
    _fronts: deque[float] = field(default_factory=lambda: deque(maxlen=FRONTS_KEPT))  # entry loop edges taken for
    # vehicles' fronts (those still waiting for the beam included)

    def __post_init__(self) -> None:
        self.inspector = self.parts.build(self._actuate)
        self._loops = {eye: Loop(self.loop_gap_s, self.loop_occupied_s) for eye in ("eye_entry", *EXIT_LOOPS)}
        self._separator = Separator() if self.separator is not None else None
        registry, lane = self.parts.metrics.registry, self.lane
        for name, doc, value in (
                ("edge_lane_vehicles", "Vehicles between the scanner and the barrier", lambda: len(lane.vehicles)),
                ("edge_lane_waiting_for_officer", "Vehicles in the lane waiting for an officer's decision",
                 lambda: sum(1 for _ in lane.waiting())),
                ("edge_lane_held", "1 while the lane is full and held for an officer (nothing new is scanned)",
                 lambda: int(lane.status()["state"] == "held"))):
            Gauge(name, doc, registry=registry).set_function(value)
        loops, tags, separator = self._loops, self.tags, self._separator
        count_since_start(registry, "edge_lane_loop_flaps", "Loop edges since start that were no vehicle (a trailer "
                          "behind its cab, a loop that chatters)", lambda: {e: v.flaps for e, v in loops.items()}, "loop")
        count_since_start(registry, "edge_lane_tags_at_exit", "Tag reads since start at a reader's exit antennas, of a "
                          "vehicle recorded in the lane or of none (docs/rfid-readers.md)",
                          lambda: {"recorded": tags.tags_at_exit, "unrecorded": tags.unrecorded_tags_at_exit},
                          "vehicle")
        if separator is not None:
            count_since_start(registry, "edge_lane_separator_faults", "Vehicles since start whose vehicle separator "
                              "reading contradicted the entry loop (sent to manual)", lambda: separator.faults)
            count_since_start(registry, "edge_lane_loop_faults", "Entry loop edges since start within loop_gap_s of a "
                              "vehicle that the separator's beam never followed (a loop that chatters: no vehicle)",
                              lambda: separator.loop_faults)
        if self.history is not None:
            _history_metrics(self.history, registry)

    @classmethod
    def build(cls, parts: FlowParts) -> GantryFlow:
        config = parts.config
        return cls(parts.devices, parts.inspector, parts.progress, parts.item_kind, parts.tags(),
                   Lane(config.gantry.queue, config.station.data_dir / lane.FILE_NAME), parts.cameras(), parts.history,
                   config.gantry.identify_s, config.gantry.loop_gap_s, config.gantry.loop_occupied_s,
                   separator_eye(config.devices.plc.eyes if config.devices.plc is not None else ()),
                   config.gantry.separator_wait_s)

    @property
    def lane_control(self) -> GantryFlow:
        """The lane the screen shows and officers decide on (edge.context.LaneControl)."""
        return self

    def stopped_on_request(self) -> None:
        """Nothing outlives the daemon but the lane file: the PLC's safe state holds vehicles at the barrier."""

    @property
    def plc(self) -> Plc:
        """The station's PLC (a DriverError when it could not be opened at start)."""
        return self.devices.opened_plc()

    async def run(self) -> None:
        plc = self.plc
        self.progress.register("plc")
        if self._separator is None:
            log.warning("gantry.no_vehicle_separator", loop_gap_s=self.loop_gap_s,
                        detail=f"the PLC maps no {SEPARATOR}, so a vehicle following the one ahead within "
                               f"{self.loop_gap_s} s on the entry loop is taken for its trailer (no record of its own)")
        await self._safe_state()
        await self._lane_alarm()
        await self._record_recalled()
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(follow_turns(self.progress, "plc", lambda: plc_turns(plc), LIVENESS_S),
                              name="plc-liveness")
            tasks.create_task(self.tags.run(), name="readers")
            tasks.create_task(self._record_when_room(), name="record-when-room")
            tasks.create_task(hold_scanner_while_unsafe(self.devices, plc, self.parts.store), name="scanner-safety")
            if self.cameras is not None:
                tasks.create_task(self.cameras.run(), name="cameras")
            self._on_link(await current_link(plc))
            await self._separator_now()
            async for event in plc.events():
                if isinstance(event, LinkChanged):
                    self._on_link(event)
                elif isinstance(event, EyeEdge):
                    self._on_eye(event)

    async def _separator_now(self) -> None:
        """The separator as the PLC reads it now (events() has no replay: one stuck since before the start has no
        edge)."""
        if self._separator is not None and self.separator is not None:
            state = await self.plc.read_state()
            self._separator.edge(state.photo_eyes[self.separator], state.t, first=True)

    async def _lane_alarm(self) -> None:
        """A lane that may hold vehicles the station does not know, or list vehicles that left undecided
        (edge.stations.lane), stands as an alarm until a supervisor confirms the lane or the station starts with a
        lane it knows."""
        store = self.parts.store
        held = self._hold_code()
        for code in (LANE_UNKNOWN, EXIT_TAILGATE):
            if code == held:
                await store.call(store.store.raise_alarm, code, self.lane.unknown)
            else:
                await store.call(store.store.clear_alarm, code)

    def _hold_code(self) -> str | None:
        """The alarm (and refusal) code of the lane's hold; None when it is not held."""
        if not self.lane.unknown:
            return None
        return EXIT_TAILGATE if self.lane.held_for == "exit_tailgate" else LANE_UNKNOWN

    async def _record_recalled(self) -> None:
        """A vehicle the last daemon left in the lane before its record was written (it stopped during the scan)
        is recorded now, `manual` / `restarted`, so that an officer can decide it: a decision needs its record."""
        store = self.parts.store
        for vehicle in list(self.lane.vehicles):
            if await store.call(store.store.get, vehicle.id) is not None:
                continue
            log.warning("gantry.recalled_without_record", vehicle=vehicle.id, since=vehicle.since)
            item = Item(ref="vehicle", kind=self.item_kind, started_at=datetime.fromisoformat(vehicle.since),
                        id=vehicle.id)
            await self._keep_unrecorded(await self.inspector.inspect(item, _Interrupted(
                f"the station software stopped while vehicle {vehicle.id} was being scanned, so it has no scan")))

    async def _keep_unrecorded(self, record: InspectionRecord) -> None:
        """A record the full store refused (edge.inspection: the vehicle waits `manual` / `store_full`) is kept
        until there is room: without it no officer can decide the vehicle and the lane stays held."""
        store = self.parts.store
        if record.reason == Reason.STORE_FULL and await store.call(store.store.get, record.id) is None:
            vehicle = self.lane.find(record.id)
            if vehicle is not None and vehicle.verdict == Verdict.CLEAR.value:  # the first item to find the store
                # full is acted on with its own verdict (edge.inspection): it leaves on its clear verdict, and its
                # record says so, not `manual` for a vehicle no officer could decide any more
                record = record.model_copy(update={"verdict": Verdict.CLEAR, "reason": Reason.CLEAR.value})
            self._unrecorded[record.id] = record

    async def _record_when_room(self) -> None:
        """Every ROOM_CHECK_S, once the store has room again (edge.store.Store.check_space), the kept records are
        written as they were and published, so that an officer can decide the vehicles waiting (a red light holds
        each) and the one that left on its clear verdict is recorded so; nothing is actuated again."""
        while True:
            await asyncio.sleep(ROOM_CHECK_S)
            for record in list(self._unrecorded.values()):
                if self.parts.store.store.full is not None or not await self._record_late(record):
                    break

    async def _record_late(self, record: InspectionRecord) -> bool:
        """Write a kept record (its scan stored if its file is there); False when the store is full again."""
        store = self.parts.store
        del self._unrecorded[record.id]  # written also when the vehicle has left meanwhile: its record is evidence
        scan = store.store.scan_path(record.scan.sha256) if record.scan is not None else None
        stored = scan is not None and await asyncio.to_thread(scan.is_file)
        try:
            record = await store.call(store.store.commit, record, stored)
        except DiskFull:
            self._unrecorded[record.id] = record  # tried again at the next round
            return False
        log.info("gantry.recorded_late", vehicle=record.id, seq=record.seq,
                 detail="the record the full store refused is written now, so that an officer can decide the vehicle")
        if self.parts.after_commit is not None:
            self.parts.after_commit()
        self.parts.events.publish("inspection", record.model_dump(mode="json", by_alias=True))
        return True

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        assert self._tasks is not None, "the flow is not running"
        self._tasks.create_task(work, name=name)

    def _on_link(self, event: LinkChanged) -> None:
        self.devices.mark("plc", "ok" if event.ok else "lost", event.reason)
        if not event.ok:
            self.lane.link_lost(event.reason)  # the PLC's watchdog closes every gate; nothing reopens by itself
        else:
            self._spawn(self._admit(), "entry-light")

    def _on_eye(self, event: EyeEdge) -> None:
        if event.eye == SEPARATOR and self._separator is not None:
            self._separator.edge(event.blocked, event.t, event.first)
            if event.blocked:
                self._separated()
        loop = self._loops.get(event.eye)
        if loop is None:
            return
        flaps, freed = loop.flaps, loop.freed
        if event.blocked:
            parted = event.eye == "eye_entry" and self._separator is not None and self._separator.clear_since(freed)
            vehicle = loop.entered(event.t, parted, event.eye == "eye_entry" and self._drawbar_stood(loop, event))
            if event.eye == "eye_entry" and not vehicle and self._separator is not None \
                    and self._last_entered is not None:
                self._trailer_on_loop = self._last_entered, event  # checked against the beam once it leaves
        else:
            vehicle = loop.cleared(event.t)
            if event.eye == "eye_entry" and self._trailer_on_loop is not None:
                (ahead, trailer), self._trailer_on_loop = self._trailer_on_loop, None
                if self._separator is not None and self._separator.last_clear > trailer.t:
                    self._trailer_was_a_vehicle(ahead, trailer, freed)
                else:
                    self._spawn(self._separator_clears_behind(ahead, trailer, event.t), "separator-behind")
        if event.eye == "eye_entry" and loop.parts > 1 and self._last_entered is not None:
            self._count(self._last_entered, loop.parts)  # a trailer behind the cab that came in last
        if loop.flaps != flaps:
            log.warning("gantry.loop_flap", loop=event.eye, blocked=event.blocked, flaps=loop.flaps,
                        detail="a loop edge that is no vehicle (a trailer behind its cab, or the loop chatters)")
        if not vehicle:
            return
        if event.eye == "eye_entry" and event.blocked:
            self._fronts.append(event.t)
            self._separated()  # an edge still waiting for the beam is decided first
            if self._separator is not None and event.t - freed < self.loop_gap_s and not self._separator.broken:
                self._unseparated = event, freed  # parted by the beam seen clear: a vehicle once it breaks the beam
                self._spawn(self._await_separator(event), "entry-separator")
            else:
                self._entered(event, freed)
        elif event.eye in EXIT_LOOPS and not event.blocked:
            self._spawn(self._left_when_free(event.eye, event.t), "vehicle-left")

    def _drawbar_stood(self, loop: Loop, edge: EyeEdge) -> bool:
        """The entry loop blocked again (`edge`) after it was free loop_gap_s or longer is the trailer of the vehicle
        on it when the separator's beam broke with that vehicle's front and stayed broken all the while (a truck that
        stood with its drawbar over the loop). A coupled trailer keeps the beam broken until it has left the loop: a
        beam that clears and breaks again meanwhile was a vehicle standing in it past the loop and one following
        (`_trailer_was_a_vehicle`); `_separator_clears_behind` checks the beam clears behind it."""
        sep, vehicle, t = self._separator, self._last_entered, edge.t
        if sep is None or vehicle is None or t - loop.freed < self.loop_gap_s or sep.clear_since(loop.freed):
            return False
        if abs(sep.last_clear - loop.since) > self.separator_wait_s:  # it broke long before or after that front
            return False
        log.info("gantry.drawbar_over_loop", vehicle=vehicle, free_s=round(t - loop.freed, 2),
                 detail="the entry loop was free longer than loop_gap_s while the vehicle separator stayed broken "
                        "since the vehicle's front broke it: a truck stood with its drawbar over the loop, and what "
                        "follows is its trailer")
        return True

    def _trailer_was_a_vehicle(self, ahead: str, edge: EyeEdge, freed: float) -> None:
        """What was taken for the trailer of vehicle `ahead` over a standing drawbar (`edge`: it blocked the entry
        loop, which had been free since `freed`) has left the loop, and the separator's beam cleared and broke again
        while it was on it: a gap between two vehicles, so `ahead` stood in the beam past the loop and this is a vehicle
        following it. It becomes a vehicle of its own now (recorded, never cleared: an officer decides it), as it
        would have been without a drawbar: never one leaving unrecorded with the vehicle ahead."""
        problem = (f"the vehicle separator's beam cleared and broke again while what was taken for the trailer of "
                   f"vehicle {ahead} over a standing drawbar was on the entry loop: it was a vehicle following it")
        self._count(ahead, self._parts(ahead) - 1)
        self._loops["eye_entry"].was_vehicle(edge.t)  # one part of its own, never the two the loop counted
        vehicle = self._entered(edge, freed)
        self._doubt(vehicle, problem)
        log.warning("gantry.trailer_was_a_vehicle", vehicle=vehicle, ahead=ahead, detail=problem)

    def _follower_unscanned(self, ahead: str, problem: str) -> str:
        """What was taken for a trailer of vehicle `ahead` may have been a vehicle following it (`problem`, one
        sentence): it joins the lane behind it as a vehicle of its own, recorded unscanned and `manual` (it has left the
        scan zone), so an officer decides it and it never leaves unrecorded on the decision for `ahead`; its id."""
        self._count(ahead, self._parts(ahead) - 1)
        item = Item(ref="vehicle", kind=self.item_kind)
        self._last_entered = item.id
        self.lane.arrived(item.id)
        log.warning("gantry.trailer_recorded_as_vehicle", vehicle=item.id, ahead=ahead, detail=problem)
        self._spawn(self._record_unscanned(item, f"{problem}, so it was recorded as a vehicle of its own when that was "
                                                 f"known, after it had left the scan zone unscanned"), "vehicle-unscanned")
        return item.id

    async def _separator_clears_behind(self, vehicle: str, trailer: EyeEdge, freed: float) -> None:
        """A part taken for the trailer of `vehicle` (behind its cab, or over a standing drawbar; its entry loop edge
        `trailer`) has left the entry loop at `freed`. A coupled trailer keeps the separator's beam broken from the
        cab's front until its own rear has passed the beam, and no vehicle's front breaks it meanwhile: the beam that
        breaks again (after it cleared) with no vehicle's front on the loop within `separator_wait_s` was broken by
        this part's front, a vehicle shorter than the beam's distance past the loop that was off the loop before it
        reached the beam; a beam still broken `separator_wait_s` after the vehicle's last part left the loop is stuck
        (it stuck as the vehicle's front broke it). Either way the part may have been a vehicle following:
        `_follower_found`."""
        await asyncio.sleep(max(self.loop_gap_s, 2 * self.separator_wait_s) + 0.05)
        sep, wait = self._separator, self.separator_wait_s
        if sep is None:
            return
        unexplained = [b for b in sep.broke_between(trailer.t, freed + wait)
                       if not any(freed < front <= b + wait for front in self._fronts)]
        if unexplained:
            self._follower_found(vehicle, f"the vehicle separator's beam broke again {unexplained[0] - freed:.2f} s "
                                          f"after what was taken for the trailer of vehicle {vehicle} left the entry "
                                          f"loop, with no vehicle's front on the loop, so it was a vehicle following "
                                          f"it (shorter than the beam's distance past the loop)")
            return
        self._behind[vehicle] = freed
        try:
            while not (sep.clear_since(freed - wait) or self._later_part(vehicle, freed)):
                ahead = self.lane.find(vehicle)
                if ahead is None or ahead.verdict is not None:  # judged (not cleared: _separation_doubted) or gone
                    counted = vehicle not in self._behind  # _separation_doubted counted it at the verdict
                    # each part taken for a trailer behind the beam that never cleared may have been a vehicle
                    self._follower_found(vehicle, self._stayed_broken(vehicle), counted, self._parts(vehicle) - 1)
                    return
                await asyncio.sleep(SEPARATOR_LOOK_S)
        finally:
            self._behind.pop(vehicle, None)

    @staticmethod
    def _stayed_broken(vehicle: str) -> str:
        return (f"the vehicle separator stayed broken after the trailer of vehicle {vehicle} left the entry loop, so "
                f"what was taken for its trailer may have been a vehicle following it")

    def _later_part(self, vehicle: str, freed: float) -> bool:
        """The entry loop was blocked again since `freed` by a further part of `vehicle` (a road train's second
        trailer, no vehicle's front): the beam is checked behind that part when it leaves."""
        loop = self._loops["eye_entry"]
        moved = loop.blocked or loop.freed > freed
        return moved and self._last_entered == vehicle and not any(front > freed for front in self._fronts)

    def _follower_found(self, vehicle: str, problem: str, counted: bool = False, parts: int = 1) -> None:
        """What was taken for a trailer of `vehicle` (`parts` of it: the cars that each came up behind a stuck beam)
        may have been a vehicle following (`problem`, one sentence): each joins the lane as a vehicle of its own,
        recorded unscanned (`_follower_unscanned`), and the vehicle ahead is not cleared, its way out is withdrawn,
        or (already leaving, a follower may have gone with it) the lane is held (exit_tailgate)."""
        sep = self._separator
        assert sep is not None
        lane_vehicle = self.lane.find(vehicle)
        followers = [self._follower_unscanned(vehicle, problem) for _ in range(max(1, parts))]
        if lane_vehicle is not None and lane_vehicle.verdict is None:
            self._doubt(vehicle, problem)  # not cleared at its verdict (_separation_doubted)
            return
        if not counted:
            sep.faults += 1
            log.warning("gantry.separator_contradicts", vehicle=vehicle, faults=sep.faults, detail=problem)
        if lane_vehicle is None or lane_vehicle.leaving:
            self._exit_tailgate(problem, followers)
        elif lane_vehicle.way is not None:
            self.lane.not_opened(lane_vehicle, f"{problem}: decide again")

    def _count(self, vehicle: str, parts: int) -> None:
        """The entry loop's count of a vehicle's parts (at least 1), kept with it in the lane and its file."""
        self.lane.counted(vehicle, max(1, parts))

    def _parts(self, vehicle: str) -> int:
        """The parts the entry loop counted for a vehicle in the lane (1 when it has no count: a lane file from
        before counts were kept, or it has left)."""
        found = self.lane.find(vehicle)
        return (found.parts or 1) if found is not None else 1

    def _entered(self, event: EyeEdge, freed: float) -> str:
        """A vehicle entered the scan zone: it is scanned, or recorded unscanned while the scanner is busy; its id."""
        item = Item(ref="vehicle", kind=self.item_kind)
        self._entered_at[item.id] = event.t
        self._last_entered = item.id
        if self._separator is not None and not event.first and event.t - freed >= self.loop_gap_s:
            self._doubt(item.id, self._separator.broken_before(freed, event.t, self.loop_gap_s, self.separator_wait_s))
        if self._scanning:
            log.warning("gantry.vehicle_while_scanning", detail="a vehicle entered while the scanner was busy")
            self.lane.arrived(item.id)
            self._spawn(self._record_unscanned(item), "vehicle-unscanned")
            return item.id
        if self.lane.full:
            log.warning("gantry.entry_light_ignored", detail="a vehicle entered a full lane; it is scanned "
                        "and joins the queue", vehicles=len(self.lane.vehicles), capacity=self.lane.capacity)
        self._scanning = True
        self.lane.arrived(item.id)
        self._spawn(self._inspect_vehicle(item), "vehicle")
        return item.id

    def _separated(self) -> None:
        """Decide the entry loop edge waiting for the separator's beam: a vehicle following when the beam broke since
        the edge, else a loop fault (the loop chatters with nothing on it), counted and no vehicle."""
        if self._unseparated is None or self._separator is None:
            return
        (event, freed), self._unseparated = self._unseparated, None
        if self._separator.broke_since(event.t):
            self._entered(event, freed)
            return
        self._separator.loop_faults += 1
        log.warning("gantry.loop_fault", loop=event.eye, loop_faults=self._separator.loop_faults,
                    detail=f"the entry loop was blocked again {event.t - freed:.2f} s after it went free but the "
                           f"vehicle separator's beam stayed clear for the {self.separator_wait_s:g} s (and "
                           f"{SEPARATOR_POLLS} polls) after, so it is no vehicle: the loop chatters (or the separator "
                           f"is stuck clear)")

    async def _await_separator(self, event: EyeEdge) -> None:
        """Decide an entry loop edge waiting for the separator's beam once `separator_wait_s` has passed since the
        edge and SEPARATOR_POLLS more polls have been read (at once when the beam breaks meanwhile)."""
        plc, clock = self.plc, asyncio.get_running_loop()
        end, until = (await plc.read_state()).seq + SEPARATOR_POLLS, event.t + self.separator_wait_s
        while self._waits(event) and ((state := await plc.read_state()).seq < end or clock.time() < until):
            if not state.link_ok:  # the beam cannot be read: what the loop saw may be a vehicle, so it is one
                self._unread_separator(event)
                return
            await asyncio.sleep(SEPARATOR_LOOK_S)
        if self._waits(event):
            self._separated()

    def _unread_separator(self, event: EyeEdge) -> None:
        """The PLC link went down while an entry loop edge waited for the separator's beam: the polls of a link
        that is down read nothing (a car following drove on unseen), so the edge is a vehicle, not cleared."""
        assert self._unseparated is not None
        (_, freed), self._unseparated = self._unseparated, None
        vehicle = self._entered(event, freed)
        self._doubted[vehicle] = "the PLC link was lost before the vehicle separator's beam was read"
        log.warning("gantry.separator_unread", vehicle=vehicle,
                    detail=f"the entry loop was blocked again {event.t - freed:.2f} s after it went free and the PLC "
                           f"link was lost before the vehicle separator's beam was read, so it is taken for a vehicle "
                           f"and not cleared: it waits for an officer")

    def _waits(self, event: EyeEdge) -> bool:
        return self._unseparated is not None and self._unseparated[0] is event

    def _doubt(self, vehicle: str, problem: str) -> None:
        """The separator contradicted the loop about a vehicle (problem, one sentence; '' when it did not): it may
        be two vehicles or part of one, so it is not cleared; counted."""
        if not problem or self._separator is None or vehicle in self._doubted:
            return
        self._doubted[vehicle] = problem
        self._separator.faults += 1
        log.warning("gantry.separator_contradicts", vehicle=vehicle, faults=self._separator.faults,
                    detail=f"{problem}, so the vehicle is not cleared: it waits for an officer (is the separator "
                           f"stuck or misaligned?)")

    def _separation_doubted(self, vehicle: str) -> bool:
        """At its verdict: whether the separator contradicted the loop about the vehicle (then it is not cleared)."""
        entered = self._entered_at.pop(vehicle, None)
        if self._separator is not None and entered is not None:
            self._doubt(vehicle, self._separator.not_broken_by(entered, asyncio.get_running_loop().time()))
        if self._behind.pop(vehicle, None) is not None:  # its last part off the loop, the beam still broken
            self._doubt(vehicle, self._stayed_broken(vehicle))
        return self._doubted.pop(vehicle, None) is not None

    async def _left_when_free(self, eye: str, freed: float) -> None:
        """A vehicle has left over an exit loop once the loop stayed free loop_gap_s (a trailer follows its cab)."""
        await asyncio.sleep(max(0.0, freed + self.loop_gap_s - asyncio.get_running_loop().time()))
        loop = self._loops[eye]
        if loop.still_free(freed):
            await self._left(EXIT_LOOPS[eye], loop.parts)

    async def _inspect_vehicle(self, item: Item) -> None:
        entered = asyncio.get_running_loop().time()
        self._spawn(self._admit(), "entry-light")  # red: the scanner is busy
        follow = asyncio.create_task(self.history.follow(item.identities, size_type=lambda: item.size_type),
                                     name="history-follow") \
            if self.history is not None else None
        try:
            with self._reading(item):
                acquisition = await self._permitted_scan(item)
                if isinstance(acquisition, FailedAcquisition):
                    await self._read_at_entry(entered)
                record = await self.inspector.inspect(item, acquisition)
        finally:
            self._scanning = False
            if follow is not None:
                follow.cancel()
        await self._keep_unrecorded(record)
        if self.history is not None:
            self._spawn(self._compare_history(self.history, record), "history-compare")
        await _quietly(self.plc.request_xray_permit(False))
        await self._admit()

    async def _permitted_scan(self, item: Item) -> LineScan | FailedAcquisition:
        """The vehicle's scan, started only once the PLC granted the X-ray permit (read back): a permit it refused
        (an interlock open, the e-stop) was logged and the scan started all the same. Refused: no scan, the
        vehicle goes to manual as a device fault."""
        try:
            await self.plc.request_xray_permit(True)
        except DriverError as exc:
            log.warning("gantry.xray_permit_refused", item=item.id, detail=str(exc))
            return FailedAcquisition(f"the PLC did not grant the X-ray permit for vehicle {item.id}, so it was not "
                                     f"scanned: {exc}")
        return await start_line_scan(self.devices, item.id)

    @contextlib.contextmanager
    def _reading(self, item: Item) -> Iterator[None]:
        """The readers' tags and the cameras' reads join the item meanwhile (those at the entry: the vehicle that
        came in last)."""
        self.tags.start(item)
        if self.cameras is not None:
            self.cameras.start(item)
        try:
            yield
        finally:
            self.tags.stop(item)
            if self.cameras is not None:
                self.cameras.stop(item)

    async def _read_at_entry(self, entered: float) -> None:
        """A scan that failed at once would end the item within milliseconds, while the vehicle is still at the
        entry and its windscreen tag and plates are being read: they join its record if they come within
        `identify_s` of its entering (the officer who decides a `manual` vehicle needs to know which it is)."""
        await asyncio.sleep(max(0.0, entered + self.identify_s - asyncio.get_running_loop().time()))

    async def _compare_history(self, history: VehicleHistory, record: InspectionRecord) -> None:
        """After the verdict: the scan against the vehicle's reference, added to the record and synced."""
        store = self.parts.store
        path = store.store.scan_path(record.scan.sha256) if record.scan is not None else None
        if path is None or not await asyncio.to_thread(path.is_file):
            history.forget(record.identities)
            return
        try:
            scan = await asyncio.to_thread(load_scan, path)
        except ModelError as exc:
            log.warning("history.scan_unreadable", record=record.id, error=str(exc))
            history.forget(record.identities)
            return
        result = await history.judge(record.identities, scan,
                                     record.container.declared_empty if record.container is not None else None)
        history.forget(record.identities)
        try:
            await store.call(store.store.add_history, record.id, result)
        except StoreError as exc:
            log.error("history.not_stored", record=record.id, error=str(exc))
            return
        if self.parts.after_commit is not None:
            self.parts.after_commit()
        self.parts.events.publish("history", {"record": record.id, "status": result.status,
                                              "regions": len(result.regions)})

    async def _record_unscanned(self, item: Item, why: str = "the vehicle entered the scan zone while the scanner was "
                                                           "busy with the one ahead, so it was not scanned") -> None:
        """A vehicle that entered the scan zone while the scanner was busy (it ran the red entry light), or one
        taken for a trailer at first (`why`): it joined the lane as it entered (arrival order) and is recorded
        unscanned and `manual`, so an officer decides it, never the decision meant for the vehicle behind it."""
        entered = asyncio.get_running_loop().time()
        with self._reading(item):  # its tag and plates are its own, not the scanned vehicle's
            await self._read_at_entry(entered)
            await self._keep_unrecorded(await self.inspector.inspect(item, FailedAcquisition(why)))

    async def _actuate(self, item: Item, verdict: Verdict, reason: Reason) -> Reason | None:
        """A clear vehicle first in the lane leaves now (read back); one behind others leaves in its turn;
        a suspect or manual one waits under a red light for an officer, and so does a clear one the vehicle
        separator contradicted the loop about (`manual`: it may be two vehicles, or part of one)."""
        doubted = self._separation_doubted(item.id) and verdict is Verdict.CLEAR
        vehicle = self.lane.find(item.id)
        if vehicle is None:  # the lane lost it (it cannot: it joined when its scan started)
            log.error("gantry.vehicle_not_in_lane", item=item.id)
            return Reason.DEVICE_FAULT
        problem = Reason.DEVICE_FAULT if doubted else None
        verdict = Verdict.MANUAL if doubted else verdict
        self.lane.judged(vehicle, verdict.value)
        if self.lane.head is not vehicle:
            return problem
        if verdict is Verdict.CLEAR:
            return Reason.DEVICE_FAULT if await self._serve_head() else None
        try:
            await self.plc.request_light("red")
        except DriverError as exc:
            self.devices.degrade("plc", str(exc))
            return Reason.DEVICE_FAULT
        return problem

    async def decide_vehicle(self, record_id: str, way: Way, actor: str) -> LaneDecision:
        """An officer's decision: the vehicle leaves by `way` when it is first in the lane, its gate read back.
        It waits for a gate being opened meanwhile: a vehicle whose gate opened is leaving by that gate."""
        async with self._gates:
            refused = self.refusal(record_id, way)
            if refused is not None:
                return refused
            vehicle = self.lane.find(record_id)
            assert vehicle is not None  # refusal() found it
            self.lane.decided(vehicle, way, actor)
        log.info("gantry.vehicle_decided", vehicle=record_id, way=way, actor=actor)
        ahead = self.lane.position(vehicle)
        if ahead:
            return LaneDecision("queued", "vehicle_queued", f"vehicle {record_id} leaves by the {GATE[way]} once the "
                                f"{ahead} vehicle(s) ahead of it have left")
        problem = await self._serve_head()
        if vehicle.leaving and vehicle.opened == way:
            return LaneDecision("open", f"{way}_open", f"the {GATE[way]} is confirmed open for vehicle {record_id}")
        return LaneDecision("failed", f"{way}_unconfirmed", problem or vehicle.problem
                            or f"the {GATE[way]} was not opened for vehicle {record_id}: decide again")

    def refusal(self, record_id: str, way: Way) -> LaneDecision | None:
        """Why a decision to move the vehicle `way` is refused now (not in the lane, already leaving, the lane held);
        None when it is not (the screen asks before it stores the officer's review: a refused decision stores none)."""
        vehicle = self.lane.find(record_id)
        if vehicle is None:
            return LaneDecision("refused", "vehicle_not_in_lane", f"vehicle {record_id} is not in the lane")
        if vehicle.leaving:
            return LaneDecision("refused", "vehicle_leaving", f"vehicle {record_id} is already leaving the lane "
                                f"by the {GATE[vehicle.opened or way]}")
        held = self._hold_code()
        return LaneDecision("refused", held, self.lane.unknown) if held else None

    async def confirm_lane(self, actor: str, seen: list[str]) -> LaneDecision:
        """A supervisor checked the lane held for an unreadable lane file or an exit tailgate: it holds no vehicle
        but `seen`, those the screen listed, less any of those that may have left undecided (`missing`), which
        leave the lane (their records stay undecided). The hold ends (edge.stations.lane.Lane.confirm_known), the
        alarm clears and the lane flows again; refused when the station's list changed since the screen showed it
        (a vehicle that ran the red light meanwhile was not among those checked)."""
        async with self._gates:
            held = self.lane.unknown
            if not held:
                return LaneDecision("refused", "lane_known", "the lane is not held, so there is nothing to confirm")
            known = {v.id for v in self.lane.vehicles}
            gone = known - set(seen)
            if set(seen) - known or len(set(seen)) != len(seen) or not gone <= set(self.lane.missing):
                return LaneDecision("refused", "lane_changed", f"the lane holds {len(known)} vehicle(s) the station "
                                    f"knows, not the {len(seen)} confirmed: look again and confirm what it holds now")
            problem = self.lane.confirm_known(frozenset(gone))
        if problem:
            return LaneDecision("failed", "lane_file_not_replaced", problem)
        for vehicle in gone:
            self.tags.left(vehicle)
        log.warning("gantry.lane_confirmed", actor=actor, held=held, vehicles=[v.id for v in self.lane.vehicles],
                    left_undecided=sorted(gone))
        await self._lane_alarm()
        await self._serve_head()
        await self._admit()
        left = f"; {len(gone)} vehicle(s) left it undecided ({', '.join(sorted(gone))})" if gone else ""
        return LaneDecision("confirmed", "lane_confirmed", f"the lane holds {len(self.lane.vehicles)} vehicle(s) the "
                            f"station knows{left}; it flows again")

    def lane_status(self) -> dict[str, object]:
        """The lane as /healthz and the screen show it (edge.stations.lane.Lane.status), with each loop's flaps."""
        status = {**self.lane.status(), "loop_flaps": {eye: loop.flaps for eye, loop in self._loops.items()}}
        if self._separator is not None:
            status["separator_faults"] = self._separator.faults
            status["loop_faults"] = self._separator.loop_faults
        return status

    async def _serve_head(self) -> str | None:
        """Open the first vehicle's way out when it has one; why not, in one sentence, when the PLC did
        not confirm it (the vehicle then waits for a new decision and the gate is asked to close)."""
        async with self._gates:
            head = self.lane.head
            if head is None or head.way is None or head.leaving:
                return None
            way = head.way
            if self.lane.unknown:  # vehicles it does not know may stand before it
                self.lane.not_opened(head, self.lane.unknown)
                return self.lane.unknown
            try:
                opened = await self._open(head, way)
            except DriverError as exc:
                problem = f"the {GATE[way]} did not open for vehicle {head.id}, so it stays closed: {exc}"
                log.error("gantry.gate_unconfirmed", vehicle=head.id, way=way, error=str(exc))
                self.devices.degrade("plc", str(exc))
                self.lane.not_opened(head, problem)
                await self._close(way)
                return problem
            if self.lane.unknown:  # held while the gate opened (a follower found behind a vehicle gone): none out
                self.lane.not_opened(head, self.lane.unknown)
            if not (opened and self.lane.opened(head, way)):  # its way out was withdrawn meanwhile (a link loss, a hold)
                done = "opened" if opened else "was not opened (the exit light had turned green)"
                problem = (f"the {GATE[way]} {done} for vehicle {head.id} after its way out was withdrawn "
                           f"({head.problem or 'decided again'}), so it is asked to close again")
                log.error("gantry.gate_opened_undecided", vehicle=head.id, way=way, now=head.way)
                await self._close(way)
                return problem
            self._not_closed.pop(way, None)  # it moved: closed again behind this vehicle, not before it is out
            log.info("gantry.vehicle_released", vehicle=head.id, way=way, by=head.by)
            return None

    async def _open(self, head: Vehicle, way: Way) -> bool:
        """Open `head`'s way out; False when the barrier was not asked to open: its way was withdrawn or the lane held
        while the exit light turned green."""
        plc = self.plc
        if way == "release":
            await plc.request_light("green")
            if self.lane.unknown or head.way != way:
                return False
            await plc.request_barrier(True)
        else:
            await plc.request_search_bay(True)
        return True

    async def _close(self, way: Way) -> None:
        """Close a way out behind a vehicle, read back. A gate that does not close (jammed, its drive failed) lets
        the next vehicle leave undecided: the entry light stays red (`_admit`), the PLC shows degraded, and the
        close is asked for again every CLOSE_AGAIN_S until it is read back closed."""
        plc = self.plc
        try:
            await (plc.request_barrier(False) if way == "release" else plc.request_search_bay(False))
        except DriverError as exc:
            if way not in self._not_closed:
                self._spawn(self._close_again(way), f"close-{way}")
            self._not_closed[way] = str(exc)
            log.error("gantry.gate_not_closed", way=way, error=str(exc))
            self.devices.degrade("plc", f"the {GATE[way]} did not close ({exc}): vehicles can leave undecided; the "
                                        f"entry light stays red")
        else:
            if self._not_closed.pop(way, None) is not None:
                log.info("gantry.gate_closed", way=way)
                if (await plc.read_state()).link_ok:  # else the link's own state stands
                    self.devices.mark("plc", "ok")
        if way == "release":
            await _quietly(plc.request_light("red"))

    async def _close_again(self, way: Way) -> None:
        while way in self._not_closed:
            await asyncio.sleep(CLOSE_AGAIN_S)
            async with self._gates:
                if way in self._not_closed:
                    await self._close(way)
        await self._admit()

    async def _left(self, way: Way, parts: int = 1) -> None:
        """A vehicle left over an exit loop in `parts` (a cab and its trailer are 2): close its gate behind it, then
        serve the next one. More parts than the entry loop counted for it, or a vehicle the lane had not let go, is
        an exit tailgate: the lane is held."""
        head = self.lane.head
        vehicle = self.lane.left(way)
        if vehicle is None:
            gate = GATE[way]
            self._exit_tailgate(
                f"a vehicle left by the {gate} that the lane had not let go (first in the lane: "
                f"{head.id if head else 'none'}, {'undecided' if head is None or head.way is None else head.way}): it "
                f"may have followed the last vehicle out through the open {gate}", [head.id] if head else [])
            return
        log.info("gantry.vehicle_left", vehicle=vehicle.id, way=way, by=vehicle.by)
        self.tags.left(vehicle.id)  # its seal, heard again, is no longer held for it
        entered = vehicle.parts  # kept in the lane file: a vehicle recalled after a restart has its count
        if parts > (entered or 1):  # not counted (a lane file written before counts were kept): one part
            behind = [v.id for v in self.lane.vehicles[:parts - (entered or 1)]]
            had = f"{entered} on the entry loop" if entered is not None else \
                "no count of its parts (recalled from a lane file written before counts were kept)"
            self._exit_tailgate(
                f"the {GATE[way]}'s loop saw {parts} vehicle parts leave with vehicle {vehicle.id}, which had "
                f"{had}: a vehicle may have followed it out through the open {GATE[way]} "
                f"({', '.join(behind) if behind else 'none the lane knows'} stood behind it)", behind)
        async with self._gates:
            await self._close(way)
        await self._serve_head()
        await self._admit()

    def _exit_tailgate(self, problem: str, missing: list[str]) -> None:
        """A vehicle may have left undecided (one of `missing`): never taken for the released one; the lane is held
        and the alarm names them until a supervisor confirms which vehicles are still in the lane."""
        self.lane.hold(f"{problem}; the lane may list vehicles that have left, so no vehicle is let in or out until a "
                       f"supervisor, having checked the lane, confirms on the screen which are still in it", missing)
        log.error("gantry.exit_tailgate", missing=missing, detail=problem)
        self._spawn(self._lane_alarm(), "lane-alarm")
        self._spawn(self._admit(), "entry-light")

    async def _admit(self) -> None:
        """The entry light: green (one more vehicle) while the scanner is free and the lane has room, else red."""
        async with self._entry:
            want: Light = "red" if self._scanning or self.lane.full or self._not_closed else "green"
            try:
                await self.plc.request_entry_light(want)
            except DriverError as exc:
                log.warning("gantry.entry_light_unconfirmed", wanted=want, error=str(exc))

    async def _safe_state(self) -> None:
        """The gantry PLC's safe state (drivers.plc.config.SAFE_STATES), each request read back."""
        plc = self.plc
        for req in plc.safe_state:
            await _quietly(plc.request_safe(req))


class _Interrupted(FailedAcquisition):
    """The scan the last daemon stopped during: nothing to acquire; the vehicle is `manual` / `restarted`."""

    async def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]:
        raise StationFault(Reason.RESTARTED, self.message)
        yield  # pragma: no cover - makes this an async generator


def _history_metrics(history: VehicleHistory, registry: CollectorRegistry) -> None:
    """The history cache's size and every history event counted (edge/history.py), on /metrics."""
    cache = history.cache
    Gauge("edge_history_cache_entries", "Vehicles held by the history cache", registry=registry).set_function(
        lambda: cache.entries)
    Gauge("edge_history_cache_bytes", "Bytes held by the history cache", registry=registry).set_function(
        lambda: cache.size_bytes)
    count_since_start(registry, "edge_history_events", "History events since start (hub answers, cache hits, no "
                      "history, comparisons...)", lambda: {name: _count(history, name) for name in HISTORY_EVENTS},
                      "event")


def separator_eye(eyes: tuple[str, ...]) -> int | None:
    """Where the vehicle separator is among the PLC's eyes (docs/plc-register-map.md), None when it has none."""
    return eyes.index(SEPARATOR) if SEPARATOR in eyes else None


def _count(history: VehicleHistory, name: str) -> float:
    return history.counts[name] + history.cache.counts[name]


async def _quietly(request: Awaitable[None]) -> None:
    """A safe-state request whose failure is already visible as the PLC's link state."""
    try:
        await request
    except DriverError as exc:
        log.warning("plc.request_failed", error=str(exc))
