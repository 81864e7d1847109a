"""A controller speaking another protocol version is named as such from the frames the link rejected."""

from __future__ import annotations

import random

from edge.diag.phases.links import peer_protocol
from firmware_bridge import codec
from firmware_bridge.codec import Frame, FrameDecoder

OURS = codec.VERSION


def _rejected(frames: list[Frame], noise: bytes = b"") -> tuple[bytes, ...]:
    """The link's history entries: what the real decoder rejects, as the endpoint keeps it (b"!" + 64 bytes)."""
    history: list[bytes] = []
    dec = FrameDecoder(on_error=lambda raw, why: history.append(b"!" + raw[:64]))
    dec.feed(noise + b"".join(codec.encode_frame(f) for f in frames))
    return tuple(history)


def test_a_whole_frame_of_another_version_names_it():
    assert peer_protocol(_rejected([Frame(type=0x81, seq=1, payload=b"ok", version=OURS + 1)])) == (OURS + 1, True)


def test_long_frames_of_another_version_name_it_when_they_agree():
    long = [Frame(type=0x82, seq=i, payload=bytes(120), version=OURS + 1) for i in range(3)]
    assert peer_protocol(_rejected(long)) == (OURS + 1, False)


def test_noise_is_not_a_protocol_version():
    rng = random.Random(5)
    noise = b"\x00".join(bytes(rng.randrange(1, 256) for _ in range(30)) for _ in range(6)) + b"\x00"
    assert peer_protocol(_rejected([], noise)) is None
    assert peer_protocol(_rejected([Frame(type=0x81, seq=1, payload=b"ok")])) is None  # ours is not rejected
