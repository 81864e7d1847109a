"""The demo officer decides waiting vehicles through the station's API, under its own badge: a flagged
vehicle goes to the search bay, one the model did not flag is released as cleared on review."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from edge import demo_officer
from edge.auth import add_user
from edge.demo_officer import DemoOfficer
from gantry_station import gantry, vehicle_scan
from polling import until


@pytest.mark.parametrize("model, way", [(True, "search_bay"), (False, "exit")])
async def test_the_demo_officer_decides_each_waiting_vehicle_after_its_delay(tmp_path, monkeypatch, model, way) -> None:
    monkeypatch.setattr(demo_officer, "DELAY_S", (0.5, 1.0))
    monkeypatch.setattr(demo_officer, "LOOK_S", 0.2)
    async with gantry(tmp_path, [vehicle_scan(True)], model=model) as g:
        add_user(g.store, demo_officer.BADGE, demo_officer.NAME, demo_officer.ROLE, demo_officer.PIN)
        car = g.sim.add_vehicle(4.0, lead_m=-1.5)
        record, = await g.vehicles_decided(1)
        assert record.verdict.value == ("suspect" if model else "manual")
        officer = DemoOfficer("http://station", transport=httpx.ASGITransport(app=g.app))
        task = asyncio.create_task(officer.run())
        try:
            await until(lambda: g.sim.outcomes.get(car) == way, f"the car left by the {way}")
            await until(lambda: officer.decided + officer.failed, "the officer's decision counted")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        decision, = g.lane_audit()
        assert decision["actor"] == demo_officer.BADGE and decision["detail"]["result"] == "open"
        assert officer.decided == 1 and officer.failed == 0
