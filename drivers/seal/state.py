"""E-seal domain values shared by every vendor family: a seal's state report, and the board of seals in range.

ISO 18185 e-seals and vendor e-locks report the same facts in their own formats: the seal's
number, whether it is intact, opened or tampered, its battery, and when its last event happened
(with an event counter, so that a missed event shows as a jump). Each adapter (serial line,
LLRP tag memory) turns its format into `SealReport`; `SealBoard` turns a stream of reports into
`SealSeen` (a seal appeared or its state changed) and `SealGone` (not heard for the removal time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import structlog

from drivers.fanout import EventDevice

log = structlog.get_logger()
EVENT_QUEUE = 256  # events a slow subscriber may fall behind before the oldest are dropped

SealState = Literal["intact", "opened", "tampered"]
STATES: tuple[SealState, ...] = ("intact", "opened", "tampered")
SEAL_ID = re.compile(r"[A-Z0-9]{4,18}")
"""A seal number as printed on the seal and declared: 4 to 18 capital letters and digits (use fullmatch: `$`
lets a trailing newline through)."""


@dataclass(frozen=True)
class SealReport:
    """One report of a seal: its number, state, battery, and its last event (time and counter)."""

    seal_id: str
    state: SealState
    battery_pct: int
    battery_low: bool
    last_event_at: datetime | None
    events: int
    reader: str = ""
    t: float = 0.0

    def heard(self, reader: str, t: float) -> SealReport:
        """This report as heard by `reader` at loop time `t`."""
        return replace(self, reader=reader, t=t)

    def same_state(self, other: SealReport) -> bool:
        """True when nothing a reader reports changed (the time it was heard aside)."""
        return (self.state, self.battery_low, self.last_event_at, self.events) == \
            (other.state, other.battery_low, other.last_event_at, other.events)


@dataclass(frozen=True)
class SealSeen:
    """A seal came into range, or reported a new state (an event) while in range."""

    report: SealReport


@dataclass(frozen=True)
class SealGone:
    """A seal was not heard for the removal time (`reason` "silence") or the reader's link was lost."""

    reader: str
    seal_id: str
    reason: str
    t: float


SealEvent = SealSeen | SealGone


def event_time(seconds: int) -> datetime | None:
    """A seal's event time (UTC seconds since 1970; 0 = no event yet)."""
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


@dataclass
class SealBoard:
    """The seals in range of one reader: each report refreshes its seal; a new seal or a new state is an event."""

    reader: str
    removal_s: float
    present: dict[str, SealReport] = field(default_factory=dict)

    def report(self, report: SealReport) -> list[SealEvent]:
        """A seal was heard; a SealSeen when it is new or its state changed."""
        before = self.present.get(report.seal_id)
        self.present[report.seal_id] = report
        if before is not None and before.same_state(report):
            return []
        log.info("seal.seen", reader=self.reader, seal=report.seal_id, state=report.state,
                 battery_low=report.battery_low, events=report.events)
        return [SealSeen(report)]

    def silent(self, now: float) -> list[SealEvent]:
        """The seals not heard for the removal time leave."""
        gone = [s for s, r in self.present.items() if now - r.t >= self.removal_s]
        return [self._gone(s, "silence", now) for s in gone]

    def drop_all(self, reason: str, now: float) -> list[SealEvent]:
        """Every seal leaves (the reader's link was lost)."""
        return [self._gone(s, reason, now) for s in list(self.present)]

    def next_removal(self) -> float | None:
        """When the next seal leaves unless heard again (loop time)."""
        return min((r.t + self.removal_s for r in self.present.values()), default=None)

    def _gone(self, seal_id: str, reason: str, now: float) -> SealGone:
        del self.present[seal_id]
        log.info("seal.gone", reader=self.reader, seal=seal_id, reason=reason)
        return SealGone(self.reader, seal_id, reason, now)


@dataclass
class RejectLog:
    """Malformed seal messages by reason; logs the 1st, 2nd, 4th, 8th ... so a bad line cannot flood the log.

    `rejects` may be a decoder's own counter (then call `check` after feeding it) or counted here (`count`).
    """

    device: str
    rejects: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    _logged: int = 0

    def count(self, reason: str, error: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1
        self.check(error)

    def check(self, error: str) -> None:
        """Log when the total passed a power of two since the last check."""
        total = sum(self.rejects.values())
        if total == self._logged:
            return
        self._logged, self.last_error = total, error
        if total & (total - 1) == 0:
            log.warning("seal.malformed", reader=self.device, error=error, rejects=total)


@dataclass
class SimSeal:
    """A simulated seal's memory of itself: state, battery, last event time and counter."""

    seal_id: str
    state: SealState = "intact"
    battery_pct: int = 90
    low_below_pct: int = 20
    last_event_s: int = 0
    events: int = 0

    def event(self, state: SealState, at_s: int) -> None:
        """The seal records an event (opened, tampered, resealed): new state, time, counter + 1."""
        self.state, self.last_event_s, self.events = state, at_s, (self.events + 1) & 0xFFFF

    @property
    def battery_low(self) -> bool:
        return self.battery_pct < self.low_below_pct



class SealReaderTask(EventDevice[SealEvent]):
    """What every seal reader family shares: one task while open, SealSeen / SealGone fanned out."""

    task_prefix = "seal"

    def __init__(self, name: str) -> None:
        super().__init__(name, "seal.event_dropped", EVENT_QUEUE)
