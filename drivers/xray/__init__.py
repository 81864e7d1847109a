"""X-ray line scanner driver: domain commands over the controller's firmware link.

    async with open_scanner(cfg, "xray") as scanner:
        await scanner.arm()                       # request + STATUS read back
        stream = await scanner.start_scan("inspection-42")
        async for block in stream:                # LineBlock(first_line, high, low), progressively
            ...
        scan = stream.result()                    # models.scan.Scan, complete=False if lines were lost

Kind "sim" starts the firmware emulator on a new pty (exposed as `scanner.emulator`) and connects
the real serial link to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from drivers.errors import DeviceRefused, DriverError, LinkLost, ProtocolError, ReadbackMismatch
from drivers.xray.config import ScannerConfig, SimFaultsConfig, SimScannerConfig
from drivers.xray.errors import ControllerFault, ScannerHeld, ScanUnavailable
from drivers.xray.stream import LineBlock, ScanStream
from firmware_bridge import codec
from firmware_bridge.codec import Frame, MsgType, NakReason
from firmware_bridge.emulator import FaultSettings, FirmwareEmulator
from firmware_bridge.endpoint import Reply
from firmware_bridge.errors import AckTimeout, LinkDown, Nak, PayloadError
from firmware_bridge.link import HostLink, LinkEvent, LinkFault, LinkSettings
from models.errors import ScanFormatError
from models.scan import Scan, load_scan, load_scans

__all__ = ["ControllerFault", "LineBlock", "ScanStream", "ScanUnavailable", "Scanner", "ScannerConfig",
           "ScannerHeld", "ScannerStatus", "SimFaultsConfig", "SimScannerConfig", "open_scanner"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScannerStatus:
    """The controller's state as read back from its firmware."""

    interlocks_closed: bool
    armed: bool
    scanning: bool
    kv: float
    ma: float
    faults: tuple[str, ...]
    firmware_version: str
    fault_word: int = 0
    """STATUS's `faults` word as read (`faults` names its bits, `bit<N>` for one the protocol does not define)."""


class Scanner:
    """One X-ray controller behind a HostLink."""

    def __init__(self, cfg: ScannerConfig, name: str, port: str) -> None:
        self.cfg = cfg
        self.name = name
        self.port = port
        self.emulator: FirmwareEmulator | None = None
        self.link = HostLink(_link_settings(cfg, port), self._on_frame, name, self._on_event)
        self._streams: dict[int, ScanStream] = {}
        self._owed_stops: set[int] = set()
        self._stop_tasks: set[asyncio.Task[None]] = set()
        self.stops_failed = 0
        """STOP_SCAN requests for abandoned scans that could not be sent or were not acknowledged."""
        self.on_link_change: Callable[[bool, str], None] | None = None
        """Called with (up, reason) when the link comes up or is lost (lost = stop requesting X-ray)."""
        self.held: str | None = None
        """Why the station holds the controller disarmed (a safe state: belt latched, e-stop or interlock tripped,
        PLC link lost); None while it may arm. ARM and START_SCAN are refused meanwhile (`hold`, `release`)."""
        self.holds = 0
        """Safe states that held the controller disarmed since start."""
        self.disarms_failed = 0
        """DISARM requests of holds that failed (no answer, NAK, read back armed or scanning); each was sent again at
        the next `hold` (the next watch tick)."""
        self.disarm_unconfirmed: str | None = None
        """While held: why the last DISARM failed, none having read back disarmed since; None otherwise."""
        self._sessions = 0  # firmware sessions started (LinkUp events)
        self._hold_disarmed_in: int | None = None  # the session in which a DISARM of the hold read back disarmed
        self.stops_unconfirmed = 0
        """Stops that STATUS did not confirm (still scanning, no other scan of this host): the controller was
        disarmed."""
        self._starts = 0  # START_SCAN requests sent: a stop's read-back is inconclusive if one was sent meanwhile
        self.scans_refused_faults = 0
        """Scans not started because STATUS reported a fault condition (`status_for_scan`)."""

    @property
    def link_up(self) -> bool:
        """True while a session with the firmware is up (HELLO done, heartbeats fresh)."""
        return self.link.up

    # ---- commands --------------------------------------------------------------------------

    async def status(self) -> ScannerStatus:
        """Read the controller's STATUS."""
        body = await self._request(MsgType.STATUS, b"", "STATUS")
        try:
            st = codec.Status.decode(body)
        except PayloadError as exc:
            raise ProtocolError(f"X-ray controller {self.name} answered STATUS with {body.hex()}: {exc}",
                                device=self.name, last_frames=self.link.last_frames) from exc
        version = self.link.hello.firmware_version if self.link.hello else ""
        return ScannerStatus(st.interlocks_closed, st.armed, st.scanning, st.kv, st.ma, codec.fault_names(st.faults),
                             version, st.faults)

    async def status_for_scan(self, ref: str) -> ScannerStatus:
        """STATUS read before a scan for item `ref`: a fault condition (codec.blocking_faults: HV_FAULT,
        TUBE_OVERTEMP, a bit the protocol does not define) raises ControllerFault naming the bits, counted in
        `scans_refused_faults`; latched event bits (HOST_LOST, FIFO_OVERFLOW, WATCHDOG_RESET) do not."""
        st = await self.status()
        blocking = codec.blocking_faults(st.fault_word)
        if blocking:
            self.scans_refused_faults += 1
            message = (f"X-ray controller {self.name} reports the fault {', '.join(codec.fault_names(blocking))} in "
                       f"its STATUS (faults 0x{st.fault_word:08x}), so no scan was started for item {ref}")
            log.error("xray.scan_refused_fault", device=self.name, ref=ref, faults=list(st.faults),
                      fault_word=f"0x{st.fault_word:08x}", message=message)
            raise ControllerFault(message, device=self.name, faults=st.fault_word)
        return st

    async def arm(self) -> None:
        """Request ARM and confirm it by reading STATUS back; refused (nothing sent) while the station holds the
        controller disarmed."""
        self._refuse_while_held("ARM")
        await self._request(MsgType.ARM, b"", "ARM")
        await self._confirm("armed", True)

    async def disarm(self) -> None:
        """Request DISARM and confirm it by reading STATUS back: neither armed nor scanning (DISARM is the
        firmware's safe state, which stops any scan)."""
        await self._request(MsgType.DISARM, b"", "DISARM")
        st = await self.status()
        if st.armed or st.scanning:
            raise ReadbackMismatch(f"X-ray controller {self.name} reports armed={st.armed} scanning={st.scanning} "
                                   f"after DISARM", device=self.name, last_frames=self.link.last_frames)

    async def start_scan(self, ref: str) -> ScanStream:
        """Start a scan; lines flow into the returned stream as they arrive.

        Scans abandoned earlier are stopped first, so that the controller is not left BUSY. Refused (nothing
        sent) while the station holds the controller disarmed.
        """
        self._refuse_while_held("START_SCAN")
        for owed in list(self._owed_stops):
            await self._stop_abandoned(owed, "before the next scan")
        scan_id = random.getrandbits(32)
        stream = ScanStream(scan_id, ref, self.name, idle_timeout_s=self.cfg.scan_idle_timeout_ms / 1000,
                            max_lines=self.cfg.max_lines, meta=self._meta(), stop=self._stop,
                            on_abort=self._aborted)
        self._streams[scan_id] = stream
        self._starts += 1
        try:
            await self._request(MsgType.START_SCAN, codec.encode_scan_id(scan_id), f"START_SCAN {scan_id}")
        except DeviceRefused:
            self._streams.pop(scan_id, None)
            raise
        except BaseException:  # unconfirmed (lost ACK, cancelled): the controller may be scanning
            self._streams.pop(scan_id, None)
            self._stop_later(scan_id, "START_SCAN was not confirmed")
            raise
        log.info("xray.scan_started", device=self.name, ref=ref, scan_id=scan_id)
        return stream

    async def _stop(self, stream: ScanStream) -> None:
        with contextlib.suppress(DeviceRefused):  # NOT_SCANNING: it ended on its own meanwhile
            await self._request(MsgType.STOP_SCAN, codec.encode_scan_id(stream.scan_id), "STOP_SCAN")
        await self._confirm_stopped(stream.scan_id)

    async def _confirm_stopped(self, scan_id: int) -> None:
        """Read a stop back with STATUS. STATUS names no scan, so `scanning` is conclusive only while no other scan
        of this host may be running (none live, starting or owed a stop): then a controller that still scans after
        its ACK (or its NOT_SCANNING) scans what nobody reads. It is disarmed (the firmware's safe state stops any
        scan), read back; counted in `stops_unconfirmed`, logged `xray.stop_unconfirmed`; a DISARM that fails too
        raises ReadbackMismatch."""
        starts = self._starts
        st = await self.status()
        others = (set(self._streams) | self._owed_stops) - {scan_id}
        if not st.scanning or others or self._starts != starts:
            return
        self.stops_unconfirmed += 1
        log.error("xray.stop_unconfirmed", device=self.name, scan_id=scan_id,
                  message=f"X-ray controller {self.name} still reports scanning after STOP_SCAN {scan_id}, and no "
                          f"other scan of this host runs: it is disarmed")
        await self.disarm()

    def _aborted(self, stream: ScanStream, reason: str) -> None:
        """A stream ended without the controller's SCAN_END (timeout, reader gone, link lost): stop the scan."""
        self._streams.pop(stream.scan_id, None)
        self._stop_later(stream.scan_id, reason)

    def _stop_later(self, scan_id: int, reason: str) -> None:
        self._owed_stops.add(scan_id)
        task = asyncio.get_running_loop().create_task(self._stop_abandoned(scan_id, reason),
                                                      name=f"xray:{self.name}:stop:{scan_id}")
        self._stop_tasks.add(task)
        task.add_done_callback(self._stop_tasks.discard)

    async def _stop_all(self, reason: str) -> None:
        """Stop live and abandoned scans while the link is still open (bounded), then give up on them; then
        leave the controller disarmed."""
        answer_s = self.cfg.ack_timeout_ms / 1000 * self.cfg.attempts
        for stream in list(self._streams.values()):
            stream.abort(reason)
        if self._stop_tasks:
            await asyncio.wait(set(self._stop_tasks), timeout=answer_s)
        for task in list(self._stop_tasks):
            task.cancel()
        await asyncio.gather(*self._stop_tasks, return_exceptions=True)
        await self._disarm_at_close(reason, 2 * answer_s)

    async def hold(self, reason: str) -> None:
        """The station is in a safe state (`reason`: belt latched, e-stop or interlock tripped, PLC link lost): the
        controller is asked to DISARM, read back with STATUS (bounded: twice `attempts` x `ack_timeout`), and ARM and
        START_SCAN are refused until `release`. A scan running stops with the DISARM (the firmware ends it
        incomplete). Called again while held (every watch tick), it updates the reason and, until a DISARM has read
        back disarmed, sends DISARM again: a failure (no answer, NAK, read back armed or scanning) is counted in
        `disarms_failed`, kept in `disarm_unconfirmed` and logged `xray.disarm_failed` once per hold. While the link
        is down nothing can be sent (the firmware's own safe state covers it); each new session during the hold is
        sent DISARM and read back again (a firmware is not trusted to have started disarmed)."""
        if self.held is None:
            self.holds += 1
            self._hold_disarmed_in = None
            log.warning("xray.held_disarmed", device=self.name, why=reason)
        self.held = reason
        if self._hold_disarmed_in != self._sessions and self.link_up:
            await self._disarm_held(reason)

    async def _disarm_held(self, reason: str) -> None:
        """One DISARM of a hold, read back; a failure is counted and kept, not raised."""
        failed_before, session = self.disarm_unconfirmed is not None, self._sessions
        error = await self._try_disarm(2 * self.cfg.ack_timeout_ms / 1000 * self.cfg.attempts)
        if error is None:  # read back in `session`: a newer one started meanwhile is sent DISARM at the next look
            self._hold_disarmed_in, self.disarm_unconfirmed = session, None
            log.info("xray.disarmed", device=self.name, why=reason, after_failures=failed_before, session=session)
            return
        self.disarms_failed += 1
        self.disarm_unconfirmed = error
        if not failed_before:
            log.error("xray.disarm_failed", device=self.name, why=reason, error=error,
                      message=f"X-ray controller {self.name} is held disarmed because {reason}, but its DISARM "
                              f"failed ({error}): it is sent again until it reads back disarmed")

    def release(self) -> None:
        """The station is back in normal operation: the controller may be armed again (by the next scan's ARM,
        never here); a DISARM still unconfirmed is no longer sent."""
        if self.held is not None:
            log.info("xray.released", device=self.name, was_held_for=self.held,
                     disarm_unconfirmed=self.disarm_unconfirmed)
            self.held = self.disarm_unconfirmed = None

    def _refuse_while_held(self, what: str) -> None:
        if self.held is not None:
            raise ScannerHeld(f"X-ray controller {self.name} is held disarmed because {self.held}, so {what} was "
                              f"not sent", device=self.name, reason=self.held)

    async def _disarm_at_close(self, reason: str, timeout_s: float) -> None:
        """DISARM, read back, while the link is up (bounded): a closing station does not leave the controller
        armed until the firmware's own host-stale timer notices it is gone (a controller without one: for ever).
        A failure is logged, not raised."""
        if not self.link_up:
            return
        error = await self._try_disarm(timeout_s)
        if error is None:
            log.info("xray.disarmed", device=self.name, why=reason)
        else:
            log.warning("xray.disarm_failed", device=self.name, why=reason, error=error)

    async def _try_disarm(self, timeout_s: float) -> str | None:
        """DISARM, read back, within `timeout_s`: None once it reads back disarmed, else why it did not."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.disarm()
        except (DriverError, TimeoutError) as exc:
            return str(exc) or f"no answer within {timeout_s:.2f} s"
        return None

    async def _stop_abandoned(self, scan_id: int, reason: str) -> None:
        """STOP_SCAN for a scan nobody reads any more; its ACK or a NAK (not scanning it) settles it."""
        if scan_id not in self._owed_stops:
            return
        try:
            await self._request(MsgType.STOP_SCAN, codec.encode_scan_id(scan_id), f"STOP_SCAN {scan_id}")
        except DeviceRefused:
            pass
        except LinkLost as exc:  # still owed: retried when the link is back and before the next scan
            self.stops_failed += 1
            log.warning("xray.stop_failed", device=self.name, scan_id=scan_id, reason=str(exc))
            return
        self._owed_stops.discard(scan_id)
        try:
            await self._confirm_stopped(scan_id)
        except DriverError as exc:  # a lost link is the firmware's safe state; a failed DISARM is logged here
            log.error("xray.stop_readback_failed", device=self.name, scan_id=scan_id, error=str(exc))
            return
        log.info("xray.scan_stopped", device=self.name, scan_id=scan_id, why=reason)

    async def _confirm(self, attr: str, want: bool) -> None:
        st = await self.status()
        if getattr(st, attr) != want:
            raise ReadbackMismatch(f"X-ray controller {self.name} reports {attr}={getattr(st, attr)} after "
                                   f"the request for {attr}={want}", device=self.name,
                                   last_frames=self.link.last_frames)

    async def _request(self, mtype: MsgType, payload: bytes, what: str) -> bytes:
        """One request; bridge errors become driver errors naming device, request and answer."""
        try:
            await self.link.wait_up(self.cfg.ready_timeout_ms / 1000)
            return await self.link.request(mtype, payload)
        except Nak as exc:
            reason = NakReason(exc.reason).name if exc.reason in NakReason._value2member_map_ else exc.reason
            raise DeviceRefused(f"X-ray controller {self.name} on {self.port} refused {what} with reason {reason}",
                                device=self.name, last_frames=exc.last_frames) from exc
        except (LinkDown, AckTimeout) as exc:
            raise LinkLost(f"X-ray controller {self.name} on {self.port} did not acknowledge {what}: {exc}"
                           f"{self._version_note()}", device=self.name, last_frames=exc.last_frames) from exc

    def _version_note(self) -> str:
        theirs = self.link.peer_version
        if theirs is None:
            return ""
        return f" (the firmware speaks protocol version {theirs}, this host speaks version {codec.VERSION})"

    # ---- link callbacks --------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> Reply:
        if frame.type == MsgType.LINE:
            line = codec.Line.decode(frame.payload)
            stream = self._streams.get(line.scan_id)
            if stream is not None:
                stream.add_line(line)
            return b""
        if frame.type == MsgType.SCAN_END:
            end = codec.ScanEnd.decode(frame.payload)
            stream = self._streams.pop(end.scan_id, None)
            if stream is not None:
                stream.finish(end)
                log.info("xray.scan_ended", device=self.name, ref=stream.ref, lines=end.line_count,
                         complete=end.complete)
            return b""
        return NakReason.UNKNOWN_TYPE

    def _on_event(self, event: LinkEvent) -> None:
        if isinstance(event, LinkFault):
            for stream in list(self._streams.values()):
                stream.abort(f"link to the controller lost: {event.reason}")
            self._streams.clear()
        else:
            self._sessions += 1  # a hold sends DISARM again in it (`hold`)
            for owed in list(self._owed_stops):
                self._stop_later(owed, "the link is back")
        if self.on_link_change is not None:
            if isinstance(event, LinkFault):
                self.on_link_change(False, event.reason)
            else:
                self.on_link_change(True, "firmware session started")

    def _meta(self) -> dict[str, object]:
        meta: dict[str, object] = {"source": f"xray:{self.name}", "dual_energy": True}
        hello = self.link.hello
        if hello is not None:
            meta["firmware"] = hello.firmware_version
        for key in ("pixel_mm", "kvp"):
            if getattr(self.cfg, key) is not None:
                meta[key] = getattr(self.cfg, key)
        if self.cfg.line_rate is not None:
            meta["lines_per_s"] = self.cfg.line_rate
        return meta


def _link_settings(cfg: ScannerConfig, port: str) -> LinkSettings:
    return LinkSettings(port=port, baudrate=cfg.baudrate, ack_timeout_s=cfg.ack_timeout_ms / 1000,
                        attempts=cfg.attempts, window=cfg.window, heartbeat_s=cfg.heartbeat_ms / 1000,
                        stale_s=cfg.stale_ms / 1000, reconnect_s=cfg.reconnect_ms / 1000, dtr=cfg.dtr, rts=cfg.rts)


WATCH_S = 2.0  # how often a watched scan_dir is looked at for new scans


def _load_scans(folder: Path) -> tuple[list[Path], list[Scan]]:
    """The folder's .npz files and their scans, in name order."""
    paths = sorted(folder.glob("*.npz"))
    return paths, load_scans(paths)


async def _emulator(cfg: ScannerConfig) -> tuple[FirmwareEmulator, list[Path]]:
    """The firmware emulator streaming scan_dir's scans, and the files they came from."""
    sim = cfg.sim
    assert sim is not None
    paths, scans = await asyncio.to_thread(_load_scans, sim.scan_dir)
    if not scans:
        raise LinkLost(f"simulated X-ray controller has no .npz scans in {sim.scan_dir}")
    f = sim.faults
    emulator = FirmwareEmulator(scans, line_rate=sim.line_rate, fifo_lines=sim.fifo_lines,
                                boot_s=sim.boot_ms / 1000, interlocks_closed=sim.interlocks_closed,
                                faults=FaultSettings(f.corrupt, f.drop, f.duplicate, f.seed),
                                heartbeat_s=cfg.heartbeat_ms / 1000, host_stale_s=cfg.stale_ms / 1000 * 1.5,
                                ack_timeout_s=cfg.ack_timeout_ms / 1000, attempts=cfg.attempts, window=cfg.window,
                                baudrate=cfg.baudrate, throttle=sim.throttle)
    return emulator, paths


async def _watch(emulator: FirmwareEmulator, folder: Path, loaded: list[Path]) -> None:
    """Add scans that appear in the folder (beyond those `loaded`) to the ones the emulator streams in turn;
    a file that cannot be read is logged and left out (writers should write elsewhere and rename, as
    `edge demo` does)."""
    seen = set(loaded)
    while True:
        await asyncio.sleep(WATCH_S)
        for path in sorted(set(folder.glob("*.npz")) - seen):
            seen.add(path)
            try:
                emulator.scans.append(await asyncio.to_thread(load_scan, path))
            except (OSError, ScanFormatError) as exc:
                log.warning("xray.sim_scan_unreadable", path=str(path), error=str(exc))
                continue
            log.info("xray.sim_scan_added", path=str(path), scans=len(emulator.scans))


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def open_scanner(cfg: ScannerConfig, name: str) -> AsyncIterator[Scanner]:
    """Open the scanner selected by `cfg.kind`; the link connects (and reconnects) in the background."""
    async with contextlib.AsyncExitStack() as stack:
        port = cfg.port
        emulator = None
        if cfg.kind == "sim":
            emulator, loaded = await _emulator(cfg)
            await stack.enter_async_context(emulator)
            port = emulator.port
            if cfg.sim is not None and cfg.sim.watch:
                watcher = asyncio.create_task(_watch(emulator, cfg.sim.scan_dir, loaded), name=f"xray:{name}:watch")
                stack.push_async_callback(_cancelled, watcher)
        scanner = Scanner(cfg, name, port)
        scanner.emulator = emulator
        await stack.enter_async_context(scanner.link)
        stack.push_async_callback(scanner._stop_all, "the scanner is closing")
        yield scanner


