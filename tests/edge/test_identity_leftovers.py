"""Tag re-reads that look like false flags but cannot be told from true ones with what the station knows: they stay
flagged `tag_reread` (an officer looks), never cleared by default.

- An exit antenna reading the vehicle that leaves, when the reader's config does not list it in `exit_antennas`
  (drivers.rfid.config): a read there is attributed as any read is (to the item open then), and the tag on the
  written record of the vehicle ahead is what `tag_reread` exists for (listed, the read joins no item:
  tests/edge/test_exit_antennas.py).
- A bag sent back through the belt within the hold: its tag alone does not say the bag entering is that bag and not
  another beside the earlier one still in the antenna's field (a UHF field reaches metres: the bag just past the
  tunnel, or set down at the entry); the conveyor is told of no bag leaving it (no `TagWindow.left`)."""

from __future__ import annotations

from central_sync.schema import ItemKind
from polling import until
from test_identity_fusion import TAG, lane_window
from test_identity_tag_reread import notes, written_then_removed

EPC, TID = TAG
ENTRY, EXIT = 1, 2


def window_over(kind: ItemKind):
    """A TagWindow over a simulated LLRP reader with an entry antenna (1) and one facing the exit (2), which removes a
    tag unread for 100 ms, and two items of the kind, the first open."""
    return lane_window([ENTRY, EXIT], names=(f"{kind}-1", f"{kind}-2"), kind=kind)


async def test_the_leaving_vehicles_tag_read_by_an_exit_antenna_stays_flagged_on_the_vehicle_entering() -> None:
    """Car 1's tag, read at an exit antenna not listed in `exit_antennas` while car 2 is scanned, joins car 2 flagged:
    the antenna's role is not known, and car 1 still at the barrier reads the same (confirmed: codes tag_reread on car
    2's rfid_tid and rfid_epc)."""
    async with window_over(ItemKind.VEHICLE) as (window, sim, ahead, entering):
        await written_then_removed(window, sim, ahead)
        window.start(entering)
        sim.present(EPC, TID, antenna=EXIT, seconds=0.2)  # type: ignore[attr-defined]
        await until(lambda: len(entering.identities) == 2, "the exit antenna reads car 1's tag")
    assert [(kind, code, values["item"]) for kind, code, values in notes(entering)] == \
        [("rfid_tid", "tag_reread", ahead.id), ("rfid_epc", "tag_reread", ahead.id)]
    assert window.tags_reread == 1 and notes(ahead) == []


async def test_a_bag_sent_back_through_the_belt_within_the_hold_stays_flagged() -> None:
    """Bag 1's tag, read again as bag 2 enters within `[tags] hold_s`, joins bag 2 flagged: the same bag back on the
    belt and bag 1 still in the field read alike (confirmed: tag_reread naming bag 1)."""
    async with window_over(ItemKind.BAGGAGE) as (window, sim, first, again):
        await written_then_removed(window, sim, first)
        window.start(again)
        sim.present(EPC, TID, antenna=ENTRY, seconds=0.2)  # type: ignore[attr-defined]
        await until(lambda: len(again.identities) == 2, "the tag is read as the bag enters again")
    assert {(code, values["item"]) for _, code, values in notes(again)} == {("tag_reread", first.id)}
    assert sorted(i.value for i in again.identities) == sorted(TAG)  # the tag is on the record: flagged, not dropped
