"""Binding vehicle tags by TID: a rewritten EPC and a tag in two lanes at once are flagged."""

from __future__ import annotations

from drivers.rfid.llrp.binding import TidBinder

TID, EPC, EPC_NEW = "E2801160200073F1A2B3C4D5", "300833B2DDD9014000000001", "300833B2DDD9014000000099"


def test_a_tag_seen_again_with_the_same_epc_raises_nothing() -> None:
    binder = TidBinder()
    assert binder.seen(TID, EPC, "lane1") == []
    binder.gone(TID, "lane1")
    assert binder.seen(TID, EPC, "lane1") == [] and binder.epc_of == {TID: EPC}


def test_a_rewritten_epc_is_flagged_once_and_the_new_epc_is_remembered() -> None:
    binder = TidBinder()
    binder.seen(TID, EPC, "lane1")
    binder.gone(TID, "lane1")
    (flag,) = binder.seen(TID, EPC_NEW, "lane1")
    assert flag.kind == "epc_changed"
    assert flag.detail == f"tag TID {TID} was bound to EPC {EPC} and now reads EPC {EPC_NEW} at lane lane1"
    binder.gone(TID, "lane1")
    assert binder.seen(TID, EPC_NEW, "lane1") == [] and binder.flags == {"epc_changed": 1}


def test_a_tag_present_at_two_lanes_is_flagged() -> None:
    binder = TidBinder()
    binder.seen(TID, EPC, "lane1")
    (flag,) = binder.seen(TID, EPC, "lane2")
    assert flag.kind == "two_lanes" and flag.detail == f"tag TID {TID} is seen at lane lane2 while present at lane lane1"


def test_a_tag_that_left_one_lane_before_the_next_is_not_flagged() -> None:
    binder = TidBinder()
    binder.seen(TID, EPC, "lane1")
    binder.gone(TID, "lane1")
    assert binder.seen(TID, EPC, "lane2") == [] and binder.lanes_of == {TID: {"lane2"}}


def test_a_cloned_tid_with_another_epc_in_another_lane_raises_both_flags() -> None:
    binder = TidBinder()
    binder.seen(TID, EPC, "lane1")
    assert [f.kind for f in binder.seen(TID, EPC_NEW, "lane2")] == ["epc_changed", "two_lanes"]
    assert binder.flags == {"epc_changed": 1, "two_lanes": 1}


def test_bindings_are_kept_for_the_tids_seen_last_only() -> None:
    """Every TID ever seen was kept bound (a year of a busy lane, or a device answering as thousands of tags, grew
    the station's memory without end): past MAX_TIDS the one seen longest ago is let go, and a TID seen again
    meanwhile is still bound (its rewritten EPC flagged)."""
    from drivers.rfid.llrp.binding import MAX_TIDS

    binder = TidBinder()
    tids = [f"E2801160{n:016X}" for n in range(MAX_TIDS + 10)]
    for tid in tids:
        binder.seen(tid, "3008AA", "lane")
        binder.gone(tid, "lane")
        if tid == tids[20]:
            binder.seen(tids[0], "3008AA", "lane")  # the first seen again: kept as recent
    assert len(binder.epc_of) == MAX_TIDS and binder.forgotten == 10
    assert tids[1] not in binder.epc_of
    assert [f.kind for f in binder.seen(tids[0], "3008BB", "lane")] == ["epc_changed"]
