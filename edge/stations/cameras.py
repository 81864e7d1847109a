"""Camera reads during an inspection: plates and container codes voted over the vehicle's frames.

`CameraWindow.start(item)` triggers the cameras (those triggered by the eyes; continuous ones
always take frames) and `stop(item)` stops them, as `TagWindow` does for tags; the cameras read the
vehicle that came in last, in frames whose grab began after it came in (FRAME_MARGIN_S). Each camera's
frames are read off the event loop, one at a time on one thread (`max_frames` per vehicle), and
after every frame the item's identities from that camera are replaced by the new vote: whatever
has been voted when the record is written is in it, with its status, confidence and the sha256 of
its evidence crop (a PNG in the store's crops directory). A camera that read nothing gives an
`unread` identity, so the record says the camera looked and saw nothing; one whose frames the text reader
failed on gives a failed read (`low_confidence`), and is degraded after BAD_IN_A_ROW of them in a row.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np
import structlog

from central_sync.schema import Identity
from drivers.camera.frames import BAD_IN_A_ROW
from drivers.errors import DriverError
from edge.devices import Devices
from edge.inspection import Item
from models.errors import InferenceError
from models.ocr.classify import SIZE_TYPE, Read
from models.ocr.vote import Voted, vote

if TYPE_CHECKING:
    from drivers.camera import CameraBase, Frame
    from edge.store import StoreWriter
    from models.ocr.frame import FrameReader

log = structlog.get_logger()
CROP_MARGIN = 8
FRAME_MARGIN_S = 0.05
"""A frame is read for a vehicle only when its grab began this long after the vehicle came in: one begun before
(under way when the next vehicle reached the eyes) shows the vehicle before."""
HK_SLOT = "hk"  # models.ocr.classify's slot for a Hong Kong plate
CROSS_SLOT = "gd_cross"  # the Guangdong cross-boundary plate (粤Z·A123港) of a Hong Kong vehicle


@dataclass
class _Pass:
    """One vehicle's pass before one camera: the frames read and their reads."""

    item: Item
    since: float = field(default_factory=time.time)  # when the vehicle came in (epoch s, as Frame.ts)
    frames: list[Frame] = field(default_factory=list)
    reads: list[list[Read]] = field(default_factory=list)
    crops: dict[str, str] = field(default_factory=dict)  # slot -> the sha256 of the evidence crop it names now
    unreadable: int = 0  # frames the text reader failed on


@dataclass
class CameraWindow:
    devices: Devices
    store: StoreWriter | None = None
    reader: FrameReader | None = None
    _open: dict[str, Item] = field(default_factory=dict)
    _passes: dict[tuple[str, str], _Pass] = field(default_factory=dict)  # (camera, item id) -> pass
    _unreadable: dict[str, int] = field(default_factory=dict)  # camera -> frames in a row the reader failed on
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="ocr"))

    def start(self, item: Item) -> None:
        """The vehicle is at the eyes: trigger the cameras and record each one's (so far unread) state. The cameras
        see the vehicle that came in last: the pass of one still open (a vehicle that ran the red light behind it)
        ends here, with what was voted so far."""
        for earlier in list(self._open.values()):
            self.stop(earlier)
        self._open[item.id] = item
        for name, camera in self.devices.cameras.items():
            self._passes[(name, item.id)] = _Pass(item)
            camera.trigger(True)
            self._publish(name, item, [], None)

    def stop(self, item: Item) -> None:
        """The vehicle has gone: stop the cameras when no other item is open."""
        self._open.pop(item.id, None)
        for name, camera in self.devices.cameras.items():
            self._passes.pop((name, item.id), None)
            if not self._open:
                camera.trigger(False)

    async def run(self) -> None:
        """Follow every camera until cancelled; the reading thread ends with it (a restarted flow leaves none)."""
        if not self.devices.cameras:
            return
        try:
            await self._run()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ocr")

    async def _run(self) -> None:
        if self.reader is None:
            try:
                self.reader = await asyncio.get_running_loop().run_in_executor(self._pool, _load_reader)
            except (ImportError, OSError, InferenceError) as exc:
                self._no_reader(exc)
                return
        async with asyncio.TaskGroup() as tasks:
            for name, camera in self.devices.cameras.items():
                tasks.create_task(self._follow(name, camera), name=f"camera:{name}")

    def _no_reader(self, exc: BaseException) -> None:
        """Without the text reader the cameras read nothing: they show degraded, records say `unread`."""
        log.error("camera.reader_unavailable", error=str(exc))
        for name in self.devices.cameras:
            self.devices.mark(f"camera:{name}", "degraded", f"the text reader could not be loaded: {exc}")

    async def _follow(self, name: str, camera: CameraBase) -> None:
        async for frame in camera.frames():
            for item in list(self._open.values()):
                await self._read(name, camera, item, frame)

    async def _read(self, name: str, camera: CameraBase, item: Item, frame: Frame) -> None:
        """Read one frame for an open item (up to max_frames), then vote again."""
        passed = self._passes.get((name, item.id))
        if passed is None or len(passed.frames) >= camera.cfg.max_frames or frame.ts < passed.since + FRAME_MARGIN_S:
            return
        assert self.reader is not None
        crop = _roi(frame.image, camera.cfg.roi)
        try:
            reads = await asyncio.get_running_loop().run_in_executor(self._pool, self.reader.read,
                                                                     camera.cfg.reads, crop)
        except InferenceError as exc:
            if self._passes.get((name, item.id)) is passed:
                self._unreadable_frame(name, camera, passed, exc)
            return
        self._readable_frame(name, camera)
        if self._passes.get((name, item.id)) is not passed:  # stopped while read: its record is written as it was
            return
        passed.frames.append(frame)
        passed.reads.append(reads)
        voted = vote(camera.cfg.reads, passed.reads, camera.cfg.min_confidence)
        crops = await self._crops(voted, passed, camera)
        if self._passes.get((name, item.id)) is passed:  # not stopped while its crops were stored
            self._publish(name, item, voted, passed, crops)

    def _unreadable_frame(self, name: str, camera: CameraBase, passed: _Pass, exc: InferenceError) -> None:
        """A frame the text reader failed on: counted (`unreadable`), the pass's read recorded failed rather than
        `unread` (the camera did not see nothing, it could not look), and the camera degraded after BAD_IN_A_ROW
        of them in a row (an roi outside the frame, a frame the reader cannot take)."""
        camera.bad_frames["unreadable"] += 1
        passed.unreadable += 1
        row = self._unreadable[name] = self._unreadable.get(name, 0) + 1
        if row & (row - 1) == 0:  # the 1st, 2nd, 4th ...: a camera that can never read cannot flood the journal
            log.warning("camera.read_failed", camera=name, error=str(exc), in_a_row=row)
        if row >= BAD_IN_A_ROW:
            size = f"{camera.cfg.width or '?'}×{camera.cfg.height or '?'}"
            self.devices.mark(f"camera:{name}", "degraded",
                              f"camera {name} gave {row} frames in a row that the text reader could not read "
                              f"(roi {camera.cfg.roi} of a {size} frame), the last: {exc}")
        self._publish(name, passed.item, vote(camera.cfg.reads, passed.reads, camera.cfg.min_confidence), passed,
                      passed.crops)

    def _readable_frame(self, name: str, camera: CameraBase) -> None:
        """A frame the reader took: a camera degraded for unreadable frames is ok again."""
        if self._unreadable.pop(name, 0) >= BAD_IN_A_ROW and camera.health.state == "ok":
            self.devices.mark(f"camera:{name}", "ok")

    async def _crops(self, voted: list[Voted], passed: _Pass, camera: CameraBase) -> dict[str, str]:
        """The evidence crop of each voted slot, stored as a PNG; slot -> sha256 ("" when not kept)."""
        crops: dict[str, str] = {}
        for v in voted:
            if v.frame < 0 or v.slot == SIZE_TYPE:  # the size/type code is no identity: no evidence crop
                continue
            png = _png(_roi(passed.frames[v.frame].image, camera.cfg.roi), v.box)
            sha = hashlib.sha256(png).hexdigest()
            kept = self.store is not None and await self.store.call(self.store.store.put_crop, sha, png)
            crops[v.slot] = sha if kept else ""
        if not any(p is passed for p in self._passes.values()):
            # stopped meanwhile: its record names the crops it had, kept as they are; those stored now are no evidence
            for sha in set(crops.values()) - set(passed.crops.values()):
                if sha and self.store is not None and not self._named(sha, passed):
                    await self.store.call(self.store.store.drop_crop, sha)
            return passed.crops
        for slot, sha in passed.crops.items():  # a better frame took the slot: its crop was never evidence
            if sha and sha not in crops.values() and self.store is not None and not self._named(sha, passed):
                await self.store.call(self.store.store.drop_crop, sha)
        passed.crops = crops
        return crops

    def _named(self, sha: str, besides: _Pass) -> bool:
        """Whether another open pass names this crop now (the same pixels twice: a simulator's looped images)."""
        return any(sha in p.crops.values() for p in self._passes.values() if p is not besides)

    def _publish(self, name: str, item: Item, voted: list[Voted], passed: _Pass | None,
                 crops: dict[str, str] | None = None) -> None:
        """Replace this camera's identities on the item with the current vote."""
        camera = self.devices.cameras[name]
        if not voted:
            voted = vote(camera.cfg.reads, [], camera.cfg.min_confidence)
        if passed is not None and passed.unreadable and all(v.status == "unread" for v in voted):
            voted = [replace(v, status="low_confidence") for v in voted]  # it could not look: a failed read
        if camera.cfg.reads == "plate":
            voted = with_hk_plate(voted)
        else:
            voted = self._size_type(item, voted)
        item.identities[:] = [i for i in item.identities
                              if not (i.source == name and i.kind in ("plate", "container"))]
        for v in voted:
            item.identities.append(Identity(kind="plate" if v.kind == "plate" else "container", value=v.value,
                                            source=name, status=v.status,  # type: ignore[arg-type]
                                            confidence=v.confidence, raw=v.raw, crop=(crops or {}).get(v.slot, "")))
        if voted:
            item.identified()
        if passed is not None:
            log.info("camera.voted", camera=name, item=item.id, frames=len(passed.frames),
                     reads=[(v.slot, v.value or v.raw, v.status, v.confidence) for v in voted])


    @staticmethod
    def _size_type(item: Item, voted: list[Voted]) -> list[Voted]:
        """A container camera's size/type code goes on the item (not an identity: the record's container facts);
        the code read or corrected sets it. The other slots stay, with the number recorded `unread` when the camera
        read only the size/type code."""
        for v in voted:
            if v.slot == SIZE_TYPE and v.status in ("read", "corrected"):
                item.size_type = v.value
        rest = [v for v in voted if v.slot != SIZE_TYPE]
        return rest or [Voted("container", "container", "", "", 0.0, "unread", 0)]


def with_hk_plate(voted: list[Voted]) -> list[Voted]:
    """A cross-boundary vehicle carries a Hong Kong plate beside its Guangdong one (粤Z·A123港): when a plate camera
    read only the Guangdong plate, the Hong Kong one is recorded as not read (dirt, glare), not left out. A mainland
    vehicle (粤B·12345, 京A·12345) carries only its mainland plate: nothing is added for it."""
    if any(v.slot == HK_SLOT for v in voted) or not any(v.slot == CROSS_SLOT for v in voted):
        return voted
    return [*voted, Voted("plate", HK_SLOT, "", "", 0.0, "unread", 0)]


def _load_reader() -> FrameReader:
    from models.ocr.frame import FrameReader

    return FrameReader()


def _roi(image: np.ndarray, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    if roi is None:
        return image
    x, y, w, h = roi
    return image[y:y + h, x:x + w]


def _png(crop: np.ndarray, box: tuple[int, int, int, int]) -> bytes:
    """The read's box (with a margin) as PNG bytes."""
    x0, y0, x1, y1 = box
    h, w = crop.shape[:2]
    part = crop[max(0, y0 - CROP_MARGIN):min(h, y1 + CROP_MARGIN), max(0, x0 - CROP_MARGIN):min(w, x1 + CROP_MARGIN)]
    ok, data = cv2.imencode(".png", part if part.size else crop)
    if not ok:
        raise DriverError(f"could not encode a {part.shape} evidence crop as PNG")
    return bytes(data.tobytes())
