"""Rendered container codes and plates read through rapidocr's ONNX models (a handful of crops)."""

from __future__ import annotations

import pytest

from drivers.camera import sim
from models.ocr import plates
from models.ocr.frame import FrameReader


@pytest.fixture(scope="module")
def reader() -> FrameReader:
    return FrameReader()


@pytest.mark.parametrize("number", [0, 1])
def test_container_code_on_a_rendered_door_is_read_with_its_boxed_check_digit(reader: FrameReader,
                                                                                number: int) -> None:
    v = sim.vehicle(0, number)
    reads = reader.read("container", sim.frame(v, "container_door", 2, 0))
    assert [(r.slot, r.value, r.status) for r in reads] == [("container", v.container, "read"),
                                                            ("size_type", v.size_type, "read")]


def test_cross_boundary_vehicle_front_gives_both_plates(reader: FrameReader) -> None:
    v = sim.vehicle(0, 0)
    assert v.gd_plate  # vehicle 0 of seed 0 is a cross-boundary one
    reads = {r.slot: r.value for r in reader.read("plate", sim.frame(v, "front_plate", 2, 0))}
    assert reads == {"hk": v.hk_plate, "gd_cross": v.gd_plate}


def test_hk_rear_plate_is_read(reader: FrameReader) -> None:
    v = sim.vehicle(0, 2)
    reads = {r.slot: r.value for r in reader.read("plate", sim.frame(v, "rear_plate", 2, 0))}
    assert reads["hk"] == v.hk_plate


def test_reading_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The models are inside the wheel: loading and reading with every connection refused works."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is not available to the text reader")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    v = sim.vehicle(0, 3)
    reads = FrameReader().read("container", sim.frame(v, "container_door", 2, 0))
    assert [r.value for r in reads if r.slot == "container"] == [v.container]


def test_boxed_check_digit_is_found_under_glare_when_the_detector_ran_small() -> None:
    """The painted box is looked for from the text's own height, and its edges told from a glare spot by
    local contrast: at a detector side of 320 px the line's box is loose and a glare spot lies on the box."""
    from models.ocr.reader import TextReader

    v = sim.vehicle(2, 2, "held_out")
    reads = FrameReader(TextReader(det_side=320)).read("container", sim.frame(v, "container_door", 0, 2, "held_out"))
    assert [(r.value, r.status) for r in reads if r.slot == "container"] == [(v.container, "read")]


def _mainland(green: bool) -> sim.Vehicle:
    """The first mainland vehicle of seed 0 with a blue (7 characters) or green new-energy (8) plate."""
    return next(v for n in range(50) if len((v := sim.vehicle(0, n, mainland=1.0)).cn_plate) == (8 if green else 7))


@pytest.mark.parametrize("green", [False, True], ids=["blue", "new_energy"])
def test_mainland_plate_is_read_and_is_the_vehicles_only_plate(reader: FrameReader, green: bool) -> None:
    """White on blue (light text on dark) and black on the new-energy green gradient, front and rear."""
    v = _mainland(green)
    for role in ("front_plate", "rear_plate"):
        reads = {r.slot: r.value for r in reader.read("plate", sim.frame(v, role, 2, 0))}
        assert reads == {plates.jurisdiction(v.cn_plate): v.cn_plate}


def test_a_hong_kong_plate_whose_letter_is_hidden_is_not_made_into_another_plate(reader: FrameReader) -> None:
    """B 8123 with mud over the B reads 8123: recorded low_confidence with 8123 in raw, never as the plate B123."""
    import cv2
    import numpy as np

    from drivers.camera import render
    from models.ocr.vote import vote

    plate = render.hk_plate("B 8123", rear=False, font=sim.PROFILES["tuning"].fonts[0])
    ink = np.nonzero(plate[8:48, 8:-8].min(axis=(0, 2)) < 80)[0] + 8
    gap = next(x for x in range(ink[0], ink[-1]) if x not in set(ink))  # the space after the letter
    cv2.rectangle(plate, (6, 4), (gap + 2, 51), (55, 65, 80), -1)
    frames = [reader.read("plate", render.apply(render.vehicle_front([plate], np.random.default_rng(i)),
                                                render.Conditions(angle_deg=3, blur_px=0, dirt=0, noise=2),
                                                np.random.default_rng(10 + i))) for i in range(2)]
    (voted,) = vote("plate", frames, 0.8)
    assert (voted.slot, voted.value, voted.status) == ("hk", "", "low_confidence")
    assert plates.normalise(voted.raw) == "8123"
