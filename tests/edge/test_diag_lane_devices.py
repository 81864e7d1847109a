"""Diagnostics of cameras (focus, exposure, test plate read) and LLRP readers (session, antennas, test tag):
against the camera simulator and the LLRP simulator over TCP, passing and failing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from drivers.camera.sim import SimCamera
from drivers.rfid.llrp import LlrpReader
from edge.config import StationConfig, load_config
from edge.diag.core import Outcome, PhaseResult
from edge.diag.hand import Action, Technician, TwinHand
from edge.diag.messages import Catalogue
from edge.diag.plan import PLAN
from edge.diag.runner import DiagOptions, run_phase
from edge.diag.station import DiagStation, is_twin, quiet_twin
from polling import until

REPO = Path(__file__).resolve().parents[2]
PHASES = {p.name: p for p in PLAN}


def _config(**devices: Any) -> StationConfig:
    """The gantry example with only the devices under test (no PLC or scanner to open)."""
    cfg = load_config(REPO / "examples" / "gantry.toml")
    section = cfg.devices.model_validate(devices)
    return cfg.model_copy(update={"devices": section})


CAMERAS = {"front": {"kind": "sim", "role": "front_plate", "fps": 20.0},
           "door": {"kind": "sim", "role": "container_door", "fps": 20.0}}
UHF = {"uhf": {"kind": "llrp", "antennas": [1, 2], "keepalive_s": 0.5, "sim": {"antennas": 2, "read_ms": 20}}}


class NobodyActs:
    """A technician who confirms every prompt and holds nothing anywhere."""

    kind = "technician"

    async def perform(self, text: str, action: Action, *, confirm: bool) -> None:
        return None


async def _station(stack: AsyncExitStack, cfg: StationConfig) -> DiagStation:
    assert is_twin(cfg)
    station = DiagStation(quiet_twin(cfg), True)
    await station.open(stack)
    return station


async def _run(name: str, station: DiagStation, hand: Technician | None = None,
               prompt_timeout_s: float = 20.0) -> PhaseResult:
    opts = DiagOptions(out_dir=Path("."), prompt_timeout_s=prompt_timeout_s)
    return await run_phase(PHASES[name], station, hand or TwinHand(station), Catalogue("en"), opts)


def _by(res: PhaseResult) -> dict[tuple[str, str], Any]:
    return {(m.name, m.target): m for m in res.measurements}


# ---- cameras ---------------------------------------------------------------------------------

async def test_cameras_in_focus_and_well_exposed_read_the_test_plate_and_code() -> None:
    async with AsyncExitStack() as stack:
        res = await _run("cameras", await _station(stack, _config(cameras=CAMERAS)))
    m = _by(res)
    assert res.outcome == Outcome.PASS, res.diagnoses()
    for cam in ("front", "door"):
        assert m[("cameras.focus", cam)].value > 120 and m[("cameras.clipped_share", cam)].value < 0.02
        assert 50 < m[("cameras.exposure_mean", cam)].value < 190
    assert "expected TK1234, read TK1234" in m[("cameras.test_read", "front")].detail
    assert "expected CSQU3054383, read CSQU3054383" in m[("cameras.test_read", "door")].detail
    assert {a.name for a in res.attachments} == {"camera-front.png", "camera-door.png"}


async def _faulted(fault: Callable[[SimCamera], None]) -> PhaseResult:
    async with AsyncExitStack() as stack:
        station = await _station(stack, _config(cameras={"front": CAMERAS["front"]}))
        camera = station.cameras["front"]
        assert isinstance(camera, SimCamera)
        fault(camera)
        return await _run("cameras", station)


async def test_a_defocused_camera_fails_on_focus_with_its_value_and_limit() -> None:
    res = await _faulted(lambda c: setattr(c, "defocus_sigma", 3.0))
    focus = _by(res)[("cameras.focus", "front")]
    assert res.outcome == Outcome.FAIL and focus.outcome == Outcome.FAIL and focus.value < 60
    assert focus.diagnosis.startswith("Camera front is out of focus: the variance of the Laplacian on the test "
                                      f"target is {focus.value:.3g}, limit 60;")
    assert _by(res)[("cameras.exposure_mean", "front")].outcome == Outcome.PASS  # only the focus is wrong


async def test_an_over_exposed_camera_fails_on_exposure_and_clipping() -> None:
    res = await _faulted(lambda c: setattr(c, "gain", 5.0))
    m = _by(res)
    assert m[("cameras.exposure_mean", "front")].outcome == Outcome.FAIL
    assert m[("cameras.clipped_share", "front")].outcome == Outcome.FAIL
    assert "is badly exposed: the mean grey level is" in m[("cameras.exposure_mean", "front")].diagnosis
    assert m[("cameras.focus", "front")].outcome == Outcome.PASS


async def test_a_camera_nobody_holds_the_test_plate_to_fails_the_read_saying_what_it_read() -> None:
    async with AsyncExitStack() as stack:
        station = await _station(stack, _config(cameras={"front": CAMERAS["front"]}))
        res = await _run("cameras", station, NobodyActs())
    read = _by(res)[("cameras.test_read", "front")]
    assert read.outcome == Outcome.FAIL and read.detail.startswith("expected TK1234, read ")
    assert "TK1234 (" not in read.detail


async def test_a_station_without_cameras_skips_the_phase() -> None:
    async with AsyncExitStack() as stack:
        res = await _run("cameras", await _station(stack, _config(readers=UHF)))
    assert res.outcome == Outcome.SKIPPED and res.reason == "No camera is configured for this station."


# ---- LLRP readers --------------------------------------------------------------------------

async def _uhf(stack: AsyncExitStack, readers: dict[str, Any] = UHF) -> tuple[DiagStation, LlrpReader]:
    station = await _station(stack, _config(readers=readers))
    reader = station.readers["uhf"]
    assert isinstance(reader, LlrpReader) and reader.sim is not None
    await until(lambda: reader.link_ok, "the LLRP session is up")
    return station, reader


async def test_every_antenna_reads_the_test_tag_with_its_rssi() -> None:
    async with AsyncExitStack() as stack:
        station, _ = await _uhf(stack)
        res = await _run("llrp", station)
    m = _by(res)
    assert res.outcome == Outcome.PASS, res.diagnoses()
    assert m[("llrp.connected", "uhf")].value is True
    for antenna in ("uhf/1", "uhf/2"):
        assert m[("llrp.antenna_connected", antenna)].detail == "reported connected"
        assert m[("llrp.test_tag_seen", antenna)].outcome == Outcome.PASS
        assert m[("llrp.test_tag_rssi_dbm", antenna)].value == -55  # what the simulated tag answers with


async def test_a_missing_antenna_fails_and_its_tag_test_is_skipped_not_passed() -> None:
    async with AsyncExitStack() as stack:
        station, reader = await _uhf(stack)
        assert reader.sim is not None
        reader.sim.antenna(2, False)
        await until(lambda: reader.antennas_connected.get(2) is False, "the reader reports antenna 2 disconnected")
        res = await _run("llrp", station)
    m = _by(res)
    assert res.outcome == Outcome.FAIL
    off = m[("llrp.antenna_connected", "uhf/2")]
    assert off.outcome == Outcome.FAIL and off.diagnosis.startswith("Antenna uhf/2 is reported disconnected;")
    assert m[("llrp.test_tag_seen", "uhf/2")].outcome == Outcome.SKIPPED
    assert m[("llrp.test_tag_seen", "uhf/1")].outcome == Outcome.PASS


async def test_an_antenna_the_reader_does_not_report_fails_naming_those_it_does() -> None:
    readers = {"uhf": {**UHF["uhf"], "antennas": [1, 3], "sim": {"antennas": 4, "read_ms": 20}}}
    async with AsyncExitStack() as stack:
        station, reader = await _uhf(stack, readers)
        reader.antennas_connected.pop(3)  # as a reader whose report leaves the port out
        res = await _run("llrp", station)
    off = _by(res)[("llrp.antenna_connected", "uhf/3")]
    assert off.outcome == Outcome.FAIL and off.detail == "not reported by the reader, which reports antennas [1, 2, 4]"


async def test_no_test_tag_fails_the_antenna_instead_of_aborting_the_phase() -> None:
    async with AsyncExitStack() as stack:
        station, _ = await _uhf(stack)
        res = await _run("llrp", station, NobodyActs(), prompt_timeout_s=2.5)
    m = _by(res)
    assert res.outcome == Outcome.FAIL
    seen = m[("llrp.test_tag_seen", "uhf/1")]
    assert seen.outcome == Outcome.FAIL and "no read of TID E2801160200073F10F00C0FE at antenna 1 within 1.5 s" \
        in seen.diagnosis
    assert ("llrp.test_tag_rssi_dbm", "uhf/1") not in m


async def test_a_reader_with_fewer_antennas_than_configured_has_no_session_and_says_why() -> None:
    readers = {"uhf": {**UHF["uhf"], "sim": {"antennas": 1, "read_ms": 20}}}
    async with AsyncExitStack() as stack:
        station = await _station(stack, _config(readers=readers))
        res = await _run("llrp", station)
    connected = _by(res)[("llrp.connected", "uhf")]
    assert connected.outcome == Outcome.FAIL and "antennas [2] out of range 1..1" in connected.diagnosis
