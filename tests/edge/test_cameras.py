"""A vehicle's plates and container code reach its record: the camera window over simulated cameras."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from central_sync.schema import Identity, ItemKind
from drivers.camera import CameraConfig, CameraSim, open_camera
from drivers.camera.sim import SimCamera
from edge.config import DevicesSection
from edge.devices import Devices
from edge.inspection import Item
from edge.stations.cameras import CameraWindow
from edge.store import Store, StoreWriter
from polling import until


def _cam(role: str, **sim: object) -> CameraConfig:
    return CameraConfig(kind="sim", role=role, fps=30.0, max_frames=3, min_confidence=0.5,  # type: ignore[arg-type]
                        sim=CameraSim(seed=0, **sim))  # type: ignore[arg-type]


def _by(item: Item, source: str) -> dict[str, Identity]:
    return {i.value or i.status or "": i for i in item.identities if i.source == source}


async def test_vehicle_gets_its_plates_and_container_code_with_crops(tmp_path: Path) -> None:
    with Store(tmp_path / "data", station="st-1") as store:
        async with StoreWriter(store) as writer, open_camera(_cam("front_plate"), "front") as front, \
                open_camera(_cam("container_door", bad_every=2), "door") as door:
            devices = Devices(cameras={"front": front, "door": door})
            window = CameraWindow(devices, writer)
            item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
            window.start(item)
            assert {(i.source, i.status) for i in item.identities} == {("front", "unread"), ("door", "unread")}
            task = asyncio.create_task(window.run())
            truth = front.vehicle if isinstance(front, SimCamera) else None
            assert truth is not None
            await until(lambda: {truth.hk_plate, truth.gd_plate} <= set(_by(item, "front"))
                        and truth.container in _by(item, "door") and sum(door.bad_frames.values()) >= 1
                        and item.size_type == truth.size_type,
                        "both plates, the container code and its size/type voted, past a broken frame",
                        timeout=60)
            window.stop(item)
            task.cancel()
    code = _by(item, "door")[truth.container]
    assert code.kind == "container" and code.status == "read" and code.confidence is not None
    assert (tmp_path / "data" / "crops" / code.crop[:2] / f"{code.crop}.png").is_file()
    assert _by(item, "front")[truth.hk_plate].kind == "plate"
    assert truth.size_type not in _by(item, "door") and len(_by(item, "door")) == 1  # a fact, not an identity
    # a better frame taking a slot drops the crop it replaced: the crops kept are those the identities name
    on_disk = {p.stem for p in (tmp_path / "data" / "crops").rglob("*.png")}
    assert on_disk == {i.crop for i in item.identities if i.crop}, on_disk


async def test_the_cameras_read_the_vehicle_that_came_in_last(tmp_path: Path) -> None:
    """A vehicle that comes in while another is still open (one that ran the red light behind the scanned one)
    is what the cameras at the entry see: the earlier vehicle's pass ends with what it had, and the frames that
    follow are read for the newcomer only."""
    async with open_camera(_cam("front_plate"), "front") as front:
        window = CameraWindow(Devices(cameras={"front": front}))
        scanned, newcomer = Item(ref="vehicle", kind=ItemKind.VEHICLE), Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(scanned)
        window.start(newcomer)
        task = asyncio.create_task(window.run())
        await until(lambda: any(i.status == "read" for i in newcomer.identities), "the newcomer's plate read",
                    timeout=60)
        window.stop(newcomer)
        window.stop(scanned)
        task.cancel()
    assert {(i.source, i.status) for i in scanned.identities} == {("front", "unread")}


def test_cameras_are_an_optional_device_role() -> None:
    section = DevicesSection.model_validate({"cameras": {"front": {"kind": "sim", "role": "front_plate"}}})
    assert section.cameras["front"].reads == "plate"
    from edge.stations.kinds import KINDS

    assert all("cameras" not in kind.needs for kind in KINDS.values())  # a station without cameras still runs


async def test_cameras_open_with_the_station_and_show_their_state(tmp_path: Path) -> None:
    from contextlib import AsyncExitStack

    from edge.devices import open_devices

    cfg = DevicesSection.model_validate({"cameras": {
        "door": {"kind": "opencv", "role": "container_door", "url": str(tmp_path / "nothing-here"),
                 "reconnect_min_ms": 10},
        "front": {"kind": "sim", "role": "front_plate"}}})
    async with AsyncExitStack() as stack:
        devices = await open_devices(stack, cfg, "st-1")
        states = devices.states()
    assert states["camera:front"]["state"] == "ok"
    assert states["camera:door"]["state"] == "degraded" and "nothing-here" in states["camera:door"]["detail"]
    assert states["camera:door"]["bad_frames"] == {} and states["camera:door"]["reconnects"] == 0


async def test_without_the_text_reader_cameras_show_degraded_and_the_lane_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.stations.cameras as cameras_module

    def missing() -> None:
        raise ImportError("No module named 'rapidocr_onnxruntime'")

    monkeypatch.setattr(cameras_module, "_load_reader", missing)
    async with open_camera(_cam("front_plate"), "front") as front:
        devices = Devices(cameras={"front": front})
        window = CameraWindow(devices)
        item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(item)
        await window.run()  # returns instead of failing the flow
    assert devices.states()["camera:front"]["state"] == "degraded"
    assert "rapidocr_onnxruntime" in devices.states()["camera:front"]["detail"]
    assert [(i.kind, i.status, i.value) for i in item.identities] == [("plate", "unread", "")]


async def test_a_cross_boundary_vehicle_whose_hong_kong_plate_is_dirty_records_it_as_not_read(tmp_path: Path) -> None:
    """The mainland plate is read; the Hong Kong plate under dirt is `unread`, never left out nor guessed."""
    from dataclasses import replace

    from drivers.simlane import LaneSim, describe, lane

    truth = replace(describe(LaneSim(name="cam-dirt", seed=36, cross_boundary=1.0), 3), obscured="dirt")
    lane("cam-dirt").entered(truth)
    async with open_camera(_cam("front_plate", lane="cam-dirt"), "front") as front:
        window = CameraWindow(Devices(cameras={"front": front}))
        item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(item)
        task = asyncio.create_task(window.run())
        await until(lambda: truth.gd_plate in _by(item, "front"), "the mainland plate voted", timeout=60)
        window.stop(item)
        task.cancel()
    plates = {(i.value, i.status) for i in item.identities if i.kind == "plate"}
    assert plates == {(truth.gd_plate, "read"), ("", "unread")}, plates


async def test_a_crop_a_better_frame_replaced_is_dropped_unless_a_record_names_it(tmp_path: Path) -> None:
    """While a pass is open the vote may move a slot to a better frame: the crop it named before is no evidence and
    would count towards the scan cap for ever. One a record already names is kept."""
    import numpy as np

    from drivers.camera.frames import Frame
    from edge.stations.cameras import _Pass
    from models.ocr.vote import Voted

    rng = np.random.default_rng(3)
    frames = [Frame(rng.integers(0, 255, (120, 160, 3), np.uint8), 0.0, n, "front") for n in range(3)]

    def voted(frame: int) -> list[Voted]:
        return [Voted("plate", "hk", "AB1234", "AB1234", 0.9, "read", 1, frame, (10, 10, 90, 40))]

    with Store(tmp_path / "data", station="st-1") as store:
        async with StoreWriter(store) as writer, open_camera(_cam("front_plate"), "front") as front:
            window = CameraWindow(Devices(cameras={"front": front}), writer)
            passed = _Pass(Item(ref="vehicle", kind=ItemKind.VEHICLE), frames=frames)
            window._passes[("front", passed.item.id)] = passed  # open
            first = (await window._crops(voted(0), passed, front))["hk"]
            second = (await window._crops(voted(1), passed, front))["hk"]
            assert first != second and not store.crop_path(first).exists() and store.crop_path(second).is_file()
            store.conn.execute("INSERT INTO inspections (seq, id, station, kind, decided_at, verdict, reason,"
                               " scan_sha256, scan_stored, record, crops) VALUES (1, 'r1', 'st-1', 'vehicle', '',"
                               " 'clear', 'clear', NULL, 0, '{}', ?)", (second,))  # a record names it
            third = (await window._crops(voted(2), passed, front))["hk"]
            assert store.crop_path(second).is_file() and store.crop_path(third).is_file()
    assert store.counters.pruned_crops == 1


async def test_a_mainland_vehicle_records_only_its_mainland_plate() -> None:
    """A mainland vehicle carries no Hong Kong plate: reading its 粤B·12345 plate adds no `unread` Hong Kong plate
    (which would fire identity_unread and send every mainland vehicle amber)."""
    async with open_camera(_cam("front_plate", mainland=1.0), "front") as front:
        window = CameraWindow(Devices(cameras={"front": front}))
        item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(item)
        truth = front.vehicle if isinstance(front, SimCamera) else None
        assert truth is not None and truth.cn_plate
        task = asyncio.create_task(window.run())
        await until(lambda: truth.cn_plate in _by(item, "front"), "the mainland plate voted", timeout=60)
        window.stop(item)
        task.cancel()
    assert [(i.value, i.status) for i in item.identities] == [(truth.cn_plate, "read")]


async def test_a_frame_whose_grab_began_before_the_next_vehicle_came_in_is_not_read_for_it() -> None:
    """A grab under way when the next vehicle reaches the eyes holds the vehicle before: it is read for neither,
    and the next vehicle's plate is voted from its own frames only (CD5678, never AB1234)."""
    import threading

    import numpy as np

    from drivers.camera.frames import CameraBase
    from models.ocr.classify import Read

    plates = {1: "AB1234", 2: "CD5678"}

    class HeldCamera(CameraBase):
        """A source whose grab can be held while the scene in front of it changes."""

        def __init__(self) -> None:
            super().__init__(CameraConfig(kind="sim", role="front_plate", fps=50), "front")
            self.scene, self.release, self.grabbing = 1, threading.Event(), threading.Event()
            self.release.set()

        def _open(self) -> None:
            pass

        def _grab(self) -> np.ndarray:
            exposed = self.scene
            self.grabbing.set()
            self.release.wait()
            self.grabbing.clear()
            return np.full((48, 64, 3), exposed, np.uint8)

    class PixelReader:
        def read(self, kind: str, crop: np.ndarray) -> list[Read]:
            plate = plates[int(crop[0, 0, 0])]
            return [Read("plate", "hk", plate, plate, 0.97, "read")]

    async with HeldCamera() as camera:
        window = CameraWindow(Devices(cameras={"front": camera}), reader=PixelReader())  # type: ignore[arg-type]
        first, second = Item(ref="vehicle", kind=ItemKind.VEHICLE), Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(first)
        task = asyncio.create_task(window.run())
        await until(lambda: any(i.value == "AB1234" for i in first.identities), "the first vehicle's plate read")
        camera.release.clear()
        await until(camera.grabbing.is_set, "a grab of the first vehicle under way")
        window.start(second)
        camera.scene = 2
        camera.release.set()
        passed = window._passes[("front", second.id)]
        await until(lambda: len(passed.frames) == camera.cfg.max_frames, "the second vehicle's frames read")
        window.stop(second)
        task.cancel()
    assert [(i.value, i.status, i.confidence) for i in second.identities] == [("CD5678", "read", 0.97)]


async def test_a_camera_whose_frames_cannot_be_read_is_degraded_and_records_a_failed_read() -> None:
    """An roi past the frame (a camera without width and height set) leaves the text reader nothing: after
    BAD_IN_A_ROW such frames the camera is degraded naming the roi, the vehicle's read is recorded failed
    (low_confidence, so identity_unread fires) instead of `unread`, and the camera is ok with its next readable
    frame."""
    from drivers.camera.frames import BAD_IN_A_ROW

    cfg = _cam("front_plate").model_copy(update={"roi": (5000, 5000, 100, 100)})
    async with open_camera(cfg, "front") as front:
        devices = Devices(cameras={"front": front})
        devices.mark("camera:front", "ok")
        window = CameraWindow(devices)
        item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(item)
        task = asyncio.create_task(window.run())
        await until(lambda: devices.states()["camera:front"]["state"] == "degraded", "the camera degraded",
                    timeout=60)
        assert front.bad_frames["unreadable"] >= BAD_IN_A_ROW
        assert "(roi (5000, 5000, 100, 100) of a ?×? frame)" in devices.states()["camera:front"]["detail"]
        assert [(i.kind, i.status, i.value) for i in item.identities] == [("plate", "low_confidence", "")]
        front.cfg = cfg.model_copy(update={"roi": None})  # the technician's fix, as a restart would load it
        await until(lambda: devices.states()["camera:front"]["state"] == "ok", "ok with a readable frame",
                    timeout=60)
        window.stop(item)
        task.cancel()


@pytest.mark.parametrize("score", [float("nan"), 1.7, -0.2])
async def test_a_read_whose_confidence_is_no_number_from_0_to_1_is_a_failed_frame_and_the_camera_goes_on(
        score: float) -> None:
    """The text reader's recogniser (a broken model) scores a plate NaN or out of 0-1: the frame counts as one the
    reader failed on (the vehicle's read recorded failed, never `read` with that score), and the camera keeps
    reading instead of its task, and with it the lane's flow, ending on the record's validation."""
    import numpy as np

    from models.ocr.frame import FrameReader
    from models.ocr.reader import TextReader

    class Recogniser:
        """rapidocr's part of the text reader, giving one line AB1234 with the score under test."""

        def text_det(self, image: np.ndarray) -> tuple[np.ndarray, float]:
            return np.array([[[2, 2], [40, 2], [40, 12], [2, 12]]], np.float32), 0.0

        def sorted_boxes(self, boxes: np.ndarray) -> list[np.ndarray]:
            return list(boxes)

        def get_crop_img_list(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
            return [image for _ in boxes]

        def text_rec(self, crops: list[np.ndarray]) -> tuple[list[tuple[str, float]], float]:
            return [("AB1234", score) for _ in crops], 0.0

    text_reader = TextReader.__new__(TextReader)
    text_reader.det_side, text_reader._ocr = 384, Recogniser()
    async with open_camera(_cam("front_plate"), "front") as front:
        window = CameraWindow(Devices(cameras={"front": front}), reader=FrameReader(text_reader))
        item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
        window.start(item)
        task = asyncio.create_task(window.run())
        await until(lambda: front.bad_frames["unreadable"] >= 2 or task.done(), "two frames read", timeout=30)
        assert not task.done(), task.exception()
        window.stop(item)
        task.cancel()
    assert [(i.kind, i.value, i.status) for i in item.identities] == [("plate", "", "low_confidence")]


async def test_two_containers_on_one_chassis_both_reach_the_record_with_their_own_crops(tmp_path: Path) -> None:
    """A side camera passing a chassis with two 20 ft boxes: its first frames show the front box's door, the next
    ones the rear box's. The real text reader reads each; the record gets both codes `read`, each with its own
    evidence crop (before, the two codes competed in one slot: the winner `low_confidence`, the other in no record,
    and the lane amber for an unread container)."""
    import numpy as np

    from drivers.camera import render
    from drivers.camera.frames import CameraBase
    from drivers.camera.sim import PROFILES

    codes = ("CSQU3054383", "MSKU7072380")
    font = PROFILES["tuning"].fonts[0]

    class SideCamera(CameraBase):
        def __init__(self) -> None:
            super().__init__(CameraConfig(kind="sim", role="container_side", fps=20, max_frames=6,
                                          min_confidence=0.5), "side")  # type: ignore[arg-type]
            self.grabs = 0

        def _open(self) -> None:
            pass

        def _grab(self) -> np.ndarray:
            code = codes[min(self.grabs // 3, 1)]
            self.grabs += 1
            return render.container_panel(code, "22G1", font, np.random.default_rng(self.grabs))

    with Store(tmp_path / "data", station="st-1") as store:
        async with StoreWriter(store) as writer, SideCamera() as side:
            window = CameraWindow(Devices(cameras={"side": side}), writer)
            item = Item(ref="vehicle", kind=ItemKind.CONTAINER)
            window.start(item)
            task = asyncio.create_task(window.run())
            passed = window._passes[("side", item.id)]
            await until(lambda: len(passed.frames) == 6, "six frames read", timeout=90)
            window.stop(item)
            task.cancel()
    read = {i.value: i for i in item.identities if i.source == "side"}
    assert set(read) == set(codes), [(i.value, i.raw, i.status, i.confidence) for i in item.identities]
    assert all(i.status == "read" and i.crop for i in read.values())
    assert read[codes[0]].crop != read[codes[1]].crop
    assert item.size_type == "22G1"


async def test_a_frame_read_when_the_record_is_written_changes_nothing_of_it(tmp_path: Path) -> None:
    """A frame of the vehicle still being read when its record was written (the reader takes a frame at a time, on
    its own thread) went on: voted, its crop stored — named by no record, kept on the disk for good (the cap on
    crops counts it) — and the item's identities replaced after the record was written. Now a pass stopped while a
    frame is read ends with it: nothing stored, nothing dropped, nothing changed."""
    import threading

    from edge.stations.cameras import _load_reader

    real = _load_reader()
    entered, release = threading.Event(), threading.Event()

    class Held:
        """The text reader, holding a frame once `entered` is cleared until `release`."""

        hold = False

        def read(self, reads, crop):  # noqa: ANN001, ANN201
            if self.hold:
                entered.set()
                release.wait(30)
            return real.read(reads, crop)

    held = Held()
    with Store(tmp_path / "data", station="st-1") as store:
        async with StoreWriter(store) as writer, open_camera(_cam("front_plate"), "front") as front:
            window = CameraWindow(Devices(cameras={"front": front}), writer, reader=held)  # type: ignore[arg-type]
            item = Item(ref="vehicle", kind=ItemKind.VEHICLE)
            window.start(item)
            task = asyncio.create_task(window.run())
            await until(lambda: any(i.crop for i in item.identities), "a plate voted with its crop", timeout=60)
            held.hold = True
            await until(entered.is_set, "a frame being read", in_thread=True, timeout=60)
            written = [i.model_copy() for i in item.identities]  # the record is written now
            window.stop(item)
            calls: list[str] = []
            put, drop = store.put_crop, store.drop_crop
            store.put_crop = lambda *a: calls.append("put") or put(*a)  # type: ignore[method-assign]
            store.drop_crop = lambda *a: calls.append("drop") or drop(*a)  # type: ignore[method-assign]
            release.set()
            await asyncio.sleep(0.5)  # the frame read, and whatever followed it
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert calls == [] and item.identities == written
    on_disk = {p.stem for p in (tmp_path / "data" / "crops").rglob("*.png")}
    assert {i.crop for i in written if i.crop} <= on_disk
