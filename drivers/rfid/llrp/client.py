"""LLRP reader client: connect, set up an inventory, turn tag reports into reads and TagSeen/TagRemoved.

One session: open TCP, wait for READER_EVENT_NOTIFICATION with ConnectionAttemptEvent Success
(anything else refuses the session), GET_READER_CAPABILITIES, GET_READER_CONFIG (which antennas
are connected), SET_READER_CONFIG (keepalive period, antenna events), delete every ROSpec and AccessSpec, ADD/ENABLE the ROSpec for the configured
antennas, ADD/ENABLE an AccessSpec reading the TID (memory bank 2) and, when `read_user_words` is set,
that many words of user memory (bank 3: an e-seal's state), START_ROSPEC, then read
reports. Every request must be answered with Success within `response_timeout_ms`; a refusal or an
ERROR_MESSAGE ends the session. KEEPALIVE is answered with KEEPALIVE_ACK; no KEEPALIVE for three
periods is a lost link. A lost link removes the tags present, and the client reconnects with a
back-off doubling from `reconnect_min_ms` to `reconnect_max_ms`. On exit it sends CLOSE_CONNECTION.

A tag is reported (TagSeen) once while present, with the antenna of its first read; a tag read so far
only at `exit_antennas` is reported again at its first read at another antenna, so that a tag first
caught by an exit antenna still reaches the item being scanned when the entry antenna reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from drivers.errors import DeviceRefused, DriverError, LinkLost
from drivers.fanout import EventDevice, Fanout
from drivers.rfid.config import LlrpConfig
from drivers.rfid.llrp.codec import (
    ADD_ACCESSSPEC,
    CLOSE_CONNECTION,
    DELETE_ACCESSSPEC,
    DELETE_ROSPEC,
    ENABLE_ACCESSSPEC,
    ENABLE_ROSPEC,
    ERROR_MESSAGE,
    KEEPALIVE,
    KEEPALIVE_ACK,
    RESPONSE_TO,
    START_ROSPEC,
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
from drivers.rfid.llrp.errors import LlrpError
from drivers.rfid.llrp.params import (
    ANTENNA_EVENT_TYPE,
    CONNECTION_STATUS,
    TID_BANK,
    USER_BANK,
    AccessSpec,
    DeviceCapabilities,
    MemoryRead,
    RoSpec,
    TagReport,
)
from drivers.rfid.reader import ReaderEvent, ReaderHealth, ReaderLink, TagId, TagRemoved, TagSeen

if TYPE_CHECKING:
    from drivers.rfid.llrp.sim import LlrpSim

log = structlog.get_logger()
ROSPEC_ID = 1
ACCESS_SPEC_ID = 1
TID_OP_SPEC_ID = 1
USER_OP_SPEC_ID = 2
TID_WORDS = 6
KEEPALIVES_MISSED = 3
EVENT_QUEUE = 1024
READ_CHUNK = 65536
CLOSE_WAIT_S = 1.0


@dataclass(frozen=True)
class UhfRead:
    """One tag report: EPC and TID as hex, antenna, peak RSSI and the reader's timestamps."""

    reader: str
    epc: str
    tid: str | None
    antenna: int | None
    rssi_dbm: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    seen_count: int | None
    t: float
    user: str | None = None
    """The user memory words read (hex), None when not asked for or the tag has none."""

    def tag_id(self) -> TagId:
        """The tag's identity: its TID (factory-programmed), or its EPC when no TID was read."""
        if self.tid is not None:
            return TagId("uhf-tid", bytes.fromhex(self.tid), self.tid)
        return TagId("uhf-epc", bytes.fromhex(self.epc), self.epc)


def backoff(cfg: LlrpConfig) -> Iterator[float]:
    """Seconds to wait before each reconnection: doubling from reconnect_min_ms up to reconnect_max_ms."""
    delay = cfg.reconnect_min_ms / 1000
    while True:
        yield delay
        delay = min(delay * 2, cfg.reconnect_max_ms / 1000)


def utc(us: int | None) -> datetime | None:
    """An LLRP UTC timestamp (microseconds since 1970) as a datetime; None when absent or beyond the dates a
    datetime holds (a reader sending nanoseconds)."""
    if us is None:
        return None
    try:
        return datetime.fromtimestamp(us / 1e6, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def access_spec(cfg: LlrpConfig) -> AccessSpec | None:
    """The AccessSpec of the configured memory reads (TID, user memory), None when there are none."""
    reads = [MemoryRead(TID_OP_SPEC_ID, TID_BANK, 0, TID_WORDS)] if cfg.read_tid else []
    if cfg.read_user_words:
        reads.append(MemoryRead(USER_OP_SPEC_ID, USER_BANK, 0, cfg.read_user_words))
    if not reads:
        return None
    first = reads[0]
    return AccessSpec(ACCESS_SPEC_ID, ROSPEC_ID, first.op_spec_id, first.bank, first.word_pointer, first.word_count,
                      more=tuple(reads[1:]))


def _op_data(report: TagReport, op_spec_id: int) -> str | None:
    """The words a successful read of this OpSpec returned, as hex."""
    return next((r.data.hex().upper() for r in report.reads if r.op_spec_id == op_spec_id and r.result == 0
                 and r.data), None)


def read_from(report: TagReport, reader: str, t: float) -> UhfRead:
    """A tag report as a read; the TID and the user memory are the successful reads of our OpSpecs."""
    return UhfRead(reader, report.epc.hex().upper(), _op_data(report, TID_OP_SPEC_ID), report.antenna,
                   report.rssi_dbm, utc(report.first_seen_us), utc(report.last_seen_us), report.seen_count, t,
                   _op_data(report, USER_OP_SPEC_ID))


class _Connection:
    """One TCP connection to the reader: send messages, receive decoded ones (malformed ones are counted)."""

    def __init__(self, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], decoder: LlrpDecoder,
                 who: str) -> None:
        self.reader, self.writer = streams
        self.decoder, self.who = decoder, who
        self._pending: deque[Message] = deque()
        self._ids = itertools.count(1)
        self._rejects = sum(decoder.stats.rejects.values())

    def next_id(self) -> int:
        return next(self._ids)

    async def send(self, message: Message) -> None:
        """Write a message and wait until the socket takes it."""
        self.send_now(message)
        try:
            await self.writer.drain()
        except OSError as exc:
            raise LinkLost(f"{self.who} could not be sent {message_name(message.type)}: {exc}") from exc

    def send_now(self, message: Message) -> None:
        """Write a short message (an acknowledgement) without waiting; a failure shows at the next read."""
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    async def receive(self) -> Message:
        """The next well-formed message; a broken header ends the connection."""
        while not self._pending:
            if self.decoder.broken is not None:
                raise LinkLost(f"{self.who} sent a broken LLRP header, so the connection is dropped: "
                               f"{self.decoder.broken}") from self.decoder.broken
            try:
                chunk = await self.reader.read(READ_CHUNK)
            except OSError as exc:
                raise LinkLost(f"{self.who} connection failed: {exc}") from exc
            if not chunk:
                raise LinkLost(f"{self.who} closed the connection")
            self._pending.extend(self.decoder.feed(chunk))
            self._log_rejects()
        return self._pending.popleft()

    def _log_rejects(self) -> None:
        """A log line for the 1st, 2nd, 4th, 8th ... malformed message: a reader that sends only those does
        not flood the log, and the counter has every one."""
        total = sum(self.decoder.stats.rejects.values())
        if total != self._rejects:
            self._rejects = total
            if total & (total - 1) == 0:
                log.warning("llrp.malformed", reader=self.who, error=self.decoder.last_error, rejects=total)

    def close(self) -> None:
        self.writer.close()


class LlrpReader(EventDevice[ReaderEvent]):
    """A UHF reader over LLRP; async context manager running one session task that reconnects."""

    task_prefix = "llrp"

    def __init__(self, cfg: LlrpConfig, name: str, host: str | None = None, port: int | None = None) -> None:
        super().__init__(name, "rfid.event_dropped", EVENT_QUEUE)
        self.cfg = cfg
        self.host, self.port = host or cfg.host, port or cfg.port
        self.decoder = LlrpDecoder()
        """Counts malformed messages by reason over every connection (`decoder.stats.rejects`)."""
        self.reconnects = 0
        self.refusals = 0
        self.session_failures = 0
        """Sessions ended by an unexpected error (not a DriverError): each is a lost link, then a reconnection."""
        self.next_wait_s = 0.0  # the wait before the next connection, while the link is lost
        self._kept_alive = False  # the session under way got a KEEPALIVE
        self.capabilities: DeviceCapabilities | None = None
        self.antennas_connected: dict[int, bool] = {}
        self.present: dict[TagId, float] = {}
        self._epcs: dict[TagId, set[str]] = {}
        """The EPCs read from each present tag (by TID): one not read before is a TagSeen of its own."""
        self._exit_only: set[TagId] = set()
        """Present tags read only at `exit_antennas` so far: a read at another antenna is a TagSeen of its own."""
        self.link_ok, self.link_reason = False, ""
        self.health = ReaderHealth("lost", f"reader {name} has not connected to {self.where} yet")
        self.on_health: Callable[[str, str], None] | None = None
        self.format_problem: str | None = None
        self.sim: LlrpSim | None = None  # the simulator behind a reader with a [sim] table
        self._reads: Fanout[UhfRead] = Fanout(name, "llrp.read_dropped", EVENT_QUEUE)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    async def reads(self) -> AsyncIterator[UhfRead]:
        """Every tag report from now on, undeduplicated (bounded queue)."""
        async for read in self._reads.subscribe():
            yield read

    async def _run(self) -> None:
        delays = backoff(self.cfg)
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._session()
            except DriverError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug or input nothing foresaw must not end the reader's only task
                self.session_failures += 1
                reason = (f"reader {self.name} at {self.where} session failed on an unexpected "
                          f"{type(exc).__name__}: {exc}")
                log.error("llrp.session_failed", reader=self.name, error=reason, failures=self.session_failures,
                          exc_info=exc)
            # Only a session the reader kept alive starts the back-off again: one that was set up and then
            # lost (a reader that drops the session or sends no KEEPALIVE, two clients knocking each other off
            # a reader that lets a new connection take over) would otherwise be retried at the shortest wait.
            if self._kept_alive:
                delays = backoff(self.cfg)
            self.next_wait_s = next(delays)
            self._lost(reason, loop.time())
            await asyncio.sleep(self.next_wait_s)
            self.reconnects += 1

    async def _session(self) -> None:
        who = f"reader {self.name} at {self.where}"
        self._kept_alive = False  # only this try reaching KEEPALIVE starts the back-off again, not an earlier one
        try:
            async with asyncio.timeout(self.cfg.connect_timeout_ms / 1000):
                streams = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise LinkLost(f"{who} could not be connected to within {self.cfg.connect_timeout_ms} ms: "
                           f"{exc or 'no answer'}") from exc
        self.decoder.restart()
        conn = _Connection(streams, self.decoder, who)
        try:
            await self._greeting(conn)
            await self._set_up(conn)
            self._link(True, "", asyncio.get_running_loop().time())
            await self._inventory(conn)
        finally:
            await self._close(conn)

    async def _greeting(self, conn: _Connection) -> None:
        """The reader's first message must be a ConnectionAttemptEvent with status Success."""
        async with self._responding(conn, "ConnectionAttemptEvent"):
            while True:
                message = await conn.receive()
                if isinstance(message, ReaderEventNotification) and message.data.connection_attempt is not None:
                    break
                self._dispatch(message, conn)
        status = message.data.connection_attempt
        if status != 0:
            self.refusals += 1
            raise DeviceRefused(f"{conn.who} refused the connection: ConnectionAttemptEvent status {status} "
                                f"({CONNECTION_STATUS.get(status, 'unknown')})", device=self.name, code=status)

    async def _set_up(self, conn: _Connection) -> None:
        """Capabilities, configuration, a clean slate, then the ROSpec (and TID AccessSpec) started."""
        caps = await self._request(conn, GetCapabilities(1, conn.next_id()))
        if isinstance(caps, CapabilitiesResponse) and caps.device is not None:
            self.capabilities = caps.device
        config = await self._request(conn, GetReaderConfig(2, 0, conn.next_id()))
        if isinstance(config, ReaderConfigResponse):
            self.antennas_connected = {a.antenna: a.connected for a in config.antennas}
        keepalive_ms = round(self.cfg.keepalive_s * 1000)
        await self._request(conn, SetReaderConfig(False, keepalive_ms, ((ANTENNA_EVENT_TYPE, True),), conn.next_id()))
        await self._request(conn, SpecRequest(DELETE_ACCESSSPEC, 0, conn.next_id()))
        await self._request(conn, SpecRequest(DELETE_ROSPEC, 0, conn.next_id()))
        await self._request(conn, AddRoSpec(RoSpec(ROSPEC_ID, self.cfg.antennas), conn.next_id()))
        await self._request(conn, SpecRequest(ENABLE_ROSPEC, ROSPEC_ID, conn.next_id()))
        spec = access_spec(self.cfg)
        if spec is not None:
            await self._request(conn, AddAccessSpec(spec, conn.next_id()))
            await self._request(conn, SpecRequest(ENABLE_ACCESSSPEC, ACCESS_SPEC_ID, conn.next_id()))
        await self._request(conn, SpecRequest(START_ROSPEC, ROSPEC_ID, conn.next_id()))

    async def _request(self, conn: _Connection, request: Message) -> Message:
        """Send a request and wait for its Success response; other messages meanwhile are handled."""
        await conn.send(request)
        expected, name = RESPONSE_TO[request.type], message_name(request.type)
        async with self._responding(conn, f"the response to {name}"):
            while True:
                message = await conn.receive()
                if message.msg_id == request.msg_id and message.type in (expected, ERROR_MESSAGE):
                    break
                self._dispatch(message, conn)
        status = getattr(message, "status", None)
        if status is not None and not status.ok:
            raise DeviceRefused(f"{conn.who} refused {name}: {status.text()}", device=self.name, code=status.code)
        return message

    @contextlib.asynccontextmanager
    async def _responding(self, conn: _Connection, what: str) -> AsyncIterator[None]:
        """A time limit on waiting for the reader, turned into LinkLost naming what did not come."""
        limit = self.cfg.response_timeout_ms
        try:
            async with asyncio.timeout(limit / 1000):
                yield
        except TimeoutError as exc:
            raise LinkLost(f"{conn.who} did not send {what} within {limit} ms") from exc

    async def _inventory(self, conn: _Connection) -> None:
        """Reports until the link is lost: no KEEPALIVE for three periods, a closed or broken stream."""
        loop = asyncio.get_running_loop()
        period = self.cfg.keepalive_s
        deadline = loop.time() + KEEPALIVES_MISSED * period
        while True:
            removal = min((seen + self.cfg.removal_after_ms / 1000 for seen in self.present.values()), default=None)
            try:
                async with asyncio.timeout_at(min(deadline, removal or deadline)):
                    message = await conn.receive()
            except TimeoutError:
                message = None
            now = loop.time()
            if message is not None and self._dispatch(message, conn):
                deadline = now + KEEPALIVES_MISSED * period
                self._kept_alive = True
            if now >= deadline:
                raise LinkLost(f"{conn.who} sent no KEEPALIVE for {KEEPALIVES_MISSED * period:g} s "
                               f"(period {period:g} s)")
            self._remove_silent(now)

    def _dispatch(self, message: Message, conn: _Connection) -> bool:
        """Handle a message other than an awaited response; True for a KEEPALIVE."""
        if isinstance(message, Empty) and message.type == KEEPALIVE:
            conn.send_now(Empty(KEEPALIVE_ACK, message.msg_id))
            return True
        if isinstance(message, RoAccessReport):
            self._report(message)
        elif isinstance(message, ReaderEventNotification):
            self._reader_event(message, conn)
        elif isinstance(message, StatusResponse) and message.type == ERROR_MESSAGE:
            log.warning("llrp.error_message", reader=self.name, status=message.status.text())
        return False

    def _reader_event(self, message: ReaderEventNotification, conn: _Connection) -> None:
        data = message.data
        if data.antenna_event is not None:
            self.antennas_connected[data.antenna_event.antenna] = data.antenna_event.connected
            log.info("llrp.antenna", reader=self.name, antenna=data.antenna_event.antenna,
                     connected=data.antenna_event.connected)
            self._update_health()
        if data.connection_attempt == 4:
            log.warning("llrp.another_client", reader=self.name, detail=f"another client tried to connect to {conn.who}")
        if data.connection_close:
            raise LinkLost(f"{conn.who} announced that it closes the connection")

    def _report(self, report: RoAccessReport) -> None:
        now = asyncio.get_running_loop().time()
        for tag in report.tags:
            read = read_from(tag, self.name, now)
            self._check_times(report.msg_id, tag, read)
            self._reads.emit(read)
            self._seen(read, now)

    def _check_times(self, msg_id: int, tag: TagReport, read: UhfRead) -> None:
        """A timestamp no date can hold is left out of the read (None) and counted as a bad_field reject."""
        for name, us, when in (("FirstSeenTimestampUTC", tag.first_seen_us, read.first_seen),
                               ("LastSeenTimestampUTC", tag.last_seen_us, read.last_seen)):
            if us is not None and when is None:
                self.decoder.reject(LlrpError(f"RO_ACCESS_REPORT id {msg_id}: field {name} of tag {read.epc} is "
                                              f"{us} µs, beyond the dates a timestamp can hold", reason="bad_field"),
                                    tag.epc)

    def _seen(self, read: UhfRead, now: float) -> None:
        """A present tag's read refreshes it; a new tag, or a present TID with an EPC not read from it yet (its EPC
        rewritten in the field, or a second chip with its TID cloned), is a TagSeen."""
        tid = read.tag_id()
        epcs = self._epcs.setdefault(tid, set())
        new = read.epc not in epcs
        epcs.add(read.epc)
        self.present[tid] = now
        at_exit = read.antenna in self.cfg.exit_antennas
        if tid in self._exit_only and not at_exit:
            self._exit_only.discard(tid)
            new = True
        elif new and at_exit and len(epcs) == 1:
            self._exit_only.add(tid)
        if new:
            log.info("rfid.tag_seen", reader=self.name, tag=tid.hex, epc=read.epc, antenna=read.antenna)
            self._events.emit(TagSeen(self.name, tid, now, read.first_seen or datetime.now(UTC), read.antenna,
                                      read.rssi_dbm, read.epc, read.user))

    def _remove_silent(self, now: float) -> None:
        removal = self.cfg.removal_after_ms / 1000
        for tid in [k for k, seen in self.present.items() if now - seen >= removal]:
            self._removed(tid, "silence", now)

    def _removed(self, tid: TagId, reason: str, now: float) -> None:
        del self.present[tid]
        self._epcs.pop(tid, None)
        self._exit_only.discard(tid)
        log.info("rfid.tag_removed", reader=self.name, tag=tid.hex, reason=reason)
        self._events.emit(TagRemoved(self.name, tid, reason, now, datetime.now(UTC)))

    def _lost(self, reason: str, now: float) -> None:
        for tid in list(self.present):
            self._removed(tid, "link_lost", now)
        self._link(False, reason, now)

    def _link(self, ok: bool, reason: str, t: float) -> None:
        """Session up or lost: an event and a log line when it changes, and the health."""
        if ok != self.link_ok or reason != self.link_reason:
            (log.info if ok else log.warning)("rfid.link", reader=self.name, ok=ok, reason=reason)
            self._events.emit(ReaderLink(self.name, ok, reason, t))
        self.link_ok, self.link_reason = ok, reason
        self._update_health()

    def _update_health(self) -> None:
        """Lost without a session; degraded while a configured antenna is reported disconnected; else ok."""
        off = [a for a in self.cfg.antennas if self.antennas_connected.get(a) is False]
        self.format_problem = f"antennas {off} are reported disconnected" if off else None
        if not self.link_ok:
            health = ReaderHealth("lost", f"{self.link_reason}; reconnecting in {self.next_wait_s * 1000:.0f} ms")
        elif self.format_problem is not None:
            health = ReaderHealth("degraded", f"reader {self.name} at {self.where}: {self.format_problem}")
        else:
            health = ReaderHealth("ok")
        if health != self.health:
            self.health = health
            if self.on_health is not None:
                self.on_health(health.state, health.detail)

    async def _close(self, conn: _Connection) -> None:
        """CLOSE_CONNECTION (bounded wait for its response), then close the socket."""
        with contextlib.suppress(DriverError, TimeoutError, OSError):
            async with asyncio.timeout(CLOSE_WAIT_S):
                await self._say_goodbye(conn)
        conn.close()

    async def _say_goodbye(self, conn: _Connection) -> None:
        request = Empty(CLOSE_CONNECTION, conn.next_id())
        await conn.send(request)
        while True:
            message = await conn.receive()
            if message.type == RESPONSE_TO[CLOSE_CONNECTION]:
                return
