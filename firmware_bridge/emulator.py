"""Firmware emulator: the controller's side of the protocol on a pseudo-terminal.

It owns a pty and a stable symlink to its slave (like /dev/serial/by-id), answers HELLO, STATUS,
ARM/DISARM, START_SCAN/STOP_SCAN, streams LINE frames from scans at `line_rate` through a
line FIFO of `fifo_lines` (overflow = scan incomplete) and ends with SCAN_END. Interlocks are
physical: only `set_interlocks` (the test harness, i.e. a person closing a door) changes them;
BYPASS_INTERLOCKS is always refused. A stale host heartbeat puts it in the safe state (disarmed,
scan stopped). With `throttle` its output is paced to `baudrate` like a real UART (a pty
itself does not throttle). Faults on demand: corrupted, dropped and duplicated outgoing frames
(random, with a seed), `stall`, `reboot`, `unplug`/`replug`, STOP_SCAN or DISARM acknowledged and not
carried out (`stop_ignored`, `disarm_ignored`), arming kept through a new HELLO (`hello_keeps_armed`). A firmware image sent with
UPDATE_BEGIN/CHUNK/COMMIT is accepted only when its SHA-256 matches; the emulator then reboots
announcing the image's hash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import signal
import tempfile
import tty
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import structlog

from firmware_bridge import codec
from firmware_bridge.codec import Capability, Fault, Frame, MsgType, NakReason
from firmware_bridge.endpoint import Endpoint, EndpointSettings, FdPort, Reply
from firmware_bridge.errors import BridgeError, LinkDown
from models.scan import Scan, load_scan

log = structlog.get_logger(__name__)

FIRMWARE_VERSION = "emu-1.0.0"
_MAX_PENDING = 1 << 16
_MAX_IMAGE = 4 << 20


@dataclass(frozen=True)
class FaultSettings:
    """Probabilities (0..1) applied to each outgoing frame."""

    corrupt: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    seed: int | None = None


@dataclass
class _ScanRun:
    """One scan being streamed."""

    scan_id: int
    sent: int = 0
    task: asyncio.Task[None] | None = None


@dataclass
class _Pty:
    master: int
    slave: int
    name: str


class FirmwareEmulator:
    """In-process X-ray controller firmware on a pty; an async context manager."""

    def __init__(self, scans: Sequence[Scan], *, line_rate: float = 200.0, faults: FaultSettings = FaultSettings(),
                 boot_s: float = 0.3, heartbeat_s: float = 0.2, host_stale_s: float = 1.5,
                 baudrate: int | None = None, fifo_lines: int = 512, interlocks_closed: bool = True,
                 ack_timeout_s: float = 0.2, attempts: int = 4, window: int = 16,
                 max_frame: int = codec.MAX_FRAME, link: str | Path | None = None,
                 throttle: bool = False, protocol_version: int = codec.VERSION) -> None:
        if not scans:
            raise ValueError("the firmware emulator needs at least one scan to stream")
        self.scans = list(scans)
        self.line_rate = line_rate
        self.faults = faults
        self.boot_s = boot_s
        self.heartbeat_s = heartbeat_s
        self.host_stale_s = host_stale_s
        self.fifo_lines = fifo_lines
        self.interlocks_closed = interlocks_closed
        self.max_frame = max_frame
        self.firmware_hash = hashlib.sha256(FIRMWARE_VERSION.encode()).digest()
        self.firmware_version = FIRMWARE_VERSION
        self._ep_settings = EndpointSettings(ack_timeout_s, attempts, window, max_frame, baudrate, protocol_version)
        self._byte_s = 10 / baudrate if throttle and baudrate else 0.0
        self._tx_free_at = 0.0
        self._rng = random.Random(faults.seed)
        self._own_dir = link is None
        self._dir = Path(link).parent if link is not None else Path(tempfile.mkdtemp(prefix="xray-emu-"))
        self.port = str(link) if link is not None else str(self._dir / "xray-controller")
        self._pty: _Pty | None = None
        self._fd_port: FdPort | None = None
        self._ep: Endpoint | None = None
        self._loop = asyncio.get_running_loop()
        self._silent_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._run: _ScanRun | None = None
        self._next_scan = 0
        self._boot_t = self._loop.time()
        self._last_host_beat = self._loop.time()
        self.boot_id = self._rng.getrandbits(32)
        self.session = False
        self.armed = False
        self.fault_bits = 0
        self.stop_ignored = False
        """Fault injection: a controller that acknowledges STOP_SCAN and scans on (DISARM still stops it)."""
        self.disarm_ignored = False
        """Fault injection: a controller that acknowledges DISARM and stays armed (its STATUS says so)."""
        self.hello_keeps_armed = False
        """Fault injection: a controller that stays armed through a new HELLO (against the protocol's section 6)."""
        self._update: tuple[codec.UpdateBegin, bytearray] | None = None
        self.counters = {"lines_sent": 0, "lines_lost": 0, "scans": 0, "reboots": 0, "injected": 0, "refused": 0}

    async def __aenter__(self) -> FirmwareEmulator:
        self._plug()
        self._spawn(self._heartbeats(), "emu:heartbeat")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._unplug()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    # ---- the physical world ----------------------------------------------------------------

    @property
    def scanning(self) -> bool:
        """True from START_SCAN until the last line is sent, the scan is stopped or the beam dropped."""
        return self._run is not None

    @property
    def link_stats(self) -> dict[str, int]:
        """Counters of the emulator's current endpoint (sent, retries, duplicates, ...)."""
        return dict(self._ep.stats) if self._ep is not None else {}

    def set_interlocks(self, closed: bool) -> None:
        """A door or curtain closes or opens; opening drops the beam and the scan at once."""
        self.interlocks_closed = closed
        if not closed:
            self._safe_state("interlock opened")

    def set_faults(self, faults: FaultSettings) -> None:
        self.faults = faults

    def emit_garbage(self, nbytes: int) -> None:
        """Line noise: random bytes on the wire, as a glitching cable or a boot banner would send."""
        if self._fd_port is not None and self._pty is not None:
            self._fd_port.write(self._rng.randbytes(nbytes))

    def stall(self, seconds: float) -> None:
        """Hang: ignore input and send nothing for `seconds`."""
        self._silent_until = max(self._silent_until, self._loop.time() + seconds)
        log.info("emulator.stall", seconds=seconds)

    def resume(self) -> None:
        """End a stall now: answer again (a controller switched on behind its cable)."""
        self._silent_until = self._loop.time()
        log.info("emulator.resume")

    async def reboot(self, boot_s: float | None = None) -> None:
        """Watchdog reset: scan and arming lost, new boot id, silent while booting."""
        self.counters["reboots"] += 1
        self.session = False
        self.armed = False
        self._abort_scan()
        self.fault_bits = 0
        self._update = None
        self.boot_id = self._rng.getrandbits(32)
        self._boot_t = self._loop.time()
        self._new_endpoint()
        self.stall(self.boot_s if boot_s is None else boot_s)
        log.info("emulator.reboot", boot_id=self.boot_id)

    def unplug(self) -> None:
        """The cable is pulled: the port vanishes and the host's reads fail."""
        self._safe_state("unplugged")
        self._unplug()

    def replug(self) -> None:
        """The cable is back: a new pty behind the same symlink; the host must HELLO again."""
        self._plug()

    # ---- port plumbing ---------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self._pty = _Pty(master, slave, os.ttyname(slave))
        link = Path(self.port)
        link.unlink(missing_ok=True)
        link.symlink_to(self._pty.name)
        self._fd_port = FdPort(master, self._rx, self._port_lost, max_pending=1 << 24)
        self._fd_port.start()
        self.session = False
        self._new_endpoint()
        log.info("emulator.plugged", port=self.port, pty=self._pty.name)

    def _unplug(self) -> None:
        if self._pty is None:
            return
        assert self._fd_port is not None
        self._fd_port.close()
        Path(self.port).unlink(missing_ok=True)
        os.close(self._pty.master)
        os.close(self._pty.slave)
        self._pty = None
        if self._ep is not None:
            self._ep.close(LinkDown("the emulator's port was unplugged"))

    def _port_lost(self, reason: str) -> None:
        log.warning("emulator.port_error", reason=reason)

    def _new_endpoint(self) -> None:
        if self._ep is not None:
            self._ep.close(LinkDown("the emulator restarted its link"))
        self._ep = Endpoint(self._tx, self._handle, "emulator", self._ep_settings)
        self._ep.on_heartbeat = self._host_beat

    def _rx(self, data: bytes) -> None:
        if self._loop.time() >= self._silent_until and self._ep is not None:
            self._ep.feed(data)

    def _tx(self, wire: bytes) -> None:
        port = self._fd_port
        if port is None or self._pty is None or self._loop.time() < self._silent_until or port.pending > _MAX_PENDING:
            return
        f, r = self.faults, self._rng.random()
        if r < f.drop:
            self.counters["injected"] += 1
            return
        if r < f.drop + f.corrupt:
            self.counters["injected"] += 1
            buf = bytearray(wire)
            buf[self._rng.randrange(len(buf) - 1)] ^= self._rng.randrange(1, 256)
            wire = bytes(buf)
        elif r < f.drop + f.corrupt + f.duplicate:
            self.counters["injected"] += 1
            self._paced(port, wire)
        self._paced(port, wire)

    def _paced(self, port: FdPort, wire: bytes) -> None:
        """Write now, or when a UART at `baudrate` (8N1, 10 bits a byte) would have sent what is ahead."""
        if not self._byte_s:
            port.write(wire)
            return
        now = self._loop.time()
        start = max(now, self._tx_free_at)
        self._tx_free_at = start + len(wire) * self._byte_s
        if start <= now:
            port.write(wire)
        else:
            self._loop.call_at(start, self._late_write, port, wire)

    def _late_write(self, port: FdPort, wire: bytes) -> None:
        if port is self._fd_port and self._pty is not None:
            port.write(wire)

    # ---- protocol --------------------------------------------------------------------------

    def _handle(self, frame: Frame) -> Reply:
        if frame.type == MsgType.HELLO:
            return self._hello(frame)
        if not self.session:
            return NakReason.NO_SESSION
        action = self._ACTIONS.get(frame.type)
        if action is None:
            return NakReason.UNKNOWN_TYPE
        reply = action(self, frame.payload)
        if isinstance(reply, NakReason):
            self.counters["refused"] += 1
            log.info("emulator.refused", request=MsgType(frame.type).name, reason=reply.name)
        return reply

    def _hello(self, frame: Frame) -> Reply:
        req = codec.HelloRequest.decode(frame.payload)
        assert self._ep is not None
        self._ep.reset_rx()
        self._ep.decoder.max_frame = min(self.max_frame, req.max_frame)
        if not self.hello_keeps_armed:
            self._safe_state("new host session")
        self.session = True
        self._last_host_beat = self._loop.time()
        return codec.HelloInfo(self.boot_id, self._ep.decoder.max_frame,
                               Capability.DUAL_ENERGY | Capability.LINE_STREAM,
                               self.firmware_hash, self.firmware_version).encode()

    def _status(self, _p: bytes) -> Reply:
        on = self.scanning
        return codec.Status(self.interlocks_closed, self.armed, on, 160.0 if on else 0.0,
                            1.0 if on else 0.0, self.fault_bits).encode()

    def _arm(self, _p: bytes) -> Reply:
        if not self.interlocks_closed:
            return NakReason.INTERLOCKS_OPEN
        self.armed = True
        return b""

    def _disarm(self, _p: bytes) -> Reply:
        if not self.disarm_ignored:
            self._safe_state("disarm requested")
        return b""

    def _start(self, payload: bytes) -> Reply:
        scan_id = codec.decode_scan_id(payload)
        if not self.interlocks_closed:
            return NakReason.INTERLOCKS_OPEN
        if not self.armed:
            return NakReason.NOT_ARMED
        if self.scanning:
            return NakReason.BUSY
        scan = self.scans[self._next_scan % len(self.scans)]
        assert self._ep is not None
        if codec.line_frame_size(scan.shape[1]) > self._ep.decoder.max_frame:
            return NakReason.FRAME_TOO_LARGE
        self._next_scan += 1
        run = self._run = _ScanRun(scan_id)
        run.task = self._spawn(self._stream(run, scan), f"emu:scan:{scan_id}")
        return b""

    def _stop(self, payload: bytes) -> Reply:
        if self._run is None or self._run.scan_id != codec.decode_scan_id(payload):
            return NakReason.NOT_SCANNING
        if not self.stop_ignored:
            self._abort_scan()
        return b""

    def _bypass(self, _payload: bytes) -> Reply:
        return NakReason.REFUSED_SAFETY

    @property
    def _beam_ready(self) -> bool:
        """Armed or scanning: every step of an update is refused (BUSY), so that none reboots a scanning controller."""
        return self.armed or self.scanning

    def _update_begin(self, payload: bytes) -> Reply:
        begin = codec.UpdateBegin.decode(payload)
        if self._beam_ready:
            return NakReason.BUSY
        if begin.size > _MAX_IMAGE:
            return NakReason.BAD_IMAGE
        self._update = (begin, bytearray())
        return b""

    def _update_chunk(self, payload: bytes) -> Reply:
        offset, data = codec.decode_update_chunk(payload)
        if self._beam_ready:
            return NakReason.BUSY
        if self._update is None:
            return NakReason.BAD_IMAGE
        begin, image = self._update
        if offset != len(image) or offset + len(data) > begin.size:
            return NakReason.BAD_PAYLOAD
        image += data
        return b""

    def _update_commit(self, _payload: bytes) -> Reply:
        if self._beam_ready:
            return NakReason.BUSY  # the transfer stays: a commit once disarmed completes it
        if self._update is None:
            return NakReason.BAD_IMAGE
        (begin, image), self._update = self._update, None
        digest = hashlib.sha256(image).digest()
        if len(image) != begin.size or digest != begin.sha256:
            return NakReason.BAD_IMAGE
        self.firmware_hash = digest
        self.firmware_version = f"emu-{digest.hex()[:12]}"
        self._spawn(self._reboot_soon(), "emu:update-reboot")
        return b""

    async def _reboot_soon(self) -> None:
        await asyncio.sleep(0.05)  # let the ACK of the commit leave first
        await self.reboot()

    # keyed by the raw type byte, so an unknown type from the wire is a plain miss
    _ACTIONS: ClassVar[dict[int, Callable[[FirmwareEmulator, bytes], bytes | NakReason]]] = {
        MsgType.STATUS: _status, MsgType.ARM: _arm, MsgType.DISARM: _disarm,
        MsgType.START_SCAN: _start, MsgType.STOP_SCAN: _stop, MsgType.BYPASS_INTERLOCKS: _bypass,
        MsgType.UPDATE_BEGIN: _update_begin, MsgType.UPDATE_CHUNK: _update_chunk,
        MsgType.UPDATE_COMMIT: _update_commit,
    }

    def _safe_state(self, why: str) -> None:
        if self.armed or self.scanning:
            log.info("emulator.safe_state", reason=why)
        self.armed = False
        self._abort_scan()

    def _abort_scan(self) -> None:
        """End the running scan now; a host still in session gets SCAN_END (incomplete)."""
        run, self._run = self._run, None
        if run is None:
            return
        if run.task is not None:
            run.task.cancel()
        if self.session:
            self._spawn(self._send_end(codec.ScanEnd(run.scan_id, run.sent, False)), "emu:scan-end")

    # ---- tasks -----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stream(self, run: _ScanRun, scan: Scan) -> None:
        """Stream one scan; the controller is free for the next START_SCAN once its lines are out."""
        complete = await self._send_lines(run, scan)
        if self._run is run:
            self._run = None
        await self._send_end(codec.ScanEnd(run.scan_id, run.sent, complete))

    async def _send_end(self, end: codec.ScanEnd) -> None:
        if self._ep is not None:
            with contextlib.suppress(BridgeError):
                await self._ep.request(MsgType.SCAN_END, end.encode())

    async def _send_lines(self, run: _ScanRun, scan: Scan) -> bool:
        """Send each line at its clock tick; False when the FIFO overran or a line was lost."""
        assert self._ep is not None
        ep, period, t0 = self._ep, 1.0 / self.line_rate, self._loop.time()
        pending: list[asyncio.Future[bytes]] = []
        complete, lost = True, 0
        self.counters["scans"] += 1
        for i in range(scan.shape[0]):
            due = t0 + i * period
            if due > self._loop.time():
                await asyncio.sleep(due - self._loop.time())
            elif (self._loop.time() - due) * self.line_rate > self.fifo_lines:
                self.fault_bits |= Fault.FIFO_OVERFLOW
                complete = False
                break
            try:
                line = codec.Line(run.scan_id, i, scan.high[i], scan.low[i])
                pending.append(await ep.submit(MsgType.LINE, line.encode()))
            except BridgeError:
                complete = False
                break
            run.sent += 1
            pending, n = _reap(pending)
            lost += n
        lost += await _drain(pending)
        self.counters["lines_sent"] += run.sent - lost
        self.counters["lines_lost"] += lost
        return complete and not lost

    async def _heartbeats(self) -> None:
        while True:
            now = self._loop.time()
            if self._ep is not None and now >= self._silent_until:
                uptime = int((now - self._boot_t) * 1000)
                self._ep.send(MsgType.HEARTBEAT, codec.Heartbeat(self.boot_id, uptime).encode())
                if self.session and now - self._last_host_beat > self.host_stale_s:
                    self.fault_bits |= Fault.HOST_LOST
                    self.session = False
                    self._safe_state("host heartbeat stale")
            await asyncio.sleep(self.heartbeat_s)

    def _host_beat(self, _hb: codec.Heartbeat) -> None:
        self._last_host_beat = self._loop.time()


def _reap(pending: list[asyncio.Future[bytes]]) -> tuple[list[asyncio.Future[bytes]], int]:
    """Drop finished futures from the list; return the rest and how many of the finished failed."""
    if len(pending) < 64:
        return pending, 0
    lost = sum(1 for f in pending if f.done() and (f.cancelled() or f.exception() is not None))
    return [f for f in pending if not f.done()], lost


async def _drain(pending: list[asyncio.Future[bytes]]) -> int:
    """Wait for every outstanding line; return how many were never acknowledged."""
    lost = 0
    for fut in pending:
        try:
            await fut
        except BridgeError:
            lost += 1
    return lost


async def _serve(args: argparse.Namespace) -> None:
    scans = [load_scan(p) for p in sorted(Path(args.scans).glob("*.npz"))]
    async with FirmwareEmulator(scans, line_rate=args.line_rate, baudrate=args.baud, throttle=args.throttle,
                                boot_s=args.boot_ms / 1000, link=args.link) as emu:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: emu._spawn(emu.reboot(), "emu:reboot"))
        loop.add_signal_handler(signal.SIGUSR2, lambda: emu.set_interlocks(not emu.interlocks_closed))
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(emu.port, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the emulator as its own process (station twin); SIGUSR1 reboots it, SIGUSR2 toggles interlocks."""
    ap = argparse.ArgumentParser(prog="python -m firmware_bridge.emulator", description=main.__doc__)
    ap.add_argument("--scans", required=True, help="folder of .npz scans streamed in turn")
    ap.add_argument("--link", required=True, help="path of the symlink to the pty (the host's port)")
    ap.add_argument("--line-rate", type=float, default=200.0)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--throttle", action="store_true", help="pace output to --baud like a real UART")
    ap.add_argument("--boot-ms", type=int, default=300)
    args = ap.parse_args(argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
