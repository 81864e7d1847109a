"""The camera driver over a folder of images (good, truncated, wrong size), a lost source, and the simulator."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import structlog.testing

from drivers.camera import CameraConfig, CameraSim, open_camera
from drivers.camera import glyphs, sim
from drivers.camera.source import decode_image
from polling import until


def _png(path: Path, w: int = 64, h: int = 48, value: int = 128) -> bytes:
    ok, data = cv2.imencode(".png", np.full((h, w, 3), value, np.uint8))
    path.write_bytes(data.tobytes())
    return data.tobytes()


def _cfg(url: str, **kw: object) -> CameraConfig:
    return CameraConfig(kind="opencv", role="front_plate", url=url, trigger="continuous", fps=60.0,
                        reconnect_min_ms=10, reconnect_max_ms=40, **kw)  # type: ignore[arg-type]


async def test_folder_gives_good_frames_and_counts_truncated_and_wrong_size_ones(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", value=10)
    whole = _png(tmp_path / "b.png")
    (tmp_path / "b.png").write_bytes(whole[: len(whole) // 2])  # cut short: no IEND
    _png(tmp_path / "c.png", w=32)  # not the configured size
    _png(tmp_path / "d.png", value=200)
    (tmp_path / "e.png").write_bytes(b"not an image at all")
    async with open_camera(_cfg(str(tmp_path), width=64, height=48), "cam") as camera:
        with structlog.testing.capture_logs() as logs:
            frames = [f async for f in camera.frames()]  # a folder ends when its images do
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 200]
    assert [f.seq for f in frames] == [1, 2] and all(f.ts > 0 for f in frames)
    assert dict(camera.bad_frames) == {"decode": 2, "size": 1}
    said = [e["detail"] for e in logs if e["event"] == "camera.bad_frame"]  # the 1st and 2nd, not the 3rd
    assert len(said) == 2 and said[1].endswith("2 so far")


async def test_a_camera_giving_only_bad_frames_is_degraded_until_a_good_one(tmp_path: Path) -> None:
    """BAD_IN_A_ROW bad frames with no good one make the camera degraded naming the last reason (it said ok for
    ever while it gave nothing usable); the next good frame makes it ok again."""
    from drivers.camera.frames import BAD_IN_A_ROW

    whole = _png(tmp_path / "a.png")
    for i in range(BAD_IN_A_ROW):
        (tmp_path / f"b{i:02d}.png").write_bytes(whole[: len(whole) // 2])  # cut short: no IEND
    _png(tmp_path / "c.png", value=200)
    states: list[tuple[str, str]] = []
    async with open_camera(_cfg(str(tmp_path)), "cam") as camera:
        camera.on_health = lambda state, detail: states.append((state, detail))
        frames = [f async for f in camera.frames()]
    assert [int(f.image[0, 0, 0]) for f in frames] == [128, 200]
    assert states == [("degraded", f"camera cam gave {BAD_IN_A_ROW} bad frames in a row with no good one, the last "
                                   f"decode (shape None)"), ("ok", "")]


def test_truncated_jpeg_is_not_decoded() -> None:
    ok, data = cv2.imencode(".jpg", np.full((40, 40, 3), 90, np.uint8))
    assert decode_image(data.tobytes(), ".jpg") is not None
    assert decode_image(data.tobytes()[:-40], ".jpg") is None


async def test_a_lost_source_degrades_the_camera_and_it_reconnects_with_back_off(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    folder.mkdir()  # the images arrive later: an empty folder is a source without frames
    states: list[tuple[str, str]] = []
    async with open_camera(_cfg(str(folder), loop=True), "cam") as camera:
        camera.on_health = lambda state, detail: states.append((state, detail))
        frames = camera.frames()
        first = asyncio_task(frames.__anext__())
        await until(lambda: camera.reconnects >= 4, "four reconnect attempts")
        assert camera.health.state == "degraded" and str(folder) in camera.health.detail
        # The folder opens every time but gives no frame: never ok meanwhile, and the wait still doubles.
        assert {state for state, _ in states} == {"degraded"}
        waits = [int(d.rsplit("reconnecting in ", 1)[1].split()[0]) for _, d in states if "reconnecting in" in d]
        assert waits[:4] == [10, 20, 40, 40]
        _png(folder / "a.png", value=77)
        frame = await first
        await frames.aclose()
    assert int(frame.image[0, 0, 0]) == 77
    assert states[-1] == ("ok", "")


def asyncio_task(coro: object) -> "asyncio.Task[object]":
    import asyncio

    return asyncio.ensure_future(coro)  # type: ignore[arg-type]


def test_simulator_is_deterministic_and_seeds_differ() -> None:
    v = sim.vehicle(7, 3, "held_out")
    assert v == sim.vehicle(7, 3, "held_out")
    assert np.array_equal(sim.frame(v, "container_door", 2, 7, "held_out"),
                          sim.frame(v, "container_door", 2, 7, "held_out"))
    assert not np.array_equal(sim.frame(v, "front_plate", 1, 7), sim.frame(v, "front_plate", 2, 7))
    assert sim.vehicle(8, 3) != v
    assert all(sim.vehicle(0, n).container[:4].isalpha() for n in range(20))


def test_render_sets_use_different_fonts() -> None:
    tuning = {f.name for f in sim.PROFILES["tuning"].fonts}
    held_out = {f.name for f in sim.PROFILES["held_out"].fonts}
    assert tuning and held_out and not tuning & held_out
    assert sim.PROFILES["held_out"].conditions.night_ir > 0 == sim.PROFILES["tuning"].conditions.night_ir


def test_province_character_without_a_cjk_font_uses_the_bitmap(monkeypatch: pytest.MonkeyPatch) -> None:
    glyphs._cjk.cache_clear()
    monkeypatch.setattr(glyphs, "cjk_font", lambda: "")
    mask = glyphs._cjk("粤", 32)
    glyphs._cjk.cache_clear()
    assert mask.shape == (32, 32) and 0.2 < float((mask > 0.5).mean()) < 0.8


async def test_simulated_camera_shows_the_next_vehicle_per_trigger_and_counts_broken_frames() -> None:
    cfg = CameraConfig(kind="sim", role="rear_plate", fps=60.0, sim=CameraSim(seed=3, bad_every=3))
    async with open_camera(cfg, "rear") as camera:
        assert isinstance(camera, sim.SimCamera)
        camera.trigger(True)
        frames = camera.frames()
        got = [await frames.__anext__() for _ in range(4)]
        await frames.aclose()
    assert camera.vehicle == sim.vehicle(3, 0)
    assert len(got) == 4 and dict(camera.bad_frames) == {"empty": 1}  # the 3rd of 5 grabs was broken
    camera.trigger(False)
    camera.trigger(True)
    assert camera.vehicle == sim.vehicle(3, 1)
    assert all(f.image.shape == (320, 480, 3) for f in got)


def test_mainland_vehicles_carry_only_their_mainland_plate_and_leave_the_others_as_they_were() -> None:
    from models.ocr import plates

    mixed = [sim.vehicle(5, n, "held_out", mainland=0.4) for n in range(60)]
    mainland = [v for v in mixed if v.cn_plate]
    assert 10 < len(mainland) < 40
    assert all(not v.hk_plate and not v.gd_plate and plates.jurisdiction(v.cn_plate) in ("gd", "cn")
               for v in mainland)
    assert {len(v.cn_plate) for v in mainland} == {7, 8}  # blue and new-energy green
    assert all(v == sim.vehicle(5, v.number, "held_out") for v in mixed if not v.cn_plate)
    blue = next(v for v in mainland if len(v.cn_plate) == 7)
    assert sim.issued(blue.cn_plate) == plates.display(blue.cn_plate, "gd")


def test_an_roi_outside_the_frame_is_refused_when_the_config_is_loaded() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"roi \[600, 500, 720, 400\] reaches x 1320 and y 900, outside the "
                                              r"480×320 frame \(width, height\)"):
        CameraConfig(kind="sim", role="front_plate", width=480, height=320, roi=(600, 500, 720, 400))
    with pytest.raises(ValidationError, match=r"roi \[10, 10, 0, 40\] must be"):
        CameraConfig(kind="sim", role="front_plate", roi=(10, 10, 0, 40))
    assert CameraConfig(kind="sim", role="front_plate", width=1920, height=1080, roi=(600, 500, 720, 400)).roi
