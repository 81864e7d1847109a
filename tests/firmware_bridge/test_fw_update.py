"""Firmware image transfer with hash check, against the emulator over a pty."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from firmware_bridge import codec
from firmware_bridge.codec import MsgType, NakReason
from firmware_bridge.emulator import FirmwareEmulator
from firmware_bridge.errors import Nak
from firmware_bridge.link import HostLink, LinkSettings
from firmware_bridge.update import update_firmware
from models.scan import Scan
from polling import until

FAST = dict(heartbeat_s=0.05, stale_s=0.3, reconnect_s=0.05, ack_timeout_s=0.1)
SCAN = Scan(high=np.full((4, 8), 1000, np.uint16), low=np.full((4, 8), 900, np.uint16))


async def test_update_transfers_image_and_firmware_returns_with_its_hash() -> None:
    image = os.urandom(5000)
    async with FirmwareEmulator([SCAN], boot_s=0.1) as emu, \
            HostLink(LinkSettings(port=emu.port, **FAST), lambda f: b"") as link:
        old = await link.wait_up(3)
        new = await update_firmware(link, image, chunk=700)
    assert new.firmware_hash == hashlib.sha256(image).digest() != old.firmware_hash
    assert new.boot_id != old.boot_id


async def test_update_with_wrong_hash_is_refused_and_firmware_unchanged() -> None:
    async with FirmwareEmulator([SCAN]) as emu, \
            HostLink(LinkSettings(port=emu.port, **FAST), lambda f: b"") as link:
        before = await link.wait_up(3)
        await link.request(MsgType.UPDATE_BEGIN, codec.UpdateBegin(4, bytes(32)).encode())
        await link.request(MsgType.UPDATE_CHUNK, codec.encode_update_chunk(0, b"abcd"))
        with pytest.raises(Nak) as refused:
            await link.request(MsgType.UPDATE_COMMIT)
        assert refused.value.reason == NakReason.BAD_IMAGE
        assert emu.firmware_hash == before.firmware_hash


async def test_update_refused_while_armed() -> None:
    async with FirmwareEmulator([SCAN]) as emu, \
            HostLink(LinkSettings(port=emu.port, **FAST), lambda f: b"") as link:
        await link.wait_up(3)
        await link.request(MsgType.ARM)
        with pytest.raises(Nak) as refused:
            await update_firmware(link, b"image")
        assert refused.value.reason == NakReason.BUSY


async def test_no_step_of_an_update_is_taken_while_armed_or_scanning() -> None:
    """An update begun while disarmed, then ARM and START_SCAN: its chunk and commit were acknowledged and the
    controller rebooted into the image mid-scan. Now each is refused BUSY; once disarmed the update completes."""
    image = os.urandom(100)
    long_scan = Scan(high=np.full((4000, 8), 1000, np.uint16), low=np.full((4000, 8), 900, np.uint16))
    async with FirmwareEmulator([long_scan], boot_s=0.1, line_rate=200) as emu, \
            HostLink(LinkSettings(port=emu.port, **FAST), lambda f: b"") as link:
        await link.wait_up(3)
        await link.request(MsgType.UPDATE_BEGIN, codec.UpdateBegin(len(image), hashlib.sha256(image).digest()).encode())
        await link.request(MsgType.ARM)
        await link.request(MsgType.START_SCAN, codec.encode_scan_id(7))
        chunk = codec.encode_update_chunk(0, image)
        for step, payload in ((MsgType.UPDATE_CHUNK, chunk), (MsgType.UPDATE_COMMIT, b"")):
            with pytest.raises(Nak) as refused:
                await link.request(step, payload)
            assert refused.value.reason == NakReason.BUSY
        assert emu.scanning and emu.counters["reboots"] == 0
        await link.request(MsgType.DISARM)
        await link.request(MsgType.UPDATE_CHUNK, chunk)
        await link.request(MsgType.UPDATE_COMMIT)
        await until(lambda: emu.firmware_hash == hashlib.sha256(image).digest())
