"""EM4100 codec: known byte vectors and property tests (round trip, any chunking, garbage)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid.codec import Em4100Decoder, Em4100Tag, encode_frame

# Checksums computed by hand: 1A^2B^3C^4D^5E = 1E, 01^02^03^04^05 = 01.
VECTORS = [
    ("1A2B3C4D5E", b"\x021A2B3C4D5E1E\x03", "0725372254", "060,19806"),
    ("0102030405", b"\x02010203040501\x03", "0033752069", "003,01029"),
    ("FFFFFFFFFF", b"\x02FFFFFFFFFFFF\x03", "4294967295", "255,65535"),
]


@pytest.mark.parametrize("tag_hex,frame,decimal,fc", VECTORS)
def test_known_vectors(tag_hex: str, frame: bytes, decimal: str, fc: str) -> None:
    raw = bytes.fromhex(tag_hex)
    assert encode_frame(raw) == frame
    assert encode_frame(raw, crlf=True) == frame[:-1] + b"\r\n\x03"
    dec = Em4100Decoder()
    (tag,) = dec.feed(frame)
    assert tag.raw == raw and tag.hex == tag_hex and tag.decimal10 == decimal and tag.facility_card == fc
    (tag,) = dec.feed(frame[:-1] + b"\r\n\x03")
    assert tag.raw == raw


def test_lowercase_hex_is_accepted() -> None:
    assert Em4100Decoder().feed(b"\x021a2b3c4d5e1e\x03") == [Em4100Tag(bytes.fromhex("1A2B3C4D5E"))]


def test_bad_checksum_is_counted_and_dropped() -> None:
    dec = Em4100Decoder()
    assert dec.feed(b"\x021A2B3C4D5E1F\x03") == []
    assert dec.stats.checksum_errors == 1 and "1F" in dec.last_error


def test_resynchronises_after_truncated_frame_and_garbage() -> None:
    dec = Em4100Decoder()
    good = encode_frame(bytes.fromhex("1A2B3C4D5E"))
    tags = dec.feed(b"noise\x03\x021A2B3C" + good + b"\xff\x00\x02" + b"Z" * 40 + good)
    assert [t.hex for t in tags] == ["1A2B3C4D5E", "1A2B3C4D5E"]
    assert dec.stats.framing_errors == 2 and dec.stats.frames == 2 and dec.stats.bytes_discarded > 40


def test_encode_refuses_wrong_length() -> None:
    with pytest.raises(ValueError, match="5 bytes"):
        encode_frame(b"\x01\x02")


raws = st.binary(min_size=5, max_size=5)


@given(raw=raws, crlf=st.booleans())
def test_round_trip(raw: bytes, crlf: bool) -> None:
    (tag,) = Em4100Decoder().feed(encode_frame(raw, crlf=crlf))
    assert tag.raw == raw and int(tag.decimal10) == int.from_bytes(raw[1:], "big")


@given(tags=st.lists(raws, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 200), max_size=30),
       crlf=st.booleans())
def test_any_chunking(tags: list[bytes], cuts: list[int], crlf: bool) -> None:
    stream = b"".join(encode_frame(r, crlf=crlf) for r in tags)
    points = sorted({0, len(stream), *[c % (len(stream) + 1) for c in cuts]})
    dec = Em4100Decoder()
    got = [t.raw for a, b in itertools.pairwise(points) for t in dec.feed(stream[a:b])]
    assert got == tags


@given(garbage=st.binary(max_size=300), raw=raws)
def test_garbage_never_crashes_and_next_frame_is_read(garbage: bytes, raw: bytes) -> None:
    dec = Em4100Decoder()
    dec.feed(garbage)
    # Garbage may leave a half frame open; the next STX restarts cleanly.
    assert [t.raw for t in dec.feed(encode_frame(raw))][-1:] == [raw]


def test_rejects_are_counted_by_reason() -> None:
    dec = Em4100Decoder()
    good = encode_frame(bytes.fromhex("1A2B3C4D5E"))
    dec.feed(b"\x021A2B3C4D5E1F\x03")  # checksum
    dec.feed(b"\x021A2B3C4D5E\r\n\x03")  # ten hex digits, no checksum: another reader format
    dec.feed(b"0007243855\r\n")  # a decimal ASCII line without STX/ETX
    dec.feed(b"\x021A2B" + good)  # interrupted by the next STX
    dec.feed(b"\x02" + b"Z" * 40)  # no ETX
    assert dec.stats.rejects == {"checksum": 1, "bad_body": 1, "unframed": 1, "interrupted": 1, "too_long": 1}
    assert dec.stats.framing_errors == 3 and dec.stats.checksum_errors == 1 and dec.stats.frames == 1
    assert dec.last_reject == ("too_long", b"Z" * 15)
