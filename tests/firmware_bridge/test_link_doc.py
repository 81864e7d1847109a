"""docs/xray-controller-link.md is what a vendor implements from: its byte vectors must be the codec's."""

from __future__ import annotations

import re
from pathlib import Path

from firmware_bridge import codec
from firmware_bridge.codec import FrameDecoder, MsgType, NakReason

DOC = Path(__file__).resolve().parents[2] / "docs" / "xray-controller-link.md"


def doc_vectors() -> dict[str, bytes]:
    """The rows of the document's byte-vector table: description -> wire bytes."""
    rows = re.findall(r"^\| ([^|]+?) \| `([0-9a-f ]+)` \|$", DOC.read_text(), re.MULTILINE)
    return {name: bytes.fromhex(wire) for name, wire in rows}


def test_every_documented_vector_decodes_to_the_frame_it_describes():
    vectors = doc_vectors()
    assert len(vectors) == 8
    (status,) = FrameDecoder().feed(vectors["STATUS, seq 1"])
    assert (status.type, status.seq, status.payload) == (MsgType.STATUS, 1, b"")
    (hello,) = FrameDecoder().feed(vectors["HELLO, seq 0, protocol 1, host max 16384"])
    assert codec.HelloRequest.decode(hello.payload) == codec.HelloRequest(1, 16384)
    (beat,) = FrameDecoder().feed(vectors["HEARTBEAT, boot id 0x12345678, uptime 1000 ms"])
    assert codec.Heartbeat.decode(beat.payload) == codec.Heartbeat(0x12345678, 1000)
    (start,) = FrameDecoder().feed(vectors["START_SCAN, seq 6, scan id 0xDEADBEEF"])
    assert (start.type, start.seq, codec.decode_scan_id(start.payload)) == (MsgType.START_SCAN, 6, 0xDEADBEEF)
    (nak,) = FrameDecoder().feed(vectors["NAK of seq 7, INTERLOCKS_OPEN"])
    assert codec.decode_nak(nak.payload) == (7, NakReason.INTERLOCKS_OPEN)
    (ack,) = FrameDecoder().feed(vectors["ACK of seq 5, Status(interlocks closed, armed, 160.0 kV, 1.00 mA)"])
    seq, body = codec.decode_ack(ack.payload)
    assert (seq, codec.Status.decode(body)) == (5, codec.Status(True, True, False, 160.0, 1.0, 0))


def test_every_documented_vector_is_what_the_codec_sends():
    for name, wire in doc_vectors().items():
        (frame,) = FrameDecoder().feed(wire)
        assert codec.encode_frame(frame) == wire, name


def test_the_documented_message_table_matches_the_codec():
    documented = dict(re.findall(r"^\| 0x([0-9a-f]{2}) \| (\w+) \|", DOC.read_text(), re.MULTILINE))
    assert {int(code, 16): name for code, name in documented.items()} == {t.value: t.name for t in MsgType}
    reasons = dict(re.findall(r"(\d+) ([A-Z_]{4,})", DOC.read_text().split("**NAK reasons**")[1].split("Rules")[0]))
    assert {int(v): k for v, k in reasons.items()} == {r.value: r.name for r in NakReason}
