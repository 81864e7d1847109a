"""Every conflict on an identity is also a code with the values its sentence names (`conflicts`), so that the screens
can say it in their language; the English sentence (`conflict`) stays for the log and older readers, and both are
merged and deduplicated alike. An older record without codes still validates."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import get_args

from central_sync.schema import ConflictCode, ConflictNote, Identity, InspectionRecord
from drivers.rfid.llrp.binding import TidBinder
from edge.identity import fuse
from test_identity_fusion import TAG, lane_window

ROOT = Path(__file__).resolve().parents[2]
TID = "E2801160200073F1A2B3C4D5"
EPC, EPC_NEW = "300833B2DDD9014000000001", "300833B2DDD90140000000FF"
VALUES = {"container_check_digit": {"code", "expected"}, "container_format": {"code"},
          "plates_one_jurisdiction": {"plates", "jurisdiction"}, "epcs_one_tid": {"epcs", "tid"},
          "tag_flood": {"reader", "limit", "item", "tag"}, "epc_changed": {"tid", "epc_before", "epc", "lane"},
          "two_lanes": {"tid", "lane", "lanes"}, "tag_reread": {"tag", "reader", "item", "seconds"}}


def notes(ident: Identity) -> list[tuple[str, dict[str, str]]]:
    return [(n.code, n.values) for n in ident.conflicts]


def test_a_container_code_failing_its_check_digit_or_format_has_its_code_and_values() -> None:
    bad_digit, bad_format, good = fuse([Identity(kind="container", value="CSQU3054384"),
                                        Identity(kind="container", value="CSQ3054383"),
                                        Identity(kind="container", value="CSQU3054383")])
    assert bad_digit.conflict == "container code CSQU3054384 fails its ISO 6346 check digit (the digit should be 3)"
    assert notes(bad_digit) == [("container_check_digit", {"code": "CSQU3054384", "expected": "3"})]
    assert bad_format.conflict == "container code CSQ3054383 is not an ISO 6346 code"
    assert notes(bad_format) == [("container_format", {"code": "CSQ3054383"})]
    assert good.conflict is None and good.conflicts == []


def test_two_plates_of_one_jurisdiction_have_their_code_and_values_and_a_cross_boundary_pair_none() -> None:
    hk1, hk2, cn = fuse([Identity(kind="plate", value="CD5678"), Identity(kind="plate", value="AB1234"),
                         Identity(kind="plate", value="粤ZA123港")])
    for ident in (hk1, hk2):
        assert ident.conflict == "plates AB1234 and CD5678 of jurisdiction HK were read on one vehicle"
        assert notes(ident) == [("plates_one_jurisdiction", {"plates": "AB1234, CD5678", "jurisdiction": "HK"})]
    assert cn.conflicts == []


def test_two_epcs_of_one_tid_have_their_code_and_values() -> None:
    fused = fuse([Identity(kind="rfid_epc", value=EPC_NEW, checks={"tid": TID}),
                  Identity(kind="rfid_epc", value=EPC, checks={"tid": TID})])
    assert [notes(i) for i in fused] == [[("epcs_one_tid", {"epcs": f"{EPC}, {EPC_NEW}", "tid": TID})]] * 2


def test_the_binding_flags_carry_their_values() -> None:
    binder = TidBinder()
    binder.seen(TID, EPC, "lane1")
    changed, two = binder.seen(TID, EPC_NEW, "lane2")
    assert (changed.kind, changed.values) == ("epc_changed", {"tid": TID, "epc_before": EPC, "epc": EPC_NEW,
                                                              "lane": "lane2"})
    assert (two.kind, two.values) == ("two_lanes", {"tid": TID, "lane": "lane2", "lanes": "lane1"})


def test_codes_merge_and_deduplicate_as_the_sentences_do() -> None:
    """The same conflict read twice is one sentence and one code; another is added to both, in a stable order."""
    code = ConflictNote(code="container_check_digit", values={"code": "CSQU3054384", "expected": "3"})
    flood = ConflictNote(code="tag_flood", values={"reader": "lane", "limit": "32", "item": "i1", "tag": "E2"})
    reads = [Identity(kind="container", value="CSQU3054384", conflict="x", conflicts=[flood]),
             Identity(kind="container", value="CSQU3054384")]
    (once,) = fuse(reads)
    assert once.conflicts == [code, flood] and len(once.conflict.split("; ")) == 2
    assert fuse([once, once]) == [once]
    (backwards,) = fuse(list(reversed(reads)))
    assert (backwards.conflict, backwards.conflicts) == (once.conflict, once.conflicts)


async def test_a_rewritten_epc_in_the_lane_gives_the_items_epc_its_code_and_values() -> None:
    from polling import until

    tid, first, second = TAG[1], TAG[0], EPC_NEW
    async with lane_window() as (window, sim, ahead, _):
        await sim.present(first, tid, seconds=0.2)
        await until(lambda: not window.binder.lanes_of, "the first EPC read, then removed")
        sim.present(second, tid, seconds=0.4)
        await until(lambda: any(i.value == second for i in ahead.identities), "the rewritten EPC is on the item")
    (epc,) = [i for i in ahead.identities if i.value == second]
    assert epc.conflict == f"tag TID {tid} was bound to EPC {first} and now reads EPC {second} at lane lane"
    assert notes(epc) == [("epc_changed", {"tid": tid, "epc_before": first, "epc": second, "lane": "lane"})]


async def test_a_tag_present_at_two_readers_gives_the_items_tid_its_code_and_values() -> None:
    """The vehicle ahead's tag, still in the lane reader's field, is read by the neighbouring reader while the next
    vehicle is in the lane: that read, the next vehicle's, is flagged with both lanes."""
    import asyncio
    from contextlib import AsyncExitStack

    from central_sync.schema import ItemKind
    from drivers.rfid import LlrpConfig
    from edge.config import DevicesSection
    from edge.devices import open_devices
    from edge.events import EventBus
    from edge.inspection import Item
    from edge.stations.identify import TagWindow
    from polling import until

    reader = {"kind": "llrp", "keepalive_s": 0.5, "removal_after_ms": 2000, "sim": {"read_ms": 20}}
    cfg = DevicesSection(readers={"lane": LlrpConfig.model_validate(reader), "lane2": LlrpConfig.model_validate(reader)})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        try:
            await until(lambda: all(r.link_ok for r in devices.readers.values()), "both readers are up")
            ahead, entering = Item("car-1", ItemKind.VEHICLE), Item("car-2", ItemKind.VEHICLE)
            window.start(ahead)
            devices.readers["lane"].sim.present(EPC, TID, seconds=30)
            await until(lambda: len(ahead.identities) == 2, "the tag is read at lane")
            window.stop(ahead)
            window.start(entering)
            devices.readers["lane2"].sim.present(EPC, TID, seconds=30)
            await until(lambda: len(entering.identities) == 2, "the tag is read at lane2 too")
        finally:
            task.cancel()
    flagged = [i for i in entering.identities if i.kind == "rfid_tid"]
    assert [(i.conflict, notes(i)) for i in flagged] == [(
        f"tag TID {TID} is seen at lane lane2 while present at lane lane",
        [("two_lanes", {"tid": TID, "lane": "lane2", "lanes": "lane"})])]


async def test_a_flood_of_tags_gives_every_tag_on_the_item_its_code_and_values() -> None:
    from edge.stations.identify import MAX_ITEM_TAGS
    from polling import until

    tids = [f"E2801160200073F1A2B3{n:04X}" for n in range(MAX_ITEM_TAGS + 2)]
    async with lane_window() as (window, sim, ahead, _):
        for n, tid in enumerate(tids):
            sim.present(f"300833B2DDD9014000{n:06X}", tid, seconds=30)
        await until(lambda: window.tags_not_recorded >= 2, "the tags past the limit are counted")
    fused = fuse(ahead.identities)
    (first,) = {n.values["tag"] for i in fused for n in i.conflicts}
    flood = ("tag_flood", {"reader": "lane", "limit": str(MAX_ITEM_TAGS), "item": ahead.id, "tag": first})
    assert fused and all(flood in notes(i) for i in fused)
    assert all(f"(tag {first} and those after it are not recorded)" in (i.conflict or "") for i in fused)


def test_an_older_record_without_codes_still_validates_with_its_sentence() -> None:
    from central_sync.devtools import make_record

    body = json.loads(make_record("gate-1", 1).model_copy(update={"identities": [
        Identity(kind="plate", value="AB1234", conflict="plates AB1234 and CD5678 of jurisdiction HK were read on one "
                                                        "vehicle")]}).to_json())
    del body["identities"][0]["conflicts"]
    (ident,) = InspectionRecord.model_validate(body).identities
    assert ident.conflicts == [] and ident.conflict.startswith("plates AB1234")


def test_every_code_is_said_in_every_language_of_both_screens_with_its_values() -> None:
    assert set(get_args(ConflictCode)) == set(VALUES)
    for catalogues in ("edge/web/i18n", "central_sync/control_room/i18n"):
        for lang in ("en", "zh-Hans", "zh-Hant"):
            msgs = json.loads((ROOT / catalogues / f"{lang}.json").read_text(encoding="utf-8"))
            for code, values in VALUES.items():
                fields = {f for _, f, _, _ in string.Formatter().parse(msgs[f"conflict.{code}"]) if f}
                assert fields == values, (catalogues, lang, code)
