"""Guidance by error kind: a device that answers with a refusal is reachable; its cabling is not the fault."""

from __future__ import annotations

from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest

from drivers.errors import DeviceRefused, LinkLost, ProtocolError
from drivers.plc import ModbusPlc
from drivers.plc.config import PlcConfig, Point
from drivers.plc.sim import SimServer
from edge.diag.context import PhaseContext
from edge.diag.core import Outcome, PhaseResult
from edge.diag.messages import Catalogue
from edge.diag.phases import plc_io, safety
from polling import until


def _ctx(plc: object = None) -> PhaseContext:
    station = SimpleNamespace(plc=plc, name="c-1")
    return PhaseContext(station, None, PhaseResult("io", "I/O"), Catalogue("en"), 1.0)  # type: ignore[arg-type]


@asynccontextmanager
async def _plc(**registers: Point):
    """A simulated conveyor PLC (real pymodbus server) and the real driver with the host's register map."""
    async with SimServer(PlcConfig(kind="sim", model="conveyor")) as sim:
        host = PlcConfig(kind="modbus-tcp", model="conveyor", port=sim.port, registers=registers)
        async with ModbusPlc(host, "c-1/plc") as plc:
            # up, or refused: a host map naming points the PLC lacks gets exception 02 and never comes up
            await until(plc.read_state, "the PLC link up, or refused by the PLC",
                        check=lambda st: st.link_ok or st.link_fault == "refused")
            yield sim, plc


async def test_a_modbus_exception_from_the_plc_is_not_diagnosed_as_wiring():
    """The host's map has a light the PLC program lacks: the real PLC driver gets exception 02 on the write."""
    async with _plc(light_request=Point(table="holding", address=1), light=Point(table="input", address=3)) as (_, plc):
        ctx = _ctx(plc)
        await plc_io._light(ctx, plc, "green")
    m = ctx.result.measurements[0]
    assert m.outcome == Outcome.FAIL and m.message == "device.refused", m
    assert "Modbus exception 02 (illegal data address)" in m.diagnosis and "register map" in m.diagnosis
    assert "wiring" not in m.diagnosis and "cable" not in m.diagnosis.replace("cabling works", "")


def test_advice_follows_the_kind_of_error():
    ctx = _ctx()
    lost = ctx.failed("links.plc_link_ok", LinkLost("PLC p at h did not answer within 300 ms"), target="plc")
    garbled = ctx.failed("links.controller_answers", ProtocolError("controller sent a frame with a bad CRC"),
                         target="controller")
    refused = ctx.failed("links.controller_answers", DeviceRefused("controller refused ARM with reason 3"),
                         target="controller")
    assert lost.message == "plc.no_answer" and "cable" in lost.diagnosis
    assert garbled.message == "device.garbled" and "baud rate" in garbled.diagnosis
    assert refused.message == "device.refused" and "reason 3" in refused.diagnosis


async def test_a_lost_link_is_not_taken_for_a_refused_permit():
    """Permit refused while tripped is proven only by the PLC answering; silence proves nothing."""
    async with _plc() as (sim, plc):
        sim.mute()
        with pytest.raises(LinkLost):
            await safety._refused(_ctx(plc), plc)
