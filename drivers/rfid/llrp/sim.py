"""Simulated UHF reader speaking LLRP 1.0.1 on a local TCP port, for tests, the demo, the twin and diag.

It behaves as a reader does: a ConnectionAttemptEvent on connect (a second client while one is
connected gets status 2 and is closed, and the first hears status 4 "another connection
attempted"), answers capabilities, config and ROSpec/AccessSpec requests with LLRPStatus (refusing
what the standard refuses: an unknown spec id, starting a disabled ROSpec), sends KEEPALIVE at
the configured period, and while its ROSpec runs reports every `read_ms` the tags in the field of
the ROSpec's connected antennas, with the result of every read of the enabled AccessSpec: the TID
(memory bank 2) and the user memory (bank 3; a tag without that much user memory answers "memory
overrun", as a Gen2 tag does). `write_user(tid, hex)` changes a tag's user memory while it is in the
field (an e-seal that records a tamper event).

Faults for tests: `drop_connections()`, `keepalives = False`, `send_raw(bytes)`, `antenna(n, False)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Self

import structlog

from drivers.rfid.config import LlrpSim as LlrpSimConfig
from drivers.rfid.llrp.codec import (
    ADD_ACCESSSPEC,
    ADD_ROSPEC,
    CLOSE_CONNECTION,
    DELETE_ACCESSSPEC,
    DELETE_ROSPEC,
    ENABLE_ACCESSSPEC,
    ENABLE_ROSPEC,
    ERROR_MESSAGE,
    KEEPALIVE,
    KEEPALIVE_ACK,
    RESPONSE_TO,
    SET_READER_CONFIG,
    START_ROSPEC,
    STOP_ROSPEC,
    AddAccessSpec,
    AddRoSpec,
    CapabilitiesResponse,
    Empty,
    GetCapabilities,
    GetReaderConfig,
    LlrpDecoder,
    Message,
    ReaderConfigResponse,
    ReaderEventNotification,
    RoAccessReport,
    SetReaderConfig,
    SpecRequest,
    StatusResponse,
    encode,
    message_name,
)
from drivers.simlane import Described, follow
from drivers.rfid.llrp.params import (
    READ_MEMORY_OVERRUN,
    TID_BANK,
    USER_BANK,
    AccessSpec,
    AntennaEvent,
    AntennaProperties,
    DeviceCapabilities,
    LlrpStatus,
    MemoryRead,
    OpRead,
    ReaderEventData,
    RoSpec,
    TagReport,
)

log = structlog.get_logger()
OK = LlrpStatus()
LANE_HOLD_S = 24 * 3600.0
"""A lane item's tag stays in the field until the item leaves (its task is cancelled then)."""
MODEL = DeviceCapabilities(0, 0, 1, "checkpoint-llrp-sim 1.0")


@dataclass
class _Tag:
    epc: bytes
    tid: bytes
    antenna: int
    rssi_dbm: int
    user: bytes = b""
    first_seen_us: int = field(default_factory=lambda: time.time_ns() // 1000)
    count: int = 0

    def read(self, op: MemoryRead) -> OpRead:
        """What the tag answers to one memory read: the TID's words, or user memory (overrun past its end)."""
        start, end = 2 * op.word_pointer, 2 * (op.word_pointer + op.word_count)
        if op.bank == TID_BANK:
            return OpRead(op.op_spec_id, 0, self.tid[start:end])
        if op.bank == USER_BANK and end <= len(self.user):
            return OpRead(op.op_spec_id, 0, self.user[start:end])
        return OpRead(op.op_spec_id, READ_MEMORY_OVERRUN, b"")


@dataclass
class _Session:
    """What one connected client configured."""

    writer: asyncio.StreamWriter
    keepalive_ms: int = 0
    rospecs: dict[int, RoSpec] = field(default_factory=dict)
    access: dict[int, AccessSpec] = field(default_factory=dict)
    running: int | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    keepalive_task: asyncio.Task[None] | None = None

    def send(self, message: Message) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))


class LlrpSim:
    """A reader on 127.0.0.1 (a free port unless given); `present()` puts a tag in an antenna's field."""

    def __init__(self, cfg: LlrpSimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cfg, self.host, self.port = cfg, host, port
        self.keepalives = True
        self.connected_antennas = dict.fromkeys(range(1, cfg.antennas + 1), True)
        self.tags: dict[bytes, _Tag] = {}
        self.connections = self.refused = self.keepalives_sent = self.acks = self.reports_sent = 0
        self.received: dict[str, int] = {}
        self.decoder = LlrpDecoder()
        self._session: _Session | None = None
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lane_tags: dict[int, asyncio.Task[None]] = {}

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.cfg.schedule:
            self._spawn(self._run_schedule())
        if self.cfg.lane:
            self._spawn(follow(self.cfg.lane, self._lane_entered, self._lane_left))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def client_connected(self) -> bool:
        return self._session is not None

    def present(self, epc: str, tid: str, antenna: int = 1, seconds: float = 1.0,
                rssi_dbm: int = -55, user: str = "") -> asyncio.Task[None]:
        """A tag in `antenna`'s field for `seconds`; `user` is its user memory as hex."""
        return self._spawn(self._later(0, epc, tid, antenna, seconds, rssi_dbm, user))

    def write_user(self, tid: str, user: str) -> bool:
        """Change the user memory of the tag with this TID while it is in the field; False when it is not."""
        tag = self.tags.get(bytes.fromhex(tid))
        if tag is not None:
            tag.user = bytes.fromhex(user)
        return tag is not None

    def drop_connections(self) -> None:
        """Cut the client's TCP connection without a word (a reader reboot, a cable pulled)."""
        if self._session is not None:
            self._session.writer.transport.abort()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are to the connected client (a malformed message)."""
        if self._session is not None:
            self._session.writer.write(data)

    def antenna(self, antenna: int, connected: bool) -> None:
        """Connect or disconnect an antenna; the client hears an AntennaEvent."""
        self.connected_antennas[antenna] = connected
        self._notify(ReaderEventData(_now_us(), antenna_event=AntennaEvent(antenna, connected)))

    def _notify(self, data: ReaderEventData, session: _Session | None = None) -> None:
        target = session or self._session
        if target is not None:
            target.send(ReaderEventNotification(data, next(self._ids)))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="llrp-sim")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run_schedule(self) -> None:
        """The configured tags come and go; the whole schedule again every `repeat_s` when set."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            for t in self.cfg.schedule:
                self._spawn(self._later(start + t.at_s - loop.time(), t.epc, t.tid, t.antenna, t.seconds,
                                        t.rssi_dbm, t.user))
            if self.cfg.repeat_s is None:
                return
            await asyncio.sleep(start + self.cfg.repeat_s - loop.time())

    def _lane_entered(self, item: Described) -> None:
        """An item came inside the simulated lane: its tag is in the entry antenna's field `lane_delay_s` later
        (the antenna looks just past the entry eye), until the item leaves."""
        if item.tid:
            self._lane_tags[item.number] = self._spawn(self._later(self.cfg.lane_delay_s, item.epc, item.tid,
                                                                   self.cfg.lane_antenna, LANE_HOLD_S, -50))

    def _lane_left(self, item: Described) -> None:
        task = self._lane_tags.pop(item.number, None)
        if task is not None:
            task.cancel()

    async def _later(self, at_s: float, epc: str, tid: str, antenna: int, seconds: float, rssi: int,
                     user: str = "") -> None:
        await asyncio.sleep(at_s)
        key = bytes.fromhex(tid)
        self.tags[key] = _Tag(bytes.fromhex(epc), key, antenna, rssi, bytes.fromhex(user))
        try:
            await asyncio.sleep(seconds)
        finally:
            self.tags.pop(key, None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        if self._session is not None:
            self.refused += 1
            self._notify(ReaderEventData(_now_us(), connection_attempt=4))
            self._notify(ReaderEventData(_now_us(), connection_attempt=2), session)
            await _close(writer)
            return
        self.connections += 1
        self._session = session
        self.decoder.restart()
        self._notify(ReaderEventData(_now_us(), connection_attempt=0))
        try:
            await self._read_requests(reader, session)
        finally:
            for task in session.tasks:
                task.cancel()
            await asyncio.gather(*session.tasks, return_exceptions=True)
            self._session = None
            await _close(writer)

    async def _read_requests(self, reader: asyncio.StreamReader, session: _Session) -> None:
        while not session.writer.is_closing():
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                return
            if not chunk or self.decoder.broken is not None:
                return
            for message in self.decoder.feed(chunk):
                name = message_name(message.type)
                self.received[name] = self.received.get(name, 0) + 1
                self._handle(message, session)

    def _handle(self, message: Message, session: _Session) -> None:
        if message.type == KEEPALIVE_ACK:
            self.acks += 1
            return
        if message.type not in RESPONSE_TO:
            session.send(StatusResponse(ERROR_MESSAGE, LlrpStatus(109, f"message type {message.type} is not a "
                                                                       "request"), message.msg_id))
            return
        status = self._apply(message, session)
        if isinstance(message, GetCapabilities):
            caps = DeviceCapabilities(self.cfg.antennas, MODEL.manufacturer, MODEL.model, MODEL.firmware)
            session.send(CapabilitiesResponse(status, caps, message.msg_id))
        elif isinstance(message, GetReaderConfig):
            antennas = tuple(AntennaProperties(a, on) for a, on in self.connected_antennas.items()
                             if message.antenna in (0, a))
            session.send(ReaderConfigResponse(status, antennas, message.msg_id))
        else:
            session.send(StatusResponse(RESPONSE_TO[message.type], status, message.msg_id))
        if message.type == CLOSE_CONNECTION:
            session.writer.close()

    def _apply(self, message: Message, session: _Session) -> LlrpStatus:
        """Carry out a request; the status the reader answers with."""
        if isinstance(message, SetReaderConfig) and message.keepalive_ms is not None:
            session.keepalive_ms = message.keepalive_ms
            if session.keepalive_task is not None:
                session.keepalive_task.cancel()
            session.keepalive_task = asyncio.create_task(self._keepalive(session), name="llrp-sim-keepalive")
            session.tasks.append(session.keepalive_task)
        elif isinstance(message, AddRoSpec):
            unknown = [a for a in message.rospec.antennas if a not in self.connected_antennas]
            if unknown:
                return LlrpStatus(301, f"antennas {unknown} out of range 1..{self.cfg.antennas}")
            return self._add(session.rospecs, message.rospec.rospec_id, message.rospec, message.rospec.state == 0)
        elif isinstance(message, AddAccessSpec):
            return self._add(session.access, message.spec.access_spec_id, message.spec, not message.spec.enabled)
        elif isinstance(message, SpecRequest):
            return self._spec_request(message, session)
        return OK

    @staticmethod
    def _add(specs: dict[int, Any], spec_id: int, spec: Any, disabled: bool) -> LlrpStatus:
        if spec_id == 0 or spec_id in specs or not disabled:
            return LlrpStatus(300, f"spec id {spec_id} is 0, already used, or not added disabled")
        specs[spec_id] = spec
        return OK

    def _spec_request(self, message: SpecRequest, session: _Session) -> LlrpStatus:
        specs: dict[int, Any] = session.access if message.type in (DELETE_ACCESSSPEC, ENABLE_ACCESSSPEC) \
            else session.rospecs
        if message.type in (DELETE_ROSPEC, DELETE_ACCESSSPEC) and message.spec_id == 0:
            specs.clear()
            return OK
        if message.spec_id not in specs:
            return LlrpStatus(300, f"no spec with id {message.spec_id}")
        if message.type in (DELETE_ROSPEC, DELETE_ACCESSSPEC):
            del specs[message.spec_id]
        elif message.type == ENABLE_ROSPEC:
            specs[message.spec_id] = replace(specs[message.spec_id], state=1)
        elif message.type == ENABLE_ACCESSSPEC:
            specs[message.spec_id] = replace(specs[message.spec_id], enabled=True)
        elif message.type == START_ROSPEC:
            return self._start(message.spec_id, session)
        elif message.type == STOP_ROSPEC:
            session.running = None
        return OK

    def _start(self, rospec_id: int, session: _Session) -> LlrpStatus:
        if session.rospecs[rospec_id].state == 0:
            return LlrpStatus(300, f"ROSpec {rospec_id} is disabled")
        session.running = rospec_id
        session.tasks.append(asyncio.create_task(self._inventory(session), name="llrp-sim-inventory"))
        return OK

    async def _keepalive(self, session: _Session) -> None:
        while session.keepalive_ms:
            await asyncio.sleep(session.keepalive_ms / 1000)
            if self.keepalives:
                session.send(Empty(KEEPALIVE, next(self._ids)))
                self.keepalives_sent += 1

    async def _inventory(self, session: _Session) -> None:
        while session.running is not None:
            rospec = session.rospecs.get(session.running)
            reports = self._tag_reports(rospec, session) if rospec is not None else ()
            if reports:
                session.send(RoAccessReport(reports, next(self._ids)))
                self.reports_sent += 1
            await asyncio.sleep(self.cfg.read_ms / 1000)

    def _tag_reports(self, rospec: RoSpec, session: _Session) -> tuple[TagReport, ...]:
        """One report per tag in the field of the ROSpec's connected antennas."""
        now = _now_us()
        access = next((a for a in session.access.values() if a.enabled), None)
        out = []
        for tag in list(self.tags.values()):
            if tag.antenna not in rospec.antennas or not self.connected_antennas.get(tag.antenna, False):
                continue
            tag.count += 1
            reads = tuple(tag.read(op) for op in access.reads) if access is not None else ()
            out.append(TagReport(tag.epc, len(tag.epc) == 12, rospec.rospec_id, tag.antenna, tag.rssi_dbm,
                                 tag.first_seen_us, now, tag.count, access.access_spec_id if access else None,
                                 reads))
        return tuple(out)


def _now_us() -> int:
    return time.time_ns() // 1000


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
