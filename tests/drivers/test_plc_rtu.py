"""The same driver over Modbus RTU on a pseudo-terminal pair: requests, RTU framing, link loss."""

from __future__ import annotations

from drivers.plc import PlcConfig, open_plc
from polling import until

CFG = PlcConfig(kind="sim", baudrate=115200, readback_timeout_ms=3000, sim={"transport": "rtu"})


async def test_rtu_requests_and_crc_framing() -> None:
    async with open_plc(CFG, "rtu") as plc:
        assert plc.cfg.kind == "modbus-rtu" and plc.where.startswith("/dev/pts/")
        await until(lambda: plc._state is not None and plc._state.link_ok)
        await plc.request_belt(True)
        assert plc.sim.model.belt_running
        frame = next(f[1:] for f in reversed(plc.frames) if f[:1] == b"<" and f[2] == 0x02)
        # RTU: unit id, function 2, byte count, data, CRC-16 (2 bytes, low byte first).
        assert frame[0] == 1 and frame[2] == len(frame) - 5
        crc = 0xFFFF
        for b in frame[:-2]:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        assert frame[-2:] == crc.to_bytes(2, "little")


async def test_rtu_silent_plc_goes_safe_and_recovers() -> None:
    async with open_plc(CFG, "rtu") as plc:
        m = plc.sim.model
        await until(lambda: plc._state is not None and plc._state.link_ok)
        await plc.request_belt(True)
        plc.sim.mute()
        await until(lambda: not plc._state.link_ok)
        await until(lambda: not m.belt_running)
        assert (await plc.read_state()).items_to_manual
        plc.sim.unmute()
        await until(lambda: plc._state.link_ok)
        assert m.requests["belt_run_request"] == 0 and not m.belt_running
