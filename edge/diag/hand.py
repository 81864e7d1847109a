"""The technician's hand: a person at the terminal, or the twin acting through simulator physics.

The twin stands for the technician's hand: it presses an e-stop or opens a door by calling the
simulator's physical-input API (`PlcModel.press_estop`, `set_interlock`, the emulator's
`set_interlocks`), exactly where a person would act. No software in the product writes a safety
signal through the PLC link; the simulators refuse it like the real PLC does.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Protocol

import structlog

if TYPE_CHECKING:
    from drivers.camera.sim import SimCamera
    from drivers.plc.sim import ConveyorModel, GantryModel
    from edge.diag.station import DiagStation
    from models.scan import Scan

log = structlog.get_logger()
REFERENCE_EPC = "3000C0FFEE00000000000001"
"""The EPC the twin writes on the reference UHF tag (the reference is its TID)."""


@dataclass(frozen=True)
class Action:
    """A physical action asked of the technician: verb, what it applies to, and parameters."""

    verb: str
    target: str = ""
    args: dict[str, Any] = field(default_factory=dict)


class Technician(Protocol):
    """Whoever answers prompts: `perform` returns the loop time of the act when it is known."""

    kind: str

    async def perform(self, text: str, action: Action, *, confirm: bool) -> float | None: ...


class TerminalTechnician:
    """A person at the terminal: the prompt is printed; confirmations are read as a line on stdin."""

    kind = "technician"

    def __init__(self, out: IO[str] | None = None, stdin: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.stdin = stdin or sys.stdin
        self._pending = b""

    async def perform(self, text: str, action: Action, *, confirm: bool) -> float | None:
        print(f"\n>>> {text}", file=self.out, flush=True)
        if confirm:
            await self._line()
        return None

    async def _line(self) -> None:
        """Wait for one line on stdin without blocking the event loop (unbuffered: one line per answer)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        fd = self.stdin.fileno()

        def take() -> bool:
            if b"\n" not in self._pending:
                return False
            self._pending = self._pending.split(b"\n", 1)[1]
            return True

        def ready() -> None:
            data = os.read(fd, 4096)
            if not data:  # end of input: nobody will answer; the prompt's timeout aborts
                loop.remove_reader(fd)
                return
            self._pending += data
            if take() and not done.done():
                done.set_result(None)

        if take():
            return
        loop.add_reader(fd, ready)
        try:
            await done
        finally:
            loop.remove_reader(fd)


class TwinHand:
    """The technician's hand in the twin: performs each action on the simulators' physics."""

    kind = "twin"

    def __init__(self, station: DiagStation) -> None:
        self.station = station
        self._tasks: set[asyncio.Task[None]] = set()
        self._saved_scans: list[Scan] | None = None

    async def perform(self, text: str, action: Action, *, confirm: bool) -> float | None:
        handler = getattr(self, f"_{action.verb}", None)
        if handler is None:
            raise ValueError(f"the twin cannot perform {action.verb!r}")
        log.info("diag.twin_acts", verb=action.verb, target=action.target)
        handler(action.target, **action.args)
        return asyncio.get_running_loop().time()

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._remove_test_object("")

    @property
    def _model(self) -> ConveyorModel | GantryModel:
        plc = self.station.plc
        if plc is None:
            raise ValueError("the twin has no PLC simulator to act on")
        model: ConveyorModel | GantryModel = plc.sim.model
        return model

    def _later(self, delay_s: float, fn: Callable[[], object]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            fn()
        task = asyncio.create_task(run(), name="diag-twin-hand")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the verbs -------------------------------------------------------------------------

    def _confirm_clear(self, phase: str) -> None:
        """The twin's lane and belt hold nobody: the technician's confirmation before a phase that moves the machine."""

    def _block_eye(self, eye: str, hold_s: float = 0.3) -> None:
        """Hold an object (a hand) in the beam for hold_s."""
        from drivers.plc.sim import ConveyorModel, SimItem

        m = self._model
        lane, x = ("items", getattr(m.c, f"{eye}_m")) if isinstance(m, ConveyorModel) else \
            ("vehicles", getattr(m.g, f"{eye}_m"))
        hand = SimItem(-1, x + 0.05, 0.1, route="search_bay" if eye == "eye_search_bay" else "lane")
        getattr(m, lane).append(hand)
        # the model rebuilds its lists as things move: remove by identity from the current one
        self._later(hold_s, lambda: setattr(m, lane, [i for i in getattr(m, lane) if i is not hand]))

    def _press_estop(self, _target: str) -> None:
        self._model.press_estop()

    def _release_estop(self, _target: str) -> None:
        self._model.release_estop()
        self._model.reset()

    def _open_door(self, target: str) -> None:
        self._model.set_interlock(target, False)
        emu = self.station.emulator
        if emu is not None:
            emu.set_interlocks(False)

    def _close_door(self, target: str) -> None:
        self._model.set_interlock(target, True)
        emu = self.station.emulator
        if emu is not None:
            emu.set_interlocks(True)
        self._model.reset()

    def _present_badge(self, target: str, tag_hex: str, seconds: float = 1.0) -> None:
        from drivers.rfid.llrp import LlrpReader

        reader = self.station.readers[target]
        if reader.sim is None:
            raise ValueError(f"reader {target} has no simulator for the twin to present a badge to")
        if isinstance(reader, LlrpReader):  # a UHF tag whose TID is the reference, at the first antenna
            reader.sim.present(REFERENCE_EPC, tag_hex, antenna=reader.cfg.antennas[0], seconds=seconds)
        else:
            reader.sim.present(tag_hex, seconds)

    def _present_test_tag(self, target: str, tid: str, seconds: float = 1.0) -> None:
        """The test UHF tag (known by its TID) held at one antenna (`target` is "reader/antenna")."""
        from drivers.rfid.llrp import LlrpReader

        name, antenna = target.rsplit("/", 1)
        reader = self.station.readers[name]
        if not isinstance(reader, LlrpReader) or reader.sim is None:
            raise ValueError(f"reader {name} has no LLRP simulator for the twin to present the test tag to")
        reader.sim.present(REFERENCE_EPC, tid, antenna=int(antenna), seconds=seconds)

    def _show_test_target(self, target: str, value: str) -> None:
        """The station's test plate or container code held square in front of camera `target`."""
        self._sim_camera(target).show_test_target(value, value)

    def _hide_test_target(self, target: str) -> None:
        self._sim_camera(target).hide_test_target()

    def _sim_camera(self, name: str) -> SimCamera:
        from drivers.camera.sim import SimCamera

        camera = self.station.cameras.get(name)
        if not isinstance(camera, SimCamera):
            raise ValueError(f"camera {name} has no simulator for the twin to hold a test target in front of")
        return camera

    def _place_test_object(self, _target: str, scan: Scan) -> None:
        emu = self.station.emulator
        if self._saved_scans is None:
            self._saved_scans = list(emu.scans)
        emu.scans[:] = [scan]

    def _remove_test_object(self, _target: str) -> None:
        emu = self.station.emulator
        if self._saved_scans is not None and emu is not None:
            emu.scans[:] = self._saved_scans
        self._saved_scans = None

    def _place_item(self, _target: str, length_m: float, lead_m: float) -> None:
        m = self._model
        if hasattr(m, "add_item"):
            self.station.twin_item = m.add_item(length_m, lead_m)
        else:
            self.station.twin_item = m.add_vehicle(length_m, lead_m)

    def _clear_lane(self, _target: str) -> None:
        m = self._model
        for lane in ("items", "vehicles"):
            if hasattr(m, lane):
                getattr(m, lane).clear()
