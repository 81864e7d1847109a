"""Firmware image transfer: BEGIN (size, SHA-256), CHUNKs at increasing offsets, COMMIT.

The firmware checks the image's SHA-256 before it commits (NAK BAD_IMAGE otherwise) and reboots
into it; the host waits for the next HELLO and checks that it announces the image's hash.
The firmware refuses each step of an update (BEGIN, CHUNK, COMMIT) while armed or scanning (NAK BUSY).
"""

from __future__ import annotations

import asyncio
import hashlib

import structlog

from firmware_bridge import codec
from firmware_bridge.codec import MsgType
from firmware_bridge.errors import BridgeError
from firmware_bridge.link import HostLink

log = structlog.get_logger(__name__)


class UpdateFailed(BridgeError):
    """The firmware did not come back running the image that was sent."""


async def update_firmware(link: HostLink, image: bytes, *, chunk: int = 1024,
                          reboot_timeout_s: float = 10.0) -> codec.HelloInfo:
    """Send `image`, commit it and return the HELLO of the firmware that boots from it."""
    digest = hashlib.sha256(image).digest()
    old = await link.wait_up(reboot_timeout_s)
    await link.request(MsgType.UPDATE_BEGIN, codec.UpdateBegin(len(image), digest).encode())
    for offset in range(0, len(image), chunk):
        await link.request(MsgType.UPDATE_CHUNK, codec.encode_update_chunk(offset, image[offset : offset + chunk]))
    sessions = link.sessions
    await link.request(MsgType.UPDATE_COMMIT)
    log.info("firmware_update.committed", link=link.name, size=len(image), sha256=digest.hex()[:16])
    try:
        async with asyncio.timeout(reboot_timeout_s):
            while link.sessions == sessions or not link.up:
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise UpdateFailed(f"firmware on {link.settings.port} did not come back within {reboot_timeout_s:.1f} s "
                           f"after the update commit", last_frames=link.last_frames) from None
    new = await link.wait_up(reboot_timeout_s)
    if new.firmware_hash != digest:
        raise UpdateFailed(f"firmware on {link.settings.port} came back with hash {new.firmware_hash.hex()[:16]}, "
                           f"not the image's {digest.hex()[:16]}", last_frames=link.last_frames)
    log.info("firmware_update.done", link=link.name, old=old.firmware_version, new=new.firmware_version)
    return new

