"""Where contraband goes in a vehicle, concealments built for it, and goods in declared-empty containers.

`load_vehicle` decides the whole contents of one scan from the spec's shares and returns the truth
records in vehicle millimetres.
"""

from __future__ import annotations

import numpy as np

from models.training.portal.canvas import Box, Sketch
from models.training.portal.contents import (Truth, bricks, cargo, car_luggage, cartons, drugs_in_cavity,
                                             fill, firearms, inside, master_cases, truth)
from models.training.portal.vehicles import Cavity, Vehicle, u

GOODS = ("cigarettes", "drugs")


def goods(sk: Sketch, rng: np.random.Generator, label: str, room: Box, depth: float, novel: bool,
          big: bool) -> Truth:
    """Cigarettes (master cases) or drug bricks filling a room; big: a cargo-sized load."""
    if label == "cigarettes":
        return master_cases(sk, rng, room, depth, novel, int(rng.integers(1, 40 if big else 6)))
    return bricks(sk, rng, room, depth, novel, int(rng.integers(1, 40 if big else 12)))


def compartment(sk: Sketch, rng: np.random.Generator, v: Vehicle, novel: bool) -> list[Truth]:
    """A concealment with goods in it: built-in compartment, false wall, false floor or filled tank
    (novel: a double roof or machinery hollowed out)."""
    label = str(rng.choice(GOODS))
    kinds = ["double_roof", "hollow_machine"] if novel else ["compartment", "false_wall", "false_floor", "tank"]
    if v.bay is None:
        kinds = [k for k in kinds if k in ("compartment", "tank", "double_roof")]
    kind = str(rng.choice(kinds))
    if kind == "tank" and v.tank is not None:
        room, depth = v.tank.box, v.tank.depth
        sk.box("steel", (room[0], room[1], room[0] + 10, room[3]), depth * 0.2)     # a welded baffle
    elif kind == "false_wall" and v.bay is not None:
        gap = u(rng, 250, 700)
        room = (v.bay[0], v.bay[1], v.bay[0] + gap, v.bay[3])
        depth = v.bay_depth
        sk.box(str(rng.choice(["steel", "wood"])), (room[2], room[1], room[2] + 15, room[3]), depth * 0.5)
    elif kind == "false_floor" and v.bay is not None:
        length, height = u(rng, 1000, 2600), u(rng, 100, 180)
        room = inside(rng, v.bay, length, height)
        depth = v.bay_depth
        sk.box(str(rng.choice(["steel", "wood"])), (room[0], room[3], room[2], room[3] + 12), depth * 0.6)
    elif kind == "hollow_machine" and v.bay is not None:
        room = inside(rng, v.bay, u(rng, 700, 1200), u(rng, 500, 900))
        depth = v.bay_depth * 0.4
        sk.shell("steel", room, 20.0, depth * 0.5, 2 * 12.0)
    else:  # built-in compartment (or double roof): a welded steel box in a floor, roof or behind the cab
        names = [n for n in v.cavities if ("roof" in n) == (kind == "double_roof") and not n.startswith("door")]
        cav = v.cavities[str(rng.choice(names))] if names else next(iter(v.cavities.values()))
        w = min(u(rng, 600, 2200), cav.box[2] - cav.box[0])
        room = inside(rng, cav.box, w, cav.box[3] - cav.box[1])
        depth = cav.depth
        sk.shell("steel", room, 5.0, depth * 0.25, 2 * 4.0)
    inner = (room[0] + 20, room[1] + 10, room[2] - 20, room[3] - 10)
    found = [{**truth("concealment", room, 0.0), "place": kind}]
    if inner[2] - inner[0] > 100 and inner[3] - inner[1] > 40:
        found.append(goods(sk, rng, label, inner, depth, novel, big=False))
        found[0]["mass_kg"] = found[1]["mass_kg"]
    return found


def in_cavity(sk: Sketch, rng: np.random.Generator, v: Vehicle, label: str, novel: bool) -> Truth:
    """Goods hidden in a vehicle cavity: doors, spare wheel, roof lining, seats, floor, tank."""
    name = str(rng.choice(list(v.cavities)))
    cav = v.cavities[name]
    if label == "cigarettes":
        found = cartons(sk, rng, cav, novel)
    elif name == "spare_wheel":
        found = drugs_in_cavity(sk, rng, cav, novel, int(rng.integers(2, 9)), round_x=True)
    else:
        found = drugs_in_cavity(sk, rng, cav, novel, int(rng.integers(1, 12)))
    return {**found, "place": name}


EVENTS = ("cigarettes", "drugs", "firearm", "concealment")


def contraband(sk: Sketch, rng: np.random.Generator, v: Vehicle, novel: bool,
               events: tuple[str, ...] | None = None) -> list[Truth]:
    """One or two smuggling events (or the given ones): goods among cargo or in cavities, firearms, a concealment."""
    found: list[Truth] = []
    if events is None:
        events = tuple(str(rng.choice(EVENTS, p=[0.33, 0.33, 0.12, 0.22])) for _ in range(1 + int(rng.random() < 0.25)))
    for event in events:
        if event == "concealment":
            found += compartment(sk, rng, v, novel)
        elif event == "firearm":
            room = v.bay if v.bay is not None else v.cavities.get("boot", Cavity((0, 0, 1, 1), 1)).box
            found.append({**firearms(sk, rng, room, novel), "place": "cargo" if v.bay is not None else "boot"})
        elif v.bay is not None and rng.random() < 0.6:
            found.append({**goods(sk, rng, event, v.bay, v.bay_depth, novel, big=True), "place": "cargo"})
        else:
            found.append(in_cavity(sk, rng, v, event, novel))
    return found


def empty_load(sk: Sketch, rng: np.random.Generator, v: Vehicle, novel: bool) -> list[Truth]:
    """Goods in a container declared empty: pallets, sacks, a machine part, or contraband (load_present)."""
    assert v.bay is not None
    found = []
    for _ in range(int(rng.integers(1, 3))):
        kind = str(rng.choice(["pallet", "sacks", "part", "contraband"], p=[0.35, 0.25, 0.2, 0.2]))
        if kind == "contraband":
            t = goods(sk, rng, str(rng.choice(GOODS)), v.bay, v.bay_depth, novel, big=True)
            found += [t, truth("load_present", tuple(t["box"]), t["mass_kg"])]
            continue
        w, h = {"pallet": (u(rng, 800, 1250), u(rng, 300, 1800)), "sacks": (u(rng, 500, 1600), u(rng, 150, 700)),
                "part": (u(rng, 200, 1000), u(rng, 150, 800))}[kind]
        box = inside(rng, v.bay, w, h)
        mass = float(np.exp(rng.uniform(np.log(15), np.log(900))))
        material = {"pallet": str(rng.choice(["paper", "textile", "food", "polyethylene"])), "sacks": "food",
                    "part": "steel"}[kind]
        fill(sk, material, box, mass)
        if kind == "pallet":
            sk.box("wood", (box[0], box[1], box[2], box[1] + 144), v.bay_depth * 0.4)
        found.append(truth("load_present", box, mass))
    return found


def debris(sk: Sketch, rng: np.random.Generator, v: Vehicle) -> None:
    """What an empty container often holds without being loaded: dunnage, film, a strap (a few kg)."""
    assert v.bay is not None
    for _ in range(int(rng.integers(0, 4))):
        box = inside(rng, v.bay, u(rng, 100, 1200), u(rng, 20, 120))
        fill(sk, str(rng.choice(["wood", "polyethylene", "cardboard"])), box, u(rng, 0.3, 4.0))


def load_vehicle(rng: np.random.Generator, v: Vehicle, *, novel: bool, suspect: bool, style: str,
                 declared_empty: bool, loaded: bool, events: tuple[str, ...] | None = None
                 ) -> tuple[Sketch, list[Truth]]:
    """The contents of one vehicle and their truth: cargo or luggage, contraband, goods in an "empty" box."""
    sk = Sketch()
    found: list[Truth] = []
    if v.bay is not None and not declared_empty:
        cargo(sk, rng, v.bay, v.bay_depth, style)
    elif v.bay is None:
        car_luggage(sk, rng, v)
    if declared_empty:
        debris(sk, rng, v)
        if loaded:
            found += empty_load(sk, rng, v, novel)
    if suspect:
        hidden = contraband(sk, rng, v, novel, events)
        if declared_empty:   # contraband in the open box of a container declared empty is also a load
            found += [truth("load_present", tuple(t["box"]), t["mass_kg"])
                      for t in hidden if t["label"] in GOODS + ("firearm",) and _within(t["box"], v.bay)]
        found += hidden
    return sk, found


def _within(box: list[float], room: Box | None) -> bool:
    return room is not None and box[0] >= room[0] and box[1] >= room[1] and box[2] <= room[2] and box[3] <= room[3]
