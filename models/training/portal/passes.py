"""Repeated passes of one vehicle through a portal (issue 19): the same build and cargo, another pass.

`portal_pass(seed, Pass(k))` renders the vehicle and cargo of `portal_scan(seed)` again: the seed's
rng draws the scene and the portal exactly as `portal_scan` does, and a pass rng (seeded by
[seed, k]) draws everything that differs between passes: the speed profile (another non-rigid
along-scan stretch and another line count), a vertical offset of a few pixels, a small vertical
scale and tilt, the fuel level, the people in the cab (seated bodies on the seats: the regular driver
or someone else, passengers), the scatter behind dense loads
(±25 %, drifting along the vehicle), cab avoidance and the detector noise. An X-ray tube portal's
scatter fraction is drawn per seed (`portal_scatter`: 1.5–6 %), the same on every pass. A pass
may also carry modifications (`changes`, drawn from a third stream, so that the same pass without
them is the same scan less the modifications): steel added in a floor, roof, fuel tank, spare wheel,
door or the cargo bay (≥ 5 kg), a concealment of ≥ 20 litres (a welded compartment, a false floor,
a filled tank) with goods in it, or a steel part removed (≥ 5 kg).

meta adds `pass` (what this pass drew), `changes` (truth of the modifications: kind added|removed,
label, location, box [column0, line0, column1, line1], mass_kg_fe, volume_l) and `parts` (the
vehicle's zones in scan coordinates: floor, roof, fuel_tank, spare_wheel, door, cargo, cab).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from models.scan import Scan
from models.training.materials import MATERIALS
from models.training.physics import detect
from models.training.portal.canvas import Box, Sketch
from models.training.portal.contents import cartons, drugs_in_cavity, fill, inside
from models.training.portal.generator import (LIGHT_SCATTER, SCATTER_SPREAD_MM, SOURCE, Geometry, PortalSpec, Scene,
                                              add_scatter, avoid_cab, render, scan_box, scene, speed_profile, stretch)
from models.training.portal.linac import Linac
from models.training.portal.vehicles import Cavity, Vehicle, u

CHANGES = ("added_steel", "concealment", "removed_part")
LOCATIONS = ("floor", "roof", "fuel_tank", "spare_wheel", "door", "cargo")
STEEL = MATERIALS["steel"][0]          # g/cm³
MIN_KG, MIN_LITRES = 5.0, 20.0


@dataclass(frozen=True)
class Pass:
    """One more pass of a seed's vehicle: its own seed, modifications (labels of CHANGES) and how far
    the portal and the driver may differ from the first pass."""

    seed: int
    changes: tuple[str, ...] = ()
    fuel: bool = True
    passengers: bool = True
    offset_px: float = 4.0
    scale: float = 0.02
    tilt_px: float = 3.0
    crowd: bool = False     # more people on top of `passengers`, of any build (`crowd`; a training trial)


def zones(v: Vehicle) -> dict[str, Box]:
    """The vehicle's parts where changes are looked for, in vehicle mm (x from the front, z up)."""
    out: dict[str, Box] = {}
    for name, keys in (("floor", ("floor", "container_floor", "under_seats")), ("roof", ("roof", "container_roof")),
                       ("spare_wheel", ("spare_wheel",)), ("door", ("door_0",))):
        key = next((k for k in keys if k in v.cavities), None)
        if key is not None:
            out[name] = v.cavities[key].box
    if v.tank is not None:
        out["fuel_tank"] = v.tank.box
    cargo = v.bay if v.bay is not None else (v.cavities["boot"].box if "boot" in v.cavities else None)
    if cargo is not None:
        out["cargo"] = cargo
    out["cab"] = (v.cab[0], 0.0, v.cab[1], v.height)
    return out


def depth_of(v: Vehicle, location: str) -> float:
    """How deep (across the vehicle, mm) a location's room is."""
    if location == "fuel_tank" and v.tank is not None:
        return v.tank.depth
    if location == "cargo" and v.bay is not None:
        return v.bay_depth
    for key in {"floor": ("floor", "container_floor", "under_seats"), "roof": ("roof", "container_roof"),
                "spare_wheel": ("spare_wheel",), "door": ("door_0",), "cargo": ("boot",)}.get(location, ()):
        if key in v.cavities:
            return v.cavities[key].depth
    return v.width * 0.5


def change(kind: str, label: str, location: str, box: Box, mass_kg_fe: float, volume_l: float = 0.0) -> dict:
    return {"kind": kind, "label": label, "location": location, "box": [float(b) for b in box],
            "mass_kg_fe": round(float(mass_kg_fe), 2), "volume_l": round(float(volume_l), 1)}


def added_steel(sk: Sketch, rng: np.random.Generator, v: Vehicle, location: str, room: Box) -> dict:
    """A steel plate or block of 5–30 kg in a location, no thicker than the room is deep."""
    mass = float(np.exp(rng.uniform(np.log(MIN_KG * 1.05), np.log(30.0))))
    depth = depth_of(v, location)
    w = min(u(rng, 200, 600), room[2] - room[0])
    h = min(u(rng, 60, 250), room[3] - room[1])
    w = max(w, mass / (STEEL * 1e-6 * h * depth * 0.8))           # spread it when the room is shallow
    box = inside(rng, room, w, h)
    fill(sk, "steel", box, mass)
    return change("added", "steel", location, box, mass)


def shell_kg(box: Box, wall_mm: float, across_mm: float, sides_mm: float) -> float:
    """Steel mass (kg) of a Canvas.shell drawn over box."""
    w, h = box[2] - box[0], box[3] - box[1]
    return STEEL * 1e-6 * (sides_mm * w * h + across_mm * wall_mm * 2 * (w + h))


def concealment(sk: Sketch, rng: np.random.Generator, v: Vehicle, location: str, room: Box) -> dict:
    """A concealment of ≥ 20 litres with goods in it: a filled fuel tank (a welded baffle and drugs in
    the tank), a false floor in the cargo bay, or a welded steel compartment elsewhere."""
    depth = depth_of(v, location)
    steel = 0.0
    if location == "fuel_tank":                     # a welded box inside the tank, where fuel was
        assert v.tank is not None
        box = inside(rng, room, max((room[2] - room[0]) * u(rng, 0.4, 0.7), 1), room[3] - room[1])
        level = room[1] + (room[3] - room[1]) * v.tank.fill
        sk.box("diesel", (box[0], box[1], box[2], level), -depth)
        sk.shell("steel", box, 3.0, depth * 0.9, 2 * 3.0)
        steel = shell_kg(box, 3.0, depth * 0.9, 2 * 3.0)
    else:
        h = min(room[3] - room[1], u(rng, 100, 180) if location == "cargo" else room[3] - room[1])
        w = min(room[2] - room[0], max(u(rng, 600, 1800), MIN_LITRES * 1.2e6 / (h * depth)))
        box = inside(rng, room, w, h)
        if location == "cargo":                     # a false floor: a deck over the hidden space
            deck = (box[0], box[3], box[2], box[3] + 12)
            sk.box("steel", deck, depth * 0.6)
            steel = STEEL * 1e-6 * (deck[2] - deck[0]) * 12 * depth * 0.6
        else:
            sk.shell("steel", box, 5.0, depth * 0.25, 2 * 4.0)
            steel = shell_kg(box, 5.0, depth * 0.25, 2 * 4.0)
    inner = Cavity((box[0] + 20, box[1] + 10, box[2] - 20, box[3] - 10), depth * 0.9)
    goods = cartons(sk, rng, inner, False) if rng.random() < 0.5 else \
        drugs_in_cavity(sk, rng, inner, False, int(rng.integers(4, 20)))
    volume = (box[2] - box[0]) * (box[3] - box[1]) * depth * 1e-6
    return change("added", "concealment", location, box, steel + goods["mass_kg"], volume)


def removable(v: Vehicle) -> list[tuple[Box, float, float]]:
    """Steel parts of the vehicle's build (box, path mm, kg) that a pass can lack: 5–150 kg, ≤ 1 m²."""
    out = []
    for name, args, kwargs in v.sketch.ops:
        if name != "box" or args[0] != "steel" or kwargs or len(args) != 3 or args[2] <= 0:
            continue
        box, path = args[1], float(args[2])
        area = (box[2] - box[0]) * (box[3] - box[1])
        kg = STEEL * 1e-6 * area * path
        if MIN_KG * 1.05 <= kg <= 150 and area <= 1e6:
            out.append((box, path, kg))
    return out


def where(box: Box, parts: dict[str, Box]) -> str:
    """The location whose zone holds most of a box (cab last: it overlaps the others); else body."""
    best, share = "body", 0.0
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    for name, z in parts.items():
        ov = max(0.0, min(box[2], z[2]) - max(box[0], z[0])) * max(0.0, min(box[3], z[3]) - max(box[1], z[1]))
        if ov / area > share + (0.0 if name != "cab" else 0.3):
            best, share = name, ov / area
    return best


def modify(sk: Sketch, rng: np.random.Generator, v: Vehicle, what: str) -> dict:
    """Draw one modification of CHANGES into sk; its truth in vehicle mm."""
    parts = zones(v)
    if what == "removed_part":
        options = removable(v)
        box, path, kg = options[int(rng.integers(len(options)))]
        sk.box("steel", box, -path)
        return change("removed", "part", where(box, parts), box, kg)
    places = [p for p in LOCATIONS if p in parts and (what != "concealment" or p != "spare_wheel")]
    location = places[int(rng.integers(len(places)))]
    if what == "added_steel":
        return added_steel(sk, rng, v, location, parts[location])
    return concealment(sk, rng, v, location, parts[location])


def fuel(sk: Sketch, rng: np.random.Generator, v: Vehicle) -> float:
    """Another fuel level: diesel added above the first pass's level or carved out below it."""
    assert v.tank is not None
    x0, z0, x1, z1 = v.tank.box
    level = u(rng, 0.15, 0.95)
    lo, hi = sorted((v.tank.fill, level))
    sign = 1.0 if level > v.tank.fill else -1.0
    sk.box("diesel", (x0, z0 + (z1 - z0) * lo, x1, z0 + (z1 - z0) * hi), sign * v.tank.depth)
    return level


@dataclass(frozen=True)
class Body:
    """A seated adult: mass (kg) and stature (m)."""

    kg: float
    stature: float


def body(rng: np.random.Generator) -> Body:
    """An adult of 1.55–1.95 m and a body-mass index of 19–33 kg/m² (45–125 kg)."""
    stature = u(rng, 1.55, 1.95)
    return Body(round(u(rng, 19.0, 33.0) * stature ** 2, 1), round(stature, 3))


def passengers(sk: Sketch, rng: np.random.Generator, v: Vehicle, regular: Body | None = None) -> int:
    """The people in the cab on this pass, seated as people sit; returns how many.

    The driver (front row; present on 85 % of passes) is the vehicle's regular driver on 70 % of them
    (`regular`, the same body, ±2 kg of clothes), else someone else; every other seat (both sides of
    every row: a side view superimposes them) is taken on 20 % of passes, four people at most. Each
    person sits in their own posture: slid 0–120 mm along the seat, the upper body leaning back 0–60 mm
    (further when the head would not clear the roof).
    The body (water-like tissue) is a torso with the arms (58 % of the mass), the head (8 %), the
    thighs (22 %, forward along the seat) and the shins (12 %, down to the floor), each rounded across
    its length; lengths follow the stature, widths the mass for the stature (anthropometric
    proportions of a seated adult: torso 300 × 600 mm, head 190 × 220 mm, thighs 420 × 160 mm, shins
    120 × 450 mm at 1.75 m and 70 kg)."""
    rows = v.seats
    people = []
    if rng.random() < 0.85:
        if regular is not None and rng.random() < 0.7:
            driver = replace(regular, kg=regular.kg + u(rng, -2, 2))
        else:
            driver = body(rng)
        people.append((rows[0], driver))
    for row in [r for r in rows for _ in range(2)][1:]:
        if len(people) < 4 and rng.random() < 0.2:
            people.append((row, body(rng)))
    for (front, top), who in people:
        seated(sk, rng, front, top, who, v.height - 70)
    return len(people)


def crowd(sk: Sketch, rng: np.random.Generator, v: Vehicle) -> int:
    """A trial for the region judge's training (`Pass.crowd`, its own stream; not shipped: a judge trained on it
    did no better on generator B's cars, docs/vehicle-history.md): people on top of `passengers`, so that the
    judge sees more ways the people in a cab differ between passes than generator A's usual ones. Each seat
    (both sides of every row) is taken with a chance drawn per pass (0–60 %); a third of them are children
    (1.0–1.5 m, a body-mass index of 14–20: 14–45 kg), the rest adults of 1.5–2.0 m and 17–38 kg/m²;
    each sits upright, leaning forward or reclined, its parts rounded or flat across their length."""
    share = u(rng, 0.0, 0.6)
    n = 0
    for front, top in [r for r in v.seats for _ in range(2)]:
        if rng.random() >= share:
            continue
        child = rng.random() < 1 / 3
        stature = u(rng, 1.0, 1.5) if child else u(rng, 1.5, 2.0)
        bmi = u(rng, 14.0, 20.0) if child else u(rng, 17.0, 38.0)
        who = Body(round(bmi * stature ** 2, 1), stature)
        seated(sk, rng, front, top, who, v.height - 70, lean=u(rng, -120, 200),
               profile="round" if rng.random() < 0.6 else None)
        n += 1
    return n


def seated(sk: Sketch, rng: np.random.Generator, front: float, top: float, who: Body, roof: float,
           lean: float | None = None, profile: str | None = "round") -> None:
    """One person on a seat whose cushion starts at `front` (x grows to the rear) and is `top` high; a
    person too tall for the room under the roof (`roof`, mm) reclines until the head clears it; `lean`
    (mm, the upper body's back: 0–60 drawn when None) and `profile` (the parts' shape across their
    length: rounded or flat) for `crowd`."""
    tall = who.stature / 1.75
    wide = float(np.sqrt(who.kg / 70.0 / tall))
    back = front + 380 + u(rng, 0, 120)          # against the backrest, slid along the seat
    sitting = 620 * tall + 220 * np.sqrt(tall)   # seat to the top of the head, upright
    squash = min(1.0, max(roof - top, 300.0) / sitting)
    lean = (u(rng, 0, 60) if lean is None else lean) + (1 - squash) * 400   # reclining: further back
    head_w = min(190 * np.sqrt(tall), 240 * wide)
    knee = back - 300 * wide - 420 * tall
    neck = top + 620 * tall * squash
    for box, share in (((back - 300 * wide + lean, top, back + lean, top + 600 * tall * squash), 0.58),
                       ((back + lean - 60 * wide - head_w, neck, back + lean - 60 * wide,
                         neck + 220 * np.sqrt(tall) * squash), 0.08),
                       ((knee, top, back - 300 * wide, top + 160 * wide), 0.22),
                       ((knee, max(top - 450 * tall, 50.0), knee + 120 * wide, top), 0.12)):
        x0, z0, x1, z1 = (float(c) for c in box)
        fill(sk, "water", (x0, z0, x1, z1), who.kg * share, profile_x=profile)


def scatter_drift(t: np.ndarray, rng: np.random.Generator, rendered: float, drawn: float,
                  sigma_px: float) -> np.ndarray:
    """Another pass's scatter. render added the build-up of add_scatter(·, rendered) to t; this pass's
    portal scatters the fraction `drawn` instead, and the build-up changes with the vehicle's
    line in the lane and what surrounds each part, by ±25 % drawn per pass and drifting along the
    vehicle (a linear ramp between two draws). Behind dense loads, where scatter makes up much of
    what reaches the detector, −ln T moves by tenths; light parts hardly move."""
    a, b = u(rng, -0.25, 0.25), u(rng, -0.25, 0.25)
    ramp = np.linspace(a, b, t.shape[0], dtype=np.float32)[:, None]
    gain = ramp + (drawn / rendered - 1) * (1 + ramp)
    return np.maximum(t + gain * (add_scatter(t, rendered, sigma_px) - t), 1e-6)


def portal_scatter(seed: int, light: bool) -> tuple[float, float]:
    """The scatter fractions (high, low channel) of a seed's portal. A linac portal keeps render's; how
    much an X-ray tube portal scatters depends on its collimation, shielding and detectors, so each
    seed's tube portal draws its own: the high channel 0.3–1.2 × LIGHT_SCATTER (1.5–6 %), the low
    channel 1.0–1.2 × that. Every pass of a seed goes through the same portal (its own stream)."""
    if not light:
        return Linac.scatter, Linac.scatter * 1.2
    rng = np.random.default_rng([seed, 77])
    high = u(rng, 0.3, 1.2) * LIGHT_SCATTER
    return high, high * u(rng, 1.0, 1.2)


@dataclass(frozen=True)
class Warp:
    """Vertical offset (px), scale and tilt (px over the whole scan) of a pass's detector columns."""

    offset: float
    scale: float
    tilt: float

    def column(self, z_px: np.ndarray, line: np.ndarray, lines: int) -> np.ndarray:
        """Where canvas column z_px lands on scan line `line`."""
        return z_px * self.scale + self.offset + self.tilt * (line / max(lines - 1, 1) - 0.5)

    def apply(self, arr: np.ndarray) -> np.ndarray:
        lines, pixels = arr.shape
        cols = np.arange(pixels, dtype=np.float32)[None, :]
        rows = np.arange(lines, dtype=np.float32)[:, None]
        shift = self.offset + self.tilt * (rows / max(lines - 1, 1) - 0.5)
        map_x = ((cols - shift) / self.scale).astype(np.float32)
        map_y = np.broadcast_to(rows, arr.shape).astype(np.float32)
        return cv2.remap(arr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warped_box(box: Box, g: Geometry, pos: np.ndarray, warp: Warp) -> list[float]:
    """A vehicle-mm box in this pass's scan coordinates [column0, line0, column1, line1]."""
    c0, l0, c1, l1 = scan_box({"box": box}, g, pos)
    mid = np.array([(l0 + l1) / 2])
    a, b = warp.column(np.array([c0, c1]), mid, len(pos))
    return [round(float(a), 1), l0, round(float(b), 1), l1]


def portal_pass(seed: int, p: Pass, spec: PortalSpec = PortalSpec()) -> Scan:
    """The vehicle and cargo of portal_scan(seed, spec) on another pass p (see the module)."""
    rng, prng = np.random.default_rng(seed), np.random.default_rng([seed, p.seed])
    mrng = np.random.default_rng([seed, p.seed, 1])     # its own stream: a pass with and without changes
    s = scene(rng, spec)                                # differs in nothing else (noise included)
    v, g = s.vehicle, s.geometry
    extra = Sketch()
    changed = [modify(extra, mrng, v, what) for what in p.changes]
    level = fuel(extra, prng, v) if p.fuel and v.tank is not None else (v.tank.fill if v.tank else 0.0)
    people = passengers(extra, prng, v, body(np.random.default_rng([seed, 88]))) if p.passengers else 0
    people += crowd(extra, np.random.default_rng([seed, p.seed, 3]), v) if p.crowd else 0
    extra.draw(s.canvas, g.lead_mm)
    high, low, source, noise = render(rng, s.canvas, s.light)
    share = LIGHT_SCATTER if s.light else Linac.scatter  # the scatter fraction render gave the high channel
    spread = SCATTER_SPREAD_MM / s.canvas.pitch_z
    drawn = portal_scatter(seed, s.light)
    high = scatter_drift(high, prng, share, drawn[0], spread)
    low = scatter_drift(low, prng, share * 1.2, drawn[1], spread)
    lines = int(round(g.lines * u(prng, 0.92, 1.08)))
    pos = speed_profile(prng, lines) * (g.lines - 1) / (lines - 1)
    high, low = stretch(high, pos), stretch(low, pos)
    warp = Warp(u(prng, -p.offset_px, p.offset_px), 1.0 + u(prng, -p.scale, p.scale), u(prng, -p.tilt_px, p.tilt_px))
    high, low = warp.apply(high), warp.apply(low)
    cab = avoid_cab(prng, s, pos, high, low)
    h16, l16 = detect(high, low, prng, noise, gaussian=True)
    meta = pass_meta(seed, p, s, source, pos, warp, cab)
    meta["changes"] = [{**c, "box": warped_box(tuple(c["box"]), g, pos, warp)} for c in changed]
    meta["pass"].update(fuel_level=round(level, 3), passengers=people, scatter=[round(f, 4) for f in drawn])
    return Scan(high=h16, low=l16, meta=meta)


def pass_meta(seed: int, p: Pass, s: Scene, source: dict, pos: np.ndarray, warp: Warp, cab: list[int] | None) -> dict:
    """The scan contract's meta of a pass, with its truth, parts and what the pass drew."""
    g = s.geometry
    truth = [{**t, "box": warped_box(tuple(t["box"]), g, pos, warp)} for t in s.found]
    parts = {name: warped_box(box, g, pos, warp) for name, box in zones(s.vehicle).items()}
    return {"pixel_mm": round(g.pixel_mm, 3), "line_mm": round(g.line_mm, 3), "kind": s.vehicle.kind, **source,
            "source": SOURCE, "seed": seed, "vehicle": s.name, "declared_empty": s.declared, "cargo": s.style,
            "cab_lines": cab, "lines_per_s": 250, "truth": truth, "parts": parts,
            "pass": {"seed": p.seed, "offset_px": round(warp.offset, 2), "scale": round(warp.scale, 4),
                     "tilt_px": round(warp.tilt, 2), "lines": len(pos)}}
