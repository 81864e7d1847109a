"""E-seal formats, pure: the ES1 serial line (known vectors, any chunking, garbage) and the tag-memory layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.seal.codec import SealLineDecoder, crc16, encode_line, parse_line
from drivers.seal.errors import SealFormatError
from drivers.seal.memory import decode_memory, encode_memory
from drivers.seal.state import STATES, SealReport

REPORT = SealReport("HKEL0001234", "intact", 87, False, datetime(2025, 12, 3, 12, 0, tzinfo=UTC), 12)

reports = st.builds(SealReport, st.from_regex(r"[A-Z0-9]{4,18}", fullmatch=True), st.sampled_from(STATES),
                    st.integers(0, 100), st.booleans(),
                    st.none() | st.integers(1, 2**32 - 1).map(lambda s: datetime.fromtimestamp(s, UTC)),
                    st.integers(0, 0xFFFF))


def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1  # the catalogue check value of CRC-16/CCITT-FALSE


def test_known_lines_and_memory_as_documented() -> None:
    """The byte vectors of docs/e-seals.md."""
    tampered = SealReport("HKEL0001234", "tampered", 15, True, datetime(2025, 12, 3, 12, 5, tzinfo=UTC), 13)
    assert encode_line(REPORT) == b"$ES,1,HKEL0001234,I,87,00,1764763200,12*0DF4\r\n"
    assert encode_line(tampered) == b"$ES,1,HKEL0001234,T,15,01,1764763500,13*36FC\r\n"
    assert parse_line(b"$ES,1,HKEL0001234,T,15,01,1764763500,13*36FC") == tampered
    assert encode_memory(REPORT).hex(" ", 2).upper() == ("5345 0100 5700 6930 2640 000C 484B 454C 3030 3031 3233 "
                                                         "3400 0000 0000 0000 31E9")


@given(report=reports, cuts=st.lists(st.integers(0, 200), max_size=6))
def test_lines_round_trip_over_any_chunking(report: SealReport, cuts: list[int]) -> None:
    data = b"noise\r\n" + encode_line(report) * 2
    decoder, out, last = SealLineDecoder(), list[SealReport](), 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        out += decoder.feed(data[last:cut])
        last = cut
    assert out == [report, report]
    assert decoder.rejects == {"unframed": 1}


@given(garbage=st.binary(max_size=300))
def test_garbage_never_raises_and_the_next_line_is_read(garbage: bytes) -> None:
    decoder = SealLineDecoder()
    decoder.feed(garbage)
    assert decoder.feed(b"\r\n" + encode_line(REPORT)) == [REPORT]


@pytest.mark.parametrize(("line", "reason"), [
    (encode_line(REPORT).replace(b"I,87", b"T,87"), "checksum"),
    (encode_line(REPORT, version=2), "version"),
    (b"$GPGGA,1,2*0000\r\n", "unframed"),
    (b"$ES,1,HKEL0001234,X,87,00,0,1*" + f"{crc16(b'ES,1,HKEL0001234,X,87,00,0,1'):04X}".encode() + b"\r\n",
     "bad_field"),
    (b"$ES,1,HKEL0001234,I,187,00,0,1*" + f"{crc16(b'ES,1,HKEL0001234,I,187,00,0,1'):04X}".encode() + b"\r\n",
     "bad_field"),
    (b"$ES,1," + b"A" * 120 + b"\r\n", "too_long"),
])
def test_a_malformed_line_is_counted_by_reason_with_a_sentence(line: bytes, reason: str) -> None:
    decoder = SealLineDecoder()
    assert decoder.feed(line) == []
    assert decoder.rejects == {reason: 1}
    assert decoder.last_error and "\n" not in decoder.last_error


@given(report=reports)
def test_tag_memory_round_trips(report: SealReport) -> None:
    memory = encode_memory(report)
    assert len(memory) == 32
    assert decode_memory(memory) == report


def test_a_tag_that_is_not_a_seal_is_none() -> None:
    assert decode_memory(bytes(32)) is None
    assert decode_memory(b"") is None


@pytest.mark.parametrize(("memory", "reason"), [
    (encode_memory(REPORT)[:-1] + b"\x00", "checksum"),
    (encode_memory(REPORT, layout=2), "version"),
    (encode_memory(REPORT)[:20], "truncated"),
])
def test_a_broken_seal_memory_raises_with_its_reason(memory: bytes, reason: str) -> None:
    with pytest.raises(SealFormatError) as err:
        decode_memory(memory)
    assert err.value.reason == reason


def test_a_seal_number_with_a_trailing_newline_is_refused_in_memory_and_on_the_line() -> None:
    """SEAL_ID was matched with `$`, which lets "HKEL0001234\\n" through: such a seal was seen as intact."""
    odd = SealReport("HKEL0001234\n", "intact", 87, False, None, 12)
    with pytest.raises(SealFormatError, match=r"seal number 'HKEL0001234\\n'") as err:
        decode_memory(encode_memory(odd))
    assert err.value.reason == "bad_field"
    body = b"ES,1,HKEL0001234\n,I,87,00,0,12"
    with pytest.raises(SealFormatError, match=r"seal id 'HKEL0001234\\n'") as err:
        parse_line(b"$" + body + b"*" + f"{crc16(body):04X}".encode())
    assert err.value.reason == "bad_field"


def test_an_access_spec_reading_tid_and_user_memory_round_trips() -> None:
    """The LLRP client asks for both reads in one AccessCommand (a reader runs one AccessSpec per tag)."""
    from drivers.rfid.config import LlrpConfig
    from drivers.rfid.llrp import codec as c
    from drivers.rfid.llrp.client import access_spec
    from drivers.rfid.llrp.params import USER_BANK

    spec = access_spec(LlrpConfig(kind="llrp", host="reader", read_user_words=16))
    assert spec is not None and [(r.bank, r.word_count) for r in spec.reads] == [(2, 6), (USER_BANK, 16)]
    message = c.AddAccessSpec(spec, 7)
    assert c.LlrpDecoder().feed(c.encode(message)) == [message]
    only_user = access_spec(LlrpConfig(kind="llrp", host="reader", read_tid=False, read_user_words=16))
    assert only_user is not None and [r.bank for r in only_user.reads] == [USER_BANK]
    assert access_spec(LlrpConfig(kind="llrp", host="reader", read_tid=False)) is None
