"""Tag readers' domain events and the EM4100 serial reader (dedup, removal after silence).

The events carry what any reader technology has (raw id bytes, hex, reader name, time) plus
optional fields that are filled where they exist (EM4100 display numbers; antenna and RSSI for
a UHF/LLRP reader), so a UHF reader can implement the same `TagReader` interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

import structlog

from drivers.fanout import Fanout

from drivers.errors import LinkLost
from drivers.rfid.codec import Em4100Decoder, Em4100Tag
from drivers.rfid.config import RfidConfig
from drivers.rfid.serial import SerialTransport

log = structlog.get_logger()
EVENT_QUEUE = 1024


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


class Em4100SerialReader:
    """EM4100 reader on a serial port; async context manager running one read task."""

    def __init__(self, cfg: RfidConfig, name: str, port: str | None = None) -> None:
        self.cfg, self.name = cfg, name
        self.port = port or cfg.port
        self.decoder = Em4100Decoder()
        self.present: dict[TagId, float] = {}  # tag -> last time read
        self.link_ok = False
        self._events: Fanout[ReaderEvent] = Fanout(name, "rfid.event_dropped", EVENT_QUEUE)
        self._task: asyncio.Task[None] | None = None
        self.sim: object = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"rfid-{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def events(self) -> AsyncIterator[ReaderEvent]:
        """TagSeen / TagRemoved / ReaderLink from now on (bounded queue)."""
        async for event in self._events.subscribe():
            yield event

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
        if ok != self.link_ok or (not ok and reason):
            log.info("rfid.link", reader=self.name, ok=ok, reason=reason)
            self._emit(ReaderLink(self.name, ok, reason, t))
        self.link_ok = ok

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
            for tag in self.decoder.feed(chunk):
                self._seen(tag, now)
            for tid in [k for k, seen in self.present.items() if now - seen >= removal]:
                self._removed(tid, "silence", now)

    def _seen(self, tag: Em4100Tag, now: float) -> None:
        tid = TagId.em4100(tag)
        if tid not in self.present:
            log.info("rfid.tag_seen", reader=self.name, tag=tid.hex)
            self._emit(TagSeen(self.name, tid, now, datetime.now(UTC)))
        self.present[tid] = now

    def _removed(self, tid: TagId, reason: str, now: float) -> None:
        del self.present[tid]
        log.info("rfid.tag_removed", reader=self.name, tag=tid.hex, reason=reason)
        self._emit(TagRemoved(self.name, tid, reason, now, datetime.now(UTC)))

    def _drop_all(self, reason: str, now: float) -> None:
        for tid in list(self.present):
            self._removed(tid, reason, now)
