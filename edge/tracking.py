"""Conveyor item tracking, sans-IO: photo-eye edges, encoder and verdicts in; gate commands out.

Positions are belt distances from the encoder. An item is created when its front edge blocks the
tunnel entry eye (a beam blocked again less than `entry_gap_m` of belt travel after it cleared is the same
bag: a strap, a gap between two parts, a bag rolling back out of the beam; debounced by belt travel, not
time, so a belt that slows or stops with a bag in the beam still gives one item), re-anchored when it blocks the X-ray exit eye, and scanned (end of acquisition)
once its tail has cleared the exit eye and the belt has carried it `exit_gap_m` further with the beam still clear
(the exit beam blocked again sooner is the same bag, a strap or a gap between two parts: its scan goes on; a belt
that stops unasked ends the scan at once, the item going to manual anyway). A bag that blocks the exit eye while the next tracked item's front
is still short of it (by more than the eye tolerance) is not that item: it goes to manual unscanned,
so that a bag the tracker does not know (left on the belt by a daemon that restarted) or a beam that
flaps within one bag never takes over the next item's scan and route; an item then expected past the
exit eye while the item behind it is expected at it missed its own edge (its bag came early and was the
untracked one): it goes to manual (`exit_missed`, its scan ended) and the item behind takes the edge, so the tracker
is in step again instead of giving each later item the next bag's scan and route. An item's route is
frozen when its front edge reaches the decision point `gate - (actuation + command latency) x speed - margin`:
`pass` only with a `clear` verdict in hand, otherwise `manual` (suspect, manual, or no verdict yet =
late). The gate rests at manual and goes to pass only while every item between the decision point
and the gate is routed to pass.

The command latency is measured (the slowest of the last LATENCY_WINDOW gate writes, never less
than the configured floor); the decision point also moves up by the longest recent belt travel
between two encoder samples, so that the last sample before it still leaves the command its time,
and the belt speed is measured by the encoder too: a belt run faster than configured (more than
SPEED_SLACK times) has the command's time counted at the measured speed.
A `clear` item goes to manual with reason `gate_latency` when the gate cannot be at pass in time
for it (it was seen past the decision point too late), or when the item behind it is so close that
its route would be frozen before this one is through the gate. An item already too near the gate
to be diverted keeps its `pass` when a later item sends the gate to manual (it goes through).

A bag at the gate eye that no tracked item covers (put on the belt past the entry eye) is unscanned and too
near the gate to be diverted: the tracker reports it (`UnknownBagAtGate`) and the conveyor stops and latches
the belt (`unknown_bag_at_gate`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import structlog

log = structlog.get_logger()

Verdict = Literal["clear", "suspect", "manual"]
Route = Literal["pass", "manual"]
Role = Literal["entry", "exit", "gate"]
LATENCY_WINDOW = 16  # gate writes the latency estimate looks back on
SPEED_WINDOW = 16  # encoder samples the belt speed is measured over
SPEED_MIN_SPAN_S = 0.1  # the shortest time those samples must span for a measurement
SPEED_SLACK = 1.1  # a measured speed up to 10 % above the configured one is the configured one (poll jitter)
ENTRY_GAP_M = 0.02  # the entry beam blocked again within this belt travel after clearing is the same bag
EXIT_GAP_M = 0.02  # the exit beam blocked again within this belt travel after clearing is the same bag
DEFAULT_ROLES: dict[str, Role] = {"eye_tunnel_entry": "entry", "eye_tunnel_exit": "exit",
                                  "eye_divert_gate": "gate"}


@dataclass(frozen=True)
class Geometry:
    """Station geometry along the belt (m) and the divert gate's actuation time."""

    entry_m: float
    exit_m: float
    gate_m: float
    actuation_s: float
    margin_m: float = 0.05


def latency_budget_s(g: Geometry, speed_m_s: float, item_length_m: float = 0.0) -> float:
    """Time from the last scan line (tail leaves the exit eye) to the verdict deadline.

    (gate - exit) / speed - actuation, less the item's length (or any belt travel after the tail left the eye) and
    the safety margin at that speed.
    """
    return (g.gate_m - g.exit_m - item_length_m - g.margin_m) / speed_m_s - g.actuation_s


@dataclass(frozen=True)
class ItemEntered:
    """An item's front edge reached the tunnel entry: acquisition starts."""

    item_id: int
    encoder_m: float
    t: float


@dataclass(frozen=True)
class ItemScanned:
    """An item's tail cleared the X-ray exit: acquisition is complete; verdict due within budget."""

    item_id: int
    length_m: float
    budget_s: float
    t: float


@dataclass(frozen=True)
class ItemMissed:
    """An item's front was never seen at the X-ray exit (`exit_missed`, it goes to manual): its scan is to end
    now, not at the scanner's own limit, over the bags behind it."""

    item_id: int
    t: float


@dataclass(frozen=True)
class GateCommand:
    """Request the divert gate to move (`to_manual`) because of these items."""

    to_manual: bool
    item_ids: tuple[int, ...]
    t: float


@dataclass(frozen=True)
class ItemRouted:
    """An item's front edge reached the gate; `reason` says why it was routed so."""

    item_id: int
    route: Route
    reason: str
    t: float


@dataclass(frozen=True)
class TrackingFault:
    """Something the tracker cannot explain (an item at the gate nobody tracked)."""

    message: str
    t: float


@dataclass(frozen=True)
class UnknownBagAtGate(TrackingFault):
    """A bag blocked the gate eye where no tracked item is: it was never seen entering the tunnel (put on the belt
    past the entry eye) nor at the X-ray exit, so it is unscanned and too near the gate to be diverted. The belt
    is to stop and latch (`unknown_bag_at_gate`): the gate may stand at pass, and the bag would leave as if
    cleared."""


Output = ItemEntered | ItemScanned | ItemMissed | GateCommand | ItemRouted | TrackingFault


@dataclass
class _Item:
    id: int
    anchor_enc: float  # encoder reading when the front edge was at anchor_pos
    anchor_pos: float
    length_m: float | None = None
    exit_enc: float | None = None
    verdict: Verdict | None = None
    route: Route | None = None
    reason: str = ""
    done: bool = False
    missed: bool = False  # its front was never seen at the exit eye: it takes no later bag's edge

    def lead(self, enc: float) -> float:
        return self.anchor_pos + enc - self.anchor_enc


class ConveyorTracker:
    """Tracks items from the tunnel to the divert gate and decides the gate, fail-safe."""

    def __init__(self, geometry: Geometry, speed_m_s: float, roles: dict[str, Role] | None = None,
                 latency_floor_s: float = 0.0, entry_gap_m: float = ENTRY_GAP_M,
                 exit_gap_m: float = EXIT_GAP_M) -> None:
        self.g, self.speed = geometry, speed_m_s
        self.roles = roles or DEFAULT_ROLES
        self.latency_floor_s = latency_floor_s
        self.entry_gap_m = entry_gap_m
        self.exit_gap_m = exit_gap_m
        self.entry_flaps = 0  # entry beam edges that were no new bag
        self.exit_flaps = 0  # exit beam edges within one bag (its scan went on)
        self._exit_clearing: tuple[_Item, float] | None = None  # the item whose tail cleared the exit eye, at what encoder
        self._entry_blocked = False  # the tracker saw the entry beam blocked and not yet cleared
        self._entry_cleared_enc: float | None = None  # encoder reading when the entry beam last cleared
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._steps: deque[float] = deque(maxlen=LATENCY_WINDOW)  # belt travel between encoder samples (m)
        self._samples: deque[tuple[float, float]] = deque(maxlen=SPEED_WINDOW)  # (t, encoder) of recent moves
        self.items: list[_Item] = []
        self.gate_to_manual = True
        self.enc = 0.0
        self.late_verdicts = 0
        self.unknown_verdicts = 0
        self._next_id = 1

    @property
    def latency_s(self) -> float:
        """The gate command latency the decision point allows for: the slowest recent write, or the floor."""
        return max(self.latency_floor_s, *self._latencies) if self._latencies else self.latency_floor_s

    @property
    def belt_speed_m_s(self) -> float:
        """The belt speed gate timing allows for: the configured one, or the speed the encoder measured over the
        last samples when that is more than SPEED_SLACK times it (the belt was set faster than configured)."""
        if len(self._samples) < 2:
            return self.speed
        (t0, e0), (t1, e1) = self._samples[0], self._samples[-1]
        if t1 - t0 < SPEED_MIN_SPAN_S:
            return self.speed
        measured = (e1 - e0) / (t1 - t0)
        return measured if measured > self.speed * SPEED_SLACK else self.speed

    @property
    def decide_m(self) -> float:
        """Front-edge position where an item's route is frozen."""
        command_m = (self.g.actuation_s + self.latency_s) * self.belt_speed_m_s
        return self.g.gate_m - command_m - max(self._steps, default=0.0) - self.g.margin_m

    @property
    def eye_tolerance_m(self) -> float:
        """How far an item's front may be from where the tracker expects it and still be the item an eye sees."""
        return 0.05 + self.g.margin_m

    def note_command_latency(self, seconds: float) -> None:
        """Feed the measured round trip of one gate command write."""
        self._latencies.append(seconds)

    # ---- inputs ------------------------------------------------------------------------------
    def on_edge(self, eye: str, blocked: bool, encoder_m: float, t: float) -> list[Output]:
        """Feed a photo-eye edge (eye by PLC point name or role)."""
        role = self.roles.get(eye, eye)
        out = self.advance(encoder_m, t)
        handler = {("entry", True): self._entry, ("entry", False): self._entry_cleared,
                   ("exit", True): self._exit_blocked,
                   ("exit", False): self._exit_cleared, ("gate", True): self._gate_blocked}.get((role, blocked))
        if handler:
            out += handler(encoder_m, t)
        return out

    def advance(self, encoder_m: float, t: float) -> list[Output]:
        """Feed the encoder; freezes routes at the decision point and routes items at the gate."""
        if encoder_m > self.enc:
            self._steps.append(encoder_m - self.enc)
            if self._samples and t <= self._samples[-1][0]:
                self._samples.clear()  # a clock that did not move on measures nothing
            self._samples.append((t, encoder_m))
        self.enc = encoder_m
        out: list[Output] = self._exit_gap_passed(encoder_m, t)
        for it in self.items:
            if it.route is None and it.lead(encoder_m) >= self.decide_m:
                self._decide(it, encoder_m)
        out += self._update_gate(t)
        for it in self.items:
            if not it.done and it.lead(encoder_m) >= self.g.gate_m:
                it.done = True
                out.append(ItemRouted(it.id, it.route or "manual", it.reason or "late", t))
        gone = self.g.gate_m + 0.05 + self.g.margin_m
        self.items = [i for i in self.items if not i.done or i.lead(encoder_m) - (i.length_m or 0) <= gone]
        return out

    def set_verdict(self, item_id: int, verdict: Verdict, t: float) -> list[Output]:
        """Feed a verdict; one arriving after the item's route was frozen changes nothing."""
        it = next((i for i in self.items if i.id == item_id), None)
        if it is None:
            self.unknown_verdicts += 1
            log.warning("tracking.verdict_for_unknown_item", item_id=item_id, verdict=verdict)
            return []
        if it.route is not None or it.done:
            self.late_verdicts += 1
            log.warning("tracking.verdict_late", item_id=item_id, verdict=verdict, route=it.route)
            return []
        it.verdict = verdict
        return self.advance(self.enc, t)

    def link_lost(self, t: float) -> list[Output]:
        """The PLC link is down: every item still tracked goes to manual."""
        return self.belt_stopped(t, "link_lost")

    def gate_unconfirmed(self, to_manual: bool, t: float) -> list[Output]:
        """A gate command was refused or not confirmed: the gate counts as at manual. After a command to
        pass, items routed to pass go to manual and the gate is commanded to manual again."""
        if to_manual:
            return []
        for it in self.items:
            if not it.done and it.route == "pass":
                it.route, it.reason = "manual", "gate_unconfirmed"
        self.gate_to_manual = False  # so that the update below commands manual
        return self._update_gate(t)

    def belt_stopped(self, t: float, reason: str) -> list[Output]:
        """The belt stopped unasked (`reason`: link_lost, estop, ...): every item still tracked goes to manual, and a
        scan waiting for its exit gap ends now (the belt may not carry it further)."""
        for it in self.items:
            if not it.done and it.route != "manual":
                it.route, it.reason = "manual", reason
        return self._exit_gap_passed(self.enc, t, now=True) + self._update_gate(t)

    # ---- internals ---------------------------------------------------------------------------
    def _new(self, enc: float, pos: float) -> _Item:
        it = _Item(self._next_id, enc, pos)
        self._next_id += 1
        self.items.append(it)
        return it

    def _entry(self, enc: float, t: float) -> list[Output]:
        """A new item, unless the beam cleared less than entry_gap_m of belt travel ago: the same bag (a flap)."""
        self._entry_blocked = True
        cleared = self._entry_cleared_enc
        if cleared is not None and enc - cleared < self.entry_gap_m:
            self.entry_flaps += 1
            _flap("entry", "the tunnel entry", enc - cleared, self.entry_gap_m, self.entry_flaps,
                  "the same bag (a strap, a bag rolling back), no new item")
            return []
        return [ItemEntered(self._new(enc, self.g.entry_m).id, enc, t)]

    def _entry_cleared(self, enc: float, t: float) -> list[Output]:
        """The beam cleared behind a bag the tracker saw enter (one standing in it at start is no bag entering)."""
        if self._entry_blocked:
            self._entry_blocked, self._entry_cleared_enc = False, enc
        return []

    def _exit_blocked(self, enc: float, t: float) -> list[Output]:
        """The same bag when its tail cleared the eye less than exit_gap_m of belt travel ago (a flap: its scan goes
        on); otherwise the first item not yet at the exit eye is re-anchored there, unless its front is still short of the
        eye: then the bag at the eye is none the tracker follows (one a restarted daemon found on the belt, the
        same bag's beam flapping, or that item's own bag come early) and goes to manual unscanned; the item keeps
        its place for its own edge. An item expected past the eye while the item behind it is expected at the
        eye missed its own edge (its bag came early and was taken as untracked, or left the belt, or the beam
        missed it): it goes to manual (`exit_missed`, its scan ends: ItemMissed) and the item behind takes this
        edge, so that no item takes the next bag's scan and route and the tracker is in step again with the bags behind."""
        if self._exit_clearing is not None:  # advance() ended its scan had the belt gone exit_gap_m since
            cleared_enc = self._exit_clearing[1]
            self._exit_clearing = None
            self.exit_flaps += 1
            _flap("exit", "the X-ray exit", enc - cleared_enc, self.exit_gap_m, self.exit_flaps,
                  "the same bag (a strap, a gap between two parts), its scan goes on")
            return []
        short_m, past_m = self.g.exit_m - self.eye_tolerance_m, self.g.exit_m + self.eye_tolerance_m
        waiting = [i for i in self.items if i.exit_enc is None and not i.missed]
        out: list[Output] = []
        while len(waiting) > 1 and waiting[0].lead(enc) > past_m and waiting[1].lead(enc) >= short_m:
            missed = waiting.pop(0)
            missed.missed = True
            if missed.route is None:
                missed.route, missed.reason = "manual", "exit_missed"
            out.append(TrackingFault(f"item {missed.id} was expected {missed.lead(enc) - self.g.exit_m:.3f} m past"
                                     f" the X-ray exit at {enc:.3f} m, its front never seen there, and item"
                                     f" {waiting[0].id} is expected at the eye: item {missed.id} goes to manual", t))
            out.append(ItemMissed(missed.id, t))
        it = waiting[0] if waiting else None
        if it is None or it.lead(enc) < short_m:
            why = ("no tracked item is in the tunnel" if it is None else
                   f"the next tracked item is still {self.g.exit_m - it.lead(enc):.3f} m short of the eye")
            made_up = self._new(enc, self.g.exit_m)
            made_up.route, made_up.reason, made_up.exit_enc = "manual", "unscanned", enc
            out.append(TrackingFault(f"untracked item at the X-ray exit at {enc:.3f} m ({why}): manual, unscanned",
                                     t))
        else:
            it.anchor_enc, it.anchor_pos, it.exit_enc = enc, self.g.exit_m, enc
        return out + self._update_gate(t)

    def _exit_cleared(self, enc: float, t: float) -> list[Output]:
        """The tail of the item in the exit beam cleared it: its scan ends once the belt has carried it exit_gap_m
        further with the beam still clear (advance)."""
        it = next((i for i in self.items if i.exit_enc is not None and i.length_m is None), None)
        if it is None:
            return []
        self._exit_clearing = (it, enc)
        return self._exit_gap_passed(enc, t)

    def _exit_gap_passed(self, enc: float, t: float, now: bool = False) -> list[Output]:
        """The item whose tail cleared the exit eye is scanned (its length as far as the beam cleared) once the belt
        has carried it exit_gap_m further, or `now`; the budget counts from here."""
        if self._exit_clearing is None:
            return []
        it, cleared = self._exit_clearing
        if not now and enc - cleared < self.exit_gap_m:
            return []
        self._exit_clearing = None
        it.length_m = cleared - (it.exit_enc or cleared)
        return [ItemScanned(it.id, it.length_m, latency_budget_s(self.g, self.belt_speed_m_s, enc - cleared), t)]

    def _gate_blocked(self, enc: float, t: float) -> list[Output]:
        """A tracked item that covers the gate eye (its front, or the beam flapping within it) explains the edge;
        any other bag is unknown at the gate (UnknownBagAtGate)."""
        tol = self.eye_tolerance_m
        if any(i.lead(enc) - (i.length_m or 0.0) - tol <= self.g.gate_m <= i.lead(enc) + tol for i in self.items):
            return []
        log.error("tracking.unknown_bag_at_gate", encoder_m=enc)
        return [UnknownBagAtGate(f"a bag no tracked item accounts for blocked the divert gate's eye at encoder"
                                 f" {enc:.3f} m (never seen entering the tunnel nor at the X-ray exit): it is"
                                 f" unscanned and too near the gate to be diverted", t)]

    def _decide(self, it: _Item, enc: float) -> None:
        if it.length_m is None:
            it.route, it.reason = "manual", it.reason or "late"
        elif it.verdict != "clear":
            it.route, it.reason = "manual", it.verdict or "late"
        elif not self._gate_in_time(it, enc):
            it.route, it.reason = "manual", "gate_latency"
        else:
            it.route, it.reason = "pass", "clear"

    def _divertable(self, it: _Item) -> bool:
        """A gate command sent now still takes effect before the item's front reaches the gate."""
        return ((self.g.gate_m - it.lead(self.enc) - self.g.margin_m) / self.belt_speed_m_s
                >= self.g.actuation_s + self.latency_s)

    def _gate_in_time(self, it: _Item, enc: float) -> bool:
        """The gate can reach pass before the item's front does, and the item is through the gate before the
        next item's route is frozen (so that the gate is back at manual in time for it)."""
        if not self._divertable(it):
            return False
        behind = [i.lead(enc) for i in self.items if i.lead(enc) < it.lead(enc)]
        return not behind or it.lead(enc) - max(behind) >= self.g.gate_m - self.decide_m

    def _update_gate(self, t: float) -> list[Output]:
        window = [i for i in self.items if i.route is not None and not i.done]
        to_manual = not window or any(i.route == "manual" for i in window)
        if to_manual:
            for i in window:  # one too near the gate to be diverted any more goes through: its route stays pass
                if i.route == "pass" and self._divertable(i):
                    i.route, i.reason = "manual", "collateral"
        if to_manual == self.gate_to_manual:
            return []
        self.gate_to_manual = to_manual
        return [GateCommand(to_manual, tuple(i.id for i in window), t)]


def _flap(eye: str, where: str, gap_m: float, limit_m: float, flaps: int, meaning: str) -> None:
    """Log a beam blocked again within `limit_m` of belt travel after it cleared (`tracking.<eye>_flap`)."""
    log.warning(f"tracking.{eye}_flap", gap_m=round(gap_m, 4), **{f"{eye}_gap_m": limit_m}, flaps=flaps,
                message=f"{where}'s beam was blocked again {gap_m:.3f} m of belt after it cleared, less than "
                        f"{eye}_gap_m {limit_m} m: {meaning}")
