"""Container codes (ISO 6346), plate rules and multi-frame voting: the rules that decide what is recorded."""

from __future__ import annotations

import string

from hypothesis import given, strategies as st

from models.ocr import iso6346, plates
from models.ocr.classify import Read, container_reads, plate_reads, reads_for, size_type_reads
from models.ocr.reader import TextLine, join_lines
from models.ocr.vote import vote


def _independent_check_digit(code10: str) -> int:
    """ISO 6346 written out from the standard's table, to check the implementation against."""
    table = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                     [10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34, 35,
                      36, 37, 38]))
    return sum((table[c] if c in table else int(c)) * 2 ** i for i, c in enumerate(code10)) % 11 % 10


def test_known_valid_codes() -> None:
    assert iso6346.is_valid("CSQU3054383")
    assert iso6346.check_digit("CSQU305438") == 3
    assert not iso6346.is_valid("CSQU3054384")
    assert not iso6346.is_valid("CSQX3054383")  # category must be U, J or Z


codes = st.tuples(st.text(string.ascii_uppercase, min_size=3, max_size=3), st.sampled_from("UJZ"),
                  st.text(string.digits, min_size=6, max_size=6)).map(lambda t: "".join(t))


@given(codes)
def test_check_digit_matches_the_standard_table(code10: str) -> None:
    assert iso6346.check_digit(code10) == _independent_check_digit(code10)


@given(st.text("ABCDEGIKLMOQSTUZ0123456789", min_size=11, max_size=11))
def test_a_read_is_recorded_as_read_or_not_at_all(text: str) -> None:
    """Only letters and digits forced by position (O for 0 in the serial) and then the check digit: a read that
    fails its check is never made into another, valid code."""
    read = iso6346.read_code(text)
    if read is not None:
        assert read.value in ("", iso6346.coerce(text)[0])
        assert (read.status == "check_failed") == (read.value == "")


def test_correction_examples() -> None:
    fixed = iso6346.read_code("CSQU3O54383")  # letter O where a digit must be
    assert fixed is not None and (fixed.value, fixed.status) == ("CSQU3054383", "corrected")
    for misread in ("KEMU6781590", "CSQU3054883", "CSQU3054385"):  # KEMU0181590 read with 0->6 and 1->7
        read = iso6346.read_code(misread)
        assert read is not None and (read.value, read.raw, read.status) == ("", misread, "check_failed")
    assert iso6346.read_code("HELLO") is None


def test_a_failed_code_is_not_read_from_a_window_shifted_onto_a_neighbouring_mark() -> None:
    """XBXU2551717 (XBXU2551715 misread) fails its check; with a 1 beside it on the line the window BXU25517171,
    its 2 forced to Z, is valid and must not stand in for it (nor FJUZ9393324 for MFUU2939332 beside 45G1)."""
    for line, raw in (("XBXU 255171 7 1", "XBXU2551717"), ("MFUU 293933 2 45G1", "MFUU2939332"),
                      ("TMOU 029081 0 22G1", "TMOU0290810")):
        (read,) = container_reads([TextLine(line, 0.97, (0, 0, 100, 20))])
        assert (read.value, read.raw, read.status) == ("", raw, "check_failed"), line
    (code,) = container_reads([TextLine("CSQU 3O5438 3 45G1", 0.97, (0, 0, 100, 20))])
    assert (code.value, code.status) == ("CSQU3054383", "corrected")


def test_plate_rules_per_jurisdiction() -> None:
    assert plates.jurisdiction(plates.normalise("AB 1234")) == "hk"
    assert plates.jurisdiction("K9") == "hk"
    assert plates.jurisdiction("IO123") is None  # no I or O on Hong Kong plates
    assert plates.jurisdiction("AB0123") is None  # no leading zero
    assert plates.jurisdiction("ABC123") is None  # at most two letters
    assert plates.jurisdiction(plates.normalise("粤Z·A123港")) == "gd_cross"
    assert plates.jurisdiction(plates.normalise("粤Z:A123澳")) == "gd_cross"
    assert plates.jurisdiction("粤ZA123") is None  # the series character is part of the plate
    assert plates.jurisdiction("粤B12345") == "gd"
    assert plates.display("AB1234", "hk") == "AB 1234"
    assert plates.display("粤ZA123港", "gd_cross") == "粤Z·A123港"


def test_mainland_plates_blue_and_new_energy() -> None:
    """粤 + office letter + five (blue) or six (green new-energy) characters; other provinces are "cn"."""
    assert plates.jurisdiction(plates.normalise("粤B·12345")) == "gd"
    assert plates.jurisdiction(plates.normalise("粤B·AB123")) == "gd"
    assert plates.jurisdiction(plates.normalise("粤B D12345")) == "gd"  # small new-energy: D or F first
    assert plates.jurisdiction("粤BFA1234") == "gd"  # then a letter or digit, four digits
    assert plates.jurisdiction("粤B12345F") == "gd"  # large new-energy: five digits, D or F last
    assert plates.jurisdiction(plates.normalise("京A·12345")) == "cn"
    assert plates.jurisdiction("沪AD12345") == "cn"
    assert plates.jurisdiction("粤BA12345") is None  # eight characters must be a new-energy pattern
    assert plates.jurisdiction("粤BD1234A") is None  # a small new-energy plate ends in four digits
    assert plates.jurisdiction("粤BI2345") is None  # no I or O on mainland plates
    assert plates.jurisdiction("粤Z12345") is None  # 粤Z is the Hong Kong / Macao series only
    assert plates.jurisdiction("港A12345") is None  # not a province
    assert plates.display("粤B12345", "gd") == "粤B·12345"


def test_lines_become_reads_by_format() -> None:
    lines = [TextLine("HINO", 0.99, (0, 0, 50, 20)), TextLine("AB 12O4", 0.9, (0, 30, 90, 50)),
             TextLine("粤Z·A123港", 0.95, (0, 60, 90, 80))]
    reads = {r.slot: r for r in plate_reads(lines)}
    assert set(reads) == {"hk", "gd_cross"}
    mainland = plate_reads([TextLine("粤B·D12345", 0.93, (0, 0, 90, 20)), TextLine("京A-12345", 0.9, (0, 30, 90, 50))])
    assert [(r.slot, r.value) for r in mainland] == [("gd", "粤BD12345"), ("cn", "京A12345")]
    assert (reads["hk"].value, reads["hk"].status) == ("AB1204", "corrected")
    assert reads["gd_cross"].value == "粤ZA123港"
    code = container_reads([TextLine("CSQU 305438 3", 0.97, (0, 0, 100, 20)), TextLine("45G1", 1.0, (0, 30, 40, 50))])
    assert [(r.value, r.status) for r in code] == [("CSQU3054383", "read")]


def test_boxes_on_one_line_join_left_to_right() -> None:
    boxes = [TextLine("3", 0.9, (200, 2, 220, 30)), TextLine("CSQU", 0.99, (0, 0, 80, 30)),
             TextLine("305438", 0.98, (90, 1, 190, 31)), TextLine("45G1", 1.0, (0, 40, 80, 70))]
    assert [(line.text, line.confidence) for line in join_lines(boxes)] == [("CSQU 305438 3", 0.9), ("45G1", 1.0)]


def test_digits_alone_are_never_made_into_a_hong_kong_plate() -> None:
    """A plate read without its letter group (8123: the B of B 8123 hidden, or a fleet number) is low_confidence
    with its text in raw; letters and digits are forced by position only where a letter was read (A81234)."""
    def read(*texts: str) -> list[tuple[str, str, str, str]]:
        lines = [TextLine(t, 0.99, (0, 0, 9, 9)) for t in texts]
        return [(r.slot, r.value, r.raw, r.status) for r in plate_reads(lines)]

    assert read("8123") == [("hk", "", "8123", "low_confidence")]
    assert read("5 123") == [("hk", "", "5 123", "low_confidence")]
    assert read("A81234") == [("hk", "AB1234", "A81234", "corrected")]
    assert read("AB 1234", "4156") == [("hk", "AB1234", "AB 1234", "read")]  # a fleet number beside the plate
    (voted,) = vote("plate", [[Read("plate", "hk", "", "8123", 0.99, "low_confidence")]] * 3, min_confidence=0.5)
    assert (voted.value, voted.raw, voted.status) == ("", "8123", "low_confidence")


def test_a_word_in_the_plate_cameras_view_is_never_made_into_a_plate() -> None:
    """Text with no plate in it (a bus's BUS, an EXIT sign, a bumper's BIG) is no plate: forcing its digit group
    to digits made one up (BU5, EX17, B16), a plate that stood in for the real one unread and checked clean."""
    for word in ("BUS", "EXIT", "EX1T", "BIG", "HKG", "AB IOII"):
        assert plate_reads([TextLine(word, 0.99, (0, 0, 9, 9))]) == [], word
    assert [(r.value, r.status) for r in plate_reads([TextLine("AB 12O4", 0.9, (0, 0, 9, 9))])] == \
        [("AB1204", "corrected")]  # one digit misread as a letter is still corrected


def _read(value: str, confidence: float, status: str = "read", slot: str = "container") -> Read:
    return Read("container", slot, value, value or "CSQU3054385", confidence, status)


def test_voting_takes_the_majority_and_lowers_confidence_on_disagreement() -> None:
    frames = [[_read("CSQU3054383", 0.95)], [_read("CSQU3054383", 0.9)], [_read("CSQU3054388", 0.9)], []]
    (v,) = vote("container", frames, min_confidence=0.5)
    assert (v.value, v.status, v.frames) == ("CSQU3054383", "read", 2)
    assert v.confidence < 0.925  # the disagreeing frame costs it
    assert vote("container", frames, min_confidence=0.8)[0].status == "low_confidence"
    assert vote("container", frames, min_confidence=0.8)[0].value == ""  # never guessed


def test_voting_records_failed_checks_and_nothing_read() -> None:
    (failed,) = vote("container", [[_read("", 0.9, "check_failed")]], min_confidence=0.5)
    assert (failed.value, failed.raw, failed.status) == ("", "CSQU3054385", "check_failed")
    (unread,) = vote("plate", [[], []], min_confidence=0.5)
    assert (unread.kind, unread.value, unread.status) == ("plate", "", "unread")
    two = vote("plate", [[_read("AB1234", 0.9, slot="hk"), _read("粤ZA123港", 0.9, slot="gd_cross")]], 0.5)
    assert [v.slot for v in two] == ["gd_cross", "hk"]  # a cross-boundary vehicle's two plates


def test_failed_checks_in_several_frames_are_voted_character_by_character() -> None:
    """Frames that each got a different character wrong agree on the true code; one frame alone never does."""
    frames = [[Read("container", "container", "", raw, 0.9, "check_failed")]
              for raw in ("CSQU3054388", "CSQU3O54583", "CSQU3054383".replace("Q", "O"))]
    (v,) = vote("container", frames, min_confidence=0.5)
    assert (v.value, v.status) == ("CSQU3054383", "corrected")
    (alone,) = vote("container", frames[:1], min_confidence=0.5)
    assert (alone.value, alone.status) == ("", "check_failed")


def test_a_container_cameras_size_type_code_is_read_beside_its_number() -> None:
    lines = [TextLine("CSQU 305438 3", 0.97, (0, 0, 100, 20)), TextLine("45G1", 1.0, (0, 30, 40, 50))]
    assert [(r.slot, r.value) for r in reads_for("container", lines)] == [("container", "CSQU3054383"),
                                                                         ("size_type", "45G1")]
    read = [(r.value, r.status) for r in size_type_reads([TextLine(t, 0.9, (0, 0, 40, 20)) for t in (
        "45G1", "4561", "L5G1", "22 R1", "TARE", "MAX GROSS", "45G", "AB12", "4S61")])]
    # 4561: one digit where the type letter stands, corrected; TARE would need two; 4S61 two as well
    assert read == [("45G1", "read"), ("45G1", "corrected"), ("L5G1", "read"), ("22R1", "read")]


def test_two_containers_on_one_chassis_are_each_voted_over_their_own_frames() -> None:
    """Two 20 ft boxes on one chassis: the side camera reads the front one's code in its first frames and the rear
    one's after. Both codes pass their check and lie far apart: two containers, each `read` at its own frames'
    confidence, in the order seen (before, one slot: the codes competed, the winner lost half its confidence and was
    `low_confidence` at 0.7, the other code in no record)."""
    front, rear = "CSQU3054383", "MSKU7072380"
    assert iso6346.is_valid(front) and iso6346.is_valid(rear)
    frames = [[_read(front, 0.95)], [_read(front, 0.9)], [_read(front, 0.92), _read(rear, 0.9)],
              [_read(rear, 0.93)], [Read("container", "container", "", "MSKU7O72380", 0.3, "check_failed")], []]
    voted = vote("container", frames, min_confidence=0.7)
    assert [(v.slot, v.value, v.status, v.frames) for v in voted] == [
        ("container", front, "read", 3), ("container_2", rear, "read", 2)]
    assert voted[0].confidence == round((0.95 + 0.9 + 0.92) / 3, 4)
    assert voted[1].confidence < 0.915  # its own failed read still costs it, the other box's reads do not


def test_a_second_code_read_once_or_close_to_the_first_is_still_voted_against_it() -> None:
    """A code seen in one frame only, or one that differs in two characters (a double misread that passes its
    check), is no second container: it competes with the code as before and lowers its confidence."""
    once = [[_read("CSQU3054383", 0.95)], [_read("CSQU3054383", 0.9)], [_read("MSKU7072380", 0.9)]]
    (v,) = vote("container", once, min_confidence=0.5)
    assert (v.slot, v.value) == ("container", "CSQU3054383") and v.confidence < 0.7
    close = "CSQU0754383"
    assert iso6346.is_valid(close) and sum(a != b for a, b in zip(close, "CSQU3054383")) == 2
    near = [[_read("CSQU3054383", 0.95)], [_read("CSQU3054383", 0.9)], [_read(close, 0.9)], [_read(close, 0.9)]]
    (v,) = vote("container", near, min_confidence=0.8)
    assert (v.slot, v.value, v.status) == ("container", "", "low_confidence")
