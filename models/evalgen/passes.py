"""Repeated passes of one vehicle through a portal, from generator B (issue 19's second generator).

`evalgen_pass(seed, k, changes)` renders the vehicle of `alt_portal_scan(seed, contents=())` (the same
build, cargo and portal: the seed's vehicle and cargo streams are drawn exactly as there) on its k-th
drive through the portal. Generator B draws a pass as the vehicle's *pose and drive*, in vehicle
millimetres, before the projection, not as a warp of a finished image:

- **pose**: the driver keeps another line in the lane (a lateral shift of up to ~±120 mm, so the fan
  magnifies the vehicle by another ±2 % about the source height) and the body rides a few
  centimetres higher or lower (tyres, suspension, load): every primitive of the sketch is moved
  before it is drawn. The vehicle's pitch (nose up or down) shifts each canvas row, i.e. each
  vehicle x, by a share of `tilt_px`, on the basis-thickness maps.
- **drive**: the speed is a smooth curve through a few random control speeds (local speed ±10–30 %
  around a mean that gives ±8 % lines), integrated into the canvas row each line samples.
- **on board**: another fuel level (the diesel of the tank is redrawn) and 0–2 passengers on the
  vehicle's seats (seated people of water-like tissue, 55–95 kg: torso, head, thighs, shins).
- **detector**: the portal's scatter is the seed's, but each pass draws its own channel gains
  (a calibration drift of ~0.3 %), pulse gains, quantum noise, dead channels and cab avoidance.

The streams: the seed's own (`[seed, 0..3]`, as `alt_portal_scan`), the pass (`[seed, 100, k]`: pose,
drive, fuel, passengers), the pass's detector (`[seed, 101, k]`) and one per change (`[seed, 102, i]`
for the i-th change). A change is a modification of the vehicle, not of a pass: passes k and j with
the same changes carry the same modification, and a pass with and without it differs only where the
modification is (and in the faint broad scatter around it).

Changes (`CHANGES`): `added_steel` (a 5–30 kg steel plate or block in the floor, roof, fuel tank,
spare wheel well, a door or the cargo bay), `concealment` (≥ 20 litres: a welded steel box, a false
floor, or a box in the fuel tank where fuel was, holding cartons of cigarettes or drug bricks) and
`removed_part` (one 5–150 kg steel primitive of the build, at most 3 m long, taken away: a bonnet or
roof skin, the cross-car beam, a van's bulkhead or rear door, a spare rim, a lorry cab's roof or rear
wall, chassis and container cross-members, a container's corner post, end wall or door bar, a landing
leg; never a wheel, an axle inside its hubs or a body side). Their truth mass is steel-equivalent: each
material's mass times its attenuation over steel's, weighted by the portal's high channel;
`mass_kg_fe` counts what was put in (or taken away), `net_kg_fe` (B's own key) the net change of
the image's mass, signed as `kind`: a box welded into a tank displaces fuel, so its net may be small
or even negative (the tank then looks lighter, though something was added).

meta follows the history evaluation's contract: `pixel_mm`, `line_mm` (this pass's mean line pitch),
`energy_kev`, `kind`, `vehicle`, `seed`, `parts` (floor, roof, fuel_tank, spare_wheel, door, cargo,
cab as [column0, line0, column1, line1] in this pass's pixels), `changes` (kind added|removed, label
steel|concealment|part, location, box, mass_kg_fe, net_kg_fe, volume_l), `pass` (seed k, offset_px, scale,
tilt_px, lines, fuel_level, passengers, and B's own lateral_mm, lift_mm: a point at column c when
the vehicle sits at the lane's centre lies at scale·c + offset_px, give or take the pitch's
±tilt_px/2 along the vehicle) and `cab_lines` when a
linac portal kept its beam off the cab; plus B's `source`, `portal`, `cargo`, `declared_empty`,
`dead_channels` and an empty `truth`.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from models.evalgen import goods
from models.evalgen.canvas import Box, Canvas
from models.evalgen.materials import catalogue, material
from models.evalgen.portal import (VEHICLE_ODDS, VEHICLES, Portal, _cab_avoidance, _cargo_plan, _dead_channels,
                                   _detector, _line_pitch, _load_cargo, _map_box, _meta, _portal, _resample,
                                   _scatter, _vehicle, goods_cars)
from models.evalgen.attenuation import mass_attenuation
from models.evalgen.sketch import Sketch
from models.evalgen.spectra import SOURCES, basis_table, channel_weights, transmit
from models.evalgen.vehicles import Space, Vehicle
from models.scan import AIR, Scan

CHANGES = ("added_steel", "concealment", "removed_part")
LOCATIONS = ("floor", "roof", "fuel_tank", "spare_wheel", "door", "cargo")
PARTS = ("floor", "roof", "fuel_tank", "spare_wheel", "door", "cargo", "cab")
ALIASES = {"car": "", "mpv": "suv", "lorry": "box_lorry", "tractor": "tractor_40ft"}  # "" = drawn from the seed
MIN_KG, MIN_LITRES = 5.0, 20.0
MAX_OFFSET_PX, MAX_SCALE, MAX_TILT_PX = 4.0, 0.02, 3.0
CHANGE_TAG = 1000
MAX_PART_MM = 3000.0
Op = tuple[int | None, str, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class Pose:
    """How the vehicle sits in the lane on this pass: lateral shift and lift (mm), pitch (px over the vehicle)."""

    lateral_mm: float
    lift_mm: float
    pitch_px: float


# -- the seed's vehicle -------------------------------------------------------------------------------

def _vehicle_name(seed: int, vehicle: str | None, veh_rng: np.random.Generator) -> str:
    """B's name for `vehicle` (aliases: car, mpv, lorry, tractor); None draws as alt_portal_scan does."""
    if vehicle is None:
        return str(veh_rng.choice(VEHICLES, p=VEHICLE_ODDS))
    name = ALIASES.get(vehicle, vehicle)
    if name == "":
        cars = goods_cars()
        return cars[int(np.random.default_rng([seed, 103]).integers(len(cars)))]
    if name not in VEHICLES:
        raise ValueError(f"unknown vehicle {vehicle!r}; known: {', '.join(VEHICLES + tuple(ALIASES))}")
    return name


@dataclass
class _Seed:
    """What every pass of a seed shares: vehicle and cargo sketch, portal, canvas size and scatter."""

    v: Vehicle
    portal: Portal
    build_ops: int
    declared_empty: bool
    cargo: str
    line: float
    front: float
    rows: int
    cols: int
    scatter: float


def _seed(seed: int, vehicle: str | None, scale: float) -> _Seed:
    veh_rng, _, _, cargo_rng = (np.random.default_rng([seed, k]) for k in range(4))
    v = _vehicle(_vehicle_name(seed, vehicle, veh_rng), veh_rng)
    build_ops = len(v.sketch.ops)
    portal = _portal(v, veh_rng, scale)
    declared_empty, style = _cargo_plan(v, veh_rng, ())
    _load_cargo(v, style, cargo_rng)
    line = _line_pitch(v, portal, veh_rng, scale)
    front = veh_rng.uniform(300, 900)
    rows = int(np.ceil((v.length + front + veh_rng.uniform(300, 900)) / line))
    cols = int(np.ceil(portal.detector_mm / portal.pixel_mm))
    scatter = SOURCES[portal.source].scatter * float(veh_rng.uniform(0.7, 1.3))
    return _Seed(v, portal, build_ops, declared_empty, style, line, front, rows, cols, scatter)


# -- primitives as data ---------------------------------------------------------------------------------

def _bound(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A sketch primitive's arguments by name, defaults filled in."""
    b = inspect.signature(getattr(Canvas, name)).bind(None, *args, **kwargs)
    b.apply_defaults()
    out = dict(b.arguments)
    out.pop("self")
    return out


def _op(tag: int | None, name: str, a: dict[str, Any]) -> Op:
    return (tag, name, (), a)


def _extent(name: str, a: dict[str, Any]) -> Space:
    """A primitive's bounding space in vehicle mm."""
    if name == "block":
        return a["x0"], a["x1"], a["y0"], a["y1"], a["z0"], a["z1"]
    if name == "plate":
        return a["x0"], a["x1"], a["y"], a["y"] + a["thick"], a["z0"], a["z1"]
    if name == "polygon":
        xs, ys = [p[0] for p in a["points"]], [p[1] for p in a["points"]]
        return min(xs), max(xs), min(ys), max(ys), a["z0"], a["z1"]
    if name == "rod":
        r = a["radius"]
        return a["x0"], a["x1"], a["yc"] - r, a["yc"] + r, a["zc"] - r, a["zc"] + r
    if name == "disc":
        r = a["radius"]
        return a["xc"] - r, a["xc"] + r, a["yc"] - r, a["yc"] + r, a["z0"], a["z1"]
    r = a["radius"]
    return a["xc"] - r, a["xc"] + r, a["y0"], a["y1"], a["zc"] - r, a["zc"] + r


def _litres(name: str, a: dict[str, Any]) -> float:
    """A primitive's solid volume in litres."""
    x0, x1, y0, y1, z0, z1 = _extent(name, a)
    if name == "block":
        return (x1 - x0) * (y1 - y0) * (z1 - z0) / 1e6
    if name == "plate":
        return (x1 - x0) * a["thick"] * (z1 - z0) / 1e6
    if name == "polygon":
        return goods._area(list(a["points"])) * (z1 - z0) / 1e6
    ring = math.pi * (a["radius"] ** 2 - a["inner"] ** 2)
    length = {"rod": x1 - x0, "disc": z1 - z0, "post": y1 - y0}[name]
    return ring * length / 1e6


def _kg(name: str, a: dict[str, Any]) -> float:
    density = a["density"] or material(a["mat"]).density
    return density * _litres(name, a)


@lru_cache(maxsize=None)
def fe_ratio(source: str, mat: str) -> float:
    """Steel-equivalent mass per kg of `mat` in the source's high channel (thin-object attenuation)."""
    e, high, _ = channel_weights(SOURCES[source])
    mu = float((high * mass_attenuation(material(mat), e)).sum())
    return mu / float((high * mass_attenuation(material("steel"), e)).sum())


def _kg_fe(ops: list[Op], source: str) -> tuple[float, float]:
    """(what was put in or taken away, net of what it displaced) in steel-equivalent kg."""
    each = [_kg(n, a) * fe_ratio(source, a["mat"]) for _, n, _, a in (_normal(op) for op in ops)]
    return sum(m for m in each if m > 0), sum(each)


def _normal(op: Op) -> Op:
    tag, name, args, kwargs = op
    return _op(tag, name, _bound(name, args, kwargs))


def _posed(op: Op, pose: Pose) -> Op:
    """A primitive moved by the pass's lateral shift and lift."""
    tag, name, args, kwargs = op
    a = _bound(name, args, kwargs)
    dy, dz = pose.lift_mm, pose.lateral_mm
    for key in ("y0", "y1", "y", "yc"):
        if key in a:
            a[key] += dy
    for key in ("z0", "z1", "zc"):
        if key in a:
            a[key] += dz
    if name == "polygon":
        a["points"] = [(x, y + dy) for x, y in a["points"]]
    return _op(tag, name, a)


class _Ruler(Canvas):
    """A canvas that only measures: the pixel box a primitive would cover, nothing drawn."""

    def __post_init__(self) -> None:
        pass

    def _add(self, r0: int, c0: int, grams: np.ndarray, mat: str) -> Box | None:
        h, w = grams.shape
        ra, ca, rb, cb = max(r0, 0), max(c0, 0), min(r0 + h, self.rows), min(c0 + w, self.cols)
        return None if ra >= rb or ca >= cb else (float(ca), float(ra), float(cb), float(rb))


# -- what a pass draws ----------------------------------------------------------------------------------

def _pose(s: _Seed, rng: np.random.Generator) -> tuple[Pose, float, float]:
    """(pose, column scale, column offset px): the scale comes from the lateral shift, the offset from the
    lift and from scaling about the source height."""
    p = s.portal
    scale = 1 + rng.uniform(-MAX_SCALE, MAX_SCALE)
    offset = rng.uniform(-MAX_OFFSET_PX, MAX_OFFSET_PX)
    lateral = p.distance_mm * (1 / scale - 1)                  # M(0) = D / (D + lateral) = scale
    lift = (offset * p.pixel_mm - (1 - scale) * p.source_mm) / scale
    return Pose(lateral, lift, rng.uniform(-MAX_TILT_PX, MAX_TILT_PX)), scale, offset


def _drive(rows: int, rng: np.random.Generator) -> np.ndarray:
    """Canvas row of every line: the speed (rows per line) runs through 3–8 random control speeds,
    eased between them, ±10–30 % about a mean that gives ±8 % lines."""
    mean = 1 / rng.uniform(0.92, 1.08)
    n = int(rows / mean / 0.65) + 4                          # enough lines at the slowest speed
    knots = int(rng.integers(3, 9))
    values = rng.uniform(-1, 1, knots + 1)
    at = np.linspace(0, rows / mean, knots + 1)
    t = np.arange(n, dtype=np.float64)
    k = np.clip(np.searchsorted(at, t, side="right") - 1, 0, knots - 1)
    u = np.clip((t - at[k]) / (at[k + 1] - at[k]), 0, 1)
    ease = u * u * (3 - 2 * u)
    dev = values[k] + (values[k + 1] - values[k]) * ease
    dev *= rng.uniform(0.1, 0.3) / max(float(np.abs(dev[t <= at[-1]]).max()), 1e-6)
    speed = mean * (1 + dev)
    pos = np.cumsum(speed) - speed[0]
    return pos[pos < rows - 1]


def _fuel(v: Vehicle, ops: list[Op], level: float) -> list[Op]:
    """The build with the tank's diesel at `level` of the tank's height."""
    if "fuel_tank" not in v.parts:
        return ops
    x0, x1, y0, y1, z0, z1 = v.parts["fuel_tank"]
    out = []
    for op in ops:
        tag, name, args, kwargs = op
        if name == "block" and args[6:7] == ("diesel",) and args[:3] == (x0, x1, y0):
            op = (tag, name, (x0, x1, y0, y0 + (y1 - y0) * level) + args[4:], kwargs)
        out.append(op)
    return out


def _person(s: Sketch, seat: tuple[float, float, float, float], kg: float) -> None:
    """A seated person of `kg` (water-like tissue): torso, head, thighs and shins, sized to the mass."""
    x, top, z, floor = seat
    f = (kg / 68.0) ** (1 / 3)
    s.post(x + 330, 150 * f, top, top + 600 * f, z, "water", density=1.0)
    s.post(x + 330, 85 * f, top + 620 * f, top + 850 * f, z, "water", density=1.0)
    for dz in (-90 * f, 90 * f):
        s.rod(x + 330 - 400 * f, x + 330, top + 75 * f, 75 * f, z + dz, "water", density=1.0)
        s.post(x + 330 - 400 * f, 50 * f, max(top - 420 * f, floor), top, z + dz, "water", density=1.0)


def _passengers(v: Vehicle, s: Sketch, rng: np.random.Generator) -> int:
    n = min(int(rng.integers(0, 3)), len(v.seats))
    for i in rng.choice(len(v.seats), size=n, replace=False) if n else []:
        _person(s, v.seats[int(i)], rng.uniform(55, 95))
    return n


# -- changes --------------------------------------------------------------------------------------------

def _where(v: Vehicle, space: Space) -> str:
    """The part holding the centre of `space` (the more specific first); "body" when none does."""
    cx, cy, cz = ((space[0] + space[1]) / 2, (space[2] + space[3]) / 2, (space[4] + space[5]) / 2)
    for name in ("fuel_tank", "spare_wheel", "door", "floor", "roof", "cargo", "cab"):
        x0, x1, y0, y1, z0, z1 = v.parts.get(name, (0, -1, 0, -1, 0, -1))
        if x0 <= cx <= x1 and y0 <= cy <= y1 and z0 <= cz <= z1:
            return name
    return "body"


def _added_steel(v: Vehicle, s: Sketch, rng: np.random.Generator) -> tuple[str, float]:
    """A steel plate (floor, roof, door, tank wall) or block (wheel well, cargo bay) of 5–30 kg."""
    where = [n for n in LOCATIONS if n in v.parts]
    loc = where[int(rng.integers(len(where)))]
    x0, x1, y0, y1, z0, z1 = v.parts[loc]
    kg = rng.uniform(MIN_KG + 0.5, 30.0)
    litres = kg / 7.85
    if loc in ("floor", "roof"):                             # lying flat: thickness 3–10 mm
        thick = rng.uniform(3, 10)
        depth = min(z1 - z0, rng.uniform(300, 900))
        length = min(litres * 1e6 / thick / depth, x1 - x0)
        thick = min(max(thick, litres * 1e6 / length / depth), y1 - y0 - 10)   # a short part: a thicker plate
        xa, za = rng.uniform(x0, max(x1 - length, x0)), rng.uniform(z0, z1 - depth)
        y = y0 + 5 if loc == "floor" else y1 - thick - 5
        s.plate(xa, xa + length, y, thick, za, za + depth, "steel")
        return loc, 7.85 * length * thick * depth / 1e6
    if loc in ("door", "fuel_tank"):                         # standing against the wall: thin across the lane
        thick = min(rng.uniform(3, 10), z1 - z0 - 2)
        height = min(y1 - y0 - 10, rng.uniform(150, 400))
        length = min(litres * 1e6 / thick / height, x1 - x0 - 10)
        thick = min(max(thick, litres * 1e6 / length / height), z1 - z0 - 12)
        xa, ya = rng.uniform(x0 + 5, max(x1 - 5 - length, x0 + 5)), rng.uniform(y0 + 5, y1 - 5 - height)
        za = z1 - 2 - thick if loc == "door" else z0 + 6
        s.block(xa, xa + length, ya, ya + height, za, za + thick, "steel")
        return loc, 7.85 * length * height * thick / 1e6
    side = (litres * 1e6) ** (1 / 3) * np.array([rng.uniform(1, 2), rng.uniform(0.3, 0.8), 1])
    side = np.minimum(side, [x1 - x0 - 10, y1 - y0 - 10, z1 - z0 - 10])
    side[2] = min(litres * 1e6 / (side[0] * side[1]), z1 - z0 - 10)
    xa = rng.uniform(x0 + 5, max(x1 - 5 - side[0], x0 + 5))
    za = rng.uniform(z0 + 5, max(z1 - 5 - side[2], z0 + 5))
    s.block(xa, xa + side[0], y0 + 2, y0 + 2 + side[1], za, za + side[2], "steel")
    return loc, 7.85 * float(np.prod(side)) / 1e6


def _concealment(v: Vehicle, s: Sketch, rng: np.random.Generator, fuel: float) -> tuple[str, float]:
    """A welded box of ≥ 20 L with cartons or drug bricks: where fuel was in the tank (the diesel it
    displaces drawn out), a false floor, or a compartment in a roof, door, wheel well or the cargo bay."""
    where = [n for n in LOCATIONS if n in v.parts and _room(v.parts[n]) >= MIN_LITRES * 1.3]
    loc = where[int(rng.integers(len(where)))]
    x0, x1, y0, y1, z0, z1 = v.parts[loc]
    want = rng.uniform(MIN_LITRES * 1.05, min(250.0, _room(v.parts[loc]) * 0.8)) * 1e6
    h = y1 - y0 - 10 if loc in ("floor", "roof", "door", "fuel_tank", "spare_wheel") else \
        min(y1 - y0 - 10, rng.uniform(250, 600))
    d = z1 - z0 - 10 if loc in ("floor", "door", "fuel_tank") else min(z1 - z0 - 10, rng.uniform(400, 900))
    if want / (h * d) > x1 - x0 - 10:                        # too long for the part: as tall and deep as it is
        h, d = y1 - y0 - 10, z1 - z0 - 10
    length = min(want / (h * d), x1 - x0 - 10)
    xa = rng.uniform(x0 + 5, max(x1 - 5 - length, x0 + 5))
    za = (z0 + z1) / 2 - d / 2
    box = (xa, xa + length, y0 + 5, y0 + 5 + h, za, za + d)
    if loc == "fuel_tank":                                  # the diesel the box displaces
        level = y0 + (y1 - y0) * fuel
        if level > box[2]:
            s.block(box[0], box[1], box[2], min(level, box[3]), max(box[4], z0 + 4), min(box[5], z1 - 4),
                    "diesel", density=-material("diesel").density)
    goods.compartment(s, box, wall=2.0)
    inner = (box[0] + 3, box[1] - 3, box[2] + 3, box[3] - 3, box[4] + 3, box[5] - 3)
    if rng.random() < 0.5:
        goods.drugs(s, inner, rng)
    else:
        goods.cigarettes(s, inner, rng, cases=False)
    return loc, (box[1] - box[0]) * (box[3] - box[2]) * (box[5] - box[4]) / 1e6


def _room(space: Space) -> float:
    x0, x1, y0, y1, z0, z1 = space
    return max(x1 - x0 - 10, 0) * max(y1 - y0 - 10, 0) * max(z1 - z0 - 10, 0) / 1e6


def removable(v: Vehicle, ops: list[Op]) -> list[int]:
    """Indices of the build's steel primitives of 5–150 kg a workshop could take away: not the body's
    side shells, not a wheel nor an axle inside its hubs, nothing longer than 3 m (no chassis rails)."""
    out = []
    bound = [_bound(name, args, kwargs) for _, name, args, kwargs in ops]
    hubs = {(round(a["xc"]), round(a["yc"])) for (_, name, _, _), a in zip(ops, bound)
            if name == "disc" and a["z1"] - a["z0"] < 400}
    for i, ((_, name, _, _), a) in enumerate(zip(ops, bound)):
        if name == "polygon" or a["mat"] not in ("steel", "cast_iron"):
            continue
        x0, x1, y0, y1, _, _ = _extent(name, a)
        wheel = name == "disc" and (round(a["xc"]), round(a["yc"])) in hubs
        if not wheel and x1 - x0 <= MAX_PART_MM and MIN_KG + 0.5 <= _kg(name, a) <= 150:
            out.append(i)
    return out


@dataclass
class _Change:
    kind: str
    label: str
    location: str
    volume_l: float
    ops: list[Op]          # the primitives added (tagged), or the one taken away (posed, untagged)
    removed: int | None = None


def _draw_change(what: str, v: Vehicle, build: list[Op], rng: np.random.Generator, fuel: float,
                 tag: int) -> _Change:
    if what == "removed_part":
        options = removable(v, build)
        if not options:
            raise ValueError(f"vehicle {v.name!r} has no removable steel part")
        i = options[int(rng.integers(len(options)))]
        _, name, args, kwargs = build[i]
        a = _bound(name, args, kwargs)
        return _Change("removed", "part", _where(v, _extent(name, a)), 0.0, [_op(tag, name, a)], removed=i)
    s = Sketch(tag=tag)
    if what == "added_steel":
        loc, _ = _added_steel(v, s, rng)
        return _Change("added", "steel", loc, 0.0, s.ops)
    if what == "concealment":
        loc, litres = _concealment(v, s, rng, fuel)
        return _Change("added", "concealment", loc, litres, s.ops)
    raise ValueError(f"unknown change {what!r}; known: {', '.join(CHANGES)}")


# -- render ---------------------------------------------------------------------------------------------

def _pitch(a: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Each row moved up its columns by `shift` px (linear interpolation, air beyond the ends)."""
    w = a.shape[1]
    src = np.arange(w, dtype=np.float64)[None, :] - shift[:, None]
    i = np.floor(src).astype(np.int64)
    f = (src - i).astype(np.float32)
    lo = np.take_along_axis(a, np.clip(i, 0, w - 1), axis=1) * ((i >= 0) & (i < w))
    hi = np.take_along_axis(a, np.clip(i + 1, 0, w - 1), axis=1) * ((i + 1 >= 0) & (i + 1 < w))
    return (lo * (1 - f) + hi * f).astype(np.float32)


def _box(box: Box, shift: np.ndarray, pos: np.ndarray, cols: int) -> list[float]:
    """A canvas pixel box in this pass's scan pixels [column0, line0, column1, line1]."""
    c0, r0, c1, r1 = box
    rows = shift[int(max(r0, 0)):int(max(np.ceil(r1), r0 + 1))]
    rows = rows if len(rows) else shift[-1:]
    c0m, r0m, c1m, r1m = _map_box((c0 + float(rows.min()), r0, c1 + float(rows.max()), r1), pos)
    return [round(max(c0m, 0.0), 1), round(r0m, 1), round(min(c1m, float(cols)), 1), round(r1m, 1)]


def _part_box(space: Space, pose: Pose, ruler: Canvas, shift: np.ndarray, pos: np.ndarray) -> list[float] | None:
    """A part's space in this pass's scan pixels: its corners through the fan (a roof spans the band
    between its far and near edges), rows through the pitch and the drive."""
    x0, x1, y0, y1, z0, z1 = space
    heights = [ruler.magnify(y + pose.lift_mm, z + pose.lateral_mm) / ruler.pixel_mm
               for y in (y0, y1) for z in (z0, z1)]
    r0, r1 = ruler._row(x0), ruler._row(x1)
    c0, c1 = max(min(heights), 0.0), min(max(heights), float(ruler.cols))
    if r1 <= 0 or r0 >= ruler.rows or c1 <= c0:
        return None
    return _box((c0, max(r0, 0.0), c1, min(r1, float(ruler.rows))), shift, pos, ruler.cols)


def canvas_rows(seed: int, k: int, vehicle: str | None = None, *, scale: float = 1.0) -> np.ndarray:
    """The vehicle row (canvas row, nominal line pitch) every line of pass k samples: the truth of the
    along-scan stretch between two passes (a registration maps line i of pass k to the line of pass j
    whose canvas row is the same)."""
    sd = _seed(seed, vehicle, scale)
    prng = np.random.default_rng([seed, 100, k])
    _pose(sd, prng)
    return _drive(sd.rows, prng)


def evalgen_pass(seed: int, k: int, changes: tuple[str, ...] = (), vehicle: str | None = None, *,
                 scale: float = 1.0) -> Scan:
    """Pass k of seed's vehicle, with `changes` (labels of CHANGES) made to it; see the module.

    `vehicle`: one of generator B's VEHICLES, or car (one of the three drawn by the seed), mpv, lorry,
    tractor; None draws it as alt_portal_scan does. `scale` < 1 coarsens both pitches (tests).
    """
    bad = [c for c in changes if c not in CHANGES]
    if bad:
        raise ValueError(f"unknown changes {bad}; known: {', '.join(CHANGES)}")
    sd = _seed(seed, vehicle, scale)
    v, portal = sd.v, sd.portal
    prng, drng = np.random.default_rng([seed, 100, k]), np.random.default_rng([seed, 101, k])
    pose, col_scale, col_offset = _pose(sd, prng)
    pos = _drive(sd.rows, prng)
    has_tank = "fuel_tank" in v.parts
    fuel = float(prng.uniform(0.1, 0.95)) if has_tank else 0.0
    aboard = Sketch()
    people = _passengers(v, aboard, prng)

    ops = _fuel(v, list(v.sketch.ops), fuel)
    build = ops[:sd.build_ops]
    drawn = [_draw_change(what, v, build, np.random.default_rng([seed, 102, i]), fuel, CHANGE_TAG + i)
             for i, what in enumerate(changes)]
    gone = {c.removed for c in drawn if c.removed is not None}
    ops = [op for i, op in enumerate(ops) if i not in gone] + aboard.ops
    ops += [op for c in drawn if c.removed is None for op in c.ops]

    densities = {name: m.density for name, m in catalogue().items()}
    geometry = dict(rows=sd.rows, cols=sd.cols, line_mm=sd.line, pixel_mm=portal.pixel_mm,
                    basis=basis_table(portal.source), densities=densities, source_mm=portal.source_mm,
                    distance_mm=portal.distance_mm, x_offset_mm=sd.front)
    canvas = Canvas(**geometry)  # type: ignore[arg-type]
    posed = Sketch(ops=[_posed(op, pose) for op in ops])
    boxes = posed.replay(canvas)
    ruler = _Ruler(**geometry)  # type: ignore[arg-type]
    for c in drawn:
        if c.removed is not None:
            boxes.update(Sketch(ops=[_posed(op, pose) for op in c.ops]).replay(ruler))
    shift = (pose.pitch_px * (np.arange(sd.rows) / max(sd.rows - 1, 1) - 0.5)).astype(np.float64)
    water, heavy = _pitch(canvas.water, shift), _pitch(canvas.heavy, shift)

    src = SOURCES[portal.source]
    high, low = transmit(portal.source, _resample(water, pos), _resample(heavy, pos))
    gain_sd = 0.004 if src.kind == "linac" else 0.001
    drift = 1 + 0.003 * drng.standard_normal((1, sd.cols))
    planes = [_detector(_scatter(t, sd.scatter) * drift.astype(np.float32), n, drng, gain_sd)
              for t, n in zip((high, low), src.photons)]
    extra: dict[str, Any] = {}
    cab_lines = _cab_avoidance(v, portal, sd.front, sd.line, pos, drng)
    if cab_lines:
        for p in planes:
            p[:cab_lines] = np.abs(drng.standard_normal((cab_lines, p.shape[1]), dtype=np.float32)) * 2e-4
        extra["cab_lines"] = [0, cab_lines]
    dead = _dead_channels(sd.cols, drng)
    for p in planes:
        p[:, dead] = 0.0
    h16, l16 = (np.clip(p * AIR + 0.5, 0, AIR).astype(np.uint16) for p in planes)

    meta = _meta(seed, v, portal, sd.declared_empty, sd.cargo, [], {}, h16.shape)
    meta["parts"] = {n: b for n in PARTS if n in v.parts
                     for b in [_part_box(v.parts[n], pose, ruler, shift, pos)] if b is not None}
    meta["changes"] = []
    for i, c in enumerate(drawn):
        if CHANGE_TAG + i in boxes:
            gross, net = _kg_fe(c.ops, portal.source)
            meta["changes"].append({"kind": c.kind, "label": c.label, "location": c.location,
                                    "box": _box(boxes[CHANGE_TAG + i], shift, pos, sd.cols),
                                    "mass_kg_fe": round(float(gross), 3),
                                    "net_kg_fe": round(float(net if c.kind == "added" else -net), 3),
                                    "volume_l": round(float(c.volume_l), 2)})
    meta.update(extra, line_mm=round(sd.line * float(pos[-1] - pos[0]) / max(len(pos) - 1, 1), 3),
                dead_channels=[int(c) for c in dead])
    meta["pass"] = {"seed": k, "offset_px": round(col_offset, 2), "scale": round(col_scale, 4),
                    "tilt_px": round(pose.pitch_px, 2), "lines": int(len(pos)), "fuel_level": round(fuel, 3),
                    "passengers": people, "lateral_mm": round(pose.lateral_mm, 1), "lift_mm": round(pose.lift_mm, 1)}
    return Scan(high=h16, low=l16, meta=meta)
