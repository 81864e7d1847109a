"""Vehicle bodies of generator B: side-view polygons and 3-D parts, drawn into a Sketch.

Every design here was written for this generator: car profiles are polygons (not rectangles), the
tyres are rings seen end-on at both sides of the car (so near and far wheels separate by the fan),
container walls are corrugated strip by strip, the floor rests on C-section cross-members.
Coordinates are millimetres: x from the front bumper, y above the road, z across the lane.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.evalgen.sketch import Sketch

Space = tuple[float, float, float, float, float, float]  # x0, x1, y0, y1, z0, z1
Seat = tuple[float, float, float, float]  # cushion front x, cushion top y, lateral z, cab floor y


@dataclass
class Vehicle:
    """A drawn vehicle: where goods may go (`bays`), hiding places (`hides`) and its extent."""

    name: str
    kind: str
    length: float
    height: float
    sketch: Sketch
    bays: list[Space] = field(default_factory=list)
    hides: dict[str, Space] = field(default_factory=dict)
    cab_end: float | None = None
    cargo: str = "none"
    width: float = 2000.0
    parts: dict[str, Space] = field(default_factory=dict)
    seats: list[Seat] = field(default_factory=list)


# (length, height, width, wheel radius, clearance, wheelbase share, profile as (x, y) shares)
CAR_DESIGNS = {
    "hatchback": (4050, 1480, 1760, 300, 140, 0.63,
                  [(0, .2), (0, .47), (.04, .53), (.2, .6), (.3, .64), (.46, 1), (.86, .98), (.97, .74), (1, .5), (1, .2)]),
    "saloon": (4700, 1450, 1820, 320, 130, 0.6,
               [(0, .2), (0, .45), (.03, .5), (.22, .6), (.33, .63), (.45, 1), (.71, 1), (.84, .68), (.98, .66), (1, .5), (1, .2)]),
    "suv": (4650, 1760, 1900, 370, 200, 0.6,
            [(0, .22), (0, .5), (.04, .56), (.2, .62), (.28, .66), (.38, 1), (.95, .99), (.99, .8), (1, .5), (1, .22)]),
}


def car(name: str, rng: np.random.Generator) -> Vehicle:
    """A passenger car: body shell, glass, engine, wheels, axles, seats, tank, spare wheel."""
    L0, H0, W, rw, clear, wb_share, profile = CAR_DESIGNS[name]
    L, H = L0 * rng.uniform(0.94, 1.06), H0 * rng.uniform(0.96, 1.04)
    s = Sketch()
    pts = [(fx * L, clear + fy * (H - clear)) for fx, fy in profile]
    belt = clear + 0.6 * (H - clear)
    for z in (-W / 2, W / 2 - 0.8):
        s.polygon(pts, z, z + 0.8, "steel")
        glass = [(x, y) for x, y in pts if y > belt + 1]
        s.polygon([(glass[0][0] - 40, belt)] + glass + [(glass[-1][0] + 40, belt)], z, z + 4, "glass")
    roof = [x for (x, y) in pts if y >= H - 2]
    s.plate(min(roof), max(roof), H - 15, 1.0, -W / 2 * 0.85, W / 2 * 0.85, "steel")
    s.plate(0.05 * L, 0.3 * L, clear + 0.53 * (H - clear), 0.9, -W / 2 * .8, W / 2 * .8, "steel")  # bonnet
    s.plate(0.02 * L, 0.98 * L, clear + 40, 1.5, -W / 2, W / 2, "steel")  # floor pan
    for z in (-W / 2 + 90, W / 2 - 90):
        s.rod(0.2 * L, 0.8 * L, clear + 70, 55, z, "steel", inner=51)  # sills
    front_axle = 0.19 * L
    rear_axle = front_axle + wb_share * L
    _engine(s, 0.04 * L, clear, W, scale=H0 / 1500)
    _axle_pair(s, front_axle, rear_axle, rw, W)
    seats = _seats(s, 0.42 * L, clear, W, rows=2 if name != "suv" else 3, pitch=0.17 * L)
    tank = (rear_axle - 0.2 * L, rear_axle - 0.06 * L, clear + 50, clear + 260, -W / 5, W / 5)
    _tank(s, tank, rng.uniform(0.1, 0.95), "plastic")
    boot_x0 = rear_axle + 0.02 * L if name != "suv" else 0.7 * L
    well = (rear_axle + rw * 0.7, rear_axle + rw * 0.7 + 2 * rw * 0.95, clear + 60, clear + 230, -rw, rw)
    _spare_wheel(s, well, rw)
    for door_x in (0.33 * L, 0.55 * L):
        for z in (-W / 2 + 40, W / 2 - 40):
            s.rod(door_x, door_x + 0.2 * L, belt - 260, 16, z, "steel", inner=13)
    s.block(0.3 * L, 0.36 * L, belt - 150, belt + 60, -W / 2 + 50, W / 2 - 50, "plastic", density=0.25)  # dashboard
    s.disc(0.33 * L, belt - 40, 28, -W / 2 + 80, W / 2 - 80, "steel", inner=24)  # cross-car beam
    boot = (boot_x0, 0.97 * L, clear + 90, belt + 80, -W / 2 + 120, W / 2 - 120)
    hides: dict[str, Space] = {"spare_wheel": well, "fuel_tank": tank,
             "door": (0.35 * L, 0.5 * L, clear + 250, belt - 40, W / 2 - 75, W / 2 - 15),
             "under_seat": (0.43 * L, 0.52 * L, clear + 60, clear + 240, -W / 3, W / 3),
             "dashboard": (0.3 * L, 0.35 * L, belt - 140, belt + 40, -W / 4, W / 4)}
    top = [x for x, y in pts if y >= H - 0.08 * (H - clear)]  # the roof's flat run
    parts: dict[str, Space] = {
        "floor": (0.2 * L, 0.95 * L, clear + 10, clear + 120, -W / 2 + 120, W / 2 - 120),
        "roof": (min(top) + 60, max(top) - 60, H - 95, H - 17, -W / 2 * 0.8, W / 2 * 0.8),
        "door": hides["door"], "fuel_tank": tank, "spare_wheel": well, "cargo": boot,
        "cab": (0.3 * L, max(boot_x0, max(x for x, _, _, _ in seats) + 520), clear, H, -W / 2, W / 2)}
    return Vehicle(name, "vehicle", L, H, s, bays=[boot], hides=hides, width=W, parts=parts, seats=seats)


def _engine(s: Sketch, x0: float, clear: float, W: float, scale: float) -> None:
    """Radiator, cast-iron block, aluminium head, gearbox and battery."""
    s.block(x0, x0 + 40, clear + 120, clear + 520 * scale, -W / 3, W / 3, "aluminium", density=0.6)
    s.block(x0 + 180, x0 + 640 * scale, clear + 140, clear + 560 * scale, -260, 260, "cast_iron", density=4.2)
    s.block(x0 + 200, x0 + 620 * scale, clear + 560 * scale, clear + 690 * scale, -240, 240, "aluminium", density=1.6)
    s.rod(x0 + 640 * scale, x0 + 1000 * scale, clear + 250, 140, 0, "aluminium", inner=120)
    s.block(x0 + 80, x0 + 330, clear + 380, clear + 560, W / 2 - 420, W / 2 - 240, "battery")
    s.rod(x0 + 500, x0 + 4200 * scale, clear + 60, 28, W / 4, "steel", inner=25)  # exhaust


def _wheel(s: Sketch, x: float, r: float, z: float, width: float = 205) -> None:
    """Tyre, rim barrel, wheel disc, brake disc and hub, seen end-on at lateral position z."""
    z0, z1 = z - width / 2, z + width / 2
    rim = r * 0.62
    s.disc(x, r, r, z0, z1, "rubber", inner=rim, density=0.45)
    s.disc(x, r, r, z0 + 20, z1 - 20, "rubber", inner=r - 18)  # tread band
    s.disc(x, r, rim, z0, z1, "aluminium", inner=rim - 7)
    s.disc(x, r, rim, z, z + 8, "steel")
    s.disc(x, r, rim * 0.75, z - 25, z, "steel", inner=rim * 0.2)
    s.disc(x, r, rim * 0.22, z - 90, z + 20, "steel")


def _axle_pair(s: Sketch, front: float, rear: float, rw: float, W: float) -> None:
    """Four wheels (near and far side), a front drive shaft and a rear tubular beam."""
    for x in (front, rear):
        for z in (-W / 2 + 110, W / 2 - 110):
            _wheel(s, x, rw, z)
    s.disc(front, rw, 16, -W / 2 + 200, W / 2 - 200, "steel")
    s.disc(rear, rw, 42, -W / 2 + 210, W / 2 - 210, "steel", inner=35)


def _seats(s: Sketch, x0: float, clear: float, W: float, rows: int, pitch: float) -> list[Seat]:
    """Foam cushions and backrests on steel frames, one row every `pitch`; where people may sit."""
    seats: list[Seat] = []
    for i in range(rows):
        seats += [(x0 + i * pitch, clear + 380, z, clear) for z in (-W / 4, W / 4)]
        x = x0 + i * pitch
        for zc in ((-W / 4, W / 4) if i == 0 else (0.0,)):
            half = W / 5 if i == 0 else W / 2.4
            s.block(x, x + 480, clear + 260, clear + 380, zc - half, zc + half, "foam", density=0.06)
            s.block(x + 420, x + 520, clear + 380, clear + 980, zc - half, zc + half, "foam", density=0.06)
            s.rod(x, x + 480, clear + 250, 12, zc - half + 20, "steel", inner=10)
            s.rod(x, x + 480, clear + 250, 12, zc + half - 20, "steel", inner=10)
    return seats


def _tank(s: Sketch, space: Space, fill: float, shell: str) -> None:
    """A fuel tank: shell walls and diesel up to `fill` of its height."""
    x0, x1, y0, y1, z0, z1 = space
    s.block(x0, x1, y0, y1, z0, z0 + 4, shell)
    s.block(x0, x1, y0, y1, z1 - 4, z1, shell)
    s.block(x0, x1, y0, y0 + (y1 - y0) * fill, z0 + 4, z1 - 4, "diesel")


def _spare_wheel(s: Sketch, well: Space, rw: float) -> None:
    """A spare wheel lying flat in its well: tyre ring and rim disc (upright-cylinder chords)."""
    x0, x1, y0, y1, _, _ = well
    xc, r = (x0 + x1) / 2, (x1 - x0) / 2
    s.post(xc, r, y0, y1, 0, "rubber", inner=r * 0.62, density=0.5)
    s.post(xc, r * 0.62, y0 + 60, y0 + 75, 0, "steel", density=3.0)


def van(rng: np.random.Generator) -> Vehicle:
    """A panel van: cab, bulkhead, ribbed cargo box, rear doors, single rear wheels."""
    L, H, W = rng.uniform(4900, 5900), rng.uniform(2150, 2550), 1980
    clear, rw, cab = 180, 340, 1750
    s = Sketch()
    prof = [(0, 250), (0, 800), (250, 1050), (700, 1200), (1300, H - 80), (1500, H), (L, H), (L, 300), (0, 250)]
    for z in (-W / 2, W / 2 - 0.9):
        s.polygon(prof, z, z + 0.9, "steel")
        s.polygon([(760, 1230), (1320, H - 160), (1700, H - 160), (1700, 1230)], z, z + 4, "glass")
        for x in np.arange(cab + 500, L - 100, 620):
            s.block(x, x + 60, 600, H - 60, z, z + 2.5, "steel")
    s.plate(1500, L, H - 20, 1.0, -W / 2 * .9, W / 2 * .9, "steel")
    s.plate(300, L - 20, 550, 1.5, -W / 2, W / 2, "steel")
    s.plate(cab, L - 20, 565, 12, -W / 2 + 30, W / 2 - 30, "wood")
    s.block(cab, cab + 1, 560, H - 30, -W / 2, W / 2, "steel")  # bulkhead
    s.block(L - 45, L - 44, 560, H - 40, -W / 2, W / 2, "steel")  # rear doors
    s.block(L - 60, L - 45, 560, H - 40, -W / 2, W / 2, "steel", density=0.3)
    _engine(s, 40, clear, W, scale=1.15)
    _axle_pair(s, 900, 900 + 0.62 * L, rw, W)
    seats = _seats(s, 1050, clear + 150, W, rows=1, pitch=0)
    tank = (cab + 300, cab + 1100, clear + 60, clear + 300, -W / 2 + 200, 0)
    _tank(s, tank, rng.uniform(0.1, 0.95), "plastic")
    well = (L - 1000, L - 300, clear + 20, clear + 200, -300, 300)
    _spare_wheel(s, well, rw)
    bay = (cab + 60, L - 80, 580, H - 60, -W / 2 + 60, W / 2 - 60)
    hides: dict[str, Space] = {"spare_wheel": well, "fuel_tank": tank,
             "floor": (cab + 200, L - 200, 440, 545, -W / 2 + 100, W / 2 - 100),
             "roof": (cab + 200, L - 200, H - 130, H - 25, -W / 3, W / 3),
             "wall": (cab + 3, cab + 200, 600, H - 60, -W / 2 + 60, W / 2 - 60),
             "door": (400, 1200, 500, 1100, W / 2 - 70, W / 2 - 10)}
    parts = {**{k: hides[k] for k in ("floor", "roof", "door", "fuel_tank", "spare_wheel")}, "cargo": bay,
             "cab": (0.0, cab, clear, H, -W / 2, W / 2)}
    return Vehicle("van", "vehicle", L, H, s, bays=[bay], hides=hides, width=W, parts=parts, seats=seats)


def _cab_over(s: Sketch, H: float, W: float, rng: np.random.Generator) -> tuple[float, list[Seat]]:
    """A cab-over-engine lorry cab with a big diesel under it; where the cab ends and its seats."""
    cab = rng.uniform(2100, 2450)
    prof = [(0, 450), (0, 2300), (120, H), (cab, H), (cab, 1000), (0, 450)]
    for z in (-W / 2, W / 2 - 1.2):
        s.polygon(prof, z, z + 1.2, "steel")
        s.polygon([(30, 1800), (140, H - 300), (900, H - 300), (900, 1800)], z, z + 5, "glass")
    s.plate(100, cab, H - 10, 1.2, -W / 2 * .9, W / 2 * .9, "steel")
    s.block(0, 8, 1300, 2300, -W / 2 + 50, W / 2 - 50, "glass", density=1.0)
    s.block(500, 1700, 550, 1350, -380, 380, "cast_iron", density=4.0)
    s.block(520, 1650, 1350, 1550, -330, 330, "steel", density=2.0)
    s.block(20, 90, 500, 1400, -W / 2 + 200, W / 2 - 200, "aluminium", density=0.7)
    seats = _seats(s, 700, 1300, W, rows=1, pitch=0)
    s.block(150, 520, 1750, 2050, -W / 2 + 80, W / 2 - 80, "plastic", density=0.2)  # dashboard
    s.disc(480, 2050, 230, -600, -560, "steel", inner=205, density=2.0)  # steering wheel rim
    s.block(cab - 700, cab - 60, 1750, 1900, -W / 2 + 60, W / 2 - 60, "foam", density=0.08)  # bunk
    s.block(cab - 60, cab - 58, 1250, H - 50, -W / 2, W / 2, "steel")  # cab rear wall
    s.block(cab - 600, cab - 200, 1900, 2300, -W / 2 + 200, -W / 2 + 600, "fabric", density=0.15)
    return cab, seats


def _chassis(s: Sketch, x0: float, x1: float, y0: float, depth: float, half: float) -> None:
    """Two C-section rails (web seen flat, flanges edge-on) with tubular cross-members."""
    for z in (-half, half):
        s.block(x0, x1, y0, y0 + depth, z - 4, z + 4, "steel")
        for y in (y0, y0 + depth - 8):
            s.block(x0, x1, y, y + 8, z - 40, z + 40, "steel")
    for x in np.arange(x0 + 400, x1 - 200, 1100):
        s.disc(x, y0 + depth / 2, 45, -half, half, "steel", inner=39)


def box_lorry(rng: np.random.Generator) -> Vehicle:
    """A rigid box lorry: cab-over, chassis, sandwich-panel box body, twin rear wheels."""
    L, W = rng.uniform(7200, 9600), 2480
    s = Sketch()
    cab, seats = _cab_over(s, 3100, W, rng)
    _chassis(s, 250, L - 350, 780, 260, 430)
    box0, top = cab + 150, rng.uniform(3600, 3950)
    for z in (-W / 2, W / 2 - 42):
        s.block(box0, L, 1180, top, z, z + 1, "aluminium")
        s.block(box0, L, 1180, top, z + 1, z + 41, "foam")
        s.block(box0, L, 1180, top, z + 41, z + 42, "aluminium")
    s.plate(box0, L, top - 20, 40, -W / 2, W / 2, "foam")
    s.plate(box0, L, top - 21, 2, -W / 2, W / 2, "aluminium")
    s.plate(box0, L, 1200, 25, -W / 2, W / 2, "wood")
    for x in (box0, L - 45):
        s.block(x, x + 45, 1180, top, -W / 2, W / 2, "foam")
        s.block(x, x + 2, 1180, top, -W / 2, W / 2, "aluminium")
    rear = L - rng.uniform(1800, 2400)
    for z in (-W / 2 + 150, W / 2 - 150):
        _wheel(s, 1300, 500, z, width=300)
        for dz in (-150, 150):
            _wheel(s, rear, 500, z + dz * np.sign(-z), width=280)
    s.disc(1300, 500, 50, -900, 900, "steel")
    s.disc(rear, 500, 75, -900, 900, "steel", inner=55)
    tank = (cab + 400, cab + 1500, 650, 1150, W / 2 - 650, W / 2 - 150)
    _tank(s, tank, rng.uniform(0.2, 0.95), "aluminium")
    well = (L - 1400, L - 400, 650, 900, -500, 500)
    _spare_wheel(s, well, 500)
    bay = (box0 + 60, L - 60, 1230, top - 70, -W / 2 + 60, W / 2 - 60)
    hides: dict[str, Space] = {"fuel_tank": tank, "spare_wheel": well,
             "wall": (box0 + 50, box0 + 300, 1230, top - 70, -W / 2 + 60, W / 2 - 60),
             "floor": (box0 + 300, L - 300, 1040, 1175, -W / 2 + 100, W / 2 - 100),
             "chassis": (cab + 1600, rear - 700, 800, 1030, -420, 420)}
    parts = {"floor": hides["floor"], "roof": (box0 + 300, L - 300, top - 130, top - 25, -W / 2 + 100, W / 2 - 100),
             "door": _cab_door(cab, W), "fuel_tank": tank, "spare_wheel": well, "cargo": bay,
             "cab": (0.0, cab, 450, 3100, -W / 2, W / 2)}
    return Vehicle("box_lorry", "vehicle", L, top, s, bays=[bay], hides=hides, width=W, parts=parts, seats=seats)


def tractor_container(feet: int, rng: np.random.Generator) -> Vehicle:
    """A 6×4 tractor pulling a skeletal trailer with a 20 ft or 40 ft ISO container."""
    W = 2480
    s = Sketch()
    cab, seats = _cab_over(s, 3500, W, rng)
    for z in (-W / 2 + 150, W / 2 - 150):
        _wheel(s, 1400, 520, z, width=310)
        for x in (3600, 4950):
            for dz in (-150, 150):
                _wheel(s, x, 520, z + dz * np.sign(-z), width=290)
    for x in (1400, 3600, 4950):
        s.disc(x, 520, 70, -900, 900, "steel", inner=50 if x > 2000 else 0)
    _chassis(s, 200, 5800, 800, 280, 420)
    tanks = (cab + 100, cab + 1200, 600, 1200, W / 2 - 700, W / 2 - 100)
    _tank(s, tanks, rng.uniform(0.2, 0.95), "aluminium")
    s.plate(4000, 5000, 1250, 60, -900, 900, "steel")  # fifth wheel
    length = 6058 if feet == 20 else 12192
    start = 4000 - 300
    end = start + length + 400
    _chassis(s, start, end, 1150, 350, 500)
    for x in (end - 2900, end - 1600, end - 300):
        for z in (-W / 2 + 150, W / 2 - 150):
            for dz in (-150, 150):
                _wheel(s, x - 600, 520, z + dz * np.sign(-z), width=280)
        s.disc(x - 600, 520, 65, -1000, 1000, "steel", inner=52)
    for z in (-800, 800):
        s.post(start + 2000, 45, 300, 1150, z, "steel", inner=40)  # landing legs
    floor = 1500
    high_cube = rng.random() < 0.3
    top = floor + (2896 if high_cube else 2591)
    box = (start + 200, start + 200 + length)
    _container(s, box[0], box[1], floor, top, rng)
    bay = (box[0] + 60, box[1] - 120, floor + 190, top - 80, -1140, 1140)
    hides: dict[str, Space] = {"wall": (box[0] + 50, box[0] + 700, floor + 190, top - 80, -1140, 1140),
             "floor": (box[0] + 300, box[1] - 300, floor + 40, floor + 170, -1100, 1100),
             "fuel_tank": tanks,
             "roof": (box[0] + 300, box[1] - 300, top - 90, top - 10, -1000, 1000)}
    parts = {**{k: hides[k] for k in ("floor", "roof", "fuel_tank")}, "door": _cab_door(cab, W), "cargo": bay,
             "cab": (0.0, cab, 450, 3500, -W / 2, W / 2)}
    return Vehicle(f"tractor_{feet}ft", "container", end + 200, top, s, bays=[bay], hides=hides, cab_end=cab + 50,
                   width=W, parts=parts, seats=seats)


def _cab_door(cab: float, W: float) -> Space:
    """The cavity of a lorry cab's near-side door (between its skin and its trim), behind the front wheel."""
    return (cab - 1500, cab - 250, 1150, 2100, W / 2 - 70, W / 2 - 6)


def _container(s: Sketch, x0: float, x1: float, floor: float, top: float, rng: np.random.Generator) -> None:
    """An ISO box: corrugated walls and roof, corner posts, rails, cross-members, plywood floor, doors."""
    half = 1219
    pitch, slant = 278.0, 68.0
    for z in (-half, half - 1.6):
        for k, x in enumerate(np.arange(x0 + 100, x1 - 100, pitch / 4)):
            factor = 2.0 if k % 2 else 1.0  # slants cross the sheet at ~60°
            s.block(x, x + (slant if k % 2 else pitch / 2 - slant), floor + 160, top - 60, z, z + 1.6, "steel",
                    density=7.85 * factor)
    for k, x in enumerate(np.arange(x0 + 100, x1 - 100, pitch / 2)):
        s.plate(x, x + pitch / 2, top - 20 - 18 * (k % 2), 2.0, -half, half, "steel")
    for x in np.arange(x0 + 150, x1 - 150, rng.uniform(290, 330)):
        s.block(x, x + 45, floor + 35, floor + 157, -half, half, "steel", density=7.85 * 0.174)
    s.plate(x0 + 60, x1 - 60, floor + 171, 28, -half, half, "wood", density=0.7)
    for z in (-half, half - 75):
        s.block(x0, x1, floor, floor + 160, z, z + 75, "steel", density=7.85 * 0.12)
        s.block(x0, x1, top - 60, top, z, z + 75, "steel", density=7.85 * 0.1)
        for x in (x0, x1 - 150):
            s.block(x, x + 150, floor, top, z, z + 75, "steel", density=7.85 * 0.15)
    s.block(x0 + 10, x0 + 55, floor + 160, top - 60, -half, half, "steel", density=7.85 * 2.3 / 45)
    s.block(x1 - 40, x1 - 2, floor + 160, top - 60, -half, half, "steel", density=7.85 * 2.5 / 38)
    s.block(x1 - 150, x1, floor, floor + 160, -half, half, "steel", density=7.85 * 0.2)
    s.block(x1 - 150, x1, top - 140, top, -half, half, "steel", density=7.85 * 0.2)
    for z in (-900, -300, 300, 900):
        s.post(x1 - 20, 14, floor + 100, top - 80, z, "steel", inner=10)
