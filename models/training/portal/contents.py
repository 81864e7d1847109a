"""What a vehicle carries: cargo, contraband as it is smuggled, concealments, goods in "empty" containers.

Everything is drawn in vehicle millimetres into a Sketch and returns truth records
{"label", "box" (x0, z0, x1, z1 in mm), "mass_kg"}. Masses follow from volume × density, so a
path length is always what that mass of that material would give.

Known families (training and validation): master cases of cigarettes (10,000 sticks, ≈ 11 kg) in
cargo, cartons filling cavities; 1 kg bricks of cocaine or heroin; pistols and revolvers
(models.training.threats) and bolt-action rifles in cargo; concealments: built-in compartment,
false wall, false floor, filled fuel tank.
Novel families (held-out only): slim-pack master cases outside the training size range and loose
cartons bundled in film; methamphetamine in soft vacuum bags and cocaine in sealed tins; the held-out
pistols and revolvers of models.training.threats and assault rifles with curved magazines; a
double roof and machinery hollowed out to hide goods.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.training.materials import MATERIALS
from models.training.portal.canvas import Box, Sketch
from models.training.portal.vehicles import Cavity, Vehicle, u
from models.training.threats import firearm as handgun

Truth = dict
CASE_KG = 11.0          # master case of 10,000 sticks with its cartons and packaging
CARTON_KG = 0.27        # carton of 200 sticks
CASE_DENSITY = 0.15     # g/cm³ apparent density of a master case (tobacco, filters, paper, air)
BRICK_KG = 1.0


def path_for(material: str, mass_kg: float, box: Box, profile_mean: float = 1.0) -> float:
    """Path length (mm) of material over a side-view box that holds mass_kg."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1.0)
    return mass_kg / (MATERIALS[material][0] * area * 1e-6 * profile_mean)


def fill(sk: Sketch, material: str, box: Box, mass_kg: float, profile_x: str | None = None) -> None:
    mean = np.pi / 4 if profile_x == "round" else 1.0
    sk.box(material, box, path_for(material, mass_kg, box, mean), profile_x=profile_x)


def truth(label: str, box: Box, mass_kg: float) -> Truth:
    return {"label": label, "box": [float(v) for v in box], "mass_kg": round(float(mass_kg), 2)}


def inside(rng: np.random.Generator, room: Box, w: float, h: float, floor: bool = True) -> Box:
    """A w × h box at a random place in room (standing on its floor when floor), shrunk to fit. A box as
    wide as the room starts at its wall: room[2] − (room[2] − room[0]) may round under room[0], and
    numpy refuses a range that ends before it starts (generator A's seed 201121 failed so)."""
    w, h = min(w, room[2] - room[0]), min(h, room[3] - room[1])
    x0 = u(rng, room[0], max(room[2] - w, room[0]))
    z0 = room[1] if floor else u(rng, room[1], max(room[3] - h, room[1]))
    return (x0, z0, x0 + w, z0 + h)


# ---------------------------------------------------------------- cargo
def cargo(sk: Sketch, rng: np.random.Generator, bay: Box, depth: float, style: str) -> list[Box]:
    """Fill a bay with mixed pallets, dense goods (paper rolls, tiles, machinery) or nothing; returns pallet boxes."""
    if style == "empty":
        return []
    x, boxes = bay[0] + u(rng, 0, 150), []
    while x < bay[2] - 600:
        w = min(u(rng, 900, 1300), bay[2] - x)
        kind = style if style == "mixed" else str(rng.choice(["paper_rolls", "tiles", "machinery"]))
        top = DRAW_CARGO[kind](sk, rng, (x, bay[1], x + w, bay[3]), depth)
        boxes.append((x, bay[1], x + w, top))
        x += w + u(rng, 20, 400)
    return boxes


def _mixed(sk: Sketch, rng: np.random.Generator, room: Box, depth: float) -> float:
    """A pallet of cartons: layers of goods of different materials and packing."""
    x0, z0, x1, z1 = room
    sk.box("wood", (x0, z0, x1, z0 + 144), depth * 0.45)
    z, top = z0 + 144, z0 + 144 + u(rng, 0.3, 0.95) * (z1 - z0 - 144)
    while z < top - 100:
        h = u(rng, 150, 500)
        material = str(rng.choice(["textile", "paper", "food", "polyethylene", "wood", "glass", "water", "steel"]))
        share = {"food": 0.3, "water": 0.25, "glass": 0.04, "steel": 0.01, "wood": 0.3}.get(material, 0.6)
        layer = (x0 + u(rng, 0, 40), z, x1 - u(rng, 0, 40), min(z + h, top))
        sk.box(material, layer, depth * share * u(rng, 0.3, 1.0))
        sk.box("cardboard", layer, depth * 0.03)
        z += h + u(rng, 0, 20)
    return top


def _paper_rolls(sk: Sketch, rng: np.random.Generator, room: Box, depth: float) -> float:
    """Standing reels of paper, two across the width, seen as chords of their circles."""
    x0, z0, x1, z1 = room
    h = min(u(rng, 1000, 1700), z1 - z0)
    sk.box("paper", (x0, z0, x1, z0 + h), 2 * (x1 - x0) * u(rng, 0.85, 0.95), profile_x="round")
    sk.box("paper", ((x0 + x1) / 2 - 50, z0, (x0 + x1) / 2 + 50, z0 + h), -2 * 100 * 0.8, profile_x="round")
    return z0 + h


def _tiles(sk: Sketch, rng: np.random.Generator, room: Box, depth: float) -> float:
    """Pallets of ceramic tiles in crates: very dense, even attenuation."""
    x0, z0, x1, z1 = room
    top = z0 + 144 + u(rng, 600, min(1100, z1 - z0 - 144))
    sk.box("wood", (x0, z0, x1, z0 + 144), depth * 0.45)
    sk.box("ceramic", (x0 + 20, z0 + 144, x1 - 20, top), depth * u(rng, 0.08, 0.2))
    sk.box("wood", (x0, z0 + 144, x1, top), depth * 0.05)
    return top


def _machinery(sk: Sketch, rng: np.random.Generator, room: Box, depth: float) -> float:
    """A machine on a skid: steel frame, housings, a motor, shafts."""
    x0, z0, x1, z1 = room
    top = z0 + u(rng, 600, min(1900, z1 - z0))
    sk.box("steel", (x0, z0, x1, z0 + 120), depth * 0.15)
    sk.shell("steel", (x0 + 50, z0 + 120, x1 - 50, top), 15.0, depth * 0.4, 2 * u(rng, 6, 15))
    for _ in range(int(rng.integers(1, 4))):
        part = inside(rng, (x0 + 80, z0 + 140, x1 - 80, top - 30), u(rng, 150, 500), u(rng, 150, 500), floor=False)
        sk.box(str(rng.choice(["steel", "copper", "aluminium", "cupronickel"])), part, u(rng, 40, 300))
    return top


DRAW_CARGO: dict[str, Callable[[Sketch, np.random.Generator, Box, float], float]] = {
    "mixed": _mixed, "paper_rolls": _paper_rolls, "tiles": _tiles, "machinery": _machinery}


def car_luggage(sk: Sketch, rng: np.random.Generator, vehicle: Vehicle) -> None:
    """Bags and boxes in a car's boot and on its seats (nothing labelled)."""
    boot = vehicle.cavities["boot"]
    for _ in range(int(rng.integers(0, 4))):
        b = inside(rng, boot.box, u(rng, 300, 700), u(rng, 200, 500))
        sk.box(str(rng.choice(["textile", "polycarbonate", "cardboard", "food"])), b, u(rng, 50, 400))


# ---------------------------------------------------------------- cigarettes
def master_cases(sk: Sketch, rng: np.random.Generator, room: Box, depth: float, novel: bool, count: int) -> Truth:
    """A stack of master cases standing in cargo; novel: slim-pack cases outside the training sizes."""
    if novel:
        cw, ch, cd = u(rng, 680, 800), u(rng, 170, 230), u(rng, 300, 360)
    else:
        cw, ch, cd = u(rng, 480, 620), u(rng, 260, 360), u(rng, 380, 480)
    across = max(1, min(int(depth // cd), int(rng.integers(1, 4))))
    per_layer = max(1, count // across)
    cols = max(1, min(int(np.ceil(np.sqrt(per_layer * ch / cw))), int((room[2] - room[0]) // cw)))
    rows = max(1, min(int(np.ceil(per_layer / cols)), int((room[3] - room[1]) // ch)))
    box = inside(rng, room, cols * cw, rows * ch)
    mass = rows * cols * across * CASE_KG * u(rng, 0.95, 1.05)
    fill(sk, "tobacco", box, mass * 0.8)
    fill(sk, "cardboard", box, mass * 0.2)
    for r in range(1, rows):                               # case walls between layers show as faint lines
        sk.box("cardboard", (box[0], box[1] + r * ch - 4, box[2], box[1] + r * ch + 4), across * cd * 0.3)
    return truth("cigarettes", box, mass)


def cartons(sk: Sketch, rng: np.random.Generator, cavity: Cavity, novel: bool) -> Truth:
    """Cartons of 200 sticks filling part of a cavity (known), or bundled loose in film (novel)."""
    room = cavity.box
    w, h = u(rng, 0.3, 1.0) * (room[2] - room[0]), u(rng, 0.5, 1.0) * (room[3] - room[1])
    box = inside(rng, room, w, h)
    per_carton_cm3 = 270 * 90 * 50 / 1000
    n = max(1, int(w * h * cavity.depth * u(rng, 0.5, 0.9) / 1000 / per_carton_cm3))
    mass = n * CARTON_KG
    fill(sk, "tobacco", box, mass * 0.75, profile_x="round" if novel else None)
    fill(sk, "cardboard" if not novel else "polyethylene", box, mass * 0.25)
    return truth("cigarettes", box, mass)


# ---------------------------------------------------------------- drugs
def bricks(sk: Sketch, rng: np.random.Generator, room: Box, depth: float, novel: bool, count: int) -> Truth:
    """Stacked 1 kg bricks (known: cocaine, heroin), or methamphetamine bags / cocaine tins (novel)."""
    material = "methamphetamine" if novel and rng.random() < 0.5 else str(rng.choice(["cocaine", "heroin"]))
    a, b = u(rng, 180, 260), u(rng, 110, 160)
    c = BRICK_KG / (MATERIALS[material][0] * a * b * 1e-6)
    across = max(1, min(int(depth // max(b, 1)), int(rng.integers(1, 3))))
    per_layer = max(1, int(np.ceil(count / across)))
    cols = max(1, min(int(np.ceil(np.sqrt(per_layer))), int((room[2] - room[0]) // a)))
    rows = max(1, min(int(np.ceil(per_layer / cols)), int((room[3] - room[1]) // c)))
    box = inside(rng, room, cols * a, rows * c)
    mass = rows * cols * across * BRICK_KG * u(rng, 0.95, 1.08)
    if novel and material == "methamphetamine":
        for k in range(rows * cols):                       # soft bags: rounded outlines
            r, q = divmod(k, cols)
            cell = (box[0] + q * a, box[1] + r * c, box[0] + (q + 1) * a, box[1] + (r + 1) * c)
            fill(sk, material, cell, mass / (rows * cols), profile_x="round")
    elif novel:                                            # tins: cylinders standing in a row
        for q in range(cols):
            cell = (box[0] + q * a, box[1], box[0] + (q + 1) * a - 10, box[3])
            fill(sk, material, cell, mass / cols, profile_x="round")
            sk.box("steel", cell, 2 * 0.3 * across, profile_x="round")
    else:
        fill(sk, material, box, mass)
        sk.box("polyethylene", box, across * 2.0)          # wrapping
    return truth("drugs", box, mass)


def drugs_in_cavity(sk: Sketch, rng: np.random.Generator, cavity: Cavity, novel: bool, count: int,
                    round_x: bool = False) -> Truth:
    """Bricks in a cavity (door, spare wheel, tank): their mass spread over part of it."""
    room = cavity.box
    material = "methamphetamine" if novel else str(rng.choice(["cocaine", "heroin"]))
    w = (room[2] - room[0]) * (1.0 if round_x else u(rng, 0.35, 1.0))
    h = (room[3] - room[1]) * u(rng, 0.6, 1.0)
    box = inside(rng, room, w, h)
    mass = count * BRICK_KG * u(rng, 0.95, 1.08)
    cap = MATERIALS[material][0] * (box[2] - box[0]) * (box[3] - box[1]) * cavity.depth * 0.8 * 1e-6
    mass = min(mass, max(cap, BRICK_KG))
    fill(sk, material, box, mass, profile_x="round" if round_x else None)
    sk.box("polyethylene", box, 4.0)
    return truth("drugs", box, mass)


# ---------------------------------------------------------------- firearms
def rifle(sk: Sketch, rng: np.random.Generator, x: float, z: float, novel: bool) -> Box:
    """A long gun lying flat: barrel, receiver, wooden or polymer stock; novel: a curved box magazine."""
    length = u(rng, 880, 1100) if not novel else u(rng, 820, 940)
    barrel = length * u(rng, 0.5, 0.6)
    sk.box("steel", (x, z + 45, x + barrel, z + 65), 16.0, profile_z="round")
    sk.box("steel", (x + barrel, z + 30, x + barrel + 220, z + 85), 30.0)
    sk.box("wood" if not novel else "polycarbonate", (x + barrel + 200, z, x + length, z + 90), 40.0)
    if novel:
        for k in range(4):
            sk.box("steel", (x + barrel + 60 + k * 12, z - 140 + k * 30, x + barrel + 120 + k * 12, z + 30), 26.0)
    return (x, z - (140 if novel else 0), x + length, z + 90)


def firearms(sk: Sketch, rng: np.random.Generator, room: Box, novel: bool) -> Truth:
    """One to four handguns or long guns in a crate or among cargo, one box around them."""
    n = int(rng.integers(1, 5))
    long_guns = rng.random() < 0.4
    boxes: list[Box] = []
    if long_guns:
        base = inside(rng, room, 1150, 110 * n + 150)
        for k in range(n):
            boxes.append(rifle(sk, rng, base[0] + u(rng, 0, 40), base[1] + 150 + k * 110, novel))
    else:
        base = inside(rng, room, 280 * n, 260)
        for k in range(n):
            gun = handgun(rng, novel)
            x0, z0 = base[0] + k * 260 + u(rng, 0, 20), base[1] + u(rng, 0, 60)
            for material, arr in gun.parts.items():
                sk.image(material, arr, x0, z0)
            boxes.append((x0, z0, x0 + gun.w, z0 + gun.h))
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    sk.box("wood", (box[0] - 30, box[1] - 30, box[2] + 30, box[3] + 30), 2 * 15.0 + u(rng, 0, 40))
    return truth("firearm", box, n * (3.8 if long_guns else 0.9))
