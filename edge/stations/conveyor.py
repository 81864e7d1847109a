"""Baggage conveyor: items are scanned as they pass the tunnel and diverted at the gate.

PLC events drive the sans-IO tracker (edge.tracking); its outputs start and stop scans and set
the divert gate. The gate rests at manual: an item passes only with a `clear` verdict in hand
when it reaches the decision point, so a late verdict always means manual inspection.

A belt that stops unasked (PLC link lost, e-stop, interlock, the PLC itself, or a start that was
not confirmed) latches stopped: the daemon never restarts it by itself, and every item on it goes
to manual. Only a supervisor's restart request (`restart_belt`) runs it again, and only while the
link is up and the safety chain and interlocks read closed; the run request is confirmed by
read-back, or the belt stays latched.

The latch survives the daemon (edge.stations.beltlatch keeps it in data_dir): a restart of the
software never runs the belt. At start, a latch the last daemon left stays latched (one whose reason
this version does not know latches `restarted`); a last daemon that did not stop on request (crash,
watchdog kill, power cut) leaves the belt's state unknown, so it latches `restarted`; `start_belt` runs the belt only when neither holds (a first start on an
empty data_dir counts as clean). Either way only a supervisor's restart runs it again.

The bags on the belt outlive the daemon too: the belt file lists each bag whose route the daemon has
not seen (its record id), rewritten as bags enter and leave. The next daemon lists them as stranded
(they go to manual search) and writes a `manual` record for each whose record was never written (its
scan was cut off), as for a scan that failed; the tracker does not follow them, so one that reaches
the exit eye is taken as untracked (manual, unscanned), never as the next bag (edge.tracking). One that
stands in the tunnel entry's beam at start is no bag entering (the PLC driver's first reading marks its edge
`first`): it gets no second record and is not followed either.

A bag's identities are the tags read between its entry and exit eyes (the reader's antenna looks just past the entry
eye, so its tag is heard after the bag entered): a bag whose scan fails at once (no scanner, a held or faulty one) has
its `manual` record written when its scan would have ended (ItemScanned, ItemMissed) or when the belt latches, never
before its tag could be heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import structlog
from prometheus_client import Counter, Gauge

from central_sync.schema import ItemKind, Verdict
from drivers.errors import DriverError
from drivers.plc.config import ENCODER_COUNTS_PER_M
from drivers.plc.state import BeltMoved, EyeEdge, LinkChanged, Plc, PlcState
from edge.config import ConveyorSection
from edge.devices import Devices
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics, count_since_start
from edge.stations import FlowParts, InspectorParts, beltlatch
from edge.stations.acquisition import LIVENESS_S, FailedAcquisition, LineScan, current_link, \
    hold_scanner_while_unsafe, plc_turns, start_line_scan
from edge.stations.gate import Gate
from edge.stations.identify import TagWindow
from edge.stations.routes import RouteRecorder
from appliance.watchdog import Progress, follow_turns
from edge.tracking import ConveyorTracker, GateCommand, Geometry, ItemEntered, ItemMissed, ItemRouted, \
    ItemScanned, TrackingFault, UnknownBagAtGate, latency_budget_s
from edge.verdict import Reason

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

    from drivers.xray.stream import ScanStream

log = structlog.get_logger()

LatchReason = Literal["link_lost", "estop", "interlock", "plc_stopped", "start_failed", "restarted",
                      "gate_unconfirmed", "encoder_stalled", "unknown_bag_at_gate"]
LATCH_REASONS: tuple[LatchReason, ...] = get_args(LatchReason)
WATCH_S = 0.1  # how often the flow looks at the PLC's belt feedback
ENCODER_STALL_MIN_S = 1.0  # the encoder may read the same this long at least while the PLC says the belt runs
ENCODER_STALL_COUNTS = 3  # and as long as the belt takes for this many counts


def encoder_stall_s(counts_per_m: float, speed_m_s: float) -> float:
    """How long the encoder may read the same while the PLC says the belt runs: the time the belt takes at
    `speed_m_s` for ENCODER_STALL_COUNTS counts, never below ENCODER_STALL_MIN_S (a coarse encoder, 3 counts/m at
    0.3 m/s, counts once in 1.1 s: a fixed 1 s latched a belt whose encoder worked)."""
    return max(ENCODER_STALL_MIN_S, ENCODER_STALL_COUNTS / (counts_per_m * speed_m_s))


@dataclass(frozen=True)
class BeltRestart:
    """What one restart request came to: `outcome` running, refused or failed; `code` names it for the
    screen, `message` says it in one sentence with the values; `reason` is why the belt was latched."""

    outcome: Literal["running", "refused", "failed"]
    code: str
    message: str
    reason: LatchReason | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def restart_refusal(st: PlcState) -> BeltRestart | None:
    """Why the PLC's state forbids a belt restart now (read-only safety state), or None."""
    if not st.link_ok:
        return BeltRestart("refused", "belt_link_down",
                           f"the PLC link is down ({st.link_reason}), so the belt cannot be restarted")
    if not st.estop_ok:
        return BeltRestart("refused", "belt_estop",
                           "the e-stop chain reads tripped: release and reset the e-stop before restarting the belt")
    if not st.interlocks_ok:
        return BeltRestart("refused", "belt_interlock",
                           "a station interlock (door or light curtain) reads open: close it before restarting the belt")
    return None


def stop_cause(st: PlcState) -> LatchReason:
    """Why a belt the daemon was running has stopped while the link is up, as the PLC's state says."""
    if not st.estop_ok:
        return "estop"
    return "plc_stopped" if st.interlocks_ok else "interlock"


def geometry_of(section: ConveyorSection) -> Geometry:
    return Geometry(section.entry_m, section.exit_m, section.gate_m, section.actuation_s)


def geometry_budget_ms(section: ConveyorSection) -> float:
    """The longest budget the belt allows: from the end of the scan (exit_gap_m after the tail left the tunnel) to
    the decision point (which allows for the gate command latency, at least the configured one)."""
    return (latency_budget_s(geometry_of(section), section.belt_speed_m_s, section.exit_gap_m)
            - section.gate_latency_s) * 1000


def belt_budget_ms(configured_ms: float, section: ConveyorSection) -> float:
    """The inspection budget on this belt: the configured one, or less when the belt allows less."""
    limit = geometry_budget_ms(section)
    if configured_ms > limit:
        log.warning("conveyor.budget_limited_by_belt", configured_ms=configured_ms, limit_ms=limit)
        return limit
    return configured_ms


@dataclass(frozen=True)
class Running:
    """What exists while a flow's `run` runs: its task group and the divert gate on its PLC."""

    tasks: asyncio.TaskGroup
    gate: Gate


@dataclass
class ConveyorFlow:
    devices: Devices
    parts: InspectorParts  # the inspector is built with this flow's actuation and the belt's budget
    progress: Progress
    item_kind: ItemKind
    tags: TagWindow
    section: ConveyorSection
    latch_file: Path  # where the latch outlives the daemon (edge.stations.beltlatch)
    encoder_counts_per_m: float = ENCODER_COUNTS_PER_M  # the PLC's (devices.plc.encoder_counts_per_m)
    inspector: Inspector = field(init=False)
    metrics: StationMetrics = field(init=False)
    tracker: ConveyorTracker = field(init=False)
    lane_control: None = field(default=None, init=False)  # no vehicle lane: items go by the divert gate
    _tracker_ids: dict[str, int] = field(default_factory=dict)  # record id -> tracker item id
    _streams: dict[int, ScanStream] = field(default_factory=dict)
    _passed: dict[int, asyncio.Event] = field(default_factory=dict)  # tracker item id -> its scan's end (exit eye)
    _running: Running | None = None
    _belt_start_pending: bool = False
    latch: LatchReason | None = None  # why the belt is latched stopped; None while it is not
    latched_at: str | None = None  # UTC RFC 3339
    stranded: list[str] = field(default_factory=list)  # record ids of the items on the belt when it latched
    _recovered: list[beltlatch.SavedItem] = field(default_factory=list)  # left by the last daemon, not run on since
    _entered_at: dict[str, str] = field(default_factory=dict)  # record id -> when its bag entered (UTC RFC 3339)
    _saved_items: tuple[beltlatch.SavedItem, ...] = ()  # the bags the belt file lists
    _belt_on: bool = False  # the daemon ran the belt (confirmed) and has not seen it stop since
    _plc_state: PlcState | None = None
    _restarting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _clean: bool = False  # the daemon stops on request: the belt's state is known at the next start
    _encoder_since: tuple[float, float] | None = None  # (encoder reading, when it was first read) while running

    def __post_init__(self) -> None:
        self.inspector = self.parts.build(self._actuate, belt_budget_ms(self.parts.budget_ms, self.section))
        self.metrics = self.parts.metrics
        self.tracker = ConveyorTracker(geometry_of(self.section), self.section.belt_speed_m_s,
                                       latency_floor_s=self.section.gate_latency_s,
                                       entry_gap_m=self.section.entry_gap_m, exit_gap_m=self.section.exit_gap_m)
        registry = self.metrics.registry
        self._latched_gauge = Gauge("edge_belt_latched", "1 for the reason the belt is latched stopped (all 0: not"
                                    " latched)", ["reason"], registry=registry)
        count_since_start(registry, "edge_belt_entry_flaps", "Tunnel entry beam edges since start that were no new"
                          " bag (a strap, a bag rolling back out of the beam)", lambda: self.tracker.entry_flaps)
        count_since_start(registry, "edge_belt_exit_flaps", "X-ray exit beam edges since start within one bag (a"
                          " strap, a gap between two parts): its scan went on", lambda: self.tracker.exit_flaps)
        self._restarts = Counter("edge_belt_restarts_total", "Belt restart requests, by outcome and code",
                                 ["outcome", "code"], registry=registry)
        self._recall_latch()
        self._routes = RouteRecorder(self.parts.store, self.parts.after_commit)
        self._belt_start_pending = self.section.start_belt and self.latch is None

    @classmethod
    def build(cls, parts: FlowParts) -> ConveyorFlow:
        config = parts.config
        plc = config.devices.plc
        return cls(parts.devices, parts.inspector, parts.progress, parts.item_kind, parts.tags(), config.conveyor,
                   config.station.data_dir / beltlatch.FILE_NAME,
                   plc.encoder_counts_per_m if plc is not None else ENCODER_COUNTS_PER_M)

    @property
    def belt(self) -> ConveyorFlow:
        """The belt the screen shows and a supervisor may restart (edge.context.BeltControl)."""
        return self

    @property
    def plc(self) -> Plc:
        """The station's PLC (a DriverError when it could not be opened at start)."""
        return self.devices.opened_plc()

    async def run(self) -> None:
        plc = self.plc
        self.progress.register("plc")
        self._remember()  # clean: false until the daemon stops on request
        async with asyncio.TaskGroup() as tasks:
            gate = Gate(plc, self.tracker.note_command_latency, self._gate_unconfirmed)
            self._running = Running(tasks, gate)
            tasks.create_task(follow_turns(self.progress, "plc", lambda: plc_turns(plc), LIVENESS_S),
                              name="plc-liveness")
            tasks.create_task(self.tags.run(), name="readers")
            tasks.create_task(gate.run(), name="gate")
            tasks.create_task(self._watch_belt(), name="belt-watch")
            tasks.create_task(hold_scanner_while_unsafe(self.devices, plc, self.parts.store, lambda: self.latch),
                              name="scanner-safety")
            if self._recovered:
                tasks.create_task(self._record_recovered(list(self._recovered)), name="recovered-records")
            self._handle(self._feed(await current_link(plc)))
            async for event in plc.events():
                self._handle(self._feed(event))

    def _now_running(self) -> Running:
        """The running flow's task group and gate; outputs are handled only while `run` runs."""
        if self._running is None:
            raise RuntimeError("the conveyor flow is not running, so it cannot start tasks or move the gate")
        return self._running

    def _feed(self, event: object) -> list:
        if isinstance(event, EyeEdge):
            if event.first and event.blocked and self.tracker.roles.get(event.eye, event.eye) == "entry":
                log.warning("conveyor.bag_in_entry_beam_at_start", eye=event.eye,
                            message="a bag stood in the tunnel entry's beam when the station software started: it"
                                    " is no bag entering (the last run left it on the belt), it goes to manual at"
                                    " the X-ray exit")
                return []
            return self.tracker.on_edge(event.eye, event.blocked, event.encoder_m, event.t)
        if isinstance(event, BeltMoved):
            return self.tracker.advance(event.encoder_m, event.t)
        if isinstance(event, LinkChanged):
            self.devices.mark("plc", "ok" if event.ok else "lost", event.reason)
            if event.ok and self._belt_start_pending:
                self._belt_start_pending = False  # once, at start: after a link loss only a supervisor restarts
                self._now_running().tasks.create_task(self._start_belt(), name="belt-start")
            if not event.ok:
                if not self._belt_start_pending:
                    self._latch("link_lost")
                self.metrics.dropped.labels("item", "plc_link_lost").inc(len(self.tracker.items))
                return self.tracker.link_lost(event.t)
        return []

    def _handle(self, outputs: list) -> None:
        for out in outputs:
            if isinstance(out, ItemEntered):
                item = Item(ref=f"item-{out.item_id}", kind=self.item_kind)
                self._tracker_ids[item.id] = out.item_id
                self._entered_at[item.id] = item.started_at.isoformat()
                self._routes.entered(out.item_id, item.id)
                self._passed[out.item_id] = asyncio.Event()
                self._now_running().tasks.create_task(self._inspect(out.item_id, item), name=f"item-{out.item_id}")
            elif isinstance(out, ItemScanned | ItemMissed):
                self._passed_tunnel(out.item_id)
                self._now_running().tasks.create_task(self._end_scan(out.item_id), name=f"end-scan-{out.item_id}")
            elif isinstance(out, GateCommand):
                self._now_running().gate.command(out)
            elif isinstance(out, ItemRouted):
                self._passed_tunnel(out.item_id)  # one the exit eye never saw (lifted off) is routed by belt travel
                self._routed(out)
            elif isinstance(out, UnknownBagAtGate):
                self._unknown_bag_at_gate(out)
            elif isinstance(out, TrackingFault):
                self.metrics.dropped.labels("item", "tracking_fault").inc()
                log.error("conveyor.tracking_fault", detail=out.message)
        if outputs and self._on_belt() != self._saved_items:
            self._remember()

    def _passed_tunnel(self, item_id: int) -> None:
        """The item's scan has ended, or it is past the gate: a record waiting for that (its scan failed) is written."""
        if (passed := self._passed.get(item_id)) is not None:
            passed.set()

    def _unknown_bag_at_gate(self, fault: UnknownBagAtGate) -> None:
        """A bag nobody tracked reached the gate: unscanned, too late to divert (the gate may stand at pass for a
        clear bag). The belt latches (`unknown_bag_at_gate`, every item to manual) and is asked to stop; a
        supervisor's restart runs it again once the bag is found."""
        self.metrics.dropped.labels("item", "unknown_bag_at_gate").inc()
        log.error("conveyor.unknown_bag_at_gate", detail=fault.message,
                  message="a bag never seen entering the tunnel reached the divert gate: the belt is stopped and"
                          " latched, and every item on it goes to manual")
        self._latch("unknown_bag_at_gate")
        self._now_running().tasks.create_task(self._stop_belt(), name="belt-stop")

    async def _inspect(self, item_id: int, item: Item) -> None:
        self.tags.start(item)
        acquisition = await start_line_scan(self.devices, item.id)
        if isinstance(acquisition, LineScan):
            self._streams[item_id] = acquisition.stream
        else:  # its record waits for its bag to pass the tunnel, as a scanned bag's does: the tags read meanwhile
            await self._passed[item_id].wait()  # are its own (the entry antenna hears a tag after the eye)
        await self.inspector.inspect(item, acquisition)
        self.tags.stop(item)
        self._streams.pop(item_id, None)
        self._passed.pop(item_id, None)
        self._write_route(item_id, self._routes.committed(item_id))

    async def _end_scan(self, item_id: int) -> None:
        """The item's tail left the tunnel, or its front was missed at the exit eye (it goes to manual): end its
        scan if the scanner has not already."""
        stream = self._streams.get(item_id)
        if stream is not None and not stream.ended:
            try:
                await stream.stop()
            except DriverError as exc:
                self.devices.mark("scanner", "degraded", str(exc))

    async def _actuate(self, item: Item, verdict: Verdict, reason: Reason) -> Reason | None:
        """Hand the verdict to the tracker; the gate acts when the item reaches it."""
        item_id = self._tracker_ids.pop(item.id, None)
        if item_id is None:  # a bag the last daemon left on the belt: nothing follows it, the gate rests at manual
            return None
        self._handle(self.tracker.set_verdict(item_id, verdict.value, time.monotonic()))
        return None

    def _gate_unconfirmed(self, command: GateCommand, error: str) -> None:
        """The PLC refused or did not confirm a gate command: degraded. After a command to pass the gate counts as
        at manual. After a command to manual it may stand at pass, where items meant for manual would leave
        uninspected: the belt is stopped and latched (`gate_unconfirmed`), and a supervisor's restart first reads
        the divert back at manual (`_run_belt`)."""
        self.devices.degrade("plc", error)
        if command.to_manual:
            self._now_running().tasks.create_task(self._divert_unconfirmed(command, error), name="divert-unconfirmed")
        self._handle(self.tracker.gate_unconfirmed(command.to_manual, time.monotonic()))

    async def _divert_unconfirmed(self, command: GateCommand, error: str) -> None:
        """Stop and latch the belt, unless it is latched already (nothing moves past the divert) or the link is
        lost (then the PLC's watchdog diverts to manual and stops the belt, and the latch says `link_lost`)."""
        if self.latch is not None or not (await self.plc.read_state()).link_ok:
            return
        log.error("conveyor.divert_unconfirmed", error=error, items=list(command.item_ids))
        self._latch("gate_unconfirmed")
        await self._stop_belt()

    async def _stop_belt(self) -> None:
        """Ask the latched belt to stop; an unconfirmed stop is logged (the link's state says more, and the PLC's
        watchdog stops the belt without the host)."""
        try:
            await self.plc.request_belt(False)
        except DriverError as exc:
            log.error("conveyor.belt_stop_unconfirmed", error=str(exc))

    def _routed(self, out: ItemRouted) -> None:
        self.metrics.routed.labels(out.route, out.reason).inc()
        log.info("conveyor.item_routed", item=out.item_id, route=out.route, reason=out.reason)
        self._write_route(out.item_id, self._routes.routed(out))

    def _write_route(self, item_id: int, write: Coroutine[Any, Any, None] | None) -> None:
        """Run a route write into the item's record (edge.stations.routes) as a task of the flow."""
        if write is not None:
            self._now_running().tasks.create_task(write, name=f"route-{item_id}")

    # ---- the belt: start, latch, supervisor restart ------------------------------------------
    async def _start_belt(self) -> None:
        try:
            await self._run_belt()
        except DriverError as exc:
            self.devices.degrade("plc", f"belt did not start: {exc}")
            self._latch("start_failed")

    async def _run_belt(self) -> None:
        """Request the belt to run and the X-ray permit, each confirmed by read-back; when either is
        not confirmed, ask the belt to stop again and raise (the belt stays latched)."""
        plc = self.plc
        try:
            await plc.request_divert(True)  # read back at manual first: an unconfirmed divert latched the belt
            await plc.request_belt(True)
            await plc.request_xray_permit(True)
        except DriverError:
            with contextlib.suppress(DriverError):
                await plc.request_belt(False)
            raise
        self._belt_on, self._plc_state = True, await plc.read_state()
        if self.devices.scanner is not None and self.latch is not None and restart_refusal(self._plc_state) is None:
            self.devices.scanner.release()  # normal operation again: the next bag's scan arms it
        if self.latch is not None:
            log.info("conveyor.belt_unlatched", reason=self.latch, latched_at=self.latched_at)
        self.latch = self.latched_at = None
        self.stranded, self._recovered = [], []
        self._show_latch()
        self._remember()

    def _latch(self, reason: LatchReason) -> None:
        """The belt stopped unasked: it stays stopped until a supervisor restarts it, and every item
        on it goes to manual (it stood where anyone could reach it)."""
        self._belt_on = False
        if self.latch is None:
            self.latch, self.latched_at = reason, datetime.now(timezone.utc).isoformat()
            self.stranded = [*(i.record for i in self._recovered),
                             *self._routes.records_of([i.id for i in self.tracker.items if not i.done])]
            log.warning("conveyor.belt_latched", reason=reason, items_on_belt=self.stranded)
            self._show_latch()
            self._remember()
        if reason != "link_lost":  # a link loss reaches the tracker through its own event
            self._handle(self.tracker.belt_stopped(time.monotonic(), reason))
        for passed in self._passed.values():  # the bags stop where they are: their records are written now
            passed.set()

    def _recall_latch(self) -> None:
        """Take over the latch the last daemon left; latch `restarted` when it did not stop cleanly."""
        saved = beltlatch.load(self.latch_file)
        if saved is not None and saved.items:
            self._recovered = list(saved.items)
            self.stranded = [i.record for i in saved.items]
            log.warning("conveyor.items_recalled", items_on_belt=self.stranded,
                        message="the last daemon left these bags on the belt: they go to manual search")
        if saved is not None and saved.latch in LATCH_REASONS:
            self.latch, self.latched_at = saved.latch, saved.since
            log.warning("conveyor.belt_latch_kept", reason=self.latch, latched_at=self.latched_at)
        elif saved is not None and saved.latch is not None:  # a reason this version does not know: still latched
            self.latch, self.latched_at = "restarted", datetime.now(timezone.utc).isoformat()
            log.warning("conveyor.belt_latched", reason="restarted", saved_latch=repr(saved.latch)[:100],
                        message=f"the belt file says the belt was latched for {saved.latch!r:.100}, a reason this"
                                f" version does not know: it stays stopped until a supervisor restarts it")
        elif saved is not None and not saved.clean:
            self.latch, self.latched_at = "restarted", datetime.now(timezone.utc).isoformat()
            log.warning("conveyor.belt_latched", reason="restarted",
                        message="the last daemon did not stop cleanly, so the belt's state is unknown: it stays"
                                " stopped until a supervisor restarts it")
        self._show_latch()

    def _remember(self) -> None:
        """Write the latch, whether this daemon stopped on request and the bags on the belt to the belt file."""
        items = self._on_belt()
        try:
            beltlatch.save(self.latch_file, beltlatch.SavedBelt(self.latch, self.latched_at, self._clean, items))
        except OSError as exc:
            log.error("conveyor.belt_file_write_failed", path=str(self.latch_file), error=str(exc))
            return
        self._saved_items = items

    def _on_belt(self) -> tuple[beltlatch.SavedItem, ...]:
        """The bags whose route this daemon has not seen: those the last daemon left (until the belt runs
        again), then those the tracker follows that have a record id."""
        records = self._routes.records_of([i.id for i in self.tracker.items if not i.done])
        self._entered_at = {r: self._entered_at[r] for r in records if r in self._entered_at}
        return (*self._recovered, *(beltlatch.SavedItem(r, self._entered_at.get(r)) for r in records))

    async def _record_recovered(self, items: list[beltlatch.SavedItem]) -> None:
        """A bag the last daemon left on the belt before its record was written (its scan was cut off) gets a
        `manual` record under the id the belt file and the screen name, as a bag whose scan failed does."""
        store = self.parts.store
        for saved in items:
            if await store.call(store.store.get, saved.record) is not None:
                continue
            item = Item(ref="recovered", kind=self.item_kind, id=saved.record)
            if saved.since is not None:
                with contextlib.suppress(ValueError):
                    item.started_at = datetime.fromisoformat(saved.since)
            log.warning("conveyor.recovered_without_record", record=saved.record)
            await self.inspector.inspect(item, FailedAcquisition(
                f"the station software restarted while bag {saved.record} was on the belt, before its record was"
                f" written, so it was not judged"))

    def stopped_on_request(self) -> None:
        """The daemon stops on request (not a crash): the next start may run the belt if nothing is latched."""
        self._clean = True
        self._remember()

    def _show_latch(self) -> None:
        for reason in LATCH_REASONS:
            self._latched_gauge.labels(reason).set(1 if reason == self.latch else 0)

    async def _watch_belt(self) -> None:
        """Follow the PLC's belt feedback: a belt the daemon runs that stops latches, with its cause."""
        while True:
            st = self._plc_state = await self.plc.read_state()
            if self._belt_on and st.link_ok and not st.belt_running:
                self._latch(stop_cause(st))
            elif self._encoder_stalled(st):
                await self._stop_stalled(st)
            await asyncio.sleep(WATCH_S)

    @property
    def encoder_stall_s(self) -> float:
        """How long the encoder may read the same while the belt runs: the time for ENCODER_STALL_COUNTS counts at
        the speed gate timing allows for (the configured one, or the measured one when faster), at least 1 s."""
        return encoder_stall_s(self.encoder_counts_per_m, self.tracker.belt_speed_m_s)

    def _encoder_stalled(self, st: PlcState) -> bool:
        """The encoder has read the same for encoder_stall_s while the PLC says the belt runs: the tracker's
        positions stand still while the bags move (a gate left at pass for a clear bag would stay there)."""
        if not (self._belt_on and st.link_ok and st.belt_running):
            self._encoder_since = None
            return False
        if self._encoder_since is None or self._encoder_since[0] != st.encoder_m:
            self._encoder_since = (st.encoder_m, st.t)
            return False
        return st.t - self._encoder_since[1] >= self.encoder_stall_s

    async def _stop_stalled(self, st: PlcState) -> None:
        """Latch (every item to manual, the gate to manual) and ask the belt to stop."""
        log.error("conveyor.encoder_stalled", encoder_m=st.encoder_m, stalled_s=round(st.t - (self._encoder_since or
                  (0.0, st.t))[1], 2), limit_s=round(self.encoder_stall_s, 2), message="the belt encoder stopped counting while the PLC says the belt runs:"
                  " the belt is stopped and every item on it goes to manual")
        self._encoder_since = None
        self._latch("encoder_stalled")
        await self._stop_belt()

    def belt_status(self) -> dict[str, object]:
        """The belt as /healthz, /metrics and the screen show it."""
        st = self._plc_state
        refusal = restart_refusal(st) if st is not None and self.latch is not None else None
        return {"latched": self.latch is not None, "reason": self.latch, "since": self.latched_at,
                "running": bool(st and st.link_ok and st.belt_running), "run_confirmed": self._belt_on,
                "restart_blocked_by": refusal.code if refusal else None, "stranded": list(self.stranded)}

    async def restart_belt(self, actor: str) -> BeltRestart:
        """A supervisor's request to run the latched belt again; refused unless the PLC link is up and
        the safety chain and interlocks read closed; `running` only when the PLC confirms it."""
        reason = self.latch
        if self._restarting.locked():
            result = BeltRestart("refused", "belt_restart_busy", "another belt restart request is in progress")
        else:
            async with self._restarting:
                result = await self._try_restart()
        result = BeltRestart(result.outcome, result.code, result.message, reason)
        self._restarts.labels(result.outcome, result.code).inc()
        logger = log.info if result.outcome == "running" else log.warning
        logger("conveyor.belt_restart", actor=actor, **result.as_dict())
        return result

    async def _try_restart(self) -> BeltRestart:
        if self.latch is None:
            return BeltRestart("refused", "belt_not_latched",
                               "the belt is not latched stopped, so there is nothing to restart")
        refusal = restart_refusal(await self.plc.read_state())
        if refusal is not None:
            return refusal
        try:
            await self._run_belt()
        except DriverError as exc:
            return BeltRestart("failed", "belt_unconfirmed", f"the PLC did not confirm the belt run, so the belt"
                               f" stays stopped: {exc}")
        return BeltRestart("running", "belt_running", "the PLC confirms the belt runs")
