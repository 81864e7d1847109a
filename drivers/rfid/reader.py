"""Tag readers' domain events and the EM4100 serial reader (confirmation, dedup, removal after silence).

A tag counts once `confirm_frames` identical frames arrived within `confirm_window_ms` (one frame
with compensating bit errors can pass the XOR checksum as another tag). The reader's `health` is
"lost" from a read error or a vanished port until the port reopens and reads again, "degraded"
while it sends only frames we do not decode (`format_problem`), else "ok"; `on_health` hears
each change.

The events carry what any reader technology has (raw id bytes, hex, reader name, time) plus
optional fields that are filled where they exist (EM4100 display numbers; antenna, RSSI and EPC
for a UHF reader), so the LLRP reader (drivers/rfid/llrp) implements the same `TagReader` interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import structlog

from drivers.fanout import EventDevice

from drivers.errors import LinkLost
from drivers.rfid.codec import Em4100Decoder, Em4100Tag
from drivers.rfid.config import RfidConfig
from drivers.rfid.serial import SerialTransport

if TYPE_CHECKING:
    from drivers.rfid.sim import Em4100Sim

log = structlog.get_logger()
EVENT_QUEUE = 1024
FORMAT_REJECTS = 3
"""Rejected frames in a row, with no good frame between them, that make a reader degraded."""


@dataclass(frozen=True)
class TagId:
    """A tag's identity: technology, raw id bytes, hex, and display numbers where they exist."""

    tech: str
    raw: bytes
    hex: str
    decimal: str | None = None
    facility_card: str | None = None

    @classmethod
    def em4100(cls, tag: Em4100Tag) -> TagId:
        return cls("em4100", tag.raw, tag.hex, tag.decimal10, tag.facility_card)


@dataclass(frozen=True)
class TagSeen:
    """A tag appeared at a reader (reported once until it is removed)."""

    reader: str
    tag: TagId
    t: float
    at: datetime
    antenna: int | None = None
    rssi_dbm: float | None = None
    epc: str | None = None
    """A UHF tag's EPC (hex) when `tag` is its TID: the EPC is rewritable, so the TID is the identity."""
    user: str | None = None
    """A UHF tag's user memory words (hex) when the reader reads them (an e-seal keeps its state there)."""


@dataclass(frozen=True)
class TagRemoved:
    """A tag was not read for the removal time (`reason` "silence") or the link was lost."""

    reader: str
    tag: TagId
    reason: str
    t: float
    at: datetime


@dataclass(frozen=True)
class ReaderLink:
    """The reader's port opened (`ok`) or failed, with the reason."""

    reader: str
    ok: bool
    reason: str
    t: float


ReaderEvent = TagSeen | TagRemoved | ReaderLink


@dataclass(frozen=True)
class ReaderHealth:
    """What the screen and diagnostics show for a reader."""

    state: Literal["ok", "degraded", "lost"]
    detail: str = ""


class Em4100SerialReader(EventDevice[ReaderEvent]):
    """EM4100 reader on a serial port; async context manager running one read task."""

    task_prefix = "rfid"

    def __init__(self, cfg: RfidConfig, name: str, port: str | None = None) -> None:
        super().__init__(name, "rfid.event_dropped", EVENT_QUEUE)
        self.cfg = cfg
        self.port = port or cfg.port
        self.decoder = Em4100Decoder()
        self.present: dict[TagId, float] = {}  # tag -> last time read
        self.link_ok = False
        self.link_reason = ""
        self.health = ReaderHealth("lost", f"reader {name} has not opened {self.port} yet")
        self.on_health: Callable[[str, str], None] | None = None
        self.format_problem: str | None = None
        """Set while the reader sends only frames we do not decode (shown on health and in diag)."""
        self._candidates: dict[TagId, list[float]] = {}  # unconfirmed tag -> times of its frames
        self._undecoded = 0
        self._lost_reason = ""
        self.sim: Em4100Sim | None = None  # the simulator behind a `kind = "sim"` reader

    def _emit(self, ev: ReaderEvent) -> None:
        self._events.emit(ev)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with SerialTransport(self.port, self.cfg.baudrate, device=self.name) as tr:
                    self._link(True, "", loop.time())
                    await self._session(tr)
            except LinkLost as e:
                self._drop_all("link_lost", loop.time())
                self._link(False, str(e), loop.time())
            await asyncio.sleep(self.cfg.reconnect_delay_ms / 1000)

    def _link(self, ok: bool, reason: str, t: float) -> None:
        """Port opened and read, or lost: an event and a log line when it changes, and the health."""
        if ok != self.link_ok or reason != self.link_reason:
            (log.info if ok else log.warning)("rfid.link", reader=self.name, ok=ok, reason=reason)
            self._emit(ReaderLink(self.name, ok, reason, t))
        if not ok and (self.link_ok or not self._lost_reason):
            self._lost_reason = reason
        self.link_ok, self.link_reason = ok, reason
        self._undecoded, self.format_problem = 0, None
        self._update_health()

    def _update_health(self) -> None:
        if not self.link_ok:
            health = ReaderHealth("lost", f"{self._lost_reason}; reopening it every {self.cfg.reconnect_delay_ms} ms")
        elif self.format_problem is not None:
            health = ReaderHealth("degraded", self.format_problem)
        else:
            health = ReaderHealth("ok")
        if health != self.health:
            self.health = health
            if self.on_health is not None:
                self.on_health(health.state, health.detail)

    async def _session(self, tr: SerialTransport) -> None:
        loop = asyncio.get_running_loop()
        removal = self.cfg.removal_after_ms / 1000
        while True:
            wait = min((seen + removal for seen in self.present.values()), default=None)
            try:
                async with asyncio.timeout_at(wait):
                    chunk = await tr.read()
            except TimeoutError:
                chunk = b""
            now = loop.time()
            self._chunk(chunk, now)
            for tid in [k for k, seen in self.present.items() if now - seen >= removal]:
                self._removed(tid, "silence", now)

    def _chunk(self, chunk: bytes, now: float) -> None:
        before = sum(self.decoder.stats.rejects.values())
        tags = self.decoder.feed(chunk)
        for tag in tags:
            self._frame(TagId.em4100(tag), now)
        window = self.cfg.confirm_window_ms / 1000
        self._candidates = {k: v for k, v in self._candidates.items() if now - v[-1] <= window}
        self._judge_format(bool(tags), sum(self.decoder.stats.rejects.values()) - before)

    def _judge_format(self, decoded: bool, rejected: int) -> None:
        """Degraded after FORMAT_REJECTS rejects with no good frame; ok again at the next good frame."""
        self._undecoded = 0 if decoded else self._undecoded + rejected
        if decoded:
            self.format_problem = None
        elif self._undecoded >= FORMAT_REJECTS and self.format_problem is None and self.decoder.last_reject:
            reason, sample = self.decoder.last_reject
            self.format_problem = (f"frames in a format we do not decode: {self._undecoded} rejected with no valid "
                                   f"EM4100 frame between them, the last {sample!r} ({reason})")
            log.warning("rfid.undecodable", reader=self.name, detail=self.format_problem)
        self._update_health()

    def _frame(self, tid: TagId, now: float) -> None:
        """One valid frame: refreshes a present tag, or counts towards confirming a new one."""
        if tid in self.present:
            self.present[tid] = now
            return
        window = self.cfg.confirm_window_ms / 1000
        times = [t for t in self._candidates.get(tid, []) if now - t <= window] + [now]
        if len(times) < self.cfg.confirm_frames:
            self._candidates[tid] = times
            return
        self._candidates.pop(tid, None)
        log.info("rfid.tag_seen", reader=self.name, tag=tid.hex)
        self._emit(TagSeen(self.name, tid, now, datetime.now(UTC)))
        self.present[tid] = now

    def _removed(self, tid: TagId, reason: str, now: float) -> None:
        del self.present[tid]
        log.info("rfid.tag_removed", reader=self.name, tag=tid.hex, reason=reason)
        self._emit(TagRemoved(self.name, tid, reason, now, datetime.now(UTC)))

    def _drop_all(self, reason: str, now: float) -> None:
        self._candidates.clear()
        for tid in list(self.present):
            self._removed(tid, reason, now)
