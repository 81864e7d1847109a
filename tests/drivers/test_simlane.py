"""A simulated lane: the PLC simulator describes each vehicle once and has it inside the lane while it
is on the entry loop; the LLRP reader simulator (over TCP, read by the real client) holds its tag and
its e-seal meanwhile, and the camera simulator renders that same vehicle."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from drivers.camera import CameraConfig, open_camera
from drivers.plc.config import LIGHT_CODES, PlcConfig
from drivers.plc.sim import ConveyorModel, GantryModel
from drivers.rfid import LlrpConfig, TagSeen, open_reader
from drivers.seal import LlrpSealConfig, SealSeen, open_seal_reader
from drivers.simlane import LaneSim, describe, lane
from polling import until

STEP_S = 0.02


def _gantry(name: str, **shares: object) -> GantryModel:
    cfg = PlcConfig.model_validate({"kind": "sim", "model": "gantry", "sim": {"gantry": {
        "entry_stop_m": -100.0, "vehicle_speed_m_s": 2.5, "lane": {"name": name, **shares}}}})
    m = GantryModel(p=cfg.sim, g=cfg.sim.gantry)
    m.write("host_heartbeat", 1)
    m.write("entry_light_request", LIGHT_CODES["green"])
    return m


def _step(m: GantryModel | ConveyorModel, seconds: float, beat: list[int]) -> None:
    for _ in range(int(seconds / STEP_S)):
        beat[0] = (beat[0] + 1) & 0xFFFF
        m.write("host_heartbeat", beat[0])
        m.step(STEP_S)


def test_a_described_vehicle_is_inside_the_lane_exactly_while_it_covers_the_entry_loop() -> None:
    m = _gantry("t-entry", seed=4)
    number = m.add_vehicle(describe(m.g.lane, 1).length_m, lead_m=m.g.eye_entry_m - 0.5)  # type: ignore[arg-type]
    shared, beat = lane("t-entry"), [1]
    assert shared.inside == {}
    _step(m, 0.4, beat)
    assert list(shared.inside) == [number] and shared.latest == describe(m.g.lane, number)  # type: ignore[arg-type]
    vehicle = m.vehicles[0]
    _step(m, (vehicle.length_m + 0.6) / m.g.vehicle_speed_m_s, beat)
    assert not vehicle.covers(m.g.eye_entry_m) and shared.inside == {}
    assert shared.entered_count == 1


def test_descriptions_are_fixed_by_seed_and_follow_their_shares() -> None:
    sealed = LaneSim(name="x", seed=9, sealed_share=1.0, opened_share=1.0, tampered_share=0.0, obscured_share=1.0,
                     cross_boundary=1.0)
    vans = LaneSim(name="y", seed=9, container_share=0.0)
    for n in range(1, 30):
        d = describe(sealed, n)
        assert d == describe(sealed, n) and d.seal_id and d.seal_state == "opened" and not d.seal_intact
        assert d.obscured in ("dirt", "glare") and d.gd_plate.startswith("粤Z") and len(d.plates) == 2
        assert 12.0 <= d.length_m <= 16.5 and d.container[:3].isalpha()
        van = describe(vans, n)
        assert not van.container and not van.seal_id and 5.0 <= van.length_m <= 9.0
    assert len({describe(sealed, n).tid for n in range(1, 30)}) == 29


def test_a_conveyor_bag_is_inside_while_it_covers_the_tunnel_entry_and_bags_never_touch() -> None:
    cfg = PlcConfig.model_validate({"kind": "sim", "model": "conveyor", "sim": {"conveyor": {
        "auto_items": True, "item_gap_mean_m": 0.05, "lane": {"name": "t-belt", "items": "bags"}}}})
    m = ConveyorModel(p=cfg.sim, c=cfg.sim.conveyor)
    m.write("host_heartbeat", 1)
    m.write("belt_run_request", 1)
    beat, seen = [1], set()
    for _ in range(400):
        _step(m, STEP_S * 5, beat)
        seen |= set(lane("t-belt").inside)
        ordered = sorted(m.items, key=lambda i: -i.lead_m)
        for ahead, behind in zip(ordered, ordered[1:]):
            assert behind.lead_m <= ahead.lead_m - ahead.length_m - m.c.item_gap_min_m + 1e-9, "bags touch"
    assert len(seen) >= 5


async def test_the_llrp_reader_holds_the_vehicles_tag_and_seal_while_it_is_inside_and_the_camera_renders_it() -> None:
    name = "t-tcp"
    truth = describe(LaneSim(name=name, seed=2, sealed_share=1.0, opened_share=1.0, tampered_share=0.0), 7)
    uhf = LlrpConfig.model_validate({"kind": "llrp", "antennas": [1], "keepalive_s": 0.5, "read_user_words": 16,
                                     "removal_after_ms": 300, "sim": {"read_ms": 20, "lane": name, "lane_delay_s": 0}})
    seals_cfg = LlrpSealConfig.model_validate({"kind": "seal-llrp", "reader": "uhf", "removal_after_ms": 300,
                                               "sim": {"lane": name}})
    camera_cfg = CameraConfig.model_validate({"kind": "sim", "role": "front_plate", "sim": {"lane": name}})
    async with AsyncExitStack() as stack:
        reader = await stack.enter_async_context(open_reader(uhf, "uhf"))
        seals = await stack.enter_async_context(open_seal_reader(seals_cfg, "eseal", reader))  # type: ignore[arg-type]
        camera = await stack.enter_async_context(open_camera(camera_cfg, "front"))
        tags: list[TagSeen] = []
        states: list[SealSeen] = []

        async def collect() -> None:
            async for event in reader.events():
                if isinstance(event, TagSeen):
                    tags.append(event)

        async def collect_seals() -> None:
            async for event in seals.events():
                if isinstance(event, SealSeen):
                    states.append(event)

        tasks = [asyncio.create_task(collect()), asyncio.create_task(collect_seals())]
        await until(lambda: reader.link_ok, "the reader has a session with the simulator")
        lane(name).entered(truth)
        camera.trigger(True)
        await until(lambda: any(t.tag.hex == truth.tid for t in tags) and states, "the vehicle's tag and seal read")
        lane(name).left(truth.number)
        await until(lambda: not reader.present, "the tags left with the vehicle")
        for task in tasks:
            task.cancel()
    vehicle_tag = next(t for t in tags if t.tag.hex == truth.tid)
    assert vehicle_tag.epc == truth.epc
    assert [(s.report.seal_id, s.report.state) for s in states][:1] == [(truth.seal_id, "opened")]
    assert camera.vehicle.hk_plate == truth.hk_plate and camera.vehicle.container == truth.container  # type: ignore[attr-defined]
