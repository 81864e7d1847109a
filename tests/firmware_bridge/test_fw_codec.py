"""Codec of the controller link: known byte vectors and property tests."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import codec
from firmware_bridge.codec import Frame, FrameDecoder, MsgType
from firmware_bridge.errors import FrameError, PayloadError

# Wikipedia's COBS examples (without the trailing delimiter).
COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]

FRAME_VECTORS = [
    (Frame(type=MsgType.STATUS, seq=1), "04 01 10 01 01 01 05 e1 82 c2 a2 00"),
    (Frame(type=MsgType.ACK, seq=0, payload=codec.encode_ack(7)), "03 01 03 01 02 02 02 07 05 26 9b 28 7d 00"),
    (Frame(type=MsgType.LINE, seq=258, payload=codec.Line(1, 2, np.array([0, 65535], np.uint16),
                                                           np.array([256, 1], np.uint16)).encode()),
     "06 01 20 02 01 12 02 01 01 01 02 02 01 01 02 02 01 01 03 ff ff 03 01 01 05 6f a1 33 87 00"),
]


@pytest.mark.parametrize(("raw", "enc"), COBS_VECTORS)
def test_cobs_known_vectors(raw: bytes, enc: bytes) -> None:
    assert codec.cobs_encode(raw) == enc
    assert codec.cobs_decode(enc) == raw


def test_crc_is_crc32_iso_hdlc() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize(("frame", "wire"), FRAME_VECTORS)
def test_frame_known_vectors(frame: Frame, wire: str) -> None:
    assert codec.encode_frame(frame).hex(" ") == wire
    assert FrameDecoder().feed(bytes.fromhex(wire)) == [frame]


def test_crc_error_is_rejected_and_counted() -> None:
    wire = bytearray(codec.encode_frame(Frame(type=MsgType.STATUS, seq=5)))
    wire[2] ^= 0x40
    errors: list[str] = []
    dec = FrameDecoder(on_error=lambda raw, why: errors.append(why))
    assert dec.feed(bytes(wire)) == []
    assert dec.errors == 1 and "CRC" in errors[0]


def test_oversize_run_is_discarded_without_buffering() -> None:
    dec = FrameDecoder(max_frame=64)
    good = codec.encode_frame(Frame(type=MsgType.STATUS, seq=9))
    out = []
    for _ in range(1000):  # 100 kB without a delimiter
        out += dec.feed(b"\x55" * 100)
        assert len(dec._buf) <= codec.cobs_max(64)
    out += dec.feed(b"\x00" + good)
    assert out == [Frame(type=MsgType.STATUS, seq=9)]
    assert dec.errors == 1


def test_a_max_frame_negotiated_down_bounds_the_buffer_too() -> None:
    """HELLO sets the decoder's max_frame: the buffer's limit follows it (it stayed at the 16384-byte frame's)."""
    dec = FrameDecoder()
    dec.max_frame = 64
    dec.feed(b"\x55" * 1000)
    assert len(dec._buf) <= codec.cobs_max(64)
    assert dec.feed(b"\x00" + codec.encode_frame(Frame(type=MsgType.STATUS, seq=9))) == \
        [Frame(type=MsgType.STATUS, seq=9)]
    assert dec.errors == 1


def test_length_field_checked_against_limit_before_payload() -> None:
    body = codec.HEADER.pack(codec.VERSION, MsgType.LINE, 0, 60000) + b"\x01" * 8
    raw = codec.cobs_encode(body + codec.CRC.pack(zlib.crc32(body)))
    with pytest.raises(FrameError, match="announces 60000"):
        codec.decode_frame(raw)


def test_encode_refuses_oversize_payload() -> None:
    with pytest.raises(FrameError):
        codec.encode_frame(Frame(type=MsgType.LINE, seq=0, payload=bytes(codec.MAX_FRAME)))


def test_wrong_version_is_rejected() -> None:
    wire = codec.encode_frame(Frame(type=MsgType.STATUS, seq=1, version=2))
    assert FrameDecoder().feed(wire) == []


def test_a_valid_frame_of_another_protocol_version_names_the_peers_version() -> None:
    dec = FrameDecoder()
    corrupted = bytearray(codec.encode_frame(Frame(type=MsgType.STATUS, seq=1, version=3)))
    corrupted[-3] ^= 0x40  # a CRC byte: noise, not a peer speaking version 3
    assert dec.feed(bytes(corrupted)) == [] and dec.peer_version is None
    assert dec.feed(codec.encode_frame(Frame(type=MsgType.STATUS, seq=1, version=2))) == []
    assert dec.peer_version == 2 and dec.errors == 2
    assert FrameDecoder(version=2).feed(codec.encode_frame(Frame(type=MsgType.STATUS, seq=1, version=2)))


def test_line_payload_width_must_match() -> None:
    payload = codec.Line(3, 4, np.arange(5, dtype=np.uint16), np.arange(5, dtype=np.uint16)).encode()
    with pytest.raises(PayloadError, match="width 5"):
        codec.Line.decode(payload[:-2])


def test_payload_round_trips() -> None:
    st_ = codec.Status(True, True, False, 160.0, 1.25, codec.Fault.HOST_LOST)
    assert codec.Status.decode(st_.encode()) == st_
    hello = codec.HelloInfo(7, 4096, 3, bytes(range(32)), "fw-2.1.0")
    assert codec.HelloInfo.decode(hello.encode()) == hello
    end = codec.ScanEnd(9, 1200, False)
    assert codec.ScanEnd.decode(end.encode()) == end
    assert codec.decode_nak(codec.encode_nak(70000, codec.NakReason.NOT_ARMED)) == (70000 & 0xFFFF, 4)


frames = st.builds(Frame, type=st.sampled_from(list(MsgType)), seq=st.integers(0, 0xFFFF),
                   payload=st.binary(max_size=600))


@given(st.binary(max_size=2000))
def test_cobs_round_trip(data: bytes) -> None:
    enc = codec.cobs_encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= codec.cobs_max(len(data))
    assert codec.cobs_decode(enc) == data


@given(st.lists(frames, max_size=8), st.data())
def test_any_chunking_yields_the_same_frames(fs: list[Frame], data: st.DataObject) -> None:
    wire = b"".join(codec.encode_frame(f) for f in fs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    dec, got, prev = FrameDecoder(), [], 0
    for cut in [*cuts, len(wire)]:
        got += dec.feed(wire[prev:cut])
        prev = cut
    assert got == fs


@settings(max_examples=300)
@given(st.binary(max_size=3000), st.lists(frames, min_size=1, max_size=3))
def test_garbage_never_crashes_and_decoder_resynchronises(garbage: bytes, fs: list[Frame]) -> None:
    dec = FrameDecoder(max_frame=1024)
    for f in dec.feed(garbage):
        assert isinstance(f, Frame)
    wire = b"\x00" + b"".join(codec.encode_frame(f) for f in fs)
    assert dec.feed(wire) == fs


@given(st.integers(codec.MAX_FRAME - codec.OVERHEAD + 1, 65535))
def test_oversize_length_rejected_before_allocation(length: int) -> None:
    body = codec.HEADER.pack(codec.VERSION, MsgType.LINE, 0, length) + b"\x07" * 16
    raw = codec.cobs_encode(body + codec.CRC.pack(zlib.crc32(body)))
    with pytest.raises(FrameError):
        codec.decode_frame(raw)


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF),
       st.lists(st.integers(0, 65535), min_size=1, max_size=300).flatmap(
           lambda xs: st.tuples(st.just(xs), st.lists(st.integers(0, 65535), min_size=len(xs), max_size=len(xs)))))
def test_line_round_trip(scan_id: int, index: int, channels: tuple[list[int], list[int]]) -> None:
    high, low = (np.array(c, np.uint16) for c in channels)
    back = codec.Line.decode(codec.Line(scan_id, index, high, low).encode())
    assert (back.scan_id, back.index) == (scan_id, index)
    np.testing.assert_array_equal(back.high, high)
    np.testing.assert_array_equal(back.low, low)
