"""Device states as the screen, /healthz and /metrics show them, with readers on real ptys."""

from __future__ import annotations

import asyncio
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


async def test_frames_rejected_from_the_xray_controller_are_exported_across_sessions_and_logged_once_a_session(
        tmp_path) -> None:  # noqa: ANN001
    """Rejected frames were counted per session only (gone at each reconnect) and logged at debug level."""
    import numpy as np
    import structlog.testing

    from drivers.xray import ScannerConfig, open_scanner
    from edge.devices import Devices
    from models.scan import Scan, save_scan

    img = np.full((40, 32), 60000, np.uint16)
    save_scan(Scan(high=img, low=img // 2, meta={"source": "test"}), tmp_path / "scan.npz")
    cfg = ScannerConfig(kind="sim", sim={"scan_dir": tmp_path, "boot_ms": 100}, heartbeat_ms=50, stale_ms=300,
                        reconnect_ms=50, ack_timeout_ms=100, ready_timeout_ms=2000)
    metrics = StationMetrics()
    with structlog.testing.capture_logs() as logs:
        async with open_scanner(cfg, "xray") as scanner:
            metrics.follow_devices(Devices(scanner=scanner))
            emu = scanner.emulator
            for session in (1, 2):
                await until(lambda: scanner.link.sessions == session)
                emu.emit_garbage(3000)
                await scanner.status()
                assert scanner.link.stats["rejected"] > 0
                if session == 1:
                    first = scanner.link.frames_rejected
                    await emu.reboot()
            value = metrics.registry.get_sample_value("edge_xray_frames_rejected_total", {"device": "xray"})
            assert value == scanner.link.frames_rejected > first
    warned = [e for e in logs if e["event"] == "xray_link.frame_rejected"]
    assert len(warned) == 2 and all(e["log_level"] == "warning" and e["reason"] for e in warned)


async def test_an_llrp_lane_reader_opens_by_the_same_path_and_its_tags_become_identities() -> None:
    """kind = "llrp" with a [sim] table: the simulator on TCP, the client on it, TID and EPC into the record."""
    from central_sync.schema import ItemKind
    from drivers.rfid import LlrpConfig
    from edge.events import EventBus
    from edge.inspection import Item
    from edge.stations.identify import TagWindow

    cfg = DevicesSection(readers={"lane": LlrpConfig(kind="llrp", antennas=(1, 2), keepalive_s=0.5,
                                                     sim={"read_ms": 20})})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        assert devices.states()["reader:lane"]["state"] == "ok"
        reader = devices.readers["lane"]
        window = TagWindow(devices, EventBus())
        item = Item("vehicle-1", ItemKind.VEHICLE)
        window.start(item)
        task = asyncio.create_task(window.run())
        await asyncio.sleep(0.05)
        reader.sim.present("300833B2DDD9014000000001", "E2801160200073F1A2B3C4D5", antenna=2, seconds=0.3)
        await until(lambda: len(item.identities) == 2, "the vehicle's tag is in the record")
        task.cancel()
        assert {(i.kind, i.value, i.source) for i in item.identities} == {
            ("rfid_tid", "E2801160200073F1A2B3C4D5", "lane"), ("rfid_epc", "300833B2DDD9014000000001", "lane")}
        assert devices.states()["reader:lane"]["rejects"] == {} and devices.states()["reader:lane"]["reconnects"] == 0


async def test_a_tag_already_in_the_field_joins_an_item_opened_later_and_a_gone_one_does_not() -> None:
    from central_sync.schema import ItemKind
    from drivers.rfid import LlrpConfig
    from edge.events import EventBus
    from edge.inspection import Item
    from edge.stations.identify import TagWindow

    cfg = DevicesSection(readers={"uhf": LlrpConfig(kind="llrp", keepalive_s=0.5, removal_after_ms=100,
                                                    sim={"read_ms": 20})})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        await asyncio.sleep(0.05)
        sim = devices.readers["uhf"].sim
        gone = sim.present("300833B2DDD9014000000009", "E2801160200073F1A2B30009", seconds=0.1)
        sim.present("300833B2DDD9014000000001", "E2801160200073F1A2B30001", seconds=30)
        await gone
        await until(lambda: ("uhf", "E2801160200073F1A2B30001") in window._present
                    and ("uhf", "E2801160200073F1A2B30009") not in window._present, "one tag in the field")
        item = Item("vehicle-2", ItemKind.VEHICLE)
        window.start(item)
        task.cancel()
    assert sorted(i.value for i in item.identities) == ["300833B2DDD9014000000001", "E2801160200073F1A2B30001"]


async def test_llrp_malformed_messages_and_reconnects_are_exported() -> None:
    from drivers.rfid import LlrpConfig

    cfg = DevicesSection(readers={"uhf": LlrpConfig(kind="llrp", keepalive_s=0.5, reconnect_min_ms=20,
                                                    sim={"read_ms": 20})})
    metrics = StationMetrics()
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        metrics.follow_devices(devices)
        reader = devices.readers["uhf"]
        reader.sim.send_raw(bytes.fromhex("043D" "00000011" "00000001" "00F00007" "810002"))  # no EPC in the tag
        reader.sim.send_raw(bytes.fromhex("0C3E0000000A00000001"))  # version 3: the connection is dropped
        await until(lambda: reader.reconnects >= 1 and reader.link_ok, "the reader is back after the bad header")
        sample = lambda reason: metrics.registry.get_sample_value(  # noqa: E731
            "edge_reader_rejects_total", {"reader": "uhf", "reason": reason})
        assert (sample("missing_parameter"), sample("bad_version")) == (1, 1)
        assert metrics.registry.get_sample_value("edge_reader_reconnects_total", {"reader": "uhf"}) >= 1
        # a malformed message is a reject, not a driver fault (tests/drivers/test_llrp_client.py injects one)
        assert metrics.registry.get_sample_value("edge_reader_session_failures_total", {"reader": "uhf"}) == 0
        assert devices.states()["reader:uhf"]["rejects"] == {"missing_parameter": 1, "bad_version": 1}


async def test_a_tid_read_with_another_epc_is_flagged_on_the_screen() -> None:
    from drivers.rfid import LlrpConfig
    from edge.events import EventBus
    from edge.stations.identify import TagWindow

    cfg = DevicesSection(readers={"lane": LlrpConfig(kind="llrp", keepalive_s=0.5, removal_after_ms=100,
                                                     sim={"read_ms": 20})})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        bus = EventBus()
        window = TagWindow(devices, bus)
        task = asyncio.create_task(window.run())
        with bus.subscribe() as sub:
            await asyncio.sleep(0.05)
            sim = devices.readers["lane"].sim
            await sim.present("300833B2DDD9014000000001", "E2801160200073F1A2B3C4D5", seconds=0.2)
            await until(lambda: not window.binder.lanes_of, "the tag left")
            sim.present("300833B2DDD90140000000FF", "E2801160200073F1A2B3C4D5", seconds=0.2)
            event = await asyncio.wait_for(sub.get(), 30)
        task.cancel()
    assert event.topic == "rfid_flag" and event.data["flag"] == "epc_changed"
    assert event.data["detail"] == ("tag TID E2801160200073F1A2B3C4D5 was bound to EPC 300833B2DDD9014000000001 "
                                    "and now reads EPC 300833B2DDD90140000000FF at lane lane")


async def test_a_plc_is_ok_only_once_its_link_is_up() -> None:
    """A Modbus client opens whether or not a PLC answers: the open alone said ok until a flow read the first
    state. Now a PLC that does not answer is lost from the start; the simulator's is ok once its heartbeat moves."""
    from central_sync.devtools import free_port
    from drivers.plc import PlcConfig

    absent = DevicesSection(plc=PlcConfig(kind="modbus-tcp", port=free_port(), timeout_ms=50, reconnect_delay_ms=50))
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, absent, "st-1")
        assert devices.plc is not None
        plc = devices.states()["plc"]
        assert plc["state"] == "lost" and plc["detail"], plc
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection(plc=PlcConfig(kind="sim")), "st-1")
        assert devices.states()["plc"] == {"state": "ok", "detail": ""}
        assert (await devices.plc.read_state()).link_ok


async def test_a_drop_folder_that_went_away_shows_the_source_degraded_and_ok_again(tmp_path) -> None:  # noqa: ANN001
    """The file drop waits for a folder it cannot list (a share remounted), degraded: the screen said ok meanwhile."""
    import contextlib
    import shutil

    from drivers.retrofit import RetrofitConfig

    folder = tmp_path / "drop"
    folder.mkdir()
    cfg = DevicesSection(source=RetrofitConfig(kind="filedrop", folder=folder, poll_ms=20))
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        assert devices.source is not None

        async def drain() -> None:
            async with contextlib.aclosing(devices.source.scans()) as scans:  # type: ignore[union-attr]
                async for _ in scans:
                    pass

        task = asyncio.create_task(drain())
        try:
            await until(lambda: (folder / "processed").exists(), "the source looked at its folder")
            shutil.rmtree(folder)
            await until(lambda: devices.states()["source"]["state"], "the source degraded", check=lambda s: s == "degraded")
            assert str(folder) in devices.states()["source"]["detail"]
            folder.mkdir()
            await until(lambda: devices.states()["source"]["state"], "the source ok again", check=lambda s: s == "ok")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
