"""Identity fusion per item (edge.identity): one identity per read value, conflicts flagged and never hidden."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from central_sync.schema import Identity, SealStatus
from edge.identity import container_check, fuse
from models.ocr.iso6346 import check_digit

if TYPE_CHECKING:
    from drivers.rfid.llrp.sim import LlrpSim
    from edge.inspection import Item
    from edge.stations.identify import TagWindow

KINDS = ("plate", "container", "rfid_tid", "rfid_epc", "em4100", "seal")
VALID_CONTAINERS = ("CSQU3054383", "MSCU1234566", "TGHU9876542")


identities = st.builds(
    Identity, kind=st.sampled_from(KINDS),
    value=st.sampled_from(("AB1234", "CD5678", "粤ZA123港", "粤ZB456港", "CSQU3054383", "CSQU3054384", "E280AA",
                           "3034AA", "3034BB", "HKEL0001234")),
    confidence=st.none() | st.floats(0, 1), checks=st.sampled_from(({}, {"tid": "E280AA"}, {"jurisdiction": "HK"})))


def test_known_check_digits() -> None:
    assert [container_check(c) for c in VALID_CONTAINERS] == ["ok", "ok", "ok"]
    assert container_check("CSQU3054384") == "bad_check_digit"
    assert container_check("CSQ3054383") == "bad_format"
    assert check_digit("CSQU305438") == 3


@given(st.lists(identities, max_size=12))
def test_no_read_value_is_lost_and_each_appears_once(reads: list[Identity]) -> None:
    fused = fuse(reads)
    assert [(i.kind, i.value) for i in fused] == list(dict.fromkeys((i.kind, i.value) for i in reads))


failures = st.builds(Identity, kind=st.sampled_from(("plate", "container")), value=st.just(""),
                     source=st.sampled_from(("front", "rear", "side", "door")),
                     status=st.sampled_from(("unread", "check_failed", "low_confidence")),
                     raw=st.sampled_from(("", "MSKU1234560", "AB1Z34")))


@given(st.lists(identities | failures, max_size=12))
def test_no_failed_read_is_lost(reads: list[Identity]) -> None:
    """Every camera's read without a value survives fusion (its camera, failure and what it saw)."""
    failed = lambda ids: {(i.kind, i.source, i.status, i.raw) for i in ids if not i.value}  # noqa: E731
    assert failed(fuse(reads)) == failed(reads)
    assert fuse(fuse(reads)) == fuse(reads)


def test_a_cameras_failed_container_read_is_not_hidden_by_another_cameras_unread() -> None:
    """The side camera saw no code, the door camera saw one it could not read: the record keeps the door's
    check_failed read (MSKU1234560), and the container is not identified, whatever the order of the reads."""
    from edge.identity import unidentified_container

    side = Identity(kind="container", value="", source="side", status="unread")
    door = Identity(kind="container", value="", source="door", status="check_failed", raw="MSKU1234560")
    for reads in ([side, door], [door, side]):
        fused = fuse(reads)
        assert {(i.source, i.status, i.raw) for i in fused} == {("side", "unread", ""),
                                                                ("door", "check_failed", "MSKU1234560")}
        assert unidentified_container(fused, False) == ("camera door saw container code MSKU1234560 but could not "
                                                        "read it (check_failed)")


@given(st.lists(identities, max_size=12))
def test_fusion_is_idempotent(reads: list[Identity]) -> None:
    assert fuse(fuse(reads)) == fuse(reads)


@given(st.lists(identities, max_size=12), st.randoms())
def test_which_reads_are_flagged_does_not_depend_on_their_order(reads: list[Identity], rnd: object) -> None:
    shuffled = list(reads)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    flagged = lambda ids: {(i.kind, i.value, i.conflict) for i in fuse(ids) if i.conflict}  # noqa: E731
    assert flagged(reads) == flagged(shuffled)


@given(st.lists(identities, max_size=12))
def test_a_container_failing_its_check_digit_is_always_flagged(reads: list[Identity]) -> None:
    for ident in fuse(reads):
        if ident.kind == "container":
            assert (ident.checks["iso6346"] == "ok") == (ident.conflict is None)


def test_two_plates_of_one_jurisdiction_conflict_and_a_cross_boundary_pair_does_not() -> None:
    cross = fuse([Identity(kind="plate", value="AB1234"), Identity(kind="plate", value="粤ZA123港")])
    assert [i.conflict for i in cross] == [None, None]
    two_hk = fuse([Identity(kind="plate", value="AB1234", confidence=0.9),
                   Identity(kind="plate", value="AB1284", confidence=0.6)])
    assert all(i.conflict == "plates AB1234 and AB1284 of jurisdiction HK were read on one vehicle" for i in two_hk)


def test_two_epcs_of_one_tid_conflict() -> None:
    fused = fuse([Identity(kind="rfid_tid", value="E280AA"),
                  Identity(kind="rfid_epc", value="3034AA", checks={"tid": "E280AA"}),
                  Identity(kind="rfid_epc", value="3034BB", checks={"tid": "E280AA"})])
    assert fused[0].conflict is None
    assert fused[1].conflict == fused[2].conflict == "EPCs 3034AA and 3034BB were read from the one tag TID E280AA"


def test_repeated_reads_merge_keeping_the_best_confidence_and_the_latest_seal_state() -> None:
    fused = fuse([Identity(kind="plate", value="AB1234", confidence=0.7),
                  Identity(kind="seal", value="HKEL0001234", seal=SealStatus(state="intact")),
                  Identity(kind="plate", value="AB1234", confidence=0.95),
                  Identity(kind="seal", value="HKEL0001234", seal=SealStatus(state="tampered", events=3))])
    assert [(i.kind, i.confidence) for i in fused] == [("plate", 0.95), ("seal", None)]
    assert fused[1].seal == SealStatus(state="tampered", events=3)


async def test_a_rewritten_epc_read_in_the_lane_is_flagged_on_the_item_record() -> None:
    """The LLRP simulator over TCP: the same TID with a new EPC while the vehicle is in the lane; both EPCs stay
    on the item, each flagged, and the fused identities say which EPCs of which TID."""
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

    tid = "E2801160200073F1A2B3C4D5"
    cfg = DevicesSection(readers={"lane": LlrpConfig(kind="llrp", keepalive_s=0.5, removal_after_ms=100,
                                                     sim={"read_ms": 20})})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        item = Item("vehicle-1", ItemKind.VEHICLE)
        window.start(item)
        await asyncio.sleep(0.05)
        sim = devices.readers["lane"].sim
        await sim.present("300833B2DDD9014000000001", tid, seconds=0.2)
        await until(lambda: not window.binder.lanes_of, "the tag left")
        sim.present("300833B2DDD90140000000FF", tid, seconds=0.2)
        await until(lambda: len([i for i in item.identities if i.kind == "rfid_epc"]) == 2, "the second EPC is read")
        task.cancel()
    epcs = [i for i in fuse(item.identities) if i.kind == "rfid_epc"]
    assert all(i.conflict and f"EPCs 300833B2DDD9014000000001 and 300833B2DDD90140000000FF were read from the one "
               f"tag TID {tid}" in i.conflict for i in epcs)
    assert "now reads EPC 300833B2DDD90140000000FF" in (epcs[1].conflict or "")


def test_a_camera_that_read_nothing_conflicts_with_no_read() -> None:
    """An unread plate or code (a rear camera under dirt) is recorded as unread, never as a conflicting read."""
    fused = fuse([Identity(kind="plate", value="AB1234", status="read", source="front"),
                  Identity(kind="plate", value="", status="unread", source="rear"),
                  Identity(kind="container", value="", status="unread", source="door"),
                  Identity(kind="container", value="CSQU3054383", status="read", source="side")])
    assert [(i.value, i.conflict) for i in fused] == [("AB1234", None), ("", None), ("", None), ("CSQU3054383", None)]
    assert "iso6346" not in fused[2].checks and fused[3].checks["iso6346"] == "ok"


async def test_a_tag_read_while_two_bags_are_in_the_tunnel_joins_the_one_that_entered_last() -> None:
    """The reader's antenna is at the entry: the bag in the tunnel ahead does not inherit the next bag's tag."""
    import asyncio
    from contextlib import AsyncExitStack

    from central_sync.schema import ItemKind
    from drivers.rfid import LlrpConfig
    from drivers.rfid.llrp.sim import LlrpSim
    from edge.config import DevicesSection
    from edge.devices import open_devices
    from edge.events import EventBus
    from edge.inspection import Item
    from edge.stations.identify import TagWindow
    from polling import until

    cfg = DevicesSection(readers={"bags": LlrpConfig.model_validate(
        {"kind": "llrp", "keepalive_s": 0.5, "removal_after_ms": 100, "sim": {"read_ms": 20}})})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        ahead, entering = Item("bag-1", ItemKind.BAGGAGE), Item("bag-2", ItemKind.BAGGAGE)
        window.start(ahead)
        window.start(entering)
        sim = devices.readers["bags"].sim
        assert isinstance(sim, LlrpSim)
        sim.present("35000005BA60000000000002", "E2003412013A050000000002", seconds=0.3)
        await until(lambda: entering.identities, "the entering bag's tag is read")
        await asyncio.sleep(0.1)
        task.cancel()
    assert [i.value for i in entering.identities if i.kind == "rfid_epc"] == ["35000005BA60000000000002"]
    assert ahead.identities == []



TAG = ("300833B2DDD9014000000001", "E2801160200073F1A2B30001")  # a windscreen tag's EPC and TID


@asynccontextmanager
async def lane_window(antennas: list[int] | None = None, exit_antennas: list[int] | None = None,
                      names: tuple[str, str] = ("car-1", "car-2"), kind: str = "vehicle") \
        -> AsyncIterator[tuple[TagWindow, LlrpSim, Item, Item]]:
    """A TagWindow over a simulated UHF reader (antenna 1, or `antennas`, those in `exit_antennas` facing the exit)
    that removes a tag unread for 100 ms, running and up, and two items of `kind` named `names` (ahead, entering), the
    one ahead open: (window, the reader's simulator, ahead, entering)."""
    import asyncio
    from contextlib import AsyncExitStack

    from central_sync.schema import ItemKind
    from drivers.rfid import LlrpConfig
    from drivers.rfid.llrp.sim import LlrpSim
    from edge.config import DevicesSection
    from edge.devices import open_devices
    from edge.events import EventBus
    from edge.inspection import Item
    from edge.stations.identify import TagWindow
    from polling import until

    reader: dict = {"kind": "llrp", "keepalive_s": 0.5, "removal_after_ms": 100, "sim": {"read_ms": 20}}
    if antennas is not None:
        reader.update(antennas=antennas, exit_antennas=exit_antennas or [], sim={"read_ms": 20, "antennas": len(antennas)})
    cfg = DevicesSection(readers={"lane": LlrpConfig.model_validate(reader)})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        sim = devices.readers["lane"].sim
        assert isinstance(sim, LlrpSim)
        await until(lambda: devices.readers["lane"].link_ok, "the UHF reader is up")
        ahead, entering = Item(names[0], ItemKind(kind)), Item(names[1], ItemKind(kind))
        window.start(ahead)
        try:
            yield window, sim, ahead, entering
        finally:
            task.cancel()


async def test_a_tag_the_vehicle_ahead_holds_stays_with_it_when_the_next_one_enters() -> None:
    """The scanned vehicle's tag, still in the entry antenna's field when a car enters behind it (queued close,
    or running the red light), is not the newcomer's: each tag is on one record."""
    import asyncio

    from polling import until

    async with lane_window() as (window, sim, ahead, entering):
        sim.present(*TAG, seconds=30)
        await until(lambda: len(ahead.identities) == 2, "the tag of the vehicle ahead is read")
        window.start(entering)  # the tag is still in the field
        await asyncio.sleep(0.2)  # more report rounds of the tag: it is not read again into either
    assert sorted(i.value for i in ahead.identities) == sorted(TAG)
    assert entering.identities == []


async def test_a_tag_still_in_the_field_after_its_vehicles_record_is_written_is_not_the_next_ones() -> None:
    """The vehicle ahead's record is written (its verdict given) while its tag is still under the antenna (it waits
    at the barrier, or its scan failed at once at the entry): the car entering next does not take the tag, nor
    does it take a second EPC read from that tag meanwhile."""
    import asyncio

    from polling import until

    async with lane_window() as (window, sim, ahead, entering):
        sim.present(*TAG, seconds=30)
        await until(lambda: len(ahead.identities) == 2, "the tag of the vehicle ahead is read")
        window.stop(ahead)  # its record is written
        window.start(entering)
        sim.present("300833B2DDD90140000000FF", TAG[1], seconds=30)  # the tag, rewritten in the field
        await until(lambda: window.binder.flags, "the rewritten EPC is read")
        await asyncio.sleep(0.1)
    assert entering.identities == []


async def test_a_tag_the_vehicle_ahead_holds_read_again_after_falling_silent_stays_with_it() -> None:
    """A tag drops out of the reader's reports for longer than its removal time (removed) and is read again while
    the next vehicle's item is open: it is still the vehicle ahead's tag, never the newcomer's."""
    import asyncio

    from polling import until

    async with lane_window() as (window, sim, ahead, entering):
        await sim.present(*TAG, seconds=0.2)
        await until(lambda: len(ahead.identities) == 2 and not window.binder.lanes_of, "the tag read, then removed")
        window.start(entering)
        sim.present(*TAG, seconds=0.2)                      # the same tag read again
        await until(lambda: (("lane", TAG[1]) in window._present), "the tag read again")
        await asyncio.sleep(0.1)
    assert sorted(i.value for i in ahead.identities) == sorted(TAG)
    assert entering.identities == []


async def test_a_second_epc_read_from_a_tid_still_in_the_field_is_flagged_on_the_item_record() -> None:
    """A TID that reads another EPC while it stays in the field (a chip with the TID cloned beside the real one, or
    the EPC rewritten in the lane): the second EPC is on the item too, both flagged, not hidden behind the first."""
    import asyncio

    from polling import until

    tid, first, second = TAG[1], TAG[0], "300833B2DDD90140000000FF"
    async with lane_window() as (window, sim, ahead, _):
        sim.present(first, tid, seconds=0.4)
        await until(lambda: any(i.value == first for i in ahead.identities), "the first EPC is read")
        sim.present(second, tid, seconds=0.4)  # the same TID, never out of the field for the removal time
        await until(lambda: any(i.value == second for i in ahead.identities), "the second EPC is on the item")
        await asyncio.sleep(0.05)
    epcs = [i for i in fuse(ahead.identities) if i.kind == "rfid_epc"]
    assert [i.value for i in epcs] == [first, second]
    assert all(f"EPCs {first} and {second} were read from the one tag TID {tid}" in (i.conflict or "") for i in epcs)
    assert window.binder.flags == {"epc_changed": 1}


async def test_a_flood_of_tags_during_one_vehicle_is_capped_and_flags_its_tags() -> None:
    """A device in the lane answering as 40 tags (or a reader reaching into the yard) while one vehicle is read: the
    item takes MAX_ITEM_TAGS of them, the rest are counted and not recorded, and every tag on the record says so
    (the reads cost the event loop nothing more per read, however many come)."""
    from edge.stations.identify import MAX_ITEM_TAGS
    from polling import until

    tids = [f"E2801160200073F1A2B3{n:04X}" for n in range(MAX_ITEM_TAGS + 8)]
    async with lane_window() as (window, sim, ahead, _):
        for n, tid in enumerate(tids):
            sim.present(f"300833B2DDD9014000{n:06X}", tid, seconds=30)
        await until(lambda: all(("lane", tid) in window._present for tid in tids), "every tag is read")
    tags = [i for i in ahead.identities if i.kind == "rfid_tid"]
    assert len(tags) == MAX_ITEM_TAGS and window.tags_not_recorded == len(tids) - MAX_ITEM_TAGS
    flooded = f"reader lane read more than {MAX_ITEM_TAGS} tags during item {ahead.id}"
    assert all(flooded in (i.conflict or "") for i in fuse(ahead.identities))


async def test_a_tid_cycling_through_epcs_during_one_vehicle_is_capped_too() -> None:
    """One TID read with ever new EPCs (a device cycling them) adds no more to the item than MAX_ITEM_TAGS tags
    would: the rest are counted and not recorded, and the item's tags are flagged."""
    from edge.stations.identify import MAX_ITEM_TAGS
    from polling import until

    epcs = [f"300833B2DDD9014000{n:06X}" for n in range(2 * MAX_ITEM_TAGS + 4)]
    async with lane_window() as (window, sim, ahead, _):
        for epc in epcs:
            sim.present(epc, TAG[1], seconds=30)
            await until(lambda: window._present.get(("lane", TAG[1]), [])[-1:] and
                        window._present[("lane", TAG[1])][-1].value == epc, "the EPC is read")
    assert len([i for i in ahead.identities if i.kind in ("rfid_tid", "rfid_epc")]) == 2 * MAX_ITEM_TAGS
    assert window.tags_not_recorded == len(epcs) + 1 - 2 * MAX_ITEM_TAGS
    assert all(f"read more than {MAX_ITEM_TAGS} tags" in (i.conflict or "") for i in fuse(ahead.identities))
