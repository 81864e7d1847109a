"""A reader's `exit_antennas` (antennas facing the lane's exit): their reads are of vehicles leaving. Car 1's tag, read
there as car 1 leaves while car 2 is scanned, joined car 2 flagged `tag_reread` naming car 1 (identity_conflict,
amber), as nothing knew the antenna faced the exit. Now such a read joins no item being scanned: car 1 is counted as
seen at the exit, and a tag no recorded vehicle carries is counted and logged. The same read at an antenna not listed
there is flagged as before, and so is the tag once an entry antenna reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from drivers.rfid import LlrpConfig
from edge.stations.identify import TagWindow
from polling import until
from test_identity_fusion import TAG, lane_window
from test_identity_tag_reread import assess, notes, written_then_removed

EPC, TID = TAG
OTHER = ("300833B2DDD9014000000009", "E2801160200073F1A2B30009")  # a tag no vehicle recorded here carries
ENTRY, SIDE, EXIT = 1, 2, 3
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gantry.toml"


def lane(exit_antennas: list[int]):
    """A TagWindow over a simulated LLRP reader with antennas 1 (entry), 2 and 3, those given facing the exit, which
    removes a tag unread for 100 ms; car 1 open, car 2 not yet."""
    return lane_window([ENTRY, SIDE, EXIT], exit_antennas)


async def test_the_leaving_cars_tag_read_at_an_exit_antenna_does_not_join_the_car_being_scanned(
        tmp_path: Path) -> None:
    """Before, car 2 took car 1's TID and EPC flagged tag_reread naming car-1 (identity_conflict, amber)."""
    async with lane([EXIT]) as (window, sim, car1, car2):
        await written_then_removed(window, sim, car1)
        window.start(car2)
        with capture_logs() as logs:
            sim.present(EPC, TID, antenna=EXIT, seconds=0.2)  # type: ignore[attr-defined]
            await until(lambda: window.tags_at_exit == 1, "car 1 is seen at the exit")
            await until(lambda: not window._at_exit, "the tag leaves the exit antenna's field")
    assert car2.identities == [] and window.tags_reread == 0 and window.unrecorded_tags_at_exit == 0
    assert notes(car1) == []
    assert assess(tmp_path, car2) == [("identity_unread", "amber")]  # car 2 read no tag of its own: no conflict
    (seen,) = [e for e in logs if e["event"] == "reader.tag_at_exit"]
    assert (seen["tag"], seen["antenna"], seen["item"]) == (TID, EXIT, car1.id)


@pytest.mark.parametrize("antenna", [ENTRY, SIDE], ids=["entry", "not-listed"])
async def test_the_same_read_at_an_antenna_not_listed_as_exit_is_still_flagged(antenna: int) -> None:
    async with lane([EXIT]) as (window, sim, car1, car2):
        await written_then_removed(window, sim, car1)
        window.start(car2)
        sim.present(EPC, TID, antenna=antenna, seconds=0.2)  # type: ignore[attr-defined]
        await until(lambda: len(car2.identities) == 2, "car 1's tag is read again")
    assert [(kind, code, values["item"]) for kind, code, values in notes(car2)] == \
        [("rfid_tid", "tag_reread", car1.id), ("rfid_epc", "tag_reread", car1.id)]
    assert window.tags_reread == 1 and window.tags_at_exit == 0


async def test_a_tag_first_read_at_the_exit_is_flagged_once_an_entry_antenna_reads_it() -> None:
    """Car 1's tag caught at the exit antenna, then read at the entry while still present (car 1 back in the lane):
    the reader reports it again at the entry antenna and car 2 takes it flagged, as before."""
    async with lane([EXIT]) as (window, sim, car1, car2):
        await written_then_removed(window, sim, car1)
        window.start(car2)
        sim.present(EPC, TID, antenna=EXIT, seconds=30)  # type: ignore[attr-defined]
        await until(lambda: window.tags_at_exit == 1, "car 1 is seen at the exit")
        assert car2.identities == []
        sim.present(EPC, TID, antenna=ENTRY, seconds=0.2)  # type: ignore[attr-defined]
        await until(lambda: len(car2.identities) == 2, "the entry antenna reads car 1's tag")
    assert [code for _, code, _ in notes(car2)] == ["tag_reread", "tag_reread"] and window.tags_reread == 1


async def test_a_tag_no_recorded_vehicle_carries_read_at_the_exit_is_counted_and_logged_and_joins_nothing() -> None:
    async with lane([EXIT]) as (window, sim, car1, _):
        with capture_logs() as logs:
            sim.present(*OTHER, antenna=EXIT, seconds=0.2)  # type: ignore[attr-defined]
            await until(lambda: window.unrecorded_tags_at_exit == 1, "the unknown tag is counted")
        assert car1.identities == []
        sim.present(*OTHER, antenna=ENTRY, seconds=0.2)  # type: ignore[attr-defined]
        await until(lambda: len(car1.identities) == 2, "the same tag read at the entry joins the car scanned")
    (warning,) = [e for e in logs if e["event"] == "reader.unrecorded_tag_at_exit"]
    assert warning["log_level"] == "warning" and (warning["tag"], warning["antenna"]) == (OTHER[1], EXIT)
    assert warning["detail"] == (f"tag {OTHER[1]} read by lane at exit antenna {EXIT} is on no vehicle recorded in "
                                 f"the lane in the last 300 s: a vehicle never recorded may be leaving; the tag joins "
                                 f"no item")
    assert notes(car1) == [] and window.tags_at_exit == 0


def test_an_exit_antenna_must_be_one_of_the_readers_antennas() -> None:
    assert LlrpConfig(kind="llrp", host="10.0.0.21", antennas=(1, 2), exit_antennas=(2,)).exit_antennas == (2,)
    assert LlrpConfig(kind="llrp", host="10.0.0.21").exit_antennas == ()
    with pytest.raises(ValidationError, match=r"exit_antennas \[3, 5\] are not among the reader's antennas \[1, 2\]"):
        LlrpConfig(kind="llrp", host="10.0.0.21", antennas=(1, 2), exit_antennas=(5, 3, 2))


@pytest.mark.parametrize(("exit_antennas", "refused"), [("[2]", None), ("[3]", "exit_antennas [3] are not among the "
                                                                        "reader's antennas [1, 2]")])
def test_check_config_accepts_or_refuses_exit_antennas(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       exit_antennas: str, refused: str | None) -> None:
    from edge.cli import main
    from edge.config import CONFIG_ERROR_EXIT

    text = EXAMPLE.read_text()
    assert "\nantennas = [1, 2]" in text
    path = tmp_path / "gantry.toml"
    path.write_text(text.replace("\nantennas = [1, 2]", f"\nantennas = [1, 2]\nexit_antennas = {exit_antennas}", 1))
    status = main(["check-config", "--skip-files", str(path)])
    out = capsys.readouterr()
    if refused is None:
        assert (status, out.out.strip()) == (0, f"{path}: ok"), out.err
    else:
        assert status == CONFIG_ERROR_EXIT and refused in out.err and "devices.readers.uhf" in out.err, out.err


async def test_the_gantry_counts_exit_reads_on_its_metrics(tmp_path: Path) -> None:
    """The lane's flow publishes both counts (`edge_lane_tags_at_exit_total{vehicle=recorded|unrecorded}`)."""
    import asyncio
    from contextlib import AsyncExitStack

    from edge.events import EventBus
    from edge.store import Store, StoreWriter
    from gantry_station import gantry_flow, vehicle_scan

    reader = {"kind": "llrp", "antennas": [ENTRY, EXIT], "exit_antennas": [EXIT], "keepalive_s": 0.5,
              "removal_after_ms": 100, "sim": {"read_ms": 20, "antennas": 3}}
    async with AsyncExitStack() as stack:
        store = Store(tmp_path / "data", station="g-1").open()
        stack.callback(store.close)
        writer = await stack.enter_async_context(StoreWriter(store))
        flow = await gantry_flow(stack, tmp_path, [vehicle_scan(False)], writer, EventBus(), readers={"uhf": reader})
        task = asyncio.create_task(flow.tags.run())
        try:
            uhf = flow.devices.readers["uhf"]
            await until(lambda: uhf.link_ok, "the UHF reader is up")
            uhf.sim.present(*OTHER, antenna=EXIT, seconds=0.2)
            await until(lambda: flow.tags.unrecorded_tags_at_exit == 1, "the unknown tag is counted")
        finally:
            task.cancel()
    sample = flow.parts.metrics.registry.get_sample_value
    assert (sample("edge_lane_tags_at_exit_total", {"vehicle": "unrecorded"}),
            sample("edge_lane_tags_at_exit_total", {"vehicle": "recorded"})) == (1, 0)
