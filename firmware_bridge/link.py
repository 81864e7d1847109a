"""Host side of the controller link over a serial port (pyserial), with HELLO and reconnection.

One supervisor task owns the port. Each session: open the port (retrying while it is absent),
flush stale input, HELLO (firmware version, hash, capabilities, max frame, boot id), then
heartbeats both ways. The session ends on a read/write error, a vanished port, a firmware
that sent no valid frame for `stale_s` (its heartbeats may queue behind line frames on a slow
UART, so any valid frame counts as a sign of life), a changed boot id (the firmware rebooted),
an unacknowledged request or a NAK NO_SESSION; a `LinkFault` carrying the last frames is
emitted and a fresh session starts.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import serial
import structlog

from firmware_bridge import codec
from firmware_bridge.codec import MsgType, NakReason
from firmware_bridge.endpoint import Endpoint, EndpointSettings, FdPort, Handler
from firmware_bridge.errors import AckTimeout, BridgeError, LinkDown, Nak, PayloadError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    """Where the controller is and how patient the host is with it."""

    port: str
    baudrate: int = 115200
    ack_timeout_s: float = 0.2
    attempts: int = 4
    window: int = 16
    heartbeat_s: float = 0.2
    stale_s: float = 1.0
    reconnect_s: float = 0.25
    max_frame: int = codec.MAX_FRAME
    dtr: bool | None = None
    """DTR/RTS set before the port opens; False keeps boards that reset on DTR from rebooting."""
    rts: bool | None = None


@dataclass(frozen=True)
class LinkUp:
    """A session started; `hello` is what the firmware announced."""

    hello: codec.HelloInfo
    at: float


@dataclass(frozen=True)
class LinkFault:
    """A session ended; `last_frames` are the endpoint's history entries (see endpoint.py)."""

    reason: str
    last_frames: tuple[bytes, ...]
    at: float


LinkEvent = LinkUp | LinkFault


class HostLink:
    """Acknowledged, self-recovering link to the controller firmware; an async context manager."""

    def __init__(self, settings: LinkSettings, handler: Handler, name: str = "xray",
                 on_event: Callable[[LinkEvent], None] | None = None) -> None:
        self.settings = settings
        self.name = name
        self._handler = handler
        self._on_event = on_event
        self._ep: Endpoint | None = None
        self._up = asyncio.Event()
        self._fault: asyncio.Future[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._host_boot = random.getrandbits(32)
        self.hello: codec.HelloInfo | None = None
        self.peer_version: int | None = None
        """The firmware's protocol version when it speaks another than ours (from its intact frames)."""
        self.sessions = 0
        self.failed_tries = 0
        """Sessions that ended without coming up (a port that opens, a firmware that does not answer HELLO)."""
        self._down_reason: str | None = None  # the fault last reported while the link is down
        self.frames_rejected = 0
        """Frames rejected in all sessions (not COBS, short, bad length or CRC, oversize, a payload that does not fit
        its type); the first of each session is logged as xray_link.frame_rejected with its reason."""
        self.events: list[LinkEvent] = []

    async def __aenter__(self) -> HostLink:
        self._task = asyncio.create_task(self._supervise(), name=f"link:{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    @property
    def up(self) -> bool:
        return self._up.is_set()

    @property
    def last_frames(self) -> tuple[bytes, ...]:
        return self._ep.last_frames if self._ep is not None else ()

    @property
    def stats(self) -> dict[str, int]:
        return dict(self._ep.stats) if self._ep is not None else {}

    async def wait_up(self, timeout: float) -> codec.HelloInfo:
        """Wait until a session is up; LinkDown after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            raise LinkDown(f"link {self.name} on {self.settings.port} was not up within {timeout:.2f} s",
                           last_frames=self.last_frames) from None
        assert self.hello is not None
        return self.hello

    async def request(self, mtype: MsgType, payload: bytes = b"") -> bytes:
        """Reliable request in the current session; an unanswered one ends the session."""
        ep = self._ep
        if not self.up or ep is None:
            raise LinkDown(f"link {self.name} on {self.settings.port} is down", last_frames=self.last_frames)
        try:
            return await ep.request(mtype, payload)
        except AckTimeout as exc:
            if self._ep is ep:
                self._end(str(exc))
            raise
        except Nak as exc:
            if exc.reason == NakReason.NO_SESSION and self._ep is ep:
                self._end(f"firmware has no session for {mtype.name}; it restarted")
            raise

    # ---- sessions --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        reported = False
        while True:
            try:
                ser = await asyncio.to_thread(self._open)
            except LinkDown as exc:
                if not reported:
                    log.warning("xray_link.port_unavailable", link=self.name, reason=str(exc))
                    reported = True
                await asyncio.sleep(self.settings.reconnect_s)
                continue
            reported = False
            try:
                await self._session(ser)
            finally:
                await asyncio.to_thread(ser.close)
            await asyncio.sleep(self.settings.reconnect_s)

    def _open(self) -> serial.Serial:
        ser = serial.Serial()
        ser.port, ser.baudrate, ser.timeout, ser.exclusive = self.settings.port, self.settings.baudrate, 0, True
        if self.settings.dtr is not None:
            ser.dtr = self.settings.dtr
        if self.settings.rts is not None:
            ser.rts = self.settings.rts
        try:
            ser.open()
            ser.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise LinkDown(f"cannot open {self.settings.port}: {exc}") from exc
        return ser

    async def _session(self, ser: serial.Serial) -> None:
        loop = asyncio.get_running_loop()
        self._fault = loop.create_future()
        ep = Endpoint(lambda b: port.write(b), self._handler, self.name, EndpointSettings(
            self.settings.ack_timeout_s, self.settings.attempts, self.settings.window,
            self.settings.max_frame, self.settings.baudrate))
        port = FdPort(os.dup(ser.fileno()), ep.feed, self._end)
        self._ep = ep
        ep.on_heartbeat = self._heartbeat
        ep.on_rejected = lambda reason: self._rejected(ep, reason)
        port.start()
        beats = asyncio.create_task(self._beat(ep), name=f"link:{self.name}:heartbeat")
        reason = "the link was closed"
        try:
            await self._hello(ep)
            reason = await self._fault
        except BridgeError as exc:
            reason = f"HELLO failed: {exc}"
        finally:
            reason = self._version_checked(ep, reason)
            beats.cancel()
            was_up = self._up.is_set()
            self._up.clear()
            port.close()
            os.close(port.fd)
            ep.close(LinkDown(f"link {self.name} on {self.settings.port} went down: {reason}",
                              last_frames=ep.last_frames))
        if not was_up:
            self.failed_tries += 1
        if was_up or reason != self._down_reason:  # a try failing as the one before is not news: once
            self._emit(LinkFault(reason, ep.last_frames, loop.time()))
            log.warning("xray_link.lost", link=self.name, reason=reason, stats=ep.stats)
        self._down_reason = reason

    def _version_checked(self, ep: Endpoint, reason: str) -> str:
        """A firmware of another protocol version: warn once per version and say so first in the reason."""
        theirs = ep.decoder.peer_version
        if theirs is None:
            return reason
        if theirs != self.peer_version:
            log.warning("xray_link.version_mismatch", link=self.name, port=self.settings.port,
                        firmware_protocol=theirs, host_protocol=codec.VERSION)
        self.peer_version = theirs
        return f"the firmware speaks protocol version {theirs}, this host speaks version {codec.VERSION}; {reason}"

    async def _hello(self, ep: Endpoint) -> None:
        body = await ep.request(MsgType.HELLO, codec.HelloRequest(max_frame=self.settings.max_frame).encode())
        hello = codec.HelloInfo.decode(body)
        if hello.max_frame < codec.MIN_SESSION_FRAME:
            raise PayloadError(f"the controller on {self.settings.port} announced max_frame {hello.max_frame} in its "
                               f"HELLO reply, below the {codec.MIN_SESSION_FRAME} bytes of a STATUS acknowledgement "
                               f"a session needs", last_frames=ep.last_frames)
        self.hello = hello
        self.peer_version = None
        self.sessions += 1
        self._down_reason = None
        ep.decoder.max_frame = min(self.settings.max_frame, hello.max_frame)
        ep.last_rx = asyncio.get_running_loop().time()
        self._up.set()
        self._emit(LinkUp(hello, asyncio.get_running_loop().time()))
        log.info("xray_link.up", link=self.name, failed_tries=self.failed_tries, firmware=hello.firmware_version,
                 firmware_hash=hello.firmware_hash.hex()[:16], boot_id=hello.boot_id,
                 capabilities=hello.capabilities, max_frame=hello.max_frame)

    async def _beat(self, ep: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            ep.send(MsgType.HEARTBEAT, codec.Heartbeat(self._host_boot, int((loop.time() - start) * 1000)).encode())
            silent = loop.time() - ep.last_rx
            if self.up and silent > self.settings.stale_s:
                self._end(f"no firmware heartbeat or other frame for {silent:.2f} s "
                          f"(limit {self.settings.stale_s:.2f} s)")
            await asyncio.sleep(self.settings.heartbeat_s)

    def _rejected(self, ep: Endpoint, reason: str) -> None:
        self.frames_rejected += 1
        if ep.stats["rejected"] == 1:
            log.warning("xray_link.frame_rejected", link=self.name, port=self.settings.port, reason=reason,
                        later="further frames rejected in this session are counted (edge_xray_frames_rejected), "
                              "not logged")

    def _heartbeat(self, hb: codec.Heartbeat) -> None:
        if self.up and self.hello is not None and hb.boot_id != self.hello.boot_id:
            self._end(f"firmware boot id changed from {self.hello.boot_id} to {hb.boot_id}; it rebooted")

    def _end(self, reason: str) -> None:
        if self._fault is not None and not self._fault.done():
            self._fault.set_result(reason)

    def _emit(self, event: LinkEvent) -> None:
        self.events.append(event)
        del self.events[:-64]
        if self._on_event is not None:
            self._on_event(event)
