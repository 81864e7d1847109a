"""The symmetric protocol engine used by both the host link and the firmware emulator.

An `FdPort` moves bytes on a non-blocking file descriptor through `loop.add_reader` and
`loop.add_writer` (never blocking the event loop). An `Endpoint` turns those bytes into frames
and gives them: sequence numbers, a window of unacknowledged frames, per-frame ACK timers with a
bounded number of attempts, NAK as an error, duplicate suppression (a repeated frame gets the
cached reply without running the handler again; HELLO, idempotent, always reaches it) and a
history of the last frames for faults.

History entries are bytes: b"<" (received), b">" (sent) or b"!" (rejected) followed by the first
64 bytes of the frame (decoded header + payload for valid frames, raw wire bytes for rejects).
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from firmware_bridge import codec
from firmware_bridge.codec import Frame, MsgType, NakReason
from firmware_bridge.errors import AckTimeout, BridgeError, LinkDown, Nak, PayloadError

log = structlog.get_logger(__name__)

Reply = bytes | NakReason
"""What a frame handler returns: the ACK body, or the reason for a NAK."""
Handler = Callable[[Frame], Reply]

_HISTORY_BYTES = 64
_SEEN = 1024


class FdPort:
    """Non-blocking fd read by add_reader and written by add_writer; reports loss once."""

    def __init__(self, fd: int, on_data: Callable[[bytes], None], on_lost: Callable[[str], None],
                 max_pending: int = 1 << 20) -> None:
        self.fd = fd
        self._on_data = on_data
        self._on_lost = on_lost
        self._max_pending = max_pending
        self._out = bytearray()
        self._loop = asyncio.get_running_loop()
        self.lost: str | None = None
        os.set_blocking(fd, False)

    @property
    def pending(self) -> int:
        return len(self._out)

    def start(self) -> None:
        self._loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        """Stop watching the fd (its owner closes it)."""
        self._loop.remove_reader(self.fd)
        self._loop.remove_writer(self.fd)
        self._out.clear()

    def write(self, data: bytes) -> None:
        """Queue bytes; a write error or a peer that stops reading is reported as loss."""
        if self.lost is not None:
            return
        if self._out:
            self._out += data
            if len(self._out) > self._max_pending:
                self._lose(f"{len(self._out)} bytes wait to be written; the peer is not reading")
            return
        self._out += data
        self._writable()

    def _writable(self) -> None:
        try:
            n = os.write(self.fd, self._out)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._lose(f"write failed: {exc}")
            return
        del self._out[:n]
        if self._out:
            self._loop.add_writer(self.fd, self._writable)
        else:
            self._loop.remove_writer(self.fd)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(f"read failed: {exc}")
            return
        if not data:
            self._lose("the port reached end of file")
            return
        self._on_data(data)

    def _lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
            self.close()
            self._on_lost(reason)


@dataclass
class _Pending:
    frame: Frame
    wire: bytes
    future: asyncio.Future[bytes]
    attempts: int = 1
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


@dataclass(frozen=True)
class EndpointSettings:
    """Reliability knobs; the ACK timeout grows with the bytes queued ahead at `baudrate`."""

    ack_timeout_s: float = 0.2
    attempts: int = 4
    window: int = 16
    max_frame: int = codec.MAX_FRAME
    baudrate: int | None = None
    version: int = codec.VERSION
    """Protocol version stamped on frames sent and required of frames received."""


class Endpoint:
    """Frames, sequence numbers, acknowledgement, retry and duplicate suppression over a writer."""

    def __init__(self, write: Callable[[bytes], None], handler: Handler, name: str,
                 settings: EndpointSettings = EndpointSettings()) -> None:
        self.name = name
        self.settings = settings
        self._write = write
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self._tx_seq = 0
        self._pending: dict[int, _Pending] = {}
        self._inflight = 0
        self._window = asyncio.Semaphore(settings.window)
        self._seen: OrderedDict[int, bytes] = OrderedDict()
        self.history: deque[bytes] = deque(maxlen=16)
        self.decoder = codec.FrameDecoder(settings.max_frame, on_error=self._rejected, version=settings.version)
        self.on_heartbeat: Callable[[codec.Heartbeat], None] | None = None
        self.on_rejected: Callable[[str], None] | None = None
        """Called with the sentence saying why, for each frame rejected (bytes that are no frame, a bad payload)."""
        self.last_rx = self._loop.time()
        self.last_heartbeat = self._loop.time()
        self.stats = {"sent": 0, "received": 0, "retries": 0, "duplicates": 0, "rejected": 0, "timeouts": 0}
        self.closed: BridgeError | None = None

    @property
    def last_frames(self) -> tuple[bytes, ...]:
        return tuple(self.history)

    # ---- sending ---------------------------------------------------------------------------

    async def request(self, mtype: MsgType, payload: bytes = b"") -> bytes:
        """Send a reliable frame and wait for its ACK body (Nak / AckTimeout / LinkDown otherwise)."""
        fut = await self.submit(mtype, payload)
        return await fut

    async def submit(self, mtype: MsgType, payload: bytes = b"") -> asyncio.Future[bytes]:
        """Send a reliable frame once a window slot is free; the future resolves on ACK."""
        await self._window.acquire()
        if self.closed is not None:
            self._window.release()
            raise self.closed
        seq = self._tx_seq
        self._tx_seq = (seq + 1) & 0xFFFF
        frame = Frame(type=mtype, seq=seq, payload=payload, version=self.settings.version)
        p = _Pending(frame, codec.encode_frame(frame), self._loop.create_future())
        p.future.add_done_callback(self._released)
        self._pending[seq] = p
        self._inflight += len(p.wire)
        self._transmit(p)
        return p.future

    def _released(self, fut: asyncio.Future[bytes]) -> None:
        """Free the window slot; mark the outcome seen (a sender may abandon its futures)."""
        self._window.release()
        if not fut.cancelled():
            fut.exception()

    def send(self, mtype: MsgType, payload: bytes = b"") -> None:
        """Send an unacknowledged frame (ACK, NAK, HEARTBEAT)."""
        if self.closed is None:
            self._emit(codec.encode_frame(Frame(type=mtype, seq=0, payload=payload, version=self.settings.version)),
                       payload, mtype, 0)

    def _transmit(self, p: _Pending) -> None:
        self._emit(p.wire, p.frame.payload, p.frame.type, p.frame.seq)
        p.timer = self._loop.call_later(self._ack_timeout(), self._timeout, p.frame.seq)

    def _emit(self, wire: bytes, payload: bytes, mtype: int, seq: int) -> None:
        self.history.append(b">" + codec.HEADER.pack(self.settings.version, mtype, seq, len(payload)) + payload[:50])
        self.stats["sent"] += 1
        self._write(wire)

    def _ack_timeout(self) -> float:
        base = self.settings.ack_timeout_s
        if self.settings.baudrate:
            base += 2 * self._inflight * 10 / self.settings.baudrate
        return base

    def _timeout(self, seq: int) -> None:
        p = self._pending.get(seq)
        if p is None:
            return
        if p.future.done() or p.attempts >= self.settings.attempts:
            self._settle(seq)
            if not p.future.done():
                self.stats["timeouts"] += 1
                p.future.set_exception(AckTimeout(
                    f"{self.name}: frame type {MsgType(p.frame.type).name} seq {seq} was not acknowledged "
                    f"after {p.attempts} attempts", last_frames=self.last_frames))
            return
        p.attempts += 1
        self.stats["retries"] += 1
        self._transmit(p)

    def _settle(self, seq: int) -> _Pending | None:
        p = self._pending.pop(seq, None)
        if p is not None:
            self._inflight -= len(p.wire)
            if p.timer is not None:
                p.timer.cancel()
        return p

    # ---- receiving -------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the port: decode and dispatch every complete frame."""
        for frame in self.decoder.feed(data):
            self.last_rx = self._loop.time()
            self.stats["received"] += 1
            self.history.append(b"<" + codec.HEADER.pack(frame.version, frame.type, frame.seq,
                                                          len(frame.payload)) + frame.payload[:50])
            try:
                self._dispatch(frame)
            except PayloadError as exc:
                self._rejected(frame.payload[:_HISTORY_BYTES], str(exc))

    def _dispatch(self, frame: Frame) -> None:
        if frame.type == MsgType.ACK:
            seq, body = codec.decode_ack(frame.payload)
            self._resolve(seq, body, None)
        elif frame.type == MsgType.NAK:
            seq, reason = codec.decode_nak(frame.payload)
            self._resolve(seq, b"", reason)
        elif frame.type == MsgType.HEARTBEAT:
            self.last_heartbeat = self._loop.time()
            if self.on_heartbeat is not None:
                self.on_heartbeat(codec.Heartbeat.decode(frame.payload))
        else:
            self._reliable(frame)

    def _resolve(self, seq: int, body: bytes, reason: int | None) -> None:
        p = self._settle(seq)
        if p is None or p.future.done():
            return
        if reason is None:
            p.future.set_result(body)
            return
        name = NakReason(reason).name if reason in NakReason._value2member_map_ else str(reason)
        p.future.set_exception(Nak(f"{self.name}: {MsgType(p.frame.type).name} seq {seq} was refused "
                                   f"with reason {name}", reason=reason, last_frames=self.last_frames))

    def _reliable(self, frame: Frame) -> None:
        cached = None if frame.type == MsgType.HELLO else self._seen.get(frame.seq)
        if cached is not None:
            self.stats["duplicates"] += 1
            self._write(cached)
            return
        try:
            reply = self._handler(frame)
        except PayloadError as exc:
            self._rejected(frame.payload[:_HISTORY_BYTES], str(exc))
            reply = NakReason.BAD_PAYLOAD
        if isinstance(reply, NakReason):
            mtype, payload = MsgType.NAK, codec.encode_nak(frame.seq, reply)
        else:
            mtype, payload = MsgType.ACK, codec.encode_ack(frame.seq, reply)
        wire = codec.encode_frame(Frame(type=mtype, seq=0, payload=payload, version=self.settings.version))
        self._seen[frame.seq] = wire
        if len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        self._emit(wire, payload, mtype, 0)

    def reset_rx(self) -> None:
        """Forget received sequence numbers (a new session starts counting afresh)."""
        self._seen.clear()

    def _rejected(self, raw: bytes, reason: str) -> None:
        self.stats["rejected"] += 1
        self.history.append(b"!" + raw[:_HISTORY_BYTES])
        log.debug("bridge.frame_rejected", endpoint=self.name, reason=reason)
        if self.on_rejected is not None:
            self.on_rejected(reason)

    def close(self, exc: BridgeError) -> None:
        """Fail every pending frame with `exc`; later sends raise it."""
        self.closed = exc
        for seq in list(self._pending):
            p = self._settle(seq)
            if p is not None and not p.future.done():
                p.future.set_exception(exc)


__all__ = ["Endpoint", "EndpointSettings", "FdPort", "Handler", "LinkDown", "Reply"]
