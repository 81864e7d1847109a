"""Acquisitions: how a scan reaches the inspector, whole or line block by line block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

import numpy as np

from drivers.errors import DriverError
from drivers.plc.state import LinkChanged
from models.scan import Scan

if TYPE_CHECKING:
    from drivers.plc.state import Plc, PlcState
    from drivers.xray import Scanner
    from drivers.xray.stream import ScanStream
    from edge.devices import Devices
    from edge.store import StoreWriter

LIVENESS_S = 0.5  # how often a flow looks whether the PLC driver's poll loop has turned
SAFETY_WATCH_S = 0.1  # how often a flow looks whether the station is in a safe state (the scanner held disarmed)
XRAY_DISARM_UNCONFIRMED = "xray_disarm_unconfirmed"  # the alarm while a held scanner's DISARM is not read back


class WholeScan:
    """A scan that arrives complete (retrofit file drop, video capture)."""

    def __init__(self, scan: Scan) -> None:
        self._scan = scan

    async def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]:
        yield self._scan.high, self._scan.low

    def result(self) -> Scan:
        return self._scan


class LineScan:
    """A line scanner's stream (drivers.xray.ScanStream): blocks as lines arrive."""

    def __init__(self, stream: ScanStream) -> None:
        self.stream = stream

    async def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]:
        """Blocks as they arrive; a reader that stops early (fault, cancel, close) has the scan stopped."""
        try:
            async for block in self.stream:
                yield block.high, block.low
        finally:
            self.stream.abort("the inspection stopped reading the scan")

    def result(self) -> Scan:
        return self.stream.result()


class FailedAcquisition:
    """An acquisition that could not start: the inspector records it as a device fault."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]:
        raise DriverError(self.message, device="scanner")
        yield  # pragma: no cover - makes this an async generator

    def result(self) -> Scan:
        raise DriverError(self.message, device="scanner")


async def start_line_scan(devices: Devices, ref: str) -> LineScan | FailedAcquisition:
    """Arm the controller if it dropped out of armed (reboot, reconnect, a safe state left), then start a scan;
    none while the station holds it disarmed (a safe state).

    A refusal, or a STATUS that reports a fault condition (HV_FAULT, TUBE_OVERTEMP, ...: no START_SCAN is sent),
    becomes a failed acquisition, so that the item goes to manual as a device fault; the scanner is marked degraded,
    unless a hold began meanwhile (a safe state, not a fault of the scanner).
    """
    scanner = devices.scanner
    if scanner is None:  # it could not be opened at start: every item goes to manual, the flow goes on
        return FailedAcquisition(f"no scanner for item {ref}: it could not be opened when the station started "
                                 f"({devices.states().get('scanner', {}).get('detail', 'no detail')})")
    if scanner.held is not None:  # a safe state (edge.stations.acquisition.hold_scanner_while_unsafe): no ARM
        return _held(ref, scanner.name, scanner.held)
    try:
        if not (await scanner.status_for_scan(ref)).armed:
            await scanner.arm()
        stream = await scanner.start_scan(ref)
    except DriverError as exc:
        if scanner.held is not None:  # a hold began after the check above (ScannerHeld), or while a request was
            return _held(ref, scanner.name, scanner.held)  # answered (its DISARM read back first)
        devices.mark("scanner", "degraded", str(exc))
        return FailedAcquisition(str(exc))
    devices.mark("scanner", "ok")
    return LineScan(stream)


def _held(ref: str, scanner: str, why: str) -> FailedAcquisition:
    return FailedAcquisition(f"no scan for item {ref}: the X-ray controller {scanner} is held disarmed because {why}")


async def current_link(plc: Plc) -> LinkChanged:
    """The PLC's link state now, as the event a flow would have received (events() has no replay)."""
    state = await plc.read_state()
    return LinkChanged(state.link_ok, state.link_reason, state.t)


async def plc_turns(plc: Plc) -> int:
    """How many times the PLC driver has polled: it publishes a state each poll, link up or down."""
    return (await plc.read_state()).seq


def unsafe_because(st: PlcState, latch: str | None = None) -> str | None:
    """Why the station is in a safe state where the X-ray controller must not stay armed, or None: the PLC link
    down (safety unknown), the e-stop chain or an interlock reading tripped, or the belt latched stopped."""
    if not st.link_ok:
        return f"the PLC link is down ({st.link_reason or 'no reason given'})"
    if not st.estop_ok:
        return "the e-stop chain reads tripped"
    if not st.interlocks_ok:
        return "a station interlock (door or light curtain) reads open"
    if latch is not None:
        return f"the belt is latched stopped ({latch})"
    return None


async def hold_scanner_while_unsafe(devices: Devices, plc: Plc, store: StoreWriter,
                                    latch: Callable[[], str | None] = lambda: None) -> None:
    """Every SAFETY_WATCH_S: while the station is in a safe state (`unsafe_because`), the scanner is held disarmed
    (DISARM read back, sent again at each look until it reads back disarmed; ARM and START_SCAN refused); once it is
    back in normal operation it is released and the next scan arms it again (start_line_scan). The alarm
    XRAY_DISARM_UNCONFIRMED stands while a DISARM of the hold failed and none has read back disarmed since."""
    alarmed: bool | None = None  # not known at start: one left standing by an earlier daemon is cleared
    while True:
        scanner = devices.scanner
        if scanner is not None:
            why = unsafe_because(await plc.read_state(), latch())
            if why is None:
                scanner.release()
            else:
                await scanner.hold(why)
            if (scanner.disarm_unconfirmed is not None) != alarmed:
                alarmed = await _disarm_alarm(store, scanner)
        await asyncio.sleep(SAFETY_WATCH_S)


async def _disarm_alarm(store: StoreWriter, scanner: Scanner) -> bool:
    """Raise XRAY_DISARM_UNCONFIRMED while the held scanner's DISARM is unconfirmed, clear it otherwise; whether it
    stands."""
    if scanner.disarm_unconfirmed is None:
        await store.call(store.store.clear_alarm, XRAY_DISARM_UNCONFIRMED)
        return False
    await store.call(store.store.raise_alarm, XRAY_DISARM_UNCONFIRMED,
                     f"the X-ray controller {scanner.name} is held disarmed because {scanner.held}, but no DISARM has "
                     f"read back disarmed ({scanner.disarm_unconfirmed}): it is sent again every {SAFETY_WATCH_S:g} s")
    return True
