"""Line-scan acquisitions against the firmware emulator: a scan the inspection stops reading is stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from drivers.xray import ScannerConfig, open_scanner
from edge.devices import Devices
from edge.stations.acquisition import LineScan, start_line_scan
from models.scan import Scan, save_scan
from polling import until

FAST = dict(heartbeat_ms=50, stale_ms=300, reconnect_ms=50, ack_timeout_ms=100, scan_idle_timeout_ms=2000,
            ready_timeout_ms=1000)


def _config(tmp_path: Path, lines: int = 400) -> ScannerConfig:
    """A scan that takes 80 s at 5 lines/s: it ends early only if the host stops it."""
    img = np.full((lines, 32), 60000, np.uint16)
    img[50:60, 8:20] = 9000
    save_scan(Scan(high=img, low=img // 2, meta={"source": "test"}), tmp_path / "scan.npz")
    return ScannerConfig(kind="sim", sim={"scan_dir": tmp_path, "line_rate": 5, "boot_ms": 100}, **FAST)


async def _next_scan_completes(devices: Devices) -> None:
    """The scanner takes the next scan and delivers it whole. Fast (4,000 lines/s) with a FIFO that
    never overruns: at that rate the emulator's 512 lines are 128 ms, which a loaded test machine
    once fell behind by (a FIFO overflow is its own test, tests/drivers/test_xray_scanner.py)."""
    devices.scanner.emulator.line_rate = 4000
    devices.scanner.emulator.fifo_lines = 10**9
    acquisition = await start_line_scan(devices, "next")
    assert isinstance(acquisition, LineScan), getattr(acquisition, "message", "")
    async for _ in acquisition.blocks():
        pass
    assert acquisition.result().complete


async def test_acquisition_closed_early_stops_the_scan(tmp_path: Path) -> None:
    async with open_scanner(_config(tmp_path), "xray") as scanner:
        devices = Devices(scanner=scanner)
        acquisition = await start_line_scan(devices, "closed")
        assert isinstance(acquisition, LineScan)
        blocks = acquisition.blocks()
        await anext(blocks)
        await blocks.aclose()
        await until(lambda: not scanner.emulator.scanning)
        await _next_scan_completes(devices)


async def test_acquisition_abandoned_by_a_failing_consumer_stops_the_scan(tmp_path: Path) -> None:
    async def consume(acquisition: LineScan) -> None:
        async for _ in acquisition.blocks():
            raise ValueError("the model failed on this block")

    async with open_scanner(_config(tmp_path), "xray") as scanner:
        devices = Devices(scanner=scanner)
        acquisition = await start_line_scan(devices, "abandoned")
        assert isinstance(acquisition, LineScan)
        try:
            await consume(acquisition)
        except ValueError:
            pass
        await until(lambda: not scanner.emulator.scanning)
        await _next_scan_completes(devices)


async def test_cancelled_inspection_stops_the_scan(tmp_path: Path) -> None:
    async with open_scanner(_config(tmp_path), "xray") as scanner:
        devices = Devices(scanner=scanner)
        acquisition = await start_line_scan(devices, "cancelled")
        assert isinstance(acquisition, LineScan)
        got = asyncio.Event()

        async def consume() -> None:
            async for _ in acquisition.blocks():
                got.set()

        task = asyncio.create_task(consume())
        await got.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await until(lambda: not scanner.emulator.scanning)
        await _next_scan_completes(devices)


async def test_a_controller_reporting_a_fault_gets_no_start_scan_and_the_item_goes_to_manual(tmp_path: Path) -> None:
    """STATUS said HV_FAULT and TUBE_OVERTEMP and START_SCAN was sent all the same: the item got judged on a scan from
    a faulty tube. Now no scan starts (one sentence naming the bits, counted); the latched event bits (HOST_LOST after
    a silent host: the emulator keeps it until it reboots) never stop a scan."""
    from edge.metrics import StationMetrics
    from edge.stations.acquisition import FailedAcquisition
    from firmware_bridge.codec import Fault

    metrics = StationMetrics()
    async with open_scanner(_config(tmp_path), "xray") as scanner:
        devices = Devices(scanner=scanner)
        metrics.follow_devices(devices)
        emulator = scanner.emulator
        emulator.fault_bits = Fault.HOST_LOST | Fault.HV_FAULT | Fault.TUBE_OVERTEMP
        refused = await start_line_scan(devices, "bag-7")
        assert isinstance(refused, FailedAcquisition)
        assert refused.message == ("X-ray controller xray reports the fault HV_FAULT, TUBE_OVERTEMP in its STATUS "
                                   "(faults 0x0000000d), so no scan was started for item bag-7")
        assert not emulator.scanning and not emulator.armed
        assert devices.states()["scanner"]["state"] == "degraded"
        assert metrics.registry.get_sample_value("edge_xray_scans_refused_fault_total", {"device": "xray"}) == 1

        emulator.fault_bits = 1 << 20  # a bit this protocol version does not define: a fault all the same
        refused = await start_line_scan(devices, "bag-8")
        assert isinstance(refused, FailedAcquisition) and "bit20" in refused.message
        assert metrics.registry.get_sample_value("edge_xray_scans_refused_fault_total", {"device": "xray"}) == 2

        emulator.fault_bits = Fault.HOST_LOST | Fault.FIFO_OVERFLOW | Fault.WATCHDOG_RESET
        await _next_scan_completes(devices)
