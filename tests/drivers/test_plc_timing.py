"""A slow PLC (every answer 150 ms late): requests are confirmed within the measured poll cycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from drivers.errors import ReadbackMismatch
from drivers.plc import ModbusPlc, PlcConfig, SimServer
from polling import until

DELAY_S = 0.15
# A read-back window shorter than one poll (several 150 ms answers); timeout_ms leaves room for
# a loaded machine (the proxy and the driver share one event loop). The PLC's host watchdog suits
# the link: above heartbeat_period_ms plus three answers (docs/plc-register-map.md).
SLOW = {"timeout_ms": 400, "readback_timeout_ms": 420, "sim": {"host_watchdog_ms": 2000}}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction; each chunk (one Modbus answer: the client sends one request at a time)
    is held back `delay` seconds."""
    try:
        while data := await reader.read(4096):
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@asynccontextmanager
async def slow_proxy(target_port: int, delay: float) -> AsyncIterator[int]:
    """A TCP proxy on a free port in front of the PLC that delays every answer."""
    tasks: set[asyncio.Task[None]] = set()

    async def accept(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", target_port)
        for t in (asyncio.create_task(_pipe(cr, sw, 0.0)), asyncio.create_task(_pipe(sr, cw, delay))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def slow_plc(**kw: object) -> AsyncIterator[tuple[ModbusPlc, SimServer]]:
    """The simulator behind the slow proxy and the driver connected through it (default timings)."""
    sim_cfg = PlcConfig(kind="sim", **{**SLOW, **kw})
    async with SimServer(sim_cfg) as sim, slow_proxy(sim.port, DELAY_S) as port:
        cfg = sim_cfg.model_copy(update={"kind": "modbus-tcp", "port": port})
        async with ModbusPlc(cfg, "slow") as plc:
            yield plc, sim


async def test_requests_through_a_slow_plc_are_confirmed() -> None:
    """readback_timeout_ms (420) is shorter than one poll, yet every request the PLC carries out is confirmed."""
    async with asyncio.timeout(120), slow_plc() as (plc, sim):
        await until(lambda: plc._state is not None and plc._state.link_ok)
        await plc.request_belt(True)
        await plc.request_divert(False)
        await plc.request_xray_permit(True)
        assert sim.model.belt_running and sim.model.gate_pos == 0.0
        st = await plc.read_state()
        assert st.link_ok and st.belt_running and st.xray_permit
        # every poll has at least two 150 ms answers (two tables and more)
        assert st.cycle_s >= 2 * DELAY_S and plc.cycle_s == st.cycle_s


async def test_a_real_readback_failure_says_what_was_expected_and_read() -> None:
    async with asyncio.timeout(120), slow_plc() as (plc, sim):
        await until(lambda: plc._state is not None and plc._state.link_ok)
        sim.model.press_estop()
        await until(lambda: not plc._state.estop_ok)
        with pytest.raises(ReadbackMismatch) as info:
            await plc.request_belt(True)
        msg = str(info.value)
        assert "belt_run_request=1 but belt_running read back 0 (expected 1)" in msg
        assert "estop_ok=0" in msg and "safety_status=0b0110" in msg
