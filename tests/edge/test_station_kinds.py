"""Station kinds as declarations: one safe-state table per PLC model, used by the driver, flows and diagnostics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.watchdog import Progress
from central_sync.schema import ItemKind
from drivers.errors import DriverError
from drivers.plc import PlcConfig, open_plc
from drivers.plc.config import SAFE_STATES
from edge.config import ConveyorSection, load_config
from edge.devices import Devices
from edge.diag.station import DiagStation
from edge.events import EventBus
from edge.metrics import StationMetrics
from edge.stations import InspectorParts
from edge.stations.conveyor import ConveyorFlow, geometry_budget_ms
from edge.stations.gantry import GantryFlow
from edge.stations.lane import Lane
from edge.stations.identify import TagWindow
from edge.stations.kinds import KINDS
from edge.store import Store, StoreWriter

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def until(pred, what: str, limit_s: float = 30.0) -> None:
    """Wait for pred() (a bound, not a speed requirement: it returns as soon as pred holds)."""
    async with asyncio.timeout(limit_s):
        while not pred():
            await asyncio.sleep(0.01)
    assert pred(), what


async def test_diagnostics_teardown_requests_the_gantrys_safe_state() -> None:
    """A gantry's teardown closes the barrier, shows red and withdraws the permit; it never asks for a divert."""
    cfg = PlcConfig(kind="sim", model="gantry", readback_timeout_ms=3000, sim={"gantry": {"barrier_actuation_s": 0.1}})
    async with open_plc(cfg, "g-1/plc") as plc:
        m = plc.sim.model
        await until(lambda: plc._state is not None and plc._state.link_ok, "the PLC link is up")
        await plc.request_light("green")
        await plc.request_barrier(True)
        await plc.request_xray_permit(True)
        station = DiagStation(load_config(EXAMPLES / "gantry.toml"), twin=True, devices=Devices(plc=plc))
        assert await station.make_safe() == []
        assert (m.requests["barrier_open_request"], m.requests["light_request"], m.requests["xray_permit_request"],
                m.barrier_pos) == (0, 1, 0, 0.0)
        assert "divert_manual_request" not in m.requests


def _config(kind: str, **devices):
    from edge.config import StationConfig

    item = "vehicle" if kind == "gantry" else "baggage"
    return StationConfig(station={"id": "s-1", "kind": kind, "item_kind": item, "budget_ms": 400,
                                  "data_dir": "/tmp/unused"}, devices=devices)


def test_a_station_whose_plc_runs_another_kinds_model_is_refused() -> None:
    """A gantry wired to a conveyor register map would request a divert where a barrier is: refused at load."""
    with pytest.raises(ValidationError, match='a gantry station needs devices.plc.model = "gantry", not "conveyor"'):
        _config("gantry", plc={"kind": "sim", "model": "conveyor"},
                scanner={"kind": "sim", "sim": {"scan_dir": str(EXAMPLES / "scans")}})
    with pytest.raises(ValidationError, match="a xray station needs devices.source"):
        _config("xray")
    with pytest.raises(ValidationError, match="station.kind 'tunnel' is not one of conveyor, gantry, xray"):
        _config("tunnel")


def test_each_kind_declares_its_needs_its_plc_model_and_its_screen() -> None:
    assert {k: (v.needs, v.plc_model, v.panels) for k, v in KINDS.items()} == {
        "conveyor": (("plc", "scanner"), "conveyor", ("belt",)),
        "gantry": (("plc", "scanner"), "gantry", ("lane",)),
        "xray": (("source",), None, ())}
    assert all(k.plc_model in SAFE_STATES for k in KINDS.values() if k.plc_model is not None)


async def test_flows_are_built_with_their_actuation_and_the_belts_budget(tmp_path) -> None:
    """The inspector is made with the flow's actuation; a conveyor's budget is the belt's limit from the start."""
    section = ConveyorSection()
    async with StoreWriter(Store(tmp_path / "data", station="s-1")) as writer:
        parts = InspectorParts("s-1", "1", 600_000.0, None, writer, EventBus(), StationMetrics())
        devices = Devices()
        flows = [ConveyorFlow(devices, parts, Progress(), ItemKind.BAGGAGE, TagWindow(devices, parts.events), section,
                              tmp_path / "belt.json"),
                 GantryFlow(devices, parts, Progress(), ItemKind.VEHICLE, TagWindow(devices, parts.events),
                            Lane(1))]
        for flow in flows:
            assert flow.inspector.actuate == flow._actuate
        assert flows[0].inspector.budget_ms == geometry_budget_ms(section) < parts.budget_ms
        assert flows[1].inspector.budget_ms == parts.budget_ms
        assert flows[0].belt is flows[0] and flows[1].belt is None
        assert flows[0].lane_control is None and flows[1].lane_control is flows[1]


async def test_a_flow_whose_plc_could_not_be_opened_ends_with_a_sentence_naming_why(tmp_path) -> None:
    """The supervisor logs why the station restarts (not an AttributeError on None)."""
    async with StoreWriter(Store(tmp_path / "data", station="s-1")) as writer:
        parts = InspectorParts("s-1", "1", 400.0, None, writer, EventBus(), StationMetrics())
        devices = Devices(not_opened={"plc": "PLC s-1/plc at 10.0.0.5:502 did not answer"})
        flow = GantryFlow(devices, parts, Progress(), ItemKind.VEHICLE, TagWindow(devices, EventBus()), Lane(1))
        with pytest.raises(DriverError, match="the station's PLC could not be opened when it started: PLC s-1/plc at"
                                              " 10.0.0.5:502 did not answer"):
            await flow.run()
