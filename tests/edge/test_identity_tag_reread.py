"""A tag recorded on an item, read again after it left the field and its item's record was written (the vehicle ahead
still at the barrier or just past the exit, back in the entry antenna's field; or the same vehicle back after a
U-turn): within `tag_hold_s` it joins the item open then flagged `tag_reread` (the risk engine holds that item for an
officer and still checks the tag's watchlists on it), never silently; past the hold it joins as any tag does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.identity import fuse
from edge.inspection import Item
from edge.risk import BundleFiles, RiskCheck, RiskRuntime, load_keys
from edge.stations.identify import TagWindow
from polling import until
from risk_bundles import envelope, pinned
from test_identity_fusion import TAG, lane_window

EPC, TID = TAG


def notes(item: Item) -> list[tuple[str, str, dict[str, str]]]:
    return [(i.kind, n.code, n.values) for i in item.identities for n in i.conflicts]


async def written_then_removed(window: TagWindow, sim: object, ahead: Item) -> None:
    """The vehicle ahead's tag is read onto its item, its record is written while the tag is still in the field, and
    the tag then falls silent for the reader's removal time. The presentation is awaited first: a test loop held over
    the removal time (a loaded machine) had the tag removed while the simulator still presented it, and read again
    at the entry antenna after the caller went on (its next item took it flagged)."""
    presented = sim.present(EPC, TID, seconds=0.2)  # type: ignore[attr-defined]
    await until(lambda: len(ahead.identities) == 2, "the tag of the vehicle ahead is read")
    window.stop(ahead)  # its record is written: the vehicle waits at the barrier
    await presented
    await until(lambda: not window._present, "the tag falls silent and is removed")


def assess(tmp_path: Path, item: Item) -> list[tuple[str, str]]:
    """What fires on the item's fused reads in a real risk runtime with a signed bundle (no random draw)."""
    runtime = RiskRuntime("gate-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed-gate-1")
    runtime.receive(1, envelope(1))
    fired = RiskCheck(runtime, "gate-1", "gantry").assess(item.id, fuse(item.identities), "clear").fired
    return [(f.id, f.lane) for f in fired]


async def test_a_tag_read_again_after_its_items_record_was_written_joins_the_next_item_flagged(tmp_path: Path) -> None:
    """Before, the tag joined the next vehicle's record as that vehicle's own tag: its TID and EPC were the risk
    engine's identities of the wrong vehicle, and it cleared it (nothing fired)."""
    async with lane_window() as (window, sim, ahead, entering):
        await written_then_removed(window, sim, ahead)
        window.start(entering)
        sim.present(EPC, TID, seconds=0.2)  # the vehicle ahead, still at the barrier, back in the field
        await until(lambda: len(entering.identities) == 2, "the tag is read again")
        await until(lambda: not window._present, "the tag falls silent again")
        sim.present(EPC, TID, seconds=0.2)  # and again: the item holds it now, counted and logged once
        await until(lambda: window._present, "the tag is read a third time")
        await asyncio.sleep(0.05)
    (values,) = {tuple(sorted(v.items())) for _, _, v in notes(entering)}
    assert notes(entering) == [(kind, "tag_reread", dict(values)) for kind in ("rfid_tid", "rfid_epc")]
    assert {k: v for k, v in values if k != "seconds"} == {"tag": TID, "reader": "lane", "item": ahead.id}
    assert float(dict(values)["seconds"]) < 5
    assert all(i.conflict == f"tag {TID} read by lane was item {ahead.id}'s tag {dict(values)['seconds']} s before: "
                             f"it may still be that vehicle's, not this one's" for i in entering.identities)
    assert window.tags_reread == 1
    assert notes(ahead) == []
    assert assess(tmp_path, entering) == [("identity_conflict", "amber")]


async def test_a_tag_that_left_before_its_items_record_was_written_is_held_from_the_writing() -> None:
    """The tag falls silent while its vehicle is still being scanned (its item keeps it), the record is written, and the
    tag is read again during the next item: flagged too."""
    async with lane_window() as (window, sim, ahead, entering):
        sim.present(EPC, TID, seconds=0.2)
        await until(lambda: len(ahead.identities) == 2, "the tag of the vehicle ahead is read")
        await until(lambda: not window._present, "the tag falls silent and is removed")
        window.stop(ahead)
        window.start(entering)
        sim.present(EPC, TID, seconds=0.2)
        await until(lambda: len(entering.identities) == 2, "the tag is read again")
    assert [code for _, code, _ in notes(entering)] == ["tag_reread", "tag_reread"]


async def test_a_tag_read_again_while_no_item_is_open_is_flagged_on_the_item_that_opens_next() -> None:
    async with lane_window() as (window, sim, ahead, entering):
        await written_then_removed(window, sim, ahead)
        sim.present(EPC, TID, seconds=30)  # back in the field, no item open
        await until(lambda: window._present, "the tag is read again")
        window.start(entering)
    assert [code for _, code, _ in notes(entering)] == ["tag_reread", "tag_reread"]
    assert window.tags_reread == 1


async def test_the_vehicles_second_pass_after_the_hold_gets_its_tag_unflagged() -> None:
    """The same vehicle back through the lane once the hold ran out (a U-turn, a later trip) is read as any vehicle;
    back sooner, it gets its tag too, flagged (an officer looks), never none."""
    async with lane_window() as (window, sim, ahead, entering):
        window.tag_hold_s = 0.5
        await written_then_removed(window, sim, ahead)
        await asyncio.sleep(0.6)
        window.start(entering)
        sim.present(EPC, TID, seconds=0.2)
        await until(lambda: len(entering.identities) == 2, "the tag is read on the second pass")
    assert notes(entering) == [] and window.tags_reread == 0
    assert sorted(i.value for i in entering.identities) == sorted(TAG)


async def test_another_tag_read_during_the_next_item_is_not_flagged() -> None:
    """Only the tag on the written record is held: the next vehicle's own tag joins it plainly."""
    own = ("300833B2DDD9014000000002", "E2801160200073F1A2B30002")
    async with lane_window() as (window, sim, ahead, entering):
        await written_then_removed(window, sim, ahead)
        window.start(entering)
        sim.present(*own, seconds=0.2)
        await until(lambda: len(entering.identities) == 2, "the next vehicle's tag is read")
    assert notes(entering) == [] and sorted(i.value for i in entering.identities) == sorted(own)


def test_the_hold_is_configured_with_a_default_and_bounds() -> None:
    import pytest
    from pydantic import ValidationError

    from edge.config import TagsSection

    assert TagsSection().hold_s == 300.0 and TagsSection(hold_s=60).hold_s == 60
    for bad in (0, 5, 7200, float("nan")):
        with pytest.raises(ValidationError):
            TagsSection(hold_s=bad)


def test_held_tags_are_bounded_in_number() -> None:
    from edge.identity import MAX_HELD_TAGS

    window = TagWindow.__new__(TagWindow)
    window._held, window.tag_hold_s = {}, 300.0
    for n in range(MAX_HELD_TAGS + 5):
        window._hold(f"T{n}", "car-1", "lane", 1.0)
    assert len(window._held) == MAX_HELD_TAGS and "T4" not in window._held and f"T{MAX_HELD_TAGS + 4}" in window._held
    assert window._holding("T5", 1.0 + 300.0) is None and window._held == {}



async def test_a_125_khz_tag_read_again_after_its_items_record_was_written_is_flagged_too() -> None:
    """The same on an EM4100 serial reader (the simulator on a pty, the real serial reader on it)."""
    from contextlib import AsyncExitStack

    from central_sync.schema import ItemKind
    from drivers.rfid import RfidConfig
    from edge.config import DevicesSection
    from edge.devices import open_devices
    from edge.events import EventBus

    cfg = DevicesSection(readers={"lane": RfidConfig(kind="sim", removal_after_ms=100)})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        try:
            sim = devices.readers["lane"].sim
            ahead, entering = Item("car-1", ItemKind.VEHICLE), Item("car-2", ItemKind.VEHICLE)
            window.start(ahead)
            sim.present("1A2B3C4D5E", seconds=0.5)
            await until(lambda: ahead.identities, "the tag of the vehicle ahead is read", timeout=10)
            window.stop(ahead)
            await until(lambda: not window._present, "the tag falls silent and is removed", timeout=10)
            window.start(entering)
            sim.present("1A2B3C4D5E", seconds=0.5)
            await until(lambda: entering.identities, "the tag is read again", timeout=10)
        finally:
            task.cancel()
    assert [(kind, code, {k: v for k, v in values.items() if k != "seconds"}) for kind, code, values in
            notes(entering)] == [("rfid", "tag_reread", {"tag": "1A2B3C4D5E", "reader": "lane", "item": ahead.id})]
    assert window.tags_reread == 1
