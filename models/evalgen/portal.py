"""`alt_portal_scan`: one portal scan of a vehicle or container from generator B.

Pipeline: pick a vehicle and a portal → sketch the vehicle, its cargo and (for a suspect) its
contraband → replay onto a canvas at the nominal line pitch → resample the lines at the vehicle's
varying speed → basis thicknesses to transmission by the source's lookup → broad scatter,
detector blur, quantum and electronic noise, dead channels, cab-avoidance → uint16 planes.

Three random streams (vehicle, contents, detector) keep a scan's vehicle unchanged when only its
contents are forced, so a test can difference the same scene with and without an object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.evalgen import goods
from models.evalgen.canvas import Box, Canvas
from models.evalgen.materials import catalogue
from models.evalgen.spectra import SOURCES, basis_table, transmit
from models.evalgen.vehicles import Vehicle, box_lorry, car, tractor_container, van
from models.scan import AIR, Scan

LABELS = ("cigarettes", "drugs", "firearm", "concealment", "load_present")
VEHICLES = ("hatchback", "saloon", "suv", "van", "box_lorry", "tractor_20ft", "tractor_40ft")
VEHICLE_ODDS = (0.12, 0.14, 0.12, 0.17, 0.15, 0.14, 0.16)
SOURCE_NAME = "alt-portal-b"
PLACING_TRIES = 8
MAX_PIXELS = 1150


@dataclass(frozen=True)
class Portal:
    """The scanner a vehicle drives through: source, pitches and fan geometry."""

    source: str
    pixel_mm: float
    line_mm: float
    detector_mm: float
    source_mm: float
    distance_mm: float


def _portal(v: Vehicle, rng: np.random.Generator, scale: float) -> Portal:
    """Light vehicles go through tube portals, lorries through 450 kV or a linac, containers a linac.

    The detector column is tall enough for the near side's top, which the fan magnifies most.
    """
    if v.kind == "vehicle" and v.name != "box_lorry":
        source, pixel = ("tube300" if rng.random() < 0.5 else "tube450"), rng.uniform(5.0, 6.5)
    elif v.kind == "vehicle":
        source, pixel = str(rng.choice(["tube450", "linac6", "linac9"])), rng.uniform(5.0, 7.0)
    else:
        source, pixel = ("linac6" if rng.random() < 0.5 else "linac9"), rng.uniform(5.0, 7.5)
    source_mm, distance = rng.uniform(250, 700), rng.uniform(4000, 6000)
    near = source_mm + (v.height - source_mm) * distance / (distance - v.width / 2)
    height = max(near + rng.uniform(100, 400), 3300.0)
    pixel = max(pixel, height / MAX_PIXELS)
    line = pixel * rng.uniform(0.85, 1.25)
    return Portal(source, pixel / scale, line / scale, height, source_mm, distance)


def _vehicle(name: str, rng: np.random.Generator) -> Vehicle:
    if name in goods_cars():
        return car(name, rng)
    if name == "van":
        return van(rng)
    if name == "box_lorry":
        return box_lorry(rng)
    if name in ("tractor_20ft", "tractor_40ft"):
        return tractor_container(20 if name == "tractor_20ft" else 40, rng)
    raise ValueError(f"unknown vehicle {name!r}; known: {', '.join(VEHICLES)}")


def goods_cars() -> tuple[str, ...]:
    return ("hatchback", "saloon", "suv")


def alt_portal_scan(seed: int, *, suspect_share: float = 0.5, vehicle: str | None = None,
                    contents: Sequence[str] | None = None, scale: float = 1.0) -> Scan:
    """A portal scan: rows = scan lines, front of the vehicle first; column 0 at the road.

    `contents` forces the truth labels to place (an empty sequence = a clean vehicle; a label
    may repeat); otherwise a share `suspect_share` of seeds carries contraband. `scale` < 1
    coarsens both pitches (tests); scale 1 gives the contract's 5–7.5 mm pitches and sizes.
    """
    if not 0.0 <= suspect_share <= 1.0:
        raise ValueError(f"suspect_share must lie in [0, 1], got {suspect_share}")
    bad = [c for c in contents or () if c not in LABELS]
    if bad:
        raise ValueError(f"unknown contents {bad}; labels are {', '.join(LABELS)}")
    veh_rng, goods_rng, det_rng = (np.random.default_rng([seed, k]) for k in range(3))
    name = vehicle or str(veh_rng.choice(VEHICLES, p=VEHICLE_ODDS))
    v = _vehicle(name, veh_rng)
    portal = _portal(v, veh_rng, scale)
    declared_empty, cargo_style = _cargo_plan(v, veh_rng, contents)
    _load_cargo(v, cargo_style, veh_rng)
    suspect = goods_rng.random() < suspect_share
    wanted = list(contents) if contents is not None else (_pick_labels(v, declared_empty, goods_rng) if suspect else [])
    truths = _place(v, wanted, declared_empty, goods_rng)
    high, low, boxes, extra = _render(v, portal, scale, veh_rng, det_rng)
    meta = _meta(seed, v, portal, declared_empty, cargo_style, truths, boxes, high.shape)
    meta.update(extra)
    return Scan(high=high, low=low, meta=meta)


def _cargo_plan(v: Vehicle, rng: np.random.Generator, contents: Sequence[str] | None) -> tuple[bool, str]:
    """(declared_empty, cargo style): containers may be declared empty, which is then the truth.

    The draw is made whatever is forced, so forcing contents leaves the rest of the scene as it was.
    """
    forced_load = contents is not None and "load_present" in contents
    if v.kind != "container":
        if forced_load:
            raise ValueError(f"load_present needs a container, got vehicle {v.name!r}")
        style = str(rng.choice(["empty", "mixed", "mixed"]))
        return False, ("none" if v.name in goods_cars() else style)
    style = str(rng.choice(["empty", "mixed", "dense"], p=[0.4, 0.35, 0.25]))
    if forced_load:
        style = "empty"
    return style == "empty", style


def _load_cargo(v: Vehicle, style: str, rng: np.random.Generator) -> None:
    """Innocent load: pallets in containers and lorries, clutter in cars and vans."""
    for bay in v.bays:
        if style in ("mixed", "dense"):
            goods.cargo(v.sketch, bay, style, rng, fill=rng.uniform(0.3, 1.0))
        elif v.kind == "vehicle":
            goods.clutter(v.sketch, bay, rng)


def _pick_labels(v: Vehicle, declared_empty: bool, rng: np.random.Generator) -> list[str]:
    """What a suspect scan carries: goods in a declared-empty box, else one or two kinds of contraband."""
    if declared_empty and rng.random() < 0.85:
        return ["load_present"]
    kinds = np.array(["cigarettes", "drugs", "firearm", "concealment"])
    n = 1 if rng.random() < 0.75 else 2
    return [str(k) for k in rng.choice(kinds, size=n, replace=False, p=[0.35, 0.35, 0.15, 0.15])]


def _place(v: Vehicle, labels: list[str], declared_empty: bool, rng: np.random.Generator) -> list[goods.Truth]:
    """Draw each wanted label's objects under its own tag; their truth entries."""
    truths: list[goods.Truth] = []
    for label in labels:
        for _ in range(PLACING_TRIES):  # a spot too small for the object gets another draw
            drawn = len(v.sketch.ops)
            placed = [t for t in _place_one(v, label, rng, 2 * len(truths)) if t.mass_kg > 0]
            if any(t.label == label for t in placed):
                truths.extend(placed)
                break
            del v.sketch.ops[drawn:]
    v.sketch.tag = None
    return truths


def _spot(v: Vehicle, names: Sequence[str], rng: np.random.Generator, bay_odds: float) -> goods.Space:
    """A bay (with probability `bay_odds`) or one of the named hiding places the vehicle has."""
    hides = [v.hides[n] for n in names if n in v.hides]
    if v.bays and (not hides or rng.random() < bay_odds):
        return v.bays[int(rng.integers(len(v.bays)))]
    return hides[int(rng.integers(len(hides)))]


def _place_one(v: Vehicle, label: str, rng: np.random.Generator, tag: int) -> list[goods.Truth]:
    s = v.sketch
    s.tag = tag
    if label == "cigarettes":
        space = _spot(v, ["door", "floor", "roof", "wall", "under_seat", "dashboard"], rng, 0.6)
        cases = space in v.bays or rng.random() < 0.3
        return [goods.Truth(label, goods.cigarettes(s, space, rng, cases), tag)]
    if label == "drugs":
        space = _spot(v, ["spare_wheel", "fuel_tank", "door", "floor", "under_seat", "dashboard", "roof"], rng, 0.3)
        return [goods.Truth(label, goods.drugs(s, space, rng), tag)]
    if label == "firearm":
        space = _spot(v, ["under_seat", "door", "floor", "dashboard"], rng, 0.6)
        return [goods.Truth(label, goods.firearm(s, space, rng), tag)]
    if label == "concealment":
        return _concealment(v, rng, tag)
    return [goods.Truth(label, _declared_load(v, rng), tag)]


def _concealment(v: Vehicle, rng: np.random.Generator, tag: int) -> list[goods.Truth]:
    """A built-in compartment, false wall/floor or filled tank, often with goods inside."""
    s = v.sketch
    where = [n for n in ("floor", "wall", "fuel_tank", "roof", "chassis") if n in v.hides]
    name = where[int(rng.integers(len(where)))]
    x0, x1, y0, y1, z0, z1 = v.hides[name]
    if name == "wall":
        depth = rng.uniform(150, max(x1 - x0, 160))
        space = (x0, x0 + depth, y0, y1, z0, z1)
    elif name in ("floor", "roof", "chassis"):
        length = rng.uniform(0.25, 0.8) * (x1 - x0)
        start = rng.uniform(x0, x1 - length)
        space = (start, start + length, y0, y1, z0, z1)
    else:
        space = (x0, x1, y0, y1, z0, z1)
    out = [goods.Truth("concealment", goods.compartment(s, space) if name != "fuel_tank" else 0.0, tag)]
    inner = (space[0] + 5, space[1] - 5, space[2] + 5, space[3] - 5, space[4] + 5, space[5] - 5)
    if name == "fuel_tank" or rng.random() < 0.6:
        s.tag = tag + 1
        if rng.random() < 0.6 or name == "fuel_tank":
            out.append(goods.Truth("drugs", goods.drugs(s, inner, rng), tag + 1))
        else:
            out.append(goods.Truth("cigarettes", goods.cigarettes(s, inner, rng, cases=False), tag + 1))
        if name == "fuel_tank":
            out[0] = goods.Truth("concealment", out[1].mass_kg + 6.0, tag)
            s.tag = tag
            s.block(space[0], space[1], space[2], space[3], space[4], space[4] + 4, "steel")
    return out


def _declared_load(v: Vehicle, rng: np.random.Generator) -> float:
    """Goods in a container declared empty: a few parcels (< 50 kg) or pallets (tonnes)."""
    x0, x1, y0, y1, z0, z1 = v.bays[0]
    mass = 0.0
    if rng.random() < 0.4:
        target = rng.uniform(4.0, 49.0)
        n = int(rng.integers(1, 6))
        x = rng.uniform(x0, x1 - 600)
        for i in range(n):
            w, h, d = rng.uniform(250, 500), rng.uniform(200, 400), rng.uniform(250, 500)
            dens = target / n * 1e6 / (w * h * d)
            mass += goods.solid(v.sketch, (x + i * 120, x + i * 120 + w, y0, y0 + h, z0 + 200, z0 + 200 + d),
                                 "cardboard" if dens < 0.3 else "paper", dens)
        return mass
    for _ in range(int(rng.integers(1, 8))):
        x = rng.uniform(x0, x1 - 1200)
        z = rng.uniform(z0, z1 - 1000)
        h = rng.uniform(400, 1600)
        mass += goods.solid(v.sketch, (x, x + 1150, y0, y0 + h, z, z + 1000),
                             str(rng.choice(["cardboard", "textile_bales", "paper", "machinery"])),
                             rng.uniform(0.05, 0.45))
    return mass


def _line_pitch(v: Vehicle, portal: Portal, rng: np.random.Generator, scale: float) -> float:
    """Lorries and containers get 2,100–3,800 lines (the contract's range); cars keep the portal's pitch."""
    if v.name in goods_cars() or v.name == "van":
        return portal.line_mm
    return (v.length + 1200) / rng.uniform(2100, 3800) / scale


def _speed_rows(rows: int, rng: np.random.Generator) -> np.ndarray:
    """Canvas row sampled by each output line: the vehicle speeds up and slows down (±25 %)."""
    n = int(rows * 1.6)
    t = np.arange(n, dtype=np.float64)
    period = rng.uniform(0.3, 1.2) * rows
    speed = 1 + rng.uniform(0.03, 0.2) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    speed += rng.uniform(-0.15, 0.15) * (t / rows - 0.5)
    speed = np.clip(speed, 0.75, 1.25)
    pos = np.cumsum(speed) - speed[0]
    return pos[pos < rows - 1]


def _resample(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    i = pos.astype(np.int64)
    f = (pos - i).astype(np.float32)[:, None]
    return a[i] * (1 - f) + a[i + 1] * f


def _scatter(t: np.ndarray, share: float) -> np.ndarray:
    """Add broad scatter: a share of the primary, averaged over ~0.5 m, normalised so air stays 1."""
    k = 8
    h, w = t.shape
    small = t[: h // k * k, : w // k * k].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    for axis in (0, 1):
        small = _box_mean(small, 6, axis)
    big = np.repeat(np.repeat(small, k, axis=0), k, axis=1)
    pad = np.pad(big, ((0, h - big.shape[0]), (0, w - big.shape[1])), mode="edge")
    return (t + share * pad) / (1 + share)


def _box_mean(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Running mean over 2r+1 samples along an axis, edges repeated."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r + 1, r)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    hi = np.take(c, np.arange(2 * r + 1, c.shape[axis]), axis=axis)
    lo = np.take(c, np.arange(0, c.shape[axis] - 2 * r - 1), axis=axis)
    return (hi - lo) / (2 * r + 1)


def _detector(t: np.ndarray, photons: float, rng: np.random.Generator, gain_sd: float) -> np.ndarray:
    """Crosstalk, afterglow, pulse-to-pulse gain, quantum and electronic noise."""
    t = t.copy()
    t[:, 1:-1] = 0.8 * t[:, 1:-1] + 0.1 * (t[:, :-2] + t[:, 2:])
    t[1:] = 0.96 * t[1:] + 0.04 * t[:-1]
    t *= (1 + gain_sd * rng.standard_normal(t.shape[0], dtype=np.float32))[:, None]
    sd = np.sqrt(np.maximum(t, 0) * photons + 40.0**2) / photons
    return t + sd * rng.standard_normal(t.shape, dtype=np.float32)


def _render(v: Vehicle, portal: Portal, scale: float, veh_rng: np.random.Generator,
            det_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[int, Box], dict]:
    """Planes, truth boxes (column, row) and extra meta of the drawn vehicle."""
    line = _line_pitch(v, portal, veh_rng, scale)
    front = veh_rng.uniform(300, 900)
    rows = int(np.ceil((v.length + front + veh_rng.uniform(300, 900)) / line))
    cols = int(np.ceil(portal.detector_mm / portal.pixel_mm))
    densities = {name: m.density for name, m in catalogue().items()}
    canvas = Canvas(rows, cols, line, portal.pixel_mm, basis_table(portal.source), densities,
                    portal.source_mm, portal.distance_mm, x_offset_mm=front)
    boxes = v.sketch.replay(canvas)
    pos = _speed_rows(rows, veh_rng)
    src = SOURCES[portal.source]
    high, low = transmit(portal.source, _resample(canvas.water, pos), _resample(canvas.heavy, pos))
    share = src.scatter * float(veh_rng.uniform(0.7, 1.3))
    gain_sd = 0.004 if src.kind == "linac" else 0.001
    planes = [_detector(_scatter(t, share), n, det_rng, gain_sd) for t, n in zip((high, low), src.photons)]
    extra: dict = {"line_mm": round(line, 3)}
    cab_lines = _cab_avoidance(v, portal, front, line, pos, veh_rng)
    if cab_lines:
        for p in planes:
            p[:cab_lines] = np.abs(det_rng.standard_normal((cab_lines, p.shape[1]), dtype=np.float32)) * 2e-4
        extra["cab_lines"] = [0, cab_lines]
    dead = _dead_channels(cols, det_rng)
    for p in planes:
        p[:, dead] = 0.0
    extra["dead_channels"] = [int(c) for c in dead]
    out = [np.clip(p * AIR + 0.5, 0, AIR).astype(np.uint16) for p in planes]
    mapped = {k: _map_box(b, pos) for k, b in boxes.items()}
    return out[0], out[1], mapped, extra


def _cab_avoidance(v: Vehicle, portal: Portal, front: float, line: float, pos: np.ndarray,
                   rng: np.random.Generator) -> int:
    """Lines over a driver's cab that a linac portal does not irradiate (0 when it scans the cab)."""
    if v.cab_end is None or not portal.source.startswith("linac") or rng.random() > 0.7:
        return 0
    return int(np.searchsorted(pos, (front + v.cab_end) / line))


def _dead_channels(cols: int, rng: np.random.Generator) -> np.ndarray:
    """Zero to two detector channels that read nothing."""
    return rng.choice(cols, size=int(rng.integers(0, 3)), replace=False)


def _map_box(box: Box, pos: np.ndarray) -> Box:
    """A canvas box (column, row) in output lines: rows follow the speed resampling."""
    c0, r0, c1, r1 = box
    y0, y1 = np.searchsorted(pos, [r0, r1])
    return (c0, float(y0), c1, float(max(y1, y0 + 1)))


def _meta(seed: int, v: Vehicle, portal: Portal, declared_empty: bool, cargo: str,
          truths: list[goods.Truth], boxes: dict[int, Box], shape: tuple[int, int]) -> dict:
    """The contract's meta keys plus this generator's own (portal, cargo, cab lines)."""
    src = SOURCES[portal.source]
    truth = []
    for t in truths:
        if t.tag not in boxes:
            continue
        c0, r0, c1, r1 = boxes[t.tag]
        truth.append({"label": t.label, "box": [int(c0), int(r0), int(np.ceil(c1)), int(np.ceil(r1))],
                      "mass_kg": round(float(t.mass_kg), 3)})
    meta = {"pixel_mm": round(portal.pixel_mm, 3), "kind": v.kind, "energy_kev": src.peaks_kev[0],
            "source": SOURCE_NAME, "portal": portal.source, "seed": seed, "vehicle": v.name,
            "declared_empty": declared_empty, "cargo": v.cargo if cargo == "none" else cargo,
            "truth": truth}
    if src.kind == "linac":
        meta["energies_kev"] = list(src.peaks_kev)
    else:
        meta["kvp"] = src.peaks_kev[0]
    return meta
