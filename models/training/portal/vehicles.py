"""Vehicle designs of the portal scenes: cars, vans, lorries and tractors with ISO containers.

Each design draws the structures that matter in a transmission image (engine, axles and wheels,
fuel tank, spare wheel, seats, door panels, floor and roof, container corrugation, floor
cross-members) into a Sketch in mm (x back from the front bumper, z up from the road) and names its
hiding places. Dimensions are drawn from ranges around real vehicles.

Known designs (training and validation): saloon, mpv, van, lorry, tractor_20ft, tractor_40ft.
Novel designs (held-out only, never drawn in training): hatchback, minibus, curtainsider,
tractor_45ft (45 ft high-cube container).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.training.portal.canvas import Box, Sketch

KNOWN = ("saloon", "mpv", "van", "lorry", "tractor_20ft", "tractor_40ft")
NOVEL = ("hatchback", "minibus", "curtainsider", "tractor_45ft")
CONTAINER_TYPES = ("tractor_20ft", "tractor_40ft", "tractor_45ft")
LIGHT = ("saloon", "mpv", "van", "hatchback", "minibus")   # scanned by ≤ 450 kV portals; the rest by linacs


@dataclass
class Cavity:
    """A hiding place: its side-view box (mm) and how deep it is across the vehicle (mm); fill: the
    share of its height filled (a fuel tank's level, which repeated passes change)."""

    box: Box
    depth: float
    fill: float = 0.0


@dataclass
class Vehicle:
    """A drawn vehicle: its sketch, size, driver's cab (x range), cargo bay and hiding places."""

    name: str
    sketch: Sketch
    length: float
    height: float
    width: float
    cab: tuple[float, float]
    bay: Box | None = None
    bay_depth: float = 0.0
    cavities: dict[str, Cavity] = field(default_factory=dict)
    tank: Cavity | None = None
    seats: tuple[tuple[float, float], ...] = ()   # per seat row: front edge and top of the cushion (mm)

    @property
    def kind(self) -> str:
        return "container" if self.name in CONTAINER_TYPES else "vehicle"


def u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def wheels(sk: Sketch, rng: np.random.Generator, xs: list[float], radius: float, track: float, tread: float,
           twin: bool = False) -> None:
    """Axles seen end-on: both tyres of an axle overlap (rubber ring), rims, brake discs, the axle beam."""
    tyres = 4 if twin else 2
    for x in xs:
        rim = radius * u(rng, 0.55, 0.65)
        sk.disc("rubber", x, radius, radius, tyres * tread * 0.9, inner=rim)
        sk.disc("steel" if twin or rng.random() < 0.5 else "aluminium", x, radius, rim, tyres * 9.0)
        sk.disc("steel", x, radius, rim * 0.8, 2 * 28.0)                         # brake discs or drums
        sk.disc("steel", x, radius, radius * 0.12, track * 0.5)                   # hub and axle beam end-on
        sk.box("steel", (x - radius * 0.1, radius * 0.85, x + radius * 0.1, radius * 1.15), track * 0.25)


def engine(sk: Sketch, rng: np.random.Generator, box: Box, across: float) -> None:
    """Engine block and head, gearbox behind it, radiator in front, a lead-acid battery beside it."""
    x0, z0, x1, z1 = box
    sk.box("steel", box, across * u(rng, 0.1, 0.18))
    sk.box("aluminium", (x0, z0 + (z1 - z0) * 0.55, x1, z1), across * u(rng, 0.15, 0.3))
    for k in range(int(rng.integers(3, 7))):                                    # cylinder bores: less metal
        cx = x0 + (x1 - x0) * (k + 0.5) / 6
        sk.disc("steel", cx, z0 + (z1 - z0) * 0.45, (z1 - z0) * 0.12, -across * 0.05)
    gl = (x1 - x0) * u(rng, 0.4, 0.6)
    sk.box("aluminium", (x1, z0, x1 + gl, z0 + (z1 - z0) * 0.6), across * 0.3, profile_z="round")
    sk.box("steel", (x1, z0 + (z1 - z0) * 0.15, x1 + gl, z0 + (z1 - z0) * 0.45), across * 0.15)
    sk.box("aluminium", (x0 - 60, z0, x0 - 20, z1 + 50), across * 0.9 * 0.1)   # radiator core
    bx = x0 + (x1 - x0) * u(rng, 0.1, 0.6)
    sk.box("lead", (bx, z1 - 40, bx + 260, z1 + 150), 60.0)
    sk.box("pvc", (bx, z1 - 40, bx + 260, z1 + 150), 30.0)


def seats(sk: Sketch, rng: np.random.Generator, x: float, floor: float, across: float, rows: int,
          pitch: float) -> list[tuple[float, float]]:
    """Rows of seats: foam and cover (textile), steel frames and runners; returns each row's (front edge
    of the cushion, top of the cushion) in mm, where people sit (models.training.portal.passes)."""
    out = []
    for r in range(rows):
        sx = x + r * pitch
        out.append((sx, floor + 400))
        sk.box("textile", (sx, floor + 250, sx + 520, floor + 400), across * u(rng, 0.12, 0.2))   # foam
        sk.box("textile", (sx + 380, floor + 350, sx + 520, floor + 1000), across * u(rng, 0.12, 0.2))
        sk.box("steel", (sx + 20, floor + 200, sx + 500, floor + 240), 24.0)
        sk.box("steel", (sx + 420, floor + 380, sx + 450, floor + 950), 12.0)
    return out


def doors(sk: Sketch, rng: np.random.Generator, xs: list[tuple[float, float]], sill: float, belt: float, top: float,
          cavities: dict[str, Cavity]) -> None:
    """Door panels (two skins each side, a side-impact bar) with windows above the belt line."""
    for i, (x0, x1) in enumerate(xs):
        sk.box("steel", (x0, sill, x1, belt), 4 * 0.8)
        sk.box("steel", (x0 + 60, sill + (belt - sill) * 0.45, x1 - 60, sill + (belt - sill) * 0.55), 2 * 3.0)
        sk.box("glass", (x0 + 40, belt, x1 - 40, top), 2 * 4.0)
        sk.box("pvc", (x0 + 40, sill + 40, x1 - 40, belt - 40), 2 * 3.0)        # trim panels
        cavities[f"door_{i}"] = Cavity((x0 + 80, sill + 60, x1 - 80, belt - 60), 2 * u(rng, 70, 110))


def fuel_tank(sk: Sketch, rng: np.random.Generator, box: Box, depth: float, fuel: str) -> Cavity:
    """A steel tank (its depth across) partly filled with fuel from the bottom."""
    x0, z0, x1, z1 = box
    sk.shell("steel", box, 3.0, depth * 0.3, 2 * 2.0)
    level = u(rng, 0.15, 0.95)
    sk.box(fuel, (x0 + 5, z0 + 5, x1 - 5, z0 + 5 + (z1 - z0 - 10) * level), depth * 0.95)
    return Cavity((x0 + 5, z0 + 5, x1 - 5, z1 - 5), depth * 0.95, fill=level)


def spare_wheel(sk: Sketch, rng: np.random.Generator, x: float, z: float, radius: float, tread: float) -> Cavity:
    """A spare wheel lying flat under the boot floor: rubber ring and steel rim seen from the side."""
    rim = radius * 0.62
    box = (x - radius, z, x + radius, z + tread)
    sk.box("rubber", box, 2 * radius * 0.55, profile_x="round")
    sk.box("rubber", (x - rim, z, x + rim, z + tread), -2 * rim * 0.55, profile_x="round")
    sk.box("steel", (x - rim, z, x + rim, z + tread), 2 * rim * 0.02, profile_x="round")
    sk.box("steel", (x - rim, z + tread * 0.4, x + rim, z + tread * 0.55), 2 * rim * 0.05, profile_x="round")
    return Cavity((x - radius * 0.95, z + tread * 0.1, x + radius * 0.95, z + tread * 0.9), 2 * (radius - rim))


def car(rng: np.random.Generator, name: str) -> Vehicle:
    """Saloon, MPV or (novel) hatchback: a monocoque body with cabin, engine bay and boot."""
    dims = {"saloon": ((4400, 4950), (1400, 1490), (4, 2)), "mpv": ((4500, 5000), (1650, 1850), (3, 2)),
            "hatchback": ((3700, 4150), (1450, 1550), (2, 3))}
    (l0, l1), (h0, h1), (rows, doors_per_side) = dims[name]
    L, H, W = u(rng, l0, l1), u(rng, h0, h1), u(rng, 1720, 1880)
    sk = Sketch()
    sill, belt = u(rng, 260, 320), H * u(rng, 0.6, 0.66)
    bonnet = u(rng, 800, 1050) if name != "mpv" else u(rng, 650, 850)
    tail = L - (u(rng, 850, 1100) if name == "saloon" else u(rng, 450, 700))
    sk.shell("steel", (0, sill, L, belt), 1.2, 250.0, 2 * 0.9)                     # lower body
    sk.shell("steel", (bonnet, belt, tail, H), 1.2, 200.0, 2 * 0.8)                # cabin
    sk.box("glass", (bonnet - 250, belt, bonnet + 100, H - 60), 40.0)               # windscreen, raked
    sk.box("steel", (0, sill - 80, 220, sill + 250), 40.0)                     # bumper beam, crash boxes
    sk.box("steel", (L - 200, sill - 60, L, sill + 250), 30.0)
    engine(sk, rng, (120, sill + 60, bonnet - 350, belt - 40), W * 0.45)
    sk.box("steel", (bonnet, sill, tail, sill + 60), 25.0)                     # floor pan, tunnel
    sk.box("steel", (bonnet, sill + 60, tail - 400, sill + 200), 12.0)             # tunnel, exhaust
    rows_at = seats(sk, rng, bonnet + 300, sill, W, rows if name != "saloon" else 2, u(rng, 850, 950))
    cavities: dict[str, Cavity] = {}
    cuts = np.linspace(bonnet, tail, doors_per_side + 1)
    doors(sk, rng, list(zip(cuts[:-1], cuts[1:])), sill, belt, H - 80, cavities)
    axle_f, axle_r = u(rng, 850, 1000), L - u(rng, 800, 1050)
    wheels(sk, rng, [axle_f, axle_r], u(rng, 300, 340), W * 0.85, u(rng, 195, 235))
    tank = fuel_tank(sk, rng, (axle_r - 1000, sill - 120, axle_r - 350, sill + 120), W * 0.5, "diesel")
    spare = spare_wheel(sk, rng, L - u(rng, 480, 560), sill + 40, u(rng, 290, 330), u(rng, 150, 200))
    cavities["spare_wheel"] = spare
    cavities["roof"] = Cavity((bonnet + 200, H - 70, tail - 200, H - 15), W * 0.9)
    cavities["under_seats"] = Cavity((bonnet + 350, sill + 60, bonnet + 800, sill + 240), W * 0.7)
    cavities["boot"] = Cavity((tail + 100, sill + 260, L - 150, belt + 50), W * 0.8)
    return Vehicle(name, sk, L, H, W, cab=(0.0, tail), cavities=cavities, tank=tank, seats=tuple(rows_at))


def van(rng: np.random.Generator, name: str) -> Vehicle:
    """Panel van or (novel) minibus: cab, bulkhead and a cargo bay on a raised floor."""
    L = u(rng, 4900, 6000) if name == "van" else u(rng, 5400, 6400)
    H, W = u(rng, 2150, 2600), u(rng, 1850, 2050)
    sk = Sketch()
    floor, cab_end = u(rng, 520, 620), u(rng, 1700, 2000)
    sk.shell("steel", (0, floor - 250, L, H), 1.3, 260.0, 2 * 0.9)
    sk.box("glass", (250, H * 0.55, cab_end - 300, H - 150), 2 * 4.0 + W * 0.03)
    engine(sk, rng, (120, 380, 950, floor + 450), W * 0.5)
    sk.box("steel", (cab_end - 30, floor, cab_end, H - 50), W * 0.06)              # bulkhead edge-on
    sk.box("wood", (cab_end, floor, L - 60, floor + 18), W * 0.9)                  # ply floor edge-on
    sk.box("steel", (cab_end, floor - 200, L - 300, floor - 120), 2 * 60.0)        # chassis rails
    rows_at = seats(sk, rng, cab_end - 700, floor - 150, W * 0.9, 1, 0)
    if name == "minibus":
        rows_at += seats(sk, rng, cab_end + 200, floor, W * 0.9, int((L - cab_end - 800) // 900), 900)
        sk.box("glass", (cab_end, H * 0.55, L - 300, H - 150), 2 * 4.0)
    cavities: dict[str, Cavity] = {}
    doors(sk, rng, [(400, cab_end - 100)], floor - 150, H * 0.55, H - 150, cavities)
    wheels(sk, rng, [u(rng, 950, 1100), L - u(rng, 1000, 1300)], u(rng, 320, 360), W * 0.85, u(rng, 205, 235))
    tank = fuel_tank(sk, rng, (cab_end + 300, floor - 480, cab_end + 1100, floor - 230), W * 0.45, "diesel")
    cavities["floor"] = Cavity((cab_end + 100, floor - 110, L - 400, floor - 20), W * 0.85)
    cavities["roof"] = Cavity((cab_end, H - 90, L - 200, H - 20), W * 0.9)
    cavities["bulkhead"] = Cavity((cab_end - 140, floor + 100, cab_end - 40, H - 200), W * 0.85)
    bay = (cab_end + 40, floor + 20, L - 80, H - 40)
    return Vehicle(name, sk, L, H, W, cab=(0.0, cab_end), bay=bay, bay_depth=W * 0.92, cavities=cavities, tank=tank,
                   seats=tuple(rows_at))


def truck_cab(sk: Sketch, rng: np.random.Generator, length: float, W: float,
              cavities: dict[str, Cavity]) -> tuple[Cavity, list[tuple[float, float]]]:
    """A cab-over tractor or lorry front: cab, big diesel engine under it, front axle, side fuel tank;
    returns the tank and the seat row."""
    top = u(rng, 3300, 3900)
    sk.shell("steel", (0, 1050, length, top), 1.5, 250.0, 2 * 1.2)
    sk.box("glass", (60, 2100, 400, top - 250), 2 * 6.0 + W * 0.02)
    engine(sk, rng, (500, 650, 1700, 1500), W * 0.55)
    rows_at = seats(sk, rng, 700, 1300, W * 0.7, 1, 0)
    sk.box("textile", (length - 700, 1400, length - 100, 1900), W * 0.5)            # bunk
    doors(sk, rng, [(300, 1300)], 1150, 2100, top - 300, cavities)
    wheels(sk, rng, [u(rng, 1300, 1500)], u(rng, 500, 540), W * 0.85, u(rng, 295, 385))
    return fuel_tank(sk, rng, (length + 100, 450, length + u(rng, 900, 1400), 1050), u(rng, 600, 750), "diesel"), rows_at


def chassis(sk: Sketch, x0: float, x1: float, top: float) -> None:
    """Two longitudinal rails (the beam crosses both webs) with flanges seen edge-on."""
    sk.box("steel", (x0, top - 280, x1, top), 2 * 8.0)
    for z in (top - 280, top - 10):
        sk.box("steel", (x0, z, x1, z + 10), 2 * 90.0)


def iso_container(sk: Sketch, rng: np.random.Generator, x0: float, length: float, deck: float, height: float,
                  cavities: dict[str, Cavity]) -> tuple[Box, float]:
    """An ISO container on a trailer deck: corrugated walls, roof, 28 mm floor on cross-members, doors."""
    W, x1, top = 2438.0, x0 + length, deck + height
    sk.box("steel", (x0, deck, x1, top), 2 * 1.6)                                 # side walls
    pitch = u(rng, 270, 290)
    for xc in np.arange(x0 + 150, x1 - 150, pitch):                               # corrugation flanks
        sk.box("steel", (xc, deck + 150, xc + 70, top - 110), 2 * 1.6 * 2.2)
    sk.box("steel", (x0, top - 110, x1, top - 10), 2 * 3.0 + 40.0)               # top rails, roof edge-on
    sk.box("steel", (x0, top - 12, x1, top), 160.0)
    sk.box("steel", (x0, deck, x1, deck + 160), 2 * 4.5 + 20.0)                  # bottom side rails
    for xc in np.arange(x0 + 200, x1 - 200, u(rng, 290, 310)):                    # floor cross-members
        sk.box("steel", (xc, deck, xc + 45, deck + 122), 2352 * 0.12)
    sk.box("wood", (x0 + 100, deck + 122, x1 - 100, deck + 150), 2352 * 0.95)    # plywood floor edge-on
    for xe in (x0, x1 - 160):                                                      # corner posts, end walls
        sk.box("steel", (xe, deck, xe + 160, top), 2 * 6.0 + W * 0.02)
    for k in range(4):                                                             # door locking bars
        sk.box("steel", (x1 - 150 + k * 5, deck + 160, x1 - 120 + k * 5, top - 120), 27.0)
    inner = (x0 + 170, deck + 150, x1 - 170, top - 120)
    cavities["container_floor"] = Cavity((x0 + 300, deck + 5, x1 - 300, deck + 120), W * 0.8)
    cavities["container_roof"] = Cavity((x0 + 300, top - 110, x1 - 300, top - 15), W * 0.8)
    return inner, 2352.0


def tractor(rng: np.random.Generator, name: str) -> Vehicle:
    """A tractor unit and a skeletal trailer carrying one 20, 40 or (novel) 45 ft high-cube container."""
    cab_len, W = u(rng, 2200, 2450), 2500.0
    sk = Sketch()
    cavities: dict[str, Cavity] = {}
    tank, rows_at = truck_cab(sk, rng, cab_len, W, cavities)
    box_len = {"tractor_20ft": 6058.0, "tractor_40ft": 12192.0, "tractor_45ft": 13716.0}[name]
    box_h = 2896.0 if name == "tractor_45ft" else (2591.0 if rng.random() < 0.7 else 2896.0)
    x0 = cab_len + u(rng, 500, 900)
    deck = u(rng, 1150, 1350)
    L = x0 + box_len + u(rng, 300, 800)
    chassis(sk, 200, cab_len + 2600, 1150)
    rear_t = [cab_len + 1300] if rng.random() < 0.5 else [cab_len + 800, cab_len + 2150]
    wheels(sk, rng, rear_t, u(rng, 500, 540), W * 0.85, u(rng, 260, 300), twin=True)
    sk.box("steel", (cab_len + 900, 1150, cab_len + 1900, 1280), W * 0.12)        # fifth wheel
    chassis(sk, x0 - 200, L - 100, deck)
    axles = [L - 1500 - k * 1310 for k in range(3)] if box_len > 7000 else [L - 1400 - k * 1310 for k in range(2)]
    wheels(sk, rng, axles, u(rng, 460, 520), W * 0.85, u(rng, 370, 400))
    inner, depth = iso_container(sk, rng, x0, box_len, deck, box_h, cavities)
    return Vehicle(name, sk, L, deck + box_h, W, cab=(0.0, cab_len), bay=inner, bay_depth=depth,
                   cavities=cavities, tank=tank, seats=tuple(rows_at))


def lorry(rng: np.random.Generator, name: str) -> Vehicle:
    """A rigid box lorry or (novel) a tractor with a curtain-sided trailer."""
    W = 2500.0
    sk = Sketch()
    cavities: dict[str, Cavity] = {}
    cab_len = u(rng, 2100, 2400)
    tank, rows_at = truck_cab(sk, rng, cab_len, W, cavities)
    deck = u(rng, 1100, 1300)
    x0 = cab_len + u(rng, 200, 700) if name == "lorry" else cab_len + u(rng, 700, 1000)
    body = u(rng, 5000, 7200) if name == "lorry" else u(rng, 12000, 13600)
    L, top = x0 + body, deck + u(rng, 2400, 2750)
    chassis(sk, 200, L - 200, deck)
    if name == "lorry":
        sk.shell("aluminium", (x0, deck, L, top), 40.0, 300.0, 2 * 2.0)
        sk.box("polyethylene", (x0, deck, L, top), 2 * 30.0 * 0.05)                # sandwich-panel foam
        wheels(sk, rng, [L - u(rng, 1600, 2200)], u(rng, 480, 520), W * 0.85, u(rng, 260, 290), twin=True)
    else:
        sk.box("pvc", (x0, deck, L, top), 2 * 1.2)                                  # curtains
        for xp in np.linspace(x0, L, 7):                                            # stanchions, roof bows
            sk.box("aluminium", (xp, deck, xp + 80, top), 2 * 4.0)
        sk.box("aluminium", (x0, top - 60, L, top), 300.0)
        wheels(sk, rng, [cab_len + 1000], u(rng, 500, 540), W * 0.85, u(rng, 260, 300), twin=True)
        wheels(sk, rng, [L - 1500 - k * 1310 for k in range(3)], u(rng, 460, 520), W * 0.85, u(rng, 370, 400))
    sk.box("wood", (x0, deck, L, deck + 35), W * 0.9)
    for xc in np.arange(x0 + 200, L - 200, u(rng, 380, 420)):
        sk.box("steel", (xc, deck - 120, xc + 50, deck), W * 0.1)
    cavities["floor"] = Cavity((x0 + 300, deck - 110, L - 300, deck - 10), W * 0.8)
    return Vehicle(name, sk, L, top, W, cab=(0.0, cab_len), bay=(x0 + 50, deck + 35, L - 60, top - 70),
                   bay_depth=W * 0.94, cavities=cavities, tank=tank, seats=tuple(rows_at))


DESIGNS: dict[str, Callable[[np.random.Generator, str], Vehicle]] = {
    "saloon": car, "mpv": car, "hatchback": car, "van": van, "minibus": van, "lorry": lorry,
    "curtainsider": lorry, "tractor_20ft": tractor, "tractor_40ft": tractor, "tractor_45ft": tractor}


def build_vehicle(rng: np.random.Generator, name: str) -> Vehicle:
    return DESIGNS[name](rng, name)
