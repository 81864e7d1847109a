"""Station kinds as declarations: one safe-state table per PLC model, used by the driver, flows and diagnostics."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.plc import PlcConfig, open_plc
from edge.config import load_config
from edge.devices import Devices
from edge.diag.station import DiagStation

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
