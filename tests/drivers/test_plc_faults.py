"""Fault injection: the PLC stops answering or its heartbeat freezes -> safe state, then recovery."""

from __future__ import annotations

import asyncio
import time

from central_sync.devtools import free_port
from drivers.plc import LinkChanged, ModbusPlc, PlcConfig, open_plc
from drivers.plc.runs import Run
from plc_events import plc_events
from polling import until

# Link loss must be seen within this many PLC heartbeat periods (100 ms each) of simulated time: one
# read times out twice (2 x 300 ms) plus one poll period, i.e. about 6-7 periods. Simulated time, not the
# heartbeat counter: the counter runs on the clock, simulated time slows down with a stalled loop.
MAX_S_TO_SAFE = 1.2


async def test_plc_silent_goes_to_safe_state_and_recovers() -> None:
    async with open_plc(PlcConfig(kind="sim", readback_timeout_ms=3000), "conv") as plc:
        m = plc.sim.model
        await until(lambda: plc._state is not None and plc._state.link_ok)
        await plc.request_belt(True)
        await plc.request_xray_permit(True)
        await plc.request_divert(False)
        async with plc_events(plc, LinkChanged) as changes:
            t0 = m.t
            plc.sim.mute()
            await until(lambda: not plc._state.link_ok)
            assert m.t - t0 <= MAX_S_TO_SAFE
            st = await plc.read_state()
            assert st.items_to_manual and not st.estop_ok and "did not answer" in st.link_reason
            assert st.link_fault == "no_answer"
            # The PLC's own host watchdog stops the belt and the X-ray permit and diverts to manual.
            await until(lambda: not m.belt_running and not m.active("xray_permit_request")
                        and m.gate_pos == 1.0)
            plc.sim.unmute()
            await until(lambda: plc._state.link_ok)
            # Safe requests were written before the link was reported up; nothing restarted.
            assert m.requests["belt_run_request"] == 0 and m.requests["xray_permit_request"] == 0
            assert m.requests["divert_manual_request"] == 1
            await asyncio.sleep(0.1)
            assert not m.belt_running and not (await plc.read_state()).items_to_manual
            await plc.request_belt(True)
            assert m.belt_running
        assert [c.ok for c in changes] == [False, True]


async def test_stale_plc_heartbeat_is_link_lost() -> None:
    async with open_plc(PlcConfig(kind="sim", heartbeat_stale_ms=300, readback_timeout_ms=3000), "conv") as plc:
        m = plc.sim.model
        await until(lambda: plc._state is not None and plc._state.link_ok)
        await plc.request_belt(True)
        m.heartbeat_frozen = True
        await until(lambda: not plc._state.link_ok)
        st = await plc.read_state()
        assert "heartbeat stale" in st.link_reason and st.items_to_manual and st.link_fault == "stale_heartbeat"
        # The PLC still answers, so the safe requests are written at once.
        await until(lambda: m.requests["belt_run_request"] == 0, "the belt's stop requested while the link is down")
        assert not plc._state.link_ok  # the heartbeat is still frozen
        m.heartbeat_frozen = False
        await until(lambda: plc._state.link_ok)
        assert m.requests["belt_run_request"] == 0 and not m.belt_running and plc._state.link_fault == ""


async def test_a_host_loop_that_stalled_reads_a_heartbeat_that_moved_on() -> None:
    """The simulated PLC's heartbeat counts on the clock, as a real PLC's own cycle does: a host whose loop
    stalled longer than heartbeat_stale_ms (a loaded machine) reads a heartbeat that moved on, and the link
    stays up, while the physics' steps are held back (items never jump past eyes). The counter used to step
    with the physics: CI saw a daemon's link lost for a 669 ms stall ("heartbeat stale")."""
    async with open_plc(PlcConfig(kind="sim", heartbeat_stale_ms=300, readback_timeout_ms=3000), "conv") as plc:
        m, loop = plc.sim.model, asyncio.get_running_loop()
        await until(lambda: plc._state is not None and plc._state.link_ok)
        async with plc_events(plc, LinkChanged, lambda ev: not ev.ok) as changes:
            for _ in range(3):
                hb, t, wall = m.plc_heartbeat, m.t, loop.time()
                time.sleep(0.5)                 # the loop stalls: nothing runs, the PLC's cycle goes on
                await asyncio.sleep(0.3)        # polls after the stall
                wall = loop.time() - wall
                assert (m.plc_heartbeat - hb) & 0xFFFF >= int(wall / 0.1) - 1, (m.plc_heartbeat - hb, wall)
                assert m.t - t < wall - 0.4, (m.t - t, wall)
        assert changes == [] and plc._state.link_ok


async def test_a_stall_while_a_poll_is_under_way_does_not_age_the_heartbeat_it_read() -> None:
    """A host loop that stalls after the read holding the PLC heartbeat and before the poll's later reads are
    answered judges the heartbeat when it asked for that read: the PLC gave the value before the stall, and the
    link stays up. The driver used to judge it at the poll's end: a value equal to the poll before's read as
    stale for the stall's length (seen under load: "PLC conv heartbeat stale for 519 ms"). A PLC that stops
    counting is still found stale."""
    async with open_plc(PlcConfig(kind="sim", heartbeat_stale_ms=300, readback_timeout_ms=3000), "conv") as plc:
        await until(lambda: plc._state is not None and plc._state.link_ok)
        read_run, beats, stalls = plc._read_run, [-1, -1], []

        async def stalling(run: Run) -> dict[str, int]:
            values = await read_run(run)
            if "plc_heartbeat" in values:
                beats[:] = [beats[1], values["plc_heartbeat"]]
            elif run.table == "holding" and beats[0] == beats[1] and len(stalls) < 3:
                stalls.append(beats[1])     # this poll read the same heartbeat as the one before: stall now
                time.sleep(0.5)
            return values

        async with plc_events(plc, LinkChanged, lambda ev: not ev.ok) as changes:
            plc._read_run = stalling  # type: ignore[method-assign]
            await until(lambda: len(stalls) == 3)
            await asyncio.sleep(0.3)
        assert changes == [] and plc._state.link_ok
        plc.sim.model.heartbeat_frozen = True
        await until(lambda: not plc._state.link_ok)
        assert plc._state.link_fault == "stale_heartbeat" and "heartbeat stale" in plc._state.link_reason


async def test_plc_absent_at_start_then_appears() -> None:
    """The driver starts without a PLC (link down) and comes up when the PLC answers."""
    async with open_plc(PlcConfig(kind="sim"), "conv") as plc:
        plc.sim.mute()
        await until(lambda: plc._state is not None and not plc._state.link_ok)
        plc.sim.unmute()
        await until(lambda: plc._state.link_ok)


async def test_plc_not_listening_at_start_then_restarting() -> None:
    """Connection refused at start, PLC boots, PLC reboots (socket closed): the driver reconnects."""
    from drivers.plc import ModbusPlc, SimServer

    port = free_port()
    cfg = PlcConfig(kind="modbus-tcp", port=port, readback_timeout_ms=3000)
    async with ModbusPlc(cfg, "late") as plc:
        await until(lambda: plc._state is not None and "not connected" in plc._state.link_reason)
        for _ in range(2):
            async with SimServer(cfg, port=port) as sim:
                await until(lambda: plc._state.link_ok)
                await plc.request_belt(True)
                assert sim.model.belt_running
            await until(lambda: not plc._state.link_ok)


async def test_gantry_safe_requests_close_the_barrier_and_show_red() -> None:
    """The gantry's safe state is a closed barrier and a red light: requested on a stale heartbeat."""
    cfg = PlcConfig(kind="sim", model="gantry", heartbeat_stale_ms=300, readback_timeout_ms=3000,
                    sim={"gantry": {"barrier_actuation_s": 0.1}})
    async with asyncio.timeout(60), open_plc(cfg, "gantry") as plc:
        m = plc.sim.model
        await until(lambda: plc._state is not None and plc._state.link_ok)
        await plc.request_light("green")
        await plc.request_barrier(True)
        m.heartbeat_frozen = True
        await until(lambda: not plc._state.link_ok)
        # The safe requests are written one after another (the barrier's before the light's): wait for all.
        await until(lambda: all(m.requests.get(r.point) == r.value for r in plc.safe_state))
        assert (m.requests["barrier_open_request"], m.requests["light_request"]) == (0, 1)
        await until(lambda: m.barrier_pos == 0.0)


async def test_a_plc_whose_heartbeat_has_not_moved_is_not_up_at_start_nor_after_a_restart() -> None:
    """A PLC can answer Modbus with its program stopped (a CPU in STOP, its comms module up first): the first
    heartbeat read is only a baseline, and the link comes up when the heartbeat changes; so again after the PLC
    restarted, whatever value its heartbeat then starts from."""
    from drivers.plc import ModbusPlc, SimServer

    port = free_port()
    cfg = PlcConfig(kind="modbus-tcp", port=port, heartbeat_stale_ms=300, readback_timeout_ms=3000)
    async with ModbusPlc(cfg, "conv") as plc, plc_events(plc, LinkChanged, lambda ev: ev.ok) as ups:  # the PLC starts, runs, restarts
        stopped = SimServer(cfg, port=port)
        stopped.model.heartbeat_frozen = True
        async with stopped:
            st = await until(plc.read_state, check=lambda s: "has not changed yet" in s.link_reason)
            assert not st.link_ok and st.link_fault == "stale_heartbeat"
            await until(plc.read_state, check=lambda s: "heartbeat stale" in s.link_reason)  # and stays down
            assert ups == []
            stopped.model.heartbeat_frozen = False  # the program runs
            await until(lambda: plc._state.link_ok, "the link up once the heartbeat moved")
            await plc.request_belt(True)
            ran = stopped.model.plc_heartbeat
        await until(lambda: not plc._state.link_ok, "the link lost with the PLC")

        restarted = SimServer(cfg, port=port)
        restarted.model.heartbeat_frozen = True
        restarted.model.plc_heartbeat = ran + 7  # another value than the last one read before the restart
        async with restarted:
            await until(plc.read_state, check=lambda s: "has not changed yet" in s.link_reason)
            await asyncio.sleep(0.2)
            assert not plc._state.link_ok and not restarted.model.belt_running and len(ups) == 1
            restarted.model.heartbeat_frozen = False
            await until(lambda: plc._state.link_ok, "the link up once the restarted PLC's heartbeat moved")


async def test_a_plc_restart_that_restarts_its_encoder_is_no_belt_travel() -> None:
    """A PLC power cycle restarts its encoder count from 0: the count after the link came back is a new baseline
    (the modulo-2**32 difference from the count before it was read as 4,295 km of belt travel)."""
    from drivers.plc import BeltMoved, ModbusPlc, SimServer

    port = free_port()
    cfg = PlcConfig(kind="modbus-tcp", port=port, readback_timeout_ms=3000)
    async with ModbusPlc(cfg, "conv") as plc:
        async with plc_events(plc, BeltMoved) as moved:
            async with SimServer(cfg, port=port) as before:
                await until(lambda: plc._state is not None and plc._state.link_ok)
                await plc.request_belt(True)
                await until(lambda: plc._state.encoder_m > 0.05, "the belt has moved")
            await until(lambda: not plc._state.link_ok, "the link lost with the PLC")
            travelled = plc._state.encoder_m
            async with SimServer(cfg, port=port) as after:  # booted again: encoder from 0, belt stopped
                await until(lambda: plc._state.link_ok, "the link back")
                await plc.request_belt(True)
                await until(lambda: plc._state.encoder_m > travelled + 0.05, "the belt moves on from where it was")
                assert after.model.belt_running and before is not after
    steps = [b.encoder_m - a.encoder_m for a, b in zip(moved, moved[1:])]
    assert 0 < max(steps) < 1.0 and plc._state.encoder_m < travelled + 1.0
