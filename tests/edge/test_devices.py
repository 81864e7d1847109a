"""Device states as the screen, /healthz and /metrics show them, with readers on real ptys."""

from __future__ import annotations

from contextlib import AsyncExitStack

from drivers.rfid import RfidConfig, encode_frame
from edge.config import DevicesSection
from edge.devices import open_devices
from edge.metrics import StationMetrics
from polling import until


async def test_unplugged_reader_shows_lost_and_returns_to_ok() -> None:
    cfg = DevicesSection(readers={"lane": RfidConfig(kind="sim", reconnect_delay_ms=50)})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        state = lambda: devices.states()["reader:lane"]["state"]  # noqa: E731
        assert state() == "ok"
        reader = devices.readers["lane"]
        reader.sim.unplug()
        await until(lambda: state() == "lost")
        assert reader.sim.port in devices.states()["reader:lane"]["detail"]
        reader.sim.replug()
        await until(lambda: state() == "ok")


async def test_reader_rejects_are_exported_by_reason_and_on_health() -> None:
    cfg = DevicesSection(readers={"lane": RfidConfig(kind="sim")})
    metrics = StationMetrics()
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        metrics.follow_devices(devices)
        reader = devices.readers["lane"]
        reader.sim.send_raw(b"\x021A2B3C4D5E1F\x03" + encode_frame(bytes.fromhex("0102030405")))
        await until(lambda: reader.decoder.stats.frames == 1)
        value = metrics.registry.get_sample_value("edge_reader_rejects_total",
                                                  {"reader": "lane", "reason": "checksum"})
        assert value == 1
        assert devices.states()["reader:lane"]["rejects"] == {"checksum": 1}


async def test_unsent_xray_stops_are_exported(tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    from drivers.xray import ScannerConfig, open_scanner
    from edge.devices import Devices
    from models.scan import Scan, save_scan

    img = np.full((400, 32), 60000, np.uint16)
    save_scan(Scan(high=img, low=img // 2, meta={"source": "test"}), tmp_path / "scan.npz")
    cfg = ScannerConfig(kind="sim", sim={"scan_dir": tmp_path, "line_rate": 5, "boot_ms": 100}, heartbeat_ms=50,
                        stale_ms=300, reconnect_ms=50, ack_timeout_ms=100, ready_timeout_ms=300)
    metrics = StationMetrics()
    async with open_scanner(cfg, "xray") as scanner:
        metrics.follow_devices(Devices(scanner=scanner))
        await scanner.arm()
        stream = await scanner.start_scan("unplugged")
        await anext(stream)
        scanner.emulator.unplug()
        await until(lambda: scanner.stops_failed >= 1)
        value = metrics.registry.get_sample_value("edge_xray_stops_failed_total", {"device": "xray"})
        assert value is not None and value >= 1
