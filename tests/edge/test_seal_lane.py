"""E-seals in the lane, end to end: a seal reader opened from config (simulator on a pty or over LLRP/TCP),
its reports joining the open item, and the record decided with the real model, stored with the seal's
state and events: a declared seal tampered in the lane is manual/seal_not_intact, an intact one lets the
scan decide."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from central_sync.schema import InspectionRecord, ItemKind, Verdict
from drivers.rfid.llrp import LlrpReader
from drivers.seal.state import SimSeal
from edge.config import DevicesSection
from edge.devices import Devices, open_devices
from edge.detector import Engine
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.seals import SealExpectation
from edge.stations.acquisition import WholeScan
from edge.stations.identify import TagWindow
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import case, write_package
from polling import until

SEAL = "HKEL0001234"
SERIAL = {"kind": "seal-serial-sim", "removal_after_ms": 400, "sim": {"repeat_ms": 30}}
LLRP = {"kind": "seal-llrp", "removal_after_ms": 400,
        "reader": {"kind": "llrp", "keepalive_s": 0.5, "read_user_words": 16, "sim": {"read_ms": 20}}}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_package(tmp_path_factory.mktemp("pkg") / "model", "cpe-fcos-v1", 128,
                         applies='item_kinds = ["container"]')


@dataclass
class Lane:
    devices: Devices
    window: TagWindow
    inspector: Inspector
    store: StoreWriter

    async def container(self, ref: str, during: Any) -> InspectionRecord:
        """One container through the lane: the item opens, `during(sim)` happens, the scan is decided."""
        item = Item(ref, ItemKind.CONTAINER)
        self.window.start(item)
        await during(next(iter(self.devices.seals.values())).sim, item)
        self.window.stop(item)
        high, low = case(256, 200)
        return await self.inspector.inspect(item, WholeScan(Scan(high, low, {"pixel_mm": 1.0})))


async def lane(stack: AsyncExitStack, tmp_path: Any, package: Any, seal_cfg: dict[str, Any]) -> Lane:
    pool = await stack.enter_async_context(InferencePool(1, 4))
    store = await stack.enter_async_context(StoreWriter(Store(tmp_path / "data", station="st-1")))
    devices = await open_devices(stack, DevicesSection.model_validate({"seals": {"seals": seal_cfg}}), "st-1")
    window = TagWindow(devices, EventBus())
    task = asyncio.create_task(window.run())
    stack.callback(task.cancel)

    async def actuate(*_: Any) -> None:
        return None
    inspector = Inspector("st-1", "1", 5000, Engine(load_detector(package, overlap=32), pool), store, EventBus(),
                          StationMetrics(), actuate, seals=SealExpectation(True, (SEAL,)))
    await until(lambda: devices.states()["seal:seals"]["state"] == "ok", "the seal reader is up")
    return Lane(devices, window, inspector, store)


async def seal_tampered_in_the_lane(sim: Any, item: Item) -> None:
    sim.present(SimSeal(SEAL), 5, tid="E28011602000AAAA0001", epc="3034257BF7194E4000001A85")
    await until(lambda: any(i.kind == "seal" for i in item.identities), "the seal joins the item")
    sim.event(SEAL, "tampered")
    await until(lambda: any(e.state == "tampered" for e in item.seal_events), "the tamper event joins the item")


async def seal_intact(sim: Any, item: Item) -> None:
    sim.present(SimSeal(SEAL), 0.3, tid="E28011602000AAAA0001", epc="3034257BF7194E4000001A85")
    await until(lambda: any(i.kind == "seal" for i in item.identities), "the seal joins the item")


async def nothing(sim: Any, item: Item) -> None:
    await asyncio.sleep(0.1)


@pytest.mark.parametrize("seal_cfg", [SERIAL, LLRP], ids=["serial-pty", "llrp-tcp"])
async def test_a_seal_tampered_in_the_lane_sends_the_container_to_manual_on_record(
        tmp_path: Any, package: Any, seal_cfg: dict[str, Any]) -> None:
    async with AsyncExitStack() as stack:
        rig = await lane(stack, tmp_path, package, seal_cfg)
        record = await rig.container("c-1", seal_tampered_in_the_lane)
        stored = await rig.store.call(rig.store.store.get, record.id)
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)
    seal = next(i for i in record.identities if i.kind == "seal")
    assert seal.value == SEAL and seal.seal is not None and seal.seal.state == "tampered" and seal.seal.events == 1
    assert [e.state for e in record.seal_events] == ["intact", "tampered"]
    assert stored == record


async def test_an_intact_declared_seal_lets_the_scan_clear_and_a_missing_one_does_not(
        tmp_path: Any, package: Any) -> None:
    async with AsyncExitStack() as stack:
        rig = await lane(stack, tmp_path, package, SERIAL)
        intact = await rig.container("c-2", seal_intact)
        await until(lambda: not rig.window._present, "the seal left the reader's range")
        missing = await rig.container("c-3", nothing)
    assert (intact.verdict, intact.reason) == (Verdict.CLEAR, "clear")
    assert [i.seal.state for i in intact.identities if i.seal] == ["intact"]
    assert (missing.verdict, missing.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)


async def test_malformed_seal_lines_are_counted_on_the_screen_and_in_metrics_and_the_lane_goes_on() -> None:
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection.model_validate({"seals": {"seals": SERIAL}}), "st-1")
        metrics = StationMetrics()
        metrics.follow_devices(devices)
        reader = devices.seals["seals"]
        assert reader.sim is not None
        await until(lambda: reader.link_ok, "the seal reader is up")
        reader.sim.send_raw(b"$ES,1,HKEL0001234,I,87,00,0,1*FFFF\r\n")
        await until(lambda: devices.states()["seal:seals"]["rejects"] == {"checksum": 1}, "the bad line is counted")
        assert metrics.registry.get_sample_value("edge_seal_rejects_total", {"reader": "seals", "reason": "checksum"}) == 1
        assert devices.states()["seal:seals"]["state"] == "ok"


async def test_a_seal_reader_can_share_the_lanes_uhf_reader_which_reads_vehicle_and_seal_tags() -> None:
    """One LLRP reader (one client per reader): the vehicle's tag becomes rfid_tid/rfid_epc, the seal tag a seal."""
    raw = {"readers": {"lane": {"kind": "llrp", "keepalive_s": 0.5, "read_user_words": 16, "sim": {"read_ms": 20}}},
           "seals": {"seals": {"kind": "seal-llrp", "reader": "lane"}}}
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection.model_validate(raw), "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        item = Item("c-9", ItemKind.CONTAINER)
        window.start(item)
        seals = devices.seals["seals"]
        assert seals.sim is not None and seals.reader is devices.readers["lane"]  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
        devices.readers["lane"].sim.present("300833B2DDD9014000000001", "E2801160200073F1A2B3C4D5", seconds=2)
        seals.sim.present(SimSeal(SEAL), 2, tid="E28011602000AAAA0001", epc="3034257BF7194E4000001A85")
        await until(lambda: {"seal", "rfid_tid"} <= {i.kind for i in item.identities}, "vehicle tag and seal read")
        await asyncio.sleep(0.2)
        task.cancel()
    # the seal's own tag is the seal, not a second vehicle tag
    assert [i.value for i in item.identities if i.kind == "rfid_tid"] == ["E2801160200073F1A2B3C4D5"]
    assert devices.readers["lane"].sim.connections == 1


SHARED = {"readers": {"lane": {"kind": "llrp", "keepalive_s": 0.5, "read_user_words": 16, "sim": {"read_ms": 20}}},
          "seals": {"seals": {"kind": "seal-llrp", "reader": "lane", "removal_after_ms": 400}}}
VEHICLE_TID, VEHICLE_EPC = "E2801160200073F1A2B3C4D5", "300833B2DDD9014000000001"
SEAL_TID, SEAL_EPC = "E28011602000AAAA0001", "3034257BF7194E4000001A85"


def _uhf(item: Item) -> set[tuple[str, str]]:
    return {(i.kind, i.value) for i in item.identities if i.kind in ("rfid_tid", "rfid_epc")}


async def test_a_seal_tag_read_over_llrp_is_the_seals_identity_never_also_the_vehicles_rfid() -> None:
    """Whichever the lane hears first (the tag's TagSeen or the seal's decoded memory), the seal tag ends as the
    seal, with its TID, and only the vehicle's own tag is rfid_tid/rfid_epc."""
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection.model_validate(SHARED), "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        stack.callback(task.cancel)
        item = Item("c-11", ItemKind.CONTAINER)
        window.start(item)
        seals, lane = devices.seals["seals"], devices.readers["lane"]
        assert seals.sim is not None and isinstance(lane, LlrpReader) and lane.sim is not None
        await until(lambda: lane.link_ok, "the UHF reader is up")
        seals.sim.present(SimSeal(SEAL), 3, tid=SEAL_TID, epc=SEAL_EPC)
        lane.sim.present(VEHICLE_EPC, VEHICLE_TID, seconds=3)
        await until(lambda: {("seal", SEAL), ("rfid_tid", VEHICLE_TID)} <= {(i.kind, i.value) for i in item.identities},
                    "the vehicle tag and the seal read")
        await asyncio.sleep(0.3)  # several more report rounds of both tags: none may bring the seal tag back
        assert _uhf(item) == {("rfid_tid", VEHICLE_TID), ("rfid_epc", VEHICLE_EPC)}
        late = Item("c-12", ItemKind.CONTAINER)
        window.start(late)  # opened while both tags are in the field: it takes neither the seal nor its tag as rfid
    vehicle_tag = {("rfid_tid", VEHICLE_TID), ("rfid_epc", VEHICLE_EPC)}
    assert sorted([_uhf(item), _uhf(late)], key=len) == [set(), vehicle_tag]  # the vehicle's tag is on one record
    seal = next(i for i in item.identities if i.kind == "seal")
    assert seal.checks == {"tid": SEAL_TID}
    assert not [i for i in late.identities if i.kind == "seal"]  # the seal is the item's that it joined


def test_a_seal_reader_naming_a_reader_that_cannot_read_seals_is_a_config_error() -> None:
    from pydantic import ValidationError

    for readers, words in (({}, "not an LLRP reader"),
                           ({"lane": {"kind": "llrp", "host": "10.0.0.9"}}, "read_user_words >= 16")):
        with pytest.raises(ValidationError, match=words):
            DevicesSection.model_validate({"readers": readers, "seals": {"s": {"kind": "seal-llrp", "reader": "lane"}}})


async def test_a_seal_in_range_before_the_container_enters_joins_it_with_its_state_as_an_event() -> None:
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection.model_validate({"seals": {"seals": SERIAL}}), "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        sim = devices.seals["seals"].sim
        assert sim is not None
        await asyncio.sleep(0.05)
        sim.present(SimSeal(SEAL), 5)
        await until(lambda: window._present, "the seal is in range")
        item = Item("c-10", ItemKind.CONTAINER)
        window.start(item)
        task.cancel()
    assert [(i.kind, i.value) for i in item.identities] == [("seal", SEAL)]
    assert [(e.seal_id, e.state, e.reader) for e in item.seal_events] == [(SEAL, "intact", "seals")]


async def test_the_twin_serves_a_serial_seal_reader_where_the_config_expects_it(tmp_path: Any) -> None:
    from drivers.seal import open_seal_reader
    from drivers.seal.config import SerialSealConfig
    from edge.config import load_config
    from edge.twin import serve_twin
    from test_twin import ROOT, _config

    config = load_config(_config(tmp_path, tmp_path))
    port = str(tmp_path / "dev" / "serial" / "by-id" / "usb-ESeal-if00")
    real = SerialSealConfig(kind="seal-serial", port=port, removal_after_ms=400, sim={"repeat_ms": 30, "schedule": [
        {"at_s": 0.1, "seconds": 30, "seal_id": SEAL}]})
    devices = config.devices.model_copy(update={"plc": None, "scanner": None, "readers": {}, "seals": {"seals": real}})
    async with AsyncExitStack() as stack:
        served = await serve_twin(config.model_copy(update={"devices": devices}), stack, ROOT / "examples" / "scans")
        assert served == [f"e-seal reader 'seals' on {port}"]
        async with open_seal_reader(real, "seals") as reader:
            await until(lambda: SEAL in reader.board.present, "the station reads the twin's seal")  # type: ignore[union-attr]


async def _next_container_without_the_first_ones_seal(tmp_path: Any, package: Any, ids: tuple[str, str],
                                                      behind: Callable[[Any, Any, Item], Awaitable[None]]) -> None:
    """The first container recorded with its seal in range (waiting at the barrier); `behind(rig, sim, item)` while
    the next one, without a seal, is in the lane: the next one is seal_not_intact, with no seal and none of the
    first one's seal events."""
    async def seal_stays(sim: Any, item: Item) -> None:
        sim.present(SimSeal(SEAL), 30)
        await until(lambda: any(i.kind == "seal" for i in item.identities), "the seal joins the item")

    async with AsyncExitStack() as stack:
        rig = await lane(stack, tmp_path, package, SERIAL)
        ahead = await rig.container(ids[0], seal_stays)
        second = await rig.container(ids[1], lambda sim, item: behind(rig, sim, item))
    assert (ahead.verdict, ahead.reason) == (Verdict.CLEAR, "clear")
    assert (second.verdict, second.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)
    assert not [i for i in second.identities if i.kind == "seal"] and second.seal_events == []


async def test_a_seal_still_in_range_stays_with_its_vehicle_and_never_joins_the_next_one(
        tmp_path: Any, package: Any) -> None:
    """The reader still reaches the first container, recorded and waiting at the barrier, when the next one
    enters without a seal: the next one is seal_not_intact, its record shows no seal and none of the first
    one's seal events (it took the first one's seal, tamper event included, and was clear)."""
    async def seal_ahead_tampered(rig: Any, sim: Any, item: Item) -> None:
        sim.event(SEAL, "tampered")
        await until(lambda: rig.window._present[("seal:seals", SEAL)][0].seal.state == "tampered",
                    "the reader heard the tamper event")

    await _next_container_without_the_first_ones_seal(tmp_path, package, ("c-20", "c-21"), seal_ahead_tampered)


async def test_a_seal_that_left_the_range_while_its_vehicle_waits_at_the_barrier_never_joins_the_next_one(
        tmp_path: Any, package: Any) -> None:
    """The seal reader's link drops (unplugged) while the next container is in the lane, the first one, recorded,
    still at the barrier with its seal; when the link is back and the seal heard again, the next one does not take
    it (it took it and met the declared seal)."""
    async def link_drops_and_comes_back(rig: Any, sim: Any, item: Item) -> None:
        sim.pty.unplug()
        await until(lambda: not rig.window._present, "the seal left with the reader's link")
        sim.pty.replug()
        await until(lambda: rig.window._present, "the seal is heard again")

    await _next_container_without_the_first_ones_seal(tmp_path, package, ("c-40", "c-41"), link_drops_and_comes_back)


async def test_a_seal_joins_one_item_while_the_one_ahead_is_open_and_is_free_again_after_the_hold() -> None:
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection.model_validate({"seals": {"seals": SERIAL}}), "st-1")
        window = TagWindow(devices, EventBus(), seal_hold_s=0.0)  # held no longer than it was out of range
        task = asyncio.create_task(window.run())
        stack.callback(task.cancel)
        sim = devices.seals["seals"].sim
        assert sim is not None
        ahead = Item("c-30", ItemKind.CONTAINER)
        window.start(ahead)
        sim.present(SimSeal(SEAL), 0.5)
        await until(lambda: ahead.seal_events, "the seal joins the container ahead")
        behind = Item("c-31", ItemKind.CONTAINER)
        window.start(behind)  # the one ahead still open (a vehicle running the red light)
        sim.event(SEAL, "opened")
        await until(lambda: len(ahead.seal_events) == 2, "the seal's new state joins the container ahead")
        assert not [i for i in behind.identities if i.kind == "seal"] and behind.seal_events == []
        window.stop(ahead)
        window.stop(behind)
        await until(lambda: not window._present, "the seal left the reader's range")
        sim.present(SimSeal(SEAL), 5)  # in range again after the hold: it is heard anew, with the next container
        await until(lambda: window._present, "the seal is in range again")
        again = Item("c-32", ItemKind.CONTAINER)
        window.start(again)
    assert [e.state for e in ahead.seal_events] == ["intact", "opened"]
    assert [(i.kind, i.value) for i in again.identities] == [("seal", SEAL)]


@pytest.mark.parametrize("leaves_range_first", [True, False])
async def test_a_seal_is_held_for_its_vehicle_until_the_vehicle_has_left_the_lane_and_the_seal_the_range(
        leaves_range_first: bool) -> None:
    """The hold (minutes, `[seals] hold_s`) ended only by time: a vehicle brought back through the lane within it
    showed no seal. Now it ends once the vehicle has left the lane (`left`) and the seal is out of range, in either
    order; while the seal stays in range the item behind never takes it."""
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, DevicesSection.model_validate({"seals": {"seals": SERIAL}}), "st-1")
        window = TagWindow(devices, EventBus())
        task = asyncio.create_task(window.run())
        stack.callback(task.cancel)
        sim = devices.seals["seals"].sim
        assert sim is not None
        ahead = Item("c-50", ItemKind.CONTAINER)
        window.start(ahead)
        in_range = sim.present(SimSeal(SEAL), 60)
        await until(lambda: ahead.seal_events, "the seal joins the container ahead")
        window.stop(ahead)
        if not leaves_range_first:
            window.left(ahead.id)
            behind = Item("c-51", ItemKind.CONTAINER)
            window.start(behind)  # its seal still in range: the container behind does not take it
            sim.event(SEAL, "opened")
            await until(lambda: len(ahead.seal_events) == 1 and window._present[("seal:seals", SEAL)][0].seal.state
                        == "opened", "the reader heard the seal opened")
            window.stop(behind)
            assert behind.identities == [] and behind.seal_events == []
        in_range.cancel()
        await until(lambda: not window._present, "the seal left the reader's range")
        if leaves_range_first:
            window.left(ahead.id)
        sim.present(SimSeal(SEAL), 5)  # the same container brought back through the lane
        await until(lambda: window._present, "the seal is in range again")
        again = Item("c-52", ItemKind.CONTAINER)
        window.start(again)
    assert [(i.kind, i.value) for i in again.identities] == [("seal", SEAL)]
