"""PLC config: default maps, overrides, and a register map that cannot make safety writable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from drivers.plc.config import CONVEYOR_MAP, REQUEST_POINTS, SAFE_STATES, PlcConfig, Point, SafeRequest
from drivers.plc.sim import make_model
from drivers.rfid.config import RfidConfig


def test_default_maps_and_override() -> None:
    cfg = PlcConfig(kind="modbus-tcp", host="10.0.0.5", registers={"eye_divert_gate": {"table": "discrete",
                                                                                        "address": 12}})
    assert cfg.registers["eye_divert_gate"] == Point(table="discrete", address=12)
    assert cfg.registers["estop_ok"] == CONVEYOR_MAP["estop_ok"]
    assert cfg.eyes == ("eye_tunnel_entry", "eye_tunnel_exit", "eye_divert_gate")
    assert PlcConfig(kind="sim", model="gantry").eyes == ("eye_entry", "eye_exit", "eye_search_bay")


def test_the_vehicle_separator_is_read_as_the_gantrys_last_eye_only_where_the_map_has_it() -> None:
    """Older PLCs have no separator (no default address): mapped, it is an input like the loops, never writable."""
    separator = {"vehicle_separator": {"table": "discrete", "address": 11}}
    assert PlcConfig(kind="sim", model="gantry", registers=separator).eyes[-1] == "vehicle_separator"
    with pytest.raises(ValidationError, match="vehicle_separator is read from the PLC"):
        PlcConfig(kind="sim", model="gantry", registers={"vehicle_separator": {"table": "coil", "address": 11}})


@pytest.mark.parametrize("registers,match", [
    ({"estop_ok": {"table": "coil", "address": 9}}, "estop_ok is read from the PLC"),
    ({"belt_run_request": {"table": "discrete", "address": 20}}, "must be a coil or holding"),
    ({"eye_tunnel_exit": {"table": "discrete", "address": 0}}, "share discrete address 0"),
    ({"host_heartbeat": {"table": "holding", "address": 10}}, "share holding address 10"),
])
def test_bad_register_maps_are_refused(registers: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        PlcConfig(kind="sim", registers=registers)


def test_unknown_keys_and_missing_ports_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PlcConfig(kind="sim", hostname="x")
    with pytest.raises(ValidationError, match="serial_port"):
        PlcConfig(kind="modbus-rtu")
    with pytest.raises(ValidationError, match="by-id"):
        RfidConfig(kind="em4100-serial")


@pytest.mark.parametrize("kw,match", [
    ({"registers": {"eye_divert_gate": {"table": "discrete", "address": 12, "words": 2}}},
     "eye_divert_gate is a discrete bit and cannot have 2 words"),
    ({"registers": {"encoder": {"table": "input", "address": 65535, "words": 2}}},
     "encoder at input 65535 with 2 words runs past address 65535"),
    ({"registers": {"safety_status": {"table": "coil", "address": 5}}},
     "safety_status must be a holding or input register"),
    ({"max_registers_per_read": 126}, "max_registers_per_read\n  Input should be less than or equal to 125"),
    ({"max_bits_per_read": 2001}, "max_bits_per_read\n  Input should be less than or equal to 2000"),
    ({"readback_timeout_ms": 300, "timeout_ms": 300, "poll_period_ms": 10},
     "readback_timeout_ms 300 is shorter than timeout_ms 300 plus two poll periods of 10 ms"),
])
def test_maps_and_timings_that_cannot_work_are_refused(kw: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        PlcConfig(kind="sim", **kw)


@pytest.mark.parametrize("model", ["conveyor", "gantry"])
def test_each_model_has_one_safe_state_over_its_own_requests(model: str) -> None:
    """One table per model: every request that moves something or emits X-rays, and only the model's own."""
    cfg = PlcConfig(kind="sim", model=model)
    requests = {n for n in cfg.registers if n in REQUEST_POINTS} - {"host_heartbeat"}
    safe = SAFE_STATES[model]
    assert {r.point for r in safe} == requests
    assert SafeRequest("xray_permit_request", 0, "X-ray permit off") in safe
    assert all(r.says for r in safe)


@pytest.mark.parametrize("model", ["conveyor", "gantry"])
def test_the_simulated_plc_powers_up_in_its_models_safe_state(model: str) -> None:
    """A gantry PLC holds no divert request (a conveyor point) and its light request reads red."""
    sim = make_model(PlcConfig(kind="sim", model=model))
    assert sim.requests == {r.point: r.value for r in SAFE_STATES[model]}
