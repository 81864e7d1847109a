"""The diagnostic plan: which phases run, in which order, what each needs, and how long it may take."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge.config import StationConfig
from edge.diag.context import PhaseContext
from edge.diag.phases import cameras, clock, hub, imaging, inference, links, llrp, plc_io, rfid, safety, tracking


@dataclass(frozen=True)
class Phase:
    """One phase: name (for --phases), title, coroutine, needed parts and its time limit."""

    name: str
    title: str
    run: Callable[[PhaseContext], Awaitable[None]]
    needs: tuple[str, ...] = ()
    timeout_s: float = 60.0


PLAN: tuple[Phase, ...] = (
    Phase("links", "Links: PLC, X-ray controller, readers", links.run, (), 40),
    Phase("io", "PLC I/O map", plc_io.run, ("plc",), 90),
    Phase("tracking", "End-to-end item tracking", tracking.run, ("plc", "scanner", "model"), 90),
    Phase("rfid", "RFID reference badge", rfid.run, ("readers",), 60),
    Phase("llrp", "UHF readers: antennas and test tag", llrp.run, ("llrp",), 120),
    Phase("cameras", "Cameras: focus, exposure, test plate", cameras.run, ("cameras",), 90),
    Phase("imaging", "Image quality (ASTM F792 manner)", imaging.run, ("scanner",), 90),
    Phase("inference", "Inference latency on this device", inference.run, ("model",), 90),
    Phase("clock", "Clock", clock.run, (), 20),
    Phase("hub", "Round trip to the hub", hub.run, ("sync",), 30),
    Phase("safety", "Safety interlock proof tests", safety.run, ("plc",), 300),
)

PHASE_NAMES: tuple[str, ...] = tuple(p.name for p in PLAN)

# what a need means: (config is present?, opened object attribute, skip key when absent)
NEEDS: dict[str, tuple[Callable[[StationConfig], bool], str, str]] = {
    "plc": (lambda c: c.devices.plc is not None, "plc", "skip.no_plc"),
    "scanner": (lambda c: c.devices.scanner is not None, "scanner", "skip.no_scanner"),
    "readers": (lambda c: bool(c.devices.readers), "readers", "skip.no_readers"),
    "llrp": (lambda c: any(r.kind == "llrp" for r in c.devices.readers.values()), "", "skip.no_llrp"),
    "cameras": (lambda c: bool(c.devices.cameras), "", "skip.no_cameras"),
    "sync": (lambda c: c.sync is not None, "", "skip.no_sync"),
    "model": (lambda c: True, "detector", "skip.no_model"),
}
