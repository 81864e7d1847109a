"""Register maps from real PLCs: long runs (chunked reads), sparse vendor maps, exception
responses, a poll task that fails, and the PLC-written safety_status word."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.datastore import ModbusServerContext, ModbusSparseDataBlock
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.server import ModbusTcpServer
from structlog.testing import capture_logs

from drivers.errors import DeviceRefused, LinkLost
from drivers.plc import LinkChanged, ModbusPlc, PlcConfig, SafetyStatus, open_plc
from drivers.plc.config import Point
from drivers.plc.modbus import exception_name
from drivers.plc.runs import plan_runs
from plc_events import plc_events
from polling import until

FC_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 3: "holding", 6: "holding", 16: "holding",
            4: "input"}


def link_ok(plc: ModbusPlc) -> bool:
    return plc._state is not None and plc._state.link_ok


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 2)), max_size=60), st.integers(2, 130))
def test_runs_cover_each_point_once_within_the_limit_and_only_mapped_addresses(spec, limit: int) -> None:
    points: dict[str, Point] = {}
    used: set[int] = set()
    for i, (address, words) in enumerate(spec):
        span = set(range(address, address + words))
        if not span & used:
            used |= span
            points[f"p{i}"] = Point(table="input", address=address, words=words)
    runs = plan_runs(points, "input", limit)
    assert sorted(n for r in runs for n, _ in r.points) == sorted(points)
    for r in runs:
        assert 1 <= r.count <= limit
        assert set(range(r.start, r.start + r.count)) <= used  # no gap is ever read
        assert sum(p.words for _, p in r.points) == r.count
    assert all(a.start + a.count <= b.start for a, b in zip(runs, runs[1:]))


def test_runs_of_the_default_conveyor_map() -> None:
    cfg = PlcConfig(kind="sim")
    assert [(r.start, r.count) for r in plan_runs(cfg.registers, "discrete", 2000)] == [(0, 6), (8, 3)]
    assert [(r.start, r.count) for r in plan_runs(cfg.registers, "holding", 125)] == [(0, 1), (10, 1)]
    assert [(r.start, r.count) for r in plan_runs(cfg.registers, "input", 2)] == [(0, 1), (1, 2)]


async def test_runs_longer_than_one_request_are_read_in_chunks() -> None:
    """132 contiguous input registers and 2011 contiguous discrete inputs: over 125 / 2000 per read."""
    registers = {f"aux_ir_{i}": {"table": "input", "address": 10 + i} for i in range(130)}
    registers["encoder"] = {"table": "input", "address": 140, "words": 2}
    registers |= {f"aux_di_{i}": {"table": "discrete", "address": 100 + i} for i in range(2010)}
    registers["eye_divert_gate"] = {"table": "discrete", "address": 2110}
    cfg = PlcConfig(kind="sim", registers=registers, readback_timeout_ms=3000)
    async with asyncio.timeout(60), open_plc(cfg, "conv") as plc:
        m = plc.sim.model
        m.add_item(0.1, lead_m=cfg.sim.conveyor.eye_divert_gate_m + 0.05)
        m.belt_m = 0x00012345 / 1000
        await until(lambda: link_ok(plc) and plc._state.photo_eyes[2])
        assert (await plc.read_points("input"))["encoder"] == 0x00012345


async def test_sparse_vendor_map_links_and_reads_only_mapped_addresses() -> None:
    """The PLC answers exception 02 for unmapped addresses (discrete 6-7, holding 2-9, ...)."""
    cfg = PlcConfig(kind="sim", readback_timeout_ms=3000, sim={"sparse": True})
    async with asyncio.timeout(60), open_plc(cfg, "conv") as plc:
        await until(lambda: link_ok(plc))
        await plc.request_belt(True)
        assert plc.sim.model.belt_running and (await plc.read_state()).link_ok


class SparseImage(ModbusBaseDeviceContext):
    """A device whose tables hold only the given addresses (pymodbus sparse blocks); others -> 02."""

    def __init__(self, tables: dict[str, dict[int, int]]) -> None:
        self.blocks = {t: ModbusSparseDataBlock(v) for t, v in tables.items()}

    def reset(self) -> None:
        """Nothing to reset."""

    def getValues(self, func_code: int, address: int, count: int = 1):
        return self.blocks[FC_TABLE[func_code]].getValues(address, count)

    def setValues(self, func_code: int, address: int, values):
        return self.blocks[FC_TABLE[func_code]].setValues(address, values)


async def test_exception_response_is_reported_as_refused_with_its_code() -> None:
    """A PLC without the heartbeat register at the configured address answers exception 02."""
    image = SparseImage({"coil": {0: 0, 1: 1, 2: 0}, "discrete": {a: 1 for a in range(11)},
                         "holding": {0: 0, 10: 7}, "input": {1: 0, 2: 0}})
    server = ModbusTcpServer(ModbusServerContext(devices=image, single=True), address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    try:
        port = server.transport.sockets[0].getsockname()[1]
        async with asyncio.timeout(60), ModbusPlc(PlcConfig(kind="modbus-tcp", port=port), "conv") as plc:
            await until(lambda: plc._state is not None and "exception" in plc._state.link_reason)
            st = await plc.read_state()
            assert not st.link_ok and st.items_to_manual
            assert "exception 02 (illegal data address)" in st.link_reason
            assert "did not answer" not in st.link_reason and st.link_fault == "refused"
            with pytest.raises(DeviceRefused, match="input 0") as info:
                await plc.read_points("input")
            assert info.value.code == 2
            with pytest.raises(DeviceRefused, match="belt_run_request=1 not sent") as info:
                await plc.request_belt(True)  # a request on a link the PLC refuses stays a refusal
            assert info.value.code == 2 and "exception 02" in str(info.value)
    finally:
        await server.shutdown()


@pytest.mark.parametrize("code,name", [(1, "illegal function"), (2, "illegal data address"),
                                       (3, "illegal data value"), (4, "server device failure"),
                                       (6, "server device busy"), (11, "gateway target device failed to respond"),
                                       (0x42, "unknown exception")])
def test_exception_names(code: int, name: str) -> None:
    assert exception_name(code) == name


async def test_poll_task_failure_is_a_lost_link() -> None:
    """An unexpected error in the poll task puts the link down with the reason; nothing hangs."""
    async with asyncio.timeout(60), open_plc(PlcConfig(kind="sim", readback_timeout_ms=3000), "conv") as plc:
        await until(lambda: link_ok(plc))
        async with plc_events(plc, LinkChanged) as changes:
            async def broken(*sample: object) -> None:
                raise RuntimeError("decoder bug")

            with capture_logs() as logs:
                plc._on_sample = broken  # a defect in the driver itself, standing in for any bug
                await until(lambda: not plc._state.link_ok)
            st = await plc.read_state()
            assert st.items_to_manual and not st.estop_ok and "decoder bug" in st.link_reason
            assert "poll" in st.link_reason and st.link_fault == "driver_failed"
            await until(lambda: changes)
            assert not changes[0].ok and "decoder bug" in changes[0].reason
            assert any(e["event"] == "plc.poll_failed" for e in logs)
            with pytest.raises(LinkLost, match="decoder bug"):
                await plc.request_belt(True)


async def test_safety_status_is_read_every_poll_and_decoded() -> None:
    async with asyncio.timeout(60), open_plc(PlcConfig(kind="sim", readback_timeout_ms=3000), "conv") as plc:
        m = plc.sim.model
        await until(lambda: link_ok(plc) and plc._state.safety.host_watchdog_ok)
        st = await plc.read_state()
        assert st.safety_status == 0b0111
        assert st.safety == SafetyStatus(estop_ok=True, interlocks_ok=True, host_watchdog_ok=True,
                                         reset_required=False)
        m.press_estop()
        await until(lambda: not plc._state.safety.estop_ok)
        assert plc._state.safety_status & 0b1000 == 0
        m.release_estop()
        await until(lambda: plc._state.safety.reset_required)
        assert plc._state.safety_status == 0b1110 and not plc._state.estop_ok
        m.set_interlock("door", False)
        m.reset()
        await until(lambda: plc._state.safety_status == 0b0101)
        assert not plc._state.safety.interlocks_ok and plc._state.safety.estop_ok


async def test_driver_never_writes_safety_status() -> None:
    async with asyncio.timeout(60), open_plc(PlcConfig(kind="sim"), "conv") as plc:
        await until(lambda: link_ok(plc))
        with pytest.raises(DeviceRefused, match="safety_status is written by the PLC"):
            await plc._write("safety_status", 0)
