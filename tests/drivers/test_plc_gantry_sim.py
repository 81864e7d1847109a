"""The simulated gantry lane, stepped in simulated time: vehicles queue without overlapping and leave,
one per opening, by the exit or the search bay, in the order they came."""

from __future__ import annotations

import pytest

from drivers.plc.config import LIGHT_CODES, PlcConfig
from drivers.plc.sim import GantryModel, ReadOnlyPoint

STEP_S = 0.02


def _model(**gantry: object) -> GantryModel:
    cfg = PlcConfig(kind="sim", model="gantry", sim={"gantry": {"barrier_actuation_s": 0.2, **gantry}})
    m = GantryModel(p=cfg.sim, g=cfg.sim.gantry)
    m.write("host_heartbeat", 1)
    return m


def _run(m: GantryModel, seconds: float) -> None:
    """Step the model, the host beating its heartbeat; no two vehicles ever overlap (2 m apart)."""
    for i in range(int(seconds / STEP_S)):
        m.write("host_heartbeat", (i + 2) & 0xFFFF)
        m.step(STEP_S)
        ordered = sorted(m.vehicles, key=lambda v: -v.lead_m)
        for ahead, behind in zip(ordered, ordered[1:]):
            assert behind.lead_m <= ahead.lead_m - ahead.length_m - 2.0 + 1e-9, "vehicles overlap"


def _pulse(m: GantryModel, request: str) -> None:
    m.write(request, 0)
    m.write(request, 1)


def test_vehicles_queue_at_the_red_entry_light_and_enter_one_per_green() -> None:
    m = _model()
    cars = [m.add_vehicle(5.0, lead_m=-5.0 - 7.0 * i) for i in range(3)]
    _run(m, 20)
    assert [v.lead_m for v in m.vehicles][0] == m.g.entry_stop_m  # red at power-up: nobody enters
    m.write("entry_light_request", LIGHT_CODES["green"])
    _run(m, 30)
    assert m.vehicles[0].lead_m == m.g.barrier_m - 0.5 and m.vehicles[1].lead_m == m.g.entry_stop_m
    m.write("entry_light_request", LIGHT_CODES["red"])
    _run(m, 0.1)
    m.write("entry_light_request", LIGHT_CODES["green"])
    _run(m, 30)  # the second car queues behind the first, the third still waits for its green
    assert m.vehicles[1].lead_m == m.vehicles[0].lead_m - 5.0 - 2.0 and m.vehicles[2].lead_m == m.g.entry_stop_m
    assert m.passed == [] and m.values()["eye_exit"] == 0
    del cars


def test_the_first_vehicle_leaves_by_the_search_bay_the_next_by_the_barrier_one_per_opening() -> None:
    m = _model(entry_stop_m=-100.0)  # no entry light in the way
    first, second, third = (m.add_vehicle(4.0, lead_m=10.0 - 6.0 * i) for i in range(3))
    _run(m, 20)
    _pulse(m, "search_bay_request")
    _run(m, 20)
    assert m.passed == [first] and m.outcomes[first] == "search_bay"
    assert m.values()["eye_search_bay"] == 0 and m.vehicles[0].id == second
    m.write("search_bay_request", 0)
    _pulse(m, "barrier_open_request")
    _run(m, 20)
    assert m.passed == [first, second] and m.outcomes[second] == "exit"
    assert m.vehicles[0].id == third and m.vehicles[0].lead_m == m.g.barrier_m - 0.5, "one vehicle per opening"


def test_a_lost_host_watchdog_shows_red_entry_and_exit_lights() -> None:
    m = _model()
    m.write("entry_light_request", LIGHT_CODES["green"])
    m.step(m.p.host_watchdog_ms / 1000 + 0.1)
    assert (m.values()["entry_light"], m.values()["light"]) == (LIGHT_CODES["red"], LIGHT_CODES["red"])


def test_the_vehicle_separator_is_broken_along_a_truck_and_its_coupling_and_clear_between_vehicles() -> None:
    """Over the entry loop: the loop reads free over a truck's drawbar, the separator broken; between the truck
    and the car following it both read free. The separator is read only (a write is refused like any sensor's)."""
    m = _model(entry_stop_m=-100.0, vehicle_speed_m_s=10.0)
    m.add_vehicle(10.0, lead_m=0.0, coupling=(4.0, 6.0))  # 4 m cab, 2 m drawbar, 4 m trailer
    m.add_vehicle(4.0, lead_m=-13.0)  # 3 m behind the trailer
    seen: list[tuple[int, int]] = []
    for _ in range(int(2.5 / STEP_S)):
        m.step(STEP_S)
        m.write("host_heartbeat", len(seen) + 2)
        reading = (m.values()["eye_entry"], m.values()["vehicle_separator"])
        if not seen or seen[-1] != reading:
            seen.append(reading)
    # cab, drawbar, trailer, gap, car
    assert seen[:6] == [(0, 0), (1, 1), (0, 1), (1, 1), (0, 0), (1, 1)]
    m.separator_stuck = False
    assert m.values()["vehicle_separator"] == 0
    with pytest.raises(ReadOnlyPoint):
        m.write("vehicle_separator", 0)
