"""Host link against the firmware emulator over real pseudo-terminals."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import structlog.testing

from firmware_bridge import codec
from firmware_bridge.codec import Frame, MsgType, NakReason
from firmware_bridge.emulator import FirmwareEmulator
from firmware_bridge.endpoint import Endpoint, EndpointSettings
from firmware_bridge.errors import AckTimeout, Nak
from firmware_bridge.link import HostLink, LinkFault, LinkSettings, LinkUp
from models.scan import Scan, save_scan
from polling import until

FAST = dict(heartbeat_s=0.05, stale_s=0.3, reconnect_s=0.05, ack_timeout_s=0.1)


def _scan() -> Scan:
    img = np.full((20, 32), 60000, np.uint16)
    img[5:10, 8:20] = 9000
    return Scan(high=img, low=img // 2)


def _ignore(frame: Frame) -> bytes:
    return b""


@pytest.fixture
async def emu() -> AsyncIterator[FirmwareEmulator]:
    async with FirmwareEmulator([_scan()], heartbeat_s=0.05, host_stale_s=0.4, boot_s=0.2) as e:
        yield e


async def test_hello_announces_firmware_identity(emu: FirmwareEmulator) -> None:
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        hello = await link.wait_up(3)
    assert hello.firmware_version == emu.firmware_version
    assert hello.firmware_hash == emu.firmware_hash
    assert hello.boot_id == emu.boot_id
    assert hello.capabilities & codec.Capability.LINE_STREAM
    assert hello.max_frame == codec.MAX_FRAME


async def test_arm_refused_while_interlocks_open_and_bypass_always_refused(emu: FirmwareEmulator) -> None:
    emu.set_interlocks(False)
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        await link.wait_up(3)
        with pytest.raises(Nak) as refused:
            await link.request(MsgType.ARM)
        assert refused.value.reason == NakReason.INTERLOCKS_OPEN
        with pytest.raises(Nak) as bypass:
            await link.request(MsgType.BYPASS_INTERLOCKS)
        assert bypass.value.reason == NakReason.REFUSED_SAFETY
        status = codec.Status.decode(await link.request(MsgType.STATUS))
        assert not status.interlocks_closed and not status.armed
        emu.set_interlocks(True)
        await link.request(MsgType.ARM)
        assert codec.Status.decode(await link.request(MsgType.STATUS)).armed


async def test_unplug_faults_with_last_frames_and_replug_recovers(emu: FirmwareEmulator) -> None:
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        first = await link.wait_up(3)
        await link.request(MsgType.STATUS)
        emu.unplug()
        await until(lambda: not link.up)
        fault = next(e for e in link.events if isinstance(e, LinkFault))
        assert "read failed" in fault.reason or "end of file" in fault.reason
        assert any(f.startswith(b"<") for f in fault.last_frames)
        await asyncio.sleep(0.2)
        assert not link.up
        emu.replug()
        again = await link.wait_up(3)
        assert again.boot_id == first.boot_id
        await link.request(MsgType.STATUS)
        assert sum(isinstance(e, LinkUp) for e in link.events) == 2


async def test_stall_makes_heartbeat_stale_then_link_returns(emu: FirmwareEmulator) -> None:
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        await link.wait_up(3)
        emu.stall(0.8)
        await until(lambda: not link.up)
        assert "heartbeat" in next(e for e in link.events if isinstance(e, LinkFault)).reason
        await link.wait_up(3)
        await link.request(MsgType.STATUS)


async def test_reboot_is_detected_by_boot_id_and_session_restarts(emu: FirmwareEmulator) -> None:
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        old = await link.wait_up(3)
        await link.request(MsgType.ARM)
        await emu.reboot()
        await until(lambda: not link.up)
        new = await link.wait_up(3)
        assert new.boot_id != old.boot_id
        assert not codec.Status.decode(await link.request(MsgType.STATUS)).armed


async def test_firmware_goes_safe_when_host_heartbeat_stops(emu: FirmwareEmulator) -> None:
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        await link.wait_up(3)
        await link.request(MsgType.ARM)
        assert emu.armed
    await until(lambda: not emu.armed, timeout=3)
    assert emu.fault_bits & codec.Fault.HOST_LOST


async def test_endpoint_suppresses_duplicates_and_bounds_retries() -> None:
    sent: list[bytes] = []
    calls: list[int] = []

    def handler(frame: Frame) -> bytes:
        calls.append(frame.seq)
        return b"ok"

    ep = Endpoint(sent.append, handler, "test", EndpointSettings(ack_timeout_s=0.02, attempts=3))
    wire = codec.encode_frame(Frame(type=MsgType.ARM, seq=41))
    ep.feed(wire + wire)
    assert calls == [41] and len(sent) == 2 and sent[0] == sent[1]
    assert ep.stats["duplicates"] == 1
    sent.clear()
    with pytest.raises(AckTimeout, match="after 3 attempts"):
        await ep.request(MsgType.STATUS)
    assert len(sent) == 3 and len(set(sent)) == 1


async def test_nak_is_an_error_not_a_success() -> None:
    ep = Endpoint(lambda b: None, _ignore, "test", EndpointSettings(ack_timeout_s=1))
    fut = await ep.submit(MsgType.START_SCAN, codec.encode_scan_id(1))
    ep.feed(codec.encode_frame(Frame(type=MsgType.NAK, seq=0, payload=codec.encode_nak(0, NakReason.NOT_ARMED))))
    with pytest.raises(Nak, match="NOT_ARMED"):
        await fut


async def test_emulator_runs_as_its_own_process_for_the_station_twin(tmp_path: Path) -> None:
    save_scan(_scan(), tmp_path / "a.npz")
    link_path = tmp_path / "ttyXRAY"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware_bridge.emulator", "--scans", str(tmp_path), "--link", str(link_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(20):
            while (line := await proc.stdout.readline()).strip() != str(link_path).encode():  # type: ignore[union-attr]
                assert line, "emulator exited early"
        async with HostLink(LinkSettings(port=str(link_path), **FAST), _ignore) as link:
            await link.wait_up(5)
            await link.request(MsgType.ARM)
            proc.send_signal(signal.SIGUSR1)
            await until(lambda: not link.up)
            await link.wait_up(5)
            assert not codec.Status.decode(await link.request(MsgType.STATUS)).armed
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode == 0
    assert not link_path.is_symlink()


async def test_line_noise_is_rejected_and_the_session_survives(emu: FirmwareEmulator) -> None:
    async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
        await link.wait_up(3)
        for _ in range(5):
            emu.emit_garbage(3000)
            assert not codec.Status.decode(await link.request(MsgType.STATUS)).armed
        assert link.stats["rejected"] > 0
        assert link.sessions == 1


async def test_protocol_version_mismatch_is_a_warning_with_both_versions_and_the_fault_reason() -> None:
    async with FirmwareEmulator([_scan()], heartbeat_s=0.05, host_stale_s=0.4, boot_s=0.2,
                                protocol_version=2) as emu:
        events: list = []
        with structlog.testing.capture_logs() as logs:
            async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore, on_event=events.append) as link:
                await until(lambda: any(isinstance(e, LinkFault) for e in events))
                assert link.peer_version == 2 and not link.up
    fault = next(e for e in events if isinstance(e, LinkFault))
    assert "protocol version 2" in fault.reason and "version 1" in fault.reason
    warnings = [e for e in logs if e["event"] == "xray_link.version_mismatch"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert (warnings[0]["firmware_protocol"], warnings[0]["host_protocol"]) == (2, 1)


async def test_a_firmware_that_does_not_answer_is_reported_once_however_often_it_is_tried(emu: FirmwareEmulator) -> None:
    """A port that opens and a firmware that does not answer HELLO (a controller powered off behind its cable):
    each try fails the same way, one warning and one fault for all of them; a loss after the link came up is
    reported again."""
    emu.stall(60)
    with structlog.testing.capture_logs() as logs:
        async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
            await until(lambda: link.failed_tries >= 3, "three tries that did not come up")
            assert [e["event"] for e in logs if e["event"] == "xray_link.lost"] == ["xray_link.lost"]
            assert [type(e) for e in link.events] == [LinkFault] and "HELLO failed" in link.events[0].reason
            emu.resume()  # the controller is switched on
            await link.wait_up(5)
            emu.unplug()
            await until(lambda: len(link.events) == 3, "the loss after the link was up")
    assert [type(e) for e in link.events] == [LinkFault, LinkUp, LinkFault]
    assert [e["event"] for e in logs if e["event"] == "xray_link.lost"] == ["xray_link.lost"] * 2
    up = next(e for e in logs if e["event"] == "xray_link.up")
    assert up["failed_tries"] >= 3


async def test_a_hello_reply_with_a_max_frame_too_small_for_a_session_is_refused_naming_it() -> None:
    """A controller announcing max_frame 16 (0 in the audit): every later frame was rejected, the session went stale
    after 1 s and came up again, for ever, the reason never naming max_frame. Now no session comes up, and the one
    fault says why."""
    async with FirmwareEmulator([_scan()], heartbeat_s=0.05, host_stale_s=0.4, boot_s=0.2, max_frame=16) as emu:
        async with HostLink(LinkSettings(port=emu.port, **FAST), _ignore) as link:
            await until(lambda: link.failed_tries >= 3, "three sessions refused")
            assert not link.up and link.sessions == 0
    assert [type(e) for e in link.events] == [LinkFault]
    assert link.events[0].reason == (f"HELLO failed: the controller on {emu.port} announced max_frame 16 in its "
                                     f"HELLO reply, below the 21 bytes of a STATUS acknowledgement a session needs")
