"""The gantry's vehicle separator, left-over cases on the real PLC simulator: a motorbike shorter than the beam's
distance past the entry loop, and a road train (two drawbars). No vehicle leaves unrecorded on another's decision."""

from __future__ import annotations

import asyncio

import pytest

from central_sync.schema import Verdict
from gantry_station import gantry, vehicle_scan
from polling import until

CLEAR = vehicle_scan(False)


@pytest.mark.parametrize("drawbar", [1, 2], ids=["first-drawbar", "second-drawbar"])
async def test_a_road_train_standing_with_a_drawbar_over_the_entry_loop_stays_one_vehicle(tmp_path, drawbar) -> None:
    """A road train (4 m cab, 2 m drawbar, 4 m trailer, 2 m drawbar, 4 m trailer) stands 1.5 s with its first or its
    second drawbar over the entry loop, the beam at the loop: one vehicle, cleared, no fault, no hold, its two trailers
    flaps on the entry loop."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan
        train = g.sim.add_vehicle(16.0, lead_m=-1.5, coupling=(4.0, 6.0), couplings=((10.0, 12.0),))
        vehicle = g.sim.vehicles[-1]
        over = g.sim.g.eye_entry_m + (5.0 if drawbar == 1 else 11.0)
        await until(lambda: vehicle.lead_m >= over, "the drawbar over the entry loop", interval=0.002)
        vehicle.fixed = True
        assert g.sim.separator_broken() and not g.sim.loop(g.sim.g.eye_entry_m)
        await asyncio.sleep(1.5)
        vehicle.fixed = False
        await until(lambda: train in g.sim.passed or g.flow.lane_status()["unknown"], "the road train left",
                    timeout=30)
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"] or s["unknown"])
        record, = g.records()
        assert record.verdict is Verdict.CLEAR
        assert (lane["separator_faults"], lane["unknown"], lane["loop_flaps"]["eye_entry"]) == (0, "", 2)
