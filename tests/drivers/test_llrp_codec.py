"""LLRP codec: byte vectors worked out from the standard, round trips of every message, any chunking,
malformed input named in one sentence, and a fuzzer (nothing but LlrpError, never a hang)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.rfid.llrp import codec as c
from drivers.rfid.llrp.errors import FramingError, LlrpError
from drivers.rfid.llrp.params import (
    AccessSpec,
    AntennaEvent,
    AntennaProperties,
    DeviceCapabilities,
    LlrpStatus,
    OpRead,
    ReaderEventData,
    RoSpec,
    TagReport,
)
from drivers.rfid.llrp.wire import Framer, encode_frame

EPC = bytes.fromhex("300833B2DDD9014000000001")
TS = bytes.fromhex("0005D2F1B4A3C000")  # a UTC time in microseconds

VECTORS = [
    # KEEPALIVE id 5: version 1 in bits 12-10 (0x0400) | type 62 (0x3E); length 10; id
    (c.Empty(c.KEEPALIVE, 5), "043E" "0000000A" "00000005"),
    (c.Empty(c.KEEPALIVE_ACK, 5), "0448" "0000000A" "00000005"),
    (c.Empty(c.CLOSE_CONNECTION, 9), "040E" "0000000A" "00000009"),
    # START_ROSPEC id 7, ROSpecID 1
    (c.SpecRequest(c.START_ROSPEC, 1, 7), "0416" "0000000E" "00000007" "00000001"),
    # ENABLE_ROSPEC_RESPONSE id 7: LLRPStatus (287 = 0x11F, length 8) Success, empty description
    (c.StatusResponse(34, LlrpStatus(), 7), "0422" "00000012" "00000007" "011F0008" "0000" "0000"),
    # ERROR_MESSAGE: status 109 M_UnsupportedMessage, description "no"
    (c.StatusResponse(c.ERROR_MESSAGE, LlrpStatus(109, "no"), 3),
     "0464" "00000014" "00000003" "011F000A" "006D" "0002" "6E6F"),
    # READER_EVENT_NOTIFICATION: data (246) = UTCTimestamp (128) + ConnectionAttemptEvent (256) Success
    (c.ReaderEventNotification(ReaderEventData(int.from_bytes(TS), 0), 1),
     "043F" "00000020" "00000001" "00F60016" "0080000C" + TS.hex() + "01000006" "0000"),
    # RO_ACCESS_REPORT: TagReportData (240) with EPC-96 (TV 13 = 0x8D), AntennaID (TV 1) 2, PeakRSSI (TV 6) -56
    (c.RoAccessReport((TagReport(EPC, True, antenna=2, rssi_dbm=-56),), 11),
     "043D" "00000020" "0000000B" "00F00016" "8D" + EPC.hex() + "810002" "86C8"),
    # the same EPC as EPCData (241): EPCLengthBits 96
    (c.RoAccessReport((TagReport(EPC),), 12), "043D" "00000020" "0000000C" "00F00016" "00F10012" "0060" + EPC.hex()),
    # SET_READER_CONFIG: no reset; KeepaliveSpec (220 = 0xDC) periodic, 2000 ms
    (c.SetReaderConfig(False, 2000, (), 4), "0403" "00000014" "00000004" "00" "00DC0009" "01" "000007D0"),
    (c.GetCapabilities(1, 2), "0401" "0000000B" "00000002" "01"),
    # GET_READER_CONFIG: AntennaID 0 (all), RequestedData 2 (AntennaProperties), GPI 0, GPO 0
    (c.GetReaderConfig(2, 0, 3), "0402" "00000011" "00000003" "0000" "02" "0000" "0000"),
    # its response: AntennaProperties (221 = 0xDD) antenna 1 connected gain 6.00 dBi, antenna 2 not connected
    (c.ReaderConfigResponse(LlrpStatus(), (AntennaProperties(1, True, 600), AntennaProperties(2, False)), 3),
     "040C" "00000024" "00000003" "011F00080000" "0000" "00DD0009" "80" "0001" "0258" "00DD0009" "00" "0002" "0000"),
]


@pytest.mark.parametrize("message,wire", VECTORS, ids=[c.message_name(m.type) for m, _ in VECTORS])
def test_known_vectors(message: c.Message, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert c.encode(message) == raw
    assert c.LlrpDecoder().feed(raw) == [message]


def test_tid_read_result_in_a_report() -> None:
    """C1G2ReadOpSpecResult (349 = 0x15D): Result 0, OpSpecID 1, 6 words of TID."""
    tid = bytes.fromhex("E2801160200073F1A2B3C4D5")
    report = c.RoAccessReport((TagReport(EPC, True, reads=(OpRead(1, 0, tid),)),), 1)
    body = "00F00026" "8D" + EPC.hex() + "015D0015" "00" "0001" "0006" + tid.hex()
    assert c.encode(report).hex().upper() == ("043D" "00000030" "00000001" + body).upper()
    assert c.LlrpDecoder().feed(c.encode(report))[0] == report


u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
ids = u32
text = st.text(max_size=40)
status = st.builds(LlrpStatus, u16, text)
words = st.integers(1, 16).flatmap(lambda n: st.binary(min_size=2 * n, max_size=2 * n))
antennas = st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=8).map(tuple)
op_read = st.builds(OpRead, u16, u8, words)


@st.composite
def tag_reports(draw: st.DrawFn) -> TagReport:
    epc96 = draw(st.booleans())
    epc = draw(st.binary(min_size=12, max_size=12)) if epc96 else draw(st.binary(min_size=0, max_size=62))
    maybe = lambda s: draw(st.none() | s)  # noqa: E731
    return TagReport(epc, epc96, maybe(u32), maybe(u16), maybe(st.integers(-128, 127)), maybe(u64), maybe(u64),
                     maybe(u16), maybe(u32), tuple(draw(st.lists(op_read, max_size=2))))


event_data = st.builds(ReaderEventData, u64, st.none() | u16, st.none() | st.builds(AntennaEvent, u16, st.booleans()),
                       st.booleans())
messages = st.one_of(
    st.builds(c.Empty, st.sampled_from(c.EMPTY), ids),
    st.builds(c.SpecRequest, st.sampled_from(c.SPEC_REQUESTS), u32, ids),
    st.builds(c.StatusResponse, st.sampled_from(c.STATUS_ONLY), status, ids),
    st.builds(c.GetCapabilities, u8, ids),
    st.builds(c.CapabilitiesResponse, status,
              st.none() | st.builds(DeviceCapabilities, st.integers(0, 64), u32, u32, text), ids),
    st.builds(c.GetReaderConfig, u8, u16, ids),
    st.builds(c.ReaderConfigResponse, status, st.lists(st.builds(AntennaProperties, u16, st.booleans(),
                                                                 st.integers(-32768, 32767)), max_size=4).map(tuple),
              ids),
    st.builds(c.SetReaderConfig, st.booleans(), st.none() | u32,
              st.lists(st.tuples(u16, st.booleans()), max_size=4).map(tuple), ids),
    st.builds(c.AddRoSpec, st.builds(RoSpec, u32, antennas, u8, u8, u16, st.integers(0, 0x3FF)), ids),
    st.builds(c.AddAccessSpec, st.builds(AccessSpec, u32, u32, u16, st.integers(0, 3), u16, u16, u16,
                                         st.booleans()), ids),
    st.builds(c.RoAccessReport, st.lists(tag_reports(), max_size=4).map(tuple), ids),
    st.builds(c.ReaderEventNotification, event_data, ids),
)


@given(message=messages)
def test_every_message_round_trips(message: c.Message) -> None:
    assert c.LlrpDecoder().feed(c.encode(message)) == [message]


def test_strategies_cover_every_message_type() -> None:
    """The round trip above draws from every message type the codec decodes."""
    covered = {*c.EMPTY, *c.SPEC_REQUESTS, *c.STATUS_ONLY, c.GET_READER_CAPABILITIES,
               c.GET_READER_CAPABILITIES_RESPONSE, c.GET_READER_CONFIG, c.GET_READER_CONFIG_RESPONSE, c.SET_READER_CONFIG, c.ADD_ROSPEC, c.ADD_ACCESSSPEC,
               c.RO_ACCESS_REPORT, c.READER_EVENT_NOTIFICATION}
    assert covered == set(c.BODY_DECODERS)


@given(batch=st.lists(messages, min_size=1, max_size=6), cuts=st.lists(st.integers(0, 4000), max_size=30))
def test_any_chunking_gives_the_same_messages(batch: list[c.Message], cuts: list[int]) -> None:
    stream = b"".join(c.encode(m) for m in batch)
    points = sorted({0, len(stream), *[x % (len(stream) + 1) for x in cuts]})
    decoder = c.LlrpDecoder()
    got = [m for a, b in itertools.pairwise(points) for m in decoder.feed(stream[a:b])]
    assert got == batch and decoder.stats.frames == len(batch)


MALFORMED = [
    ("bad_version", "0C3E" "0000000A" "00000001", FramingError, "version 3"),
    ("bad_length", "043E" "00000004" "00000001", FramingError, "length 4, smaller than the 10-byte header"),
    ("bad_length", "043E" "7FFFFFFF" "00000001", FramingError, "length 2147483647, over the 1048576-byte limit"),
    ("truncated", "0416" "0000000C" "00000007" "0001", LlrpError,
     "START_ROSPEC id 7 is truncated at field ROSpecID/AccessSpecID: it needs 4 bytes at offset 0 and has 2"),
    ("truncated", "0422" "00000012" "00000007" "011F0010" "0000" "0000", LlrpError,
     "parameter type 287 at offset 0 has length 16 with 8 bytes left"),
    ("unknown_parameter", "043D" "00000013" "00000001" "00F00009" "FF" "00000000", LlrpError,
     "unknown TV parameter type 127 at offset 0"),
    ("missing_parameter", "043D" "00000011" "00000001" "00F00007" "81" "0002", LlrpError,
     "TagReportData lacks its mandatory EPCData or EPC-96 parameter (type 241)"),
    ("missing_parameter", "0422" "0000000A" "00000007", LlrpError,
     "ENABLE_ROSPEC_RESPONSE lacks its mandatory LLRPStatus parameter (type 287)"),
    ("unknown_message", "07FF" "0000000A" "00000001", LlrpError, "LLRP message type 1023 (id 1) is not one"),
]


@pytest.mark.parametrize("reason,wire,error,words", MALFORMED)
def test_malformed_input_is_one_sentence_naming_field_and_values(reason: str, wire: str, error: type,
                                                                 words: str) -> None:
    framer = Framer()
    framer.feed(bytes.fromhex(wire))
    with pytest.raises(error, match=".") as caught:
        frame = framer.next_frame()
        assert frame is not None, "the frame is whole"
        c.decode_message(frame)
    assert caught.value.reason == reason and words in str(caught.value)
    assert str(caught.value).count(". ") == 0 and "\n" not in str(caught.value)


def test_a_malformed_body_is_counted_and_the_next_message_is_read() -> None:
    bad = bytes.fromhex("0416" "0000000C" "00000007" "0001")
    good = c.encode(c.Empty(c.KEEPALIVE, 8))
    decoder = c.LlrpDecoder()
    assert decoder.feed(bad + good) == [c.Empty(c.KEEPALIVE, 8)]
    assert decoder.stats.rejects == {"truncated": 1} and "START_ROSPEC id 7" in decoder.last_error


def test_a_broken_header_stops_the_stream_until_restart() -> None:
    good = c.encode(c.Empty(c.KEEPALIVE, 8))
    decoder = c.LlrpDecoder()
    assert decoder.feed(good + bytes.fromhex("0C3E0000000A00000001") + good) == [c.Empty(c.KEEPALIVE, 8)]
    assert decoder.broken is not None and decoder.feed(good) == []
    assert decoder.stats.rejects == {"bad_version": 1} and decoder.stats.framing_errors == 1
    decoder.restart()
    assert decoder.feed(good) == [c.Empty(c.KEEPALIVE, 8)] and decoder.stats.rejects == {"bad_version": 1}


def test_unknown_tlv_parameters_are_skipped() -> None:
    """A vendor's Custom parameter (1023) inside a tag report does not spoil the report."""
    custom = bytes.fromhex("03FF000C" "00006789" "00000001")
    tag = bytes.fromhex("8D") + EPC
    body = bytes.fromhex("00F0") + (4 + len(tag) + len(custom)).to_bytes(2) + tag + custom
    (report,) = c.LlrpDecoder().feed(encode_frame(c.RO_ACCESS_REPORT, 1, body))
    assert report == c.RoAccessReport((TagReport(EPC, True),), 1)


def _frames_and_messages(data: bytes) -> int:
    """Everything the framer and decoder make of `data`; only LlrpError may escape."""
    framer, n = Framer(), 0
    framer.feed(data)
    while (frame := framer.next_frame()) is not None:
        n += 1
        try:
            c.decode_message(frame)
        except LlrpError as exc:
            assert exc.reason and str(exc)
    return n


@settings(max_examples=400)
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        _frames_and_messages(data)
    except FramingError:
        pass
    decoder = c.LlrpDecoder()
    decoder.feed(data)  # never raises


@settings(max_examples=400)
@given(batch=st.lists(messages, min_size=1, max_size=3), edits=st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10**6), u8), min_size=1, max_size=6))
def test_fuzz_mutated_messages(batch: list[c.Message], edits: list[tuple[str, int, int]]) -> None:
    data = bytearray(b"".join(c.encode(m) for m in batch))
    for op, at, value in edits:
        i = at % (len(data) + 1)
        if op == "insert":
            data.insert(i, value)
        elif data and op == "flip":
            data[i % len(data)] ^= value or 1
        elif data:
            del data[i % len(data)]
    try:
        assert _frames_and_messages(bytes(data)) <= len(data) // 10
    except FramingError:
        pass
    decoder = c.LlrpDecoder()
    for a in range(0, len(data), 7):
        decoder.feed(bytes(data[a:a + 7]))
    assert decoder.stats.frames + sum(decoder.stats.rejects.values()) <= len(data) // 10 + 1
