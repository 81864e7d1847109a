"""PLC driver against the simulator's pymodbus server: bit order, read-only safety, read-back."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient

from drivers.errors import DeviceRefused, LinkLost, ReadbackMismatch
from drivers.plc import EyeEdge, PlcConfig, SimServer, open_plc
from plc_events import plc_events
from polling import until

# Generous read-back time where a test does not expect a mismatch: the CI machine is shared.
TOLERANT = PlcConfig(kind="sim", readback_timeout_ms=3000)


async def raw_client(port: int, frames: list[bytes]) -> AsyncModbusTcpClient:
    def trace(sending: bool, data: bytes) -> bytes:
        frames.append((b">" if sending else b"<") + data)
        return data

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0, trace_packet=trace)
    assert await client.connect()
    return client


async def test_discrete_input_and_coil_bit_order_is_lsb_first() -> None:
    """Address N of a bit table is bit N%8 of byte N//8 on the wire (pinned across pymodbus minors)."""
    cfg = PlcConfig(kind="sim")
    async with SimServer(cfg, realtime=False) as sim:
        m = sim.model
        m.add_item(0.1, lead_m=cfg.sim.conveyor.eye_divert_gate_m + 0.05)  # blocks the gate eye only
        frames: list[bytes] = []
        client = await raw_client(sim.port, frames)
        try:
            rr = await client.read_discrete_inputs(0, count=11, device_id=1)
            # DI0 estop_ok, DI1 interlocks_ok, DI3 divert_manual (gate rests at manual) -> 0x0B;
            # DI10 eye_divert_gate -> second byte 0x04.
            assert frames[-1].endswith(bytes([0x02, 0x02, 0x0B, 0x04]))
            assert [i for i, b in enumerate(rr.bits[:11]) if b] == [0, 1, 3, 10]
            await client.write_coils(0, [True, False, True], device_id=1)
            assert frames[-2].endswith(bytes([0x0F, 0x00, 0x00, 0x00, 0x03, 0x01, 0x05]))
            assert m.requests["belt_run_request"] == 1 and m.requests["xray_permit_request"] == 1
            assert m.requests["divert_manual_request"] == 0
            rr = await client.read_coils(0, count=3, device_id=1)
            assert frames[-1].endswith(bytes([0x01, 0x01, 0x05])) and rr.bits[:3] == [True, False, True]
        finally:
            client.close()


async def test_encoder_is_two_words_high_first() -> None:
    cfg = PlcConfig(kind="sim")
    async with SimServer(cfg, realtime=False) as sim:
        sim.model.belt_m = 0x00012345 / 1000
        frames: list[bytes] = []
        client = await raw_client(sim.port, frames)
        try:
            rr = await client.read_input_registers(1, count=2, device_id=1)
            assert rr.registers == [0x0001, 0x2345]
        finally:
            client.close()


async def test_an_encoder_count_back_is_travel_back_not_a_wrap() -> None:
    """An encoder dithering one count back at standstill read as 2^32 - 1 counts forward: 4,295 km of belt travel
    that threw every tracked bag past the divert gate. It is 1 mm back; a count wrapping forward stays forward."""
    from drivers.plc import open_plc

    async with open_plc(TOLERANT, "enc/plc") as plc:
        m = plc.sim.model
        m.belt_m = ((1 << 32) - 3 + 0.5) / 1000  # three counts short of the wrap (half a count on: no rounding)
        st = await until(plc.read_state, "the link is up", check=lambda s: s.link_ok)
        await until(plc.read_state, "a poll after the baseline", check=lambda s, seq=st.seq: s.seq > seq + 2)
        m.encoder_lost_m = 0.001  # the encoder reads one count (1 mm) less: it dithered back
        back = await until(plc.read_state, "the count back read", check=lambda s: s.encoder_m != 0.0)
        assert back.encoder_m == pytest.approx(-0.001, abs=1e-6)
        m.belt_m += 0.005  # five counts on, wrapping past 2^32 - 1
        forward = await until(plc.read_state, "the wrap read", check=lambda s: s.encoder_m > 0.0)
        assert forward.encoder_m == pytest.approx(0.004, abs=1e-6)


async def test_writes_to_safety_points_get_a_modbus_exception() -> None:
    cfg = PlcConfig(kind="sim")
    async with SimServer(cfg, realtime=False) as sim:
        client = await raw_client(sim.port, [])
        try:
            status = cfg.registers["safety_status"].address
            rr = await client.write_register(status, 0, device_id=1)
            assert rr.isError() and rr.exception_code == 2
            rr = await client.write_coil(7, True, device_id=1)  # not a request coil
            assert rr.isError() and rr.exception_code == 2
            rr = await client.write_coils(0, [True] * 5, device_id=1)  # spills over into unmapped coils
            assert rr.isError() and sim.model.requests.get("belt_run_request", 0) == 0
            rr = await client.read_holding_registers(status, count=1, device_id=1)
            assert rr.registers == [0b011]  # estop ok, interlocks ok, no host heartbeat seen yet
        finally:
            client.close()


async def test_driver_refuses_to_write_a_safety_point() -> None:
    async with open_plc(PlcConfig(kind="sim"), "conv") as plc:
        with pytest.raises(DeviceRefused, match="estop_ok"):
            await plc._write("estop_ok", 1)


def test_the_simulated_plc_refuses_a_safety_write_as_a_device_refusal() -> None:
    """A test or drill writing a safety point into the model gets the refusal the server would answer."""
    from drivers.plc.sim import ConveyorModel

    cfg = PlcConfig(kind="sim")
    m = ConveyorModel(p=cfg.sim, c=cfg.sim.conveyor)
    with pytest.raises(DeviceRefused, match="estop_ok") as refused:
        m.write("estop_ok", 0)
    assert refused.value.code == 2 and m.estop_ok


async def test_requests_are_confirmed_by_feedback() -> None:
    async with open_plc(TOLERANT, "conv") as plc:
        await until(plc.read_state, check=lambda s: s.link_ok)
        await plc.request_belt(True)
        await plc.request_xray_permit(True)
        await plc.request_divert(False)
        st = await plc.read_state()
        assert st.belt_running and st.xray_permit and not st.divert_to_manual
        await plc.request_divert(True)
        assert (await plc.read_state()).divert_to_manual
        await plc.request_belt(False)
        assert not plc.sim.model.belt_running


async def test_a_cancellation_that_comes_with_the_plcs_answer_cancels_the_request() -> None:
    """A task cancelled in the loop turn that brings its request's answer: Python 3.11's asyncio.wait_for (inside
    pymodbus) returns the answer and drops the cancellation, so the request went on to its read-back and the task
    ran on. A conveyor flow cancelled as its belt stop was answered kept watching the belt for ever and the station
    never stopped. The request ends cancelled."""
    async with open_plc(TOLERANT, "conv") as plc:
        await until(plc.read_state, check=lambda s: s.link_ok)
        ctx, trace = plc.client.ctx, plc.client.ctx.trace_packet
        request: list[asyncio.Task[None]] = []

        def cancel_with_the_answer(sending: bool, data: bytes) -> bytes:
            if not sending and data[7] == 0x05 and request:  # the answer to a coil write: only the request writes one
                request.pop().cancel()
            return trace(sending, data)

        ctx.trace_packet = cancel_with_the_answer
        request.append(task := asyncio.create_task(plc.request_belt(False)))
        await asyncio.wait({task})
        assert task.cancelled() and not request
        ctx.trace_packet = trace
        await plc.request_belt(True)  # the link and its lock are as they were
        assert plc.sim.model.belt_running


async def test_estop_refuses_motion_and_reset_never_restarts() -> None:
    async with open_plc(PlcConfig(kind="sim", readback_timeout_ms=1500), "conv") as plc:
        await until(plc.read_state, check=lambda s: s.link_ok)
        await plc.request_belt(True)
        plc.sim.model.press_estop()
        st = await until(plc.read_state, check=lambda s: not s.belt_running)
        assert not st.estop_ok
        with pytest.raises(ReadbackMismatch, match="belt_running read back 0"):
            await plc.request_belt(True)
        plc.sim.model.release_estop()
        plc.sim.model.reset()
        await until(plc.read_state, check=lambda s: s.estop_ok)
        await asyncio.sleep(0.1)
        assert not (await plc.read_state()).belt_running  # request coil is still 1; no restart
        await plc.request_belt(True)  # a deliberate new request (rising edge) starts it
        assert plc.sim.model.belt_running


async def test_interlock_open_drops_xray_permit() -> None:
    async with open_plc(TOLERANT, "conv") as plc:
        await until(plc.read_state, check=lambda s: s.link_ok)
        await plc.request_xray_permit(True)
        plc.sim.model.set_interlock("door", False)
        st = await until(plc.read_state, check=lambda s: not s.xray_permit)
        assert not st.interlocks_ok
        plc.sim.model.set_interlock("door", True)
        await asyncio.sleep(0.1)
        assert not (await plc.read_state()).xray_permit


async def test_gantry_barrier_light_and_vehicle_loops() -> None:
    cfg = PlcConfig(kind="sim", model="gantry", readback_timeout_ms=3000,
                    sim={"gantry": {"barrier_actuation_s": 0.1, "vehicle_speed_m_s": 20.0}})
    async with asyncio.timeout(30), open_plc(cfg, "gantry") as plc:  # a stuck await fails with its place
        await until(plc.read_state, check=lambda s: s.link_ok)
        async with plc_events(plc, EyeEdge) as edges:
            await plc.request_light("green")
            assert (await plc.read_state()).light == "green"
            vid = plc.sim.model.add_vehicle(4.0)
            await until(plc.read_state, check=lambda s: plc.sim.model.vehicles[0].lead_m >= 21.5)
            await asyncio.sleep(0.1)
            assert plc.sim.model.vehicles[0].lead_m == pytest.approx(21.5)  # waits at the closed barrier
            await plc.request_barrier(True)
            await until(plc.read_state, check=lambda s: vid in plc.sim.model.passed)
            await until(lambda: len(edges) >= 4, "the exit loop's release read")  # read on a poll after it passed
            await asyncio.sleep(0.05)  # nothing more comes
        assert [(e.eye, e.blocked) for e in edges] == [("eye_entry", True), ("eye_entry", False), ("eye_exit", True),
                                                       ("eye_exit", False)]
        await plc.request_barrier(False)
        plc.sim.model.press_estop()
        st = await until(plc.read_state, check=lambda s: s.light == "red")
        assert not st.estop_ok


async def test_requests_while_link_down_raise_link_lost() -> None:
    async with open_plc(PlcConfig(kind="sim"), "conv") as plc:
        await until(plc.read_state, check=lambda s: s.link_ok)
        plc.sim.mute()
        await until(plc.read_state, check=lambda s: not s.link_ok)
        with pytest.raises(LinkLost, match="link is down"):
            await plc.request_belt(True)


def test_fixed_object_stays_in_the_beam_while_the_belt_runs() -> None:
    from drivers.plc.sim import ConveyorModel, SimItem

    cfg = PlcConfig(kind="sim")
    m = ConveyorModel(p=cfg.sim, c=cfg.sim.conveyor)
    m.write("host_heartbeat", 1)
    m.write("belt_run_request", 1)
    m.items.append(SimItem(-1, cfg.sim.conveyor.eye_tunnel_exit_m + 0.05, 0.1, fixed=True))
    bag = m.add_item(0.3)
    for i in range(100):
        m.write("host_heartbeat", i + 2)
        m.step(0.01)
    assert m.belt_running and m.values()["eye_tunnel_exit"] == 1
    assert m.items[1].id == bag and m.items[1].lead_m == pytest.approx(m.belt_m) == pytest.approx(0.3)
