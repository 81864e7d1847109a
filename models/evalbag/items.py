"""Objects of the evaluation bag generator, each drawn from its own family of layouts.

Threat classes use the detector's labels (firearm, knife, ammunition, cigarettes, phone, battery,
drugs). A phone is a frame, a screen, a board and a cell in one of several layouts (cell low, cell
centred, board beside it, L-shaped board; metal or plastic rim); cigarettes come as cartons and
packs with visible rods (packs on edge) or without (packs flat: the rods overlap into an even
block); power banks as cylindrical cells in a case or as a pouch block. Ordinary goods are the
hard negatives of real bags: laptops, tablets, e-readers, chargers, cameras, corded drills, hair
dryers, umbrellas, belts, cans, jars, shoes with steel shanks, toys, books, clothes and toiletries.
Every size is in millimetres.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.evalbag.draw import Item, disc, polygon, ribbed, rod, shell, slab

Maker = Callable[[np.random.Generator], Item]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --- threats -----------------------------------------------------------------------------------

def pistol(rng: np.random.Generator) -> Item:
    """Semi-automatic: slide over barrel, frame of polymer or steel, magazine in the raked grip."""
    it = Item("pistol", "firearm")
    L, H = _u(rng, 150, 205), _u(rng, 28, 36)
    rake = np.radians(_u(rng, 12, 24))
    grip_len, grip_w = _u(rng, 95, 125), _u(rng, 28, 34)
    it.add(slab("inox" if rng.random() < 0.5 else "iron", 0, 0, L, H, _u(rng, 7, 11), corner=3))
    it.add(rod("iron", (4, H / 2), (L - 2, H / 2), _u(rng, 5.5, 7.5), bore=_u(rng, 2.2, 3.2)))
    frame = "polyamide" if rng.random() < 0.65 else "iron"
    g0 = L * _u(rng, 0.62, 0.78)
    gx, gy = np.sin(rake) * grip_len, np.cos(rake) * grip_len
    grip = [(g0, H), (g0 + grip_w, H), (g0 + grip_w + gx, H + gy), (g0 + gx, H + gy)]
    it.add(polygon(frame, [(L * 0.25, H), (L, H), (L, H + 8), (L * 0.25, H + 8)], 20 if frame == "polyamide" else 5))
    it.add(polygon(frame, grip, 26 if frame == "polyamide" else 6))
    mag = [(g0 + 5, H + 4), (g0 + grip_w - 5, H + 4), (g0 + grip_w - 5 + gx * 0.95, H + gy * 0.95),
           (g0 + 5 + gx * 0.95, H + gy * 0.95)]
    it.add(polygon("iron", mag, 1.6))
    for k in range(int(rng.integers(0, 9))):   # cartridges stacked in the magazine
        f = (k + 1) / 10
        it.add(rod("brass70", (g0 + 7 + gx * f, H + 6 + gy * f), (g0 + grip_w - 7 + gx * f, H + 6 + gy * f), 4.5, 4.0))
    tg = g0 - _u(rng, 30, 40)
    it.add(rod("iron" if frame == "iron" else "polyamide", (tg, H + 8), (tg, H + 26), 2.5))
    it.add(rod("iron" if frame == "iron" else "polyamide", (tg, H + 26), (g0, H + 26), 2.5))
    it.add(rod("iron", (tg + 12, H + 6), (tg + 16, H + 18), 1.5))   # trigger
    return it


def revolver(rng: np.random.Generator) -> Item:
    """Barrel, cylinder with chambers (loaded or not), steel frame and a wooden or rubber grip."""
    it = Item("revolver", "firearm")
    barrel = _u(rng, 50, 160)
    cyl_l, cyl_r = _u(rng, 38, 45), _u(rng, 17, 21)
    it.add(rod("inox", (0, 0), (barrel, 0), _u(rng, 6, 8), bore=_u(rng, 4, 4.6)))
    it.add(slab("inox", barrel - 5, -cyl_r - 3, barrel + cyl_l + 20, cyl_r + 3, _u(rng, 5, 8), corner=4))
    c0 = barrel + 5
    it.add(slab("inox", c0, -cyl_r, c0 + cyl_l, cyl_r, cyl_r * 1.2, corner=5))
    if rng.random() < 0.6:
        for k in (-1, 0, 1):
            it.add(rod("brass70", (c0 + 1, k * cyl_r * 0.55), (c0 + cyl_l - 2, k * cyl_r * 0.55), 4.6, 4.1))
    e = barrel + cyl_l + 20
    ang = np.radians(_u(rng, 20, 40))
    gl = _u(rng, 80, 110)
    grip = [(e - 10, 0), (e + 18, 0), (e + 18 + gl * np.sin(ang), gl * np.cos(ang) + 0),
            (e - 14 + gl * np.sin(ang), gl * np.cos(ang))]
    it.add(polygon(str(rng.choice(["beech", "rubber_sole"])), grip, 30))
    it.add(polygon("inox", [(e - 6, 0), (e + 8, 0), (e + 8 + 40 * np.sin(ang), 40 * np.cos(ang)),
                            (e - 6 + 40 * np.sin(ang), 40 * np.cos(ang))], 8))
    it.add(rod("inox", (c0, cyl_r), (c0 + 10, cyl_r + 22), 2.2))
    it.add(rod("inox", (c0 + 10, cyl_r + 22), (e - 6, cyl_r + 20), 2.2))
    return it


def knife(rng: np.random.Generator) -> Item:
    """Fixed blades of several profiles, folding knives and cleavers, all with tapered edges."""
    kind = str(rng.choice(["chef", "hunter", "dagger", "folder", "cleaver", "bayonet"]))
    it = Item(f"knife_{kind}", "knife")
    blade_l = {"chef": _u(rng, 150, 230), "hunter": _u(rng, 90, 140), "dagger": _u(rng, 100, 180),
               "folder": _u(rng, 65, 100), "cleaver": _u(rng, 150, 200), "bayonet": _u(rng, 150, 200)}[kind]
    w = {"chef": _u(rng, 38, 50), "hunter": _u(rng, 25, 34), "dagger": _u(rng, 20, 30), "folder": _u(rng, 18, 26),
         "cleaver": _u(rng, 70, 95), "bayonet": _u(rng, 22, 30)}[kind]
    t = _u(rng, 1.6, 4.2) if kind != "cleaver" else _u(rng, 2.5, 5)
    taper: tuple[tuple[float, float], tuple[float, float], float]
    if kind == "dagger":
        pts = [(0, -w / 2), (blade_l * 0.8, -w / 3), (blade_l, 0), (blade_l * 0.8, w / 3), (0, w / 2)]
        taper = ((0, 0), (0, w / 2), 0.35)
    elif kind == "cleaver":
        pts = [(0, -w * 0.2), (blade_l, -w * 0.2), (blade_l, w * 0.8), (0, w * 0.8)]
        taper = ((0, -w * 0.2), (0, w * 0.8), 0.3)
    else:
        tip = _u(rng, 0.15, 0.35)
        pts = [(0, 0), (blade_l * (1 - tip), 0), (blade_l, w * _u(rng, 0.05, 0.5)), (blade_l * 0.7, w), (0, w)]
        taper = ((0, 0), (0, w), 0.3)
    it.add(polygon("inox" if rng.random() < 0.7 else "iron", pts, t, taper=taper))
    v0 = -w / 2 if kind == "dagger" else (-w * 0.2 if kind == "cleaver" else 0)
    hl, hw = _u(rng, 85, 130), _u(rng, 20, 28)
    hc = v0 + (w * 0.5 if kind in ("dagger",) else w * 0.3 if kind != "cleaver" else w * 0.2)
    if kind == "dagger":
        hc = 0.0
    if kind == "folder":
        it.add(slab("inox", -hl, hc - hw / 2, 0, hc + hw / 2, 2.4, corner=6))      # liners
        it.add(slab(str(rng.choice(["alu", "abs", "beech"])), -hl, hc - hw / 2, 0, hc + hw / 2, 7, corner=7))
        it.add(disc("inox", -6, hc, 4, 4, 6))
    else:
        it.add(slab(str(rng.choice(["beech", "abs", "polyamide", "rubber_sole"])), -hl, hc - hw / 2, 0, hc + hw / 2,
                    _u(rng, 16, 24), corner=hw / 3))
        if rng.random() < 0.7:   # full tang and rivets
            it.add(slab("inox", -hl + 5, hc - hw / 3, 0, hc + hw / 3, t * 0.9))
            for k in range(int(rng.integers(2, 4))):
                it.add(disc("brass70", -hl * (0.25 + 0.25 * k), hc, 3, 3, 20))
        if kind in ("hunter", "dagger", "bayonet"):
            it.add(slab("inox", -6, hc - hw * 0.9, 0, hc + hw * 0.9, 6))            # guard
    return it


def _cartridge(it: Item, u: float, v: float, length: float, r: float, bullet: float, along: bool = True) -> None:
    if along:
        it.add(rod("brass70", (u, v), (u + length, v), r, r - 0.45))
        it.add(rod("gunpowder", (u + 2, v), (u + length - 1, v), r - 0.45))
        it.add(rod(str("pb"), (u + length - bullet * 0.4, v), (u + length + bullet * 0.6, v), r * 0.92))
    else:  # standing: seen end-on
        it.add(disc("brass70", u, v, r, r, length * 0.18))
        it.add(disc("pb", u, v, r * 0.9, r * 0.9, bullet, dome=True))


def ammunition(rng: np.random.Generator) -> Item:
    """Loose cartridges, boxes of standing rounds, or shotgun shells."""
    kind = str(rng.choice(["loose", "box", "shells"]))
    it = Item(f"ammo_{kind}", "ammunition")
    length, r, bullet = [(19, 4.7, 15), (22, 5.5, 16), (33, 5.6, 20), (39, 5.6, 22), (51, 6.0, 28)][int(rng.integers(5))]
    if kind == "loose":
        for k in range(int(rng.integers(3, 12))):
            _cartridge(it, _u(rng, 0, 40), k * 2 * r * _u(rng, 1.0, 1.4), length, r, bullet)
    elif kind == "box":
        rows, cols = int(rng.integers(2, 6)), int(rng.integers(4, 11))
        it.add(shell("board", -r * 1.5, -r * 1.5, cols * 2.2 * r, rows * 2.2 * r, 1.5, length + bullet * 0.5))
        for i in range(rows):
            for j in range(cols):
                if rng.random() < 0.9:
                    _cartridge(it, j * 2.2 * r, i * 2.2 * r, length, r, bullet, along=False)
    else:
        for k in range(int(rng.integers(2, 8))):
            v = k * 22.0
            it.add(rod("pvc", (0, v), (65, v), 10.5, 9.7))
            it.add(rod("brass70", (0, v), (14, v), 10.8, 10.2))
            it.add(rod("pb", (22, v), (55, v), 9.5))
    return it


def _pack(it: Item, u: float, v: float, length: float, width: float, depth: float, rods: bool, rng: np.random.Generator) -> None:
    """A pack of cigarettes: board box, foil, tobacco as rods (seen on edge) or an even block."""
    it.add(shell("cardboard_wall", u, v, u + length, v + width, 0.35, depth))
    it.add(slab("alu", u + 0.5, v + 0.5, u + length - 0.5, v + width - 0.5, 0.016))
    filt = _u(rng, 18, 27)
    if rods:
        r = _u(rng, 2.7, 4.0)
        it.add(ribbed("tobacco_cut", u + 1, v + 1, u + length - filt, v + width - 1, r))
        it.add(ribbed("filter_tow", u + length - filt, v + 1, u + length - 1, v + width - 1, r))
    else:
        it.add(slab("tobacco_cut", u + 1, v + 1, u + length - filt, v + width - 1, depth * 0.8))
        it.add(slab("filter_tow", u + length - filt, v + 1, u + length - 1, v + width - 1, depth * 0.8))


def cigarettes(rng: np.random.Generator) -> Item:
    """Cartons of 10 packs in one or two rows, or loose packs; rods visible only when packs stand on edge."""
    kind = str(rng.choice(["carton", "carton2", "packs"]))
    it = Item(f"cigarettes_{kind}", "cigarettes")
    length, width, depth = _u(rng, 84, 100), _u(rng, 48, 58), _u(rng, 18, 24)
    rods = bool(rng.random() < 0.5)
    if kind == "carton":
        for k in range(10):
            _pack(it, 0, k * depth if rods else k * width / 2.2, length, depth if rods else width / 2.2, width if rods else depth * 2, rods, rng)
        it.add(shell("cardboard_wall", -1, -1, length + 1, (10 * depth if rods else 10 * width / 2.2) + 1, 0.4, 4))
    elif kind == "carton2":
        for row in range(2):
            for k in range(5):
                _pack(it, row * (length + 1), k * width, length, width, depth, rods, rng)
    else:
        for k in range(int(rng.integers(1, 5))):
            _pack(it, _u(rng, -10, 10), k * (width + _u(rng, 2, 20)), length, width, depth, rods, rng)
    return it


def phone(rng: np.random.Generator) -> Item:
    """A smartphone (frame, screen, board, cell, camera, speaker) in one of several layouts, or a feature phone."""
    layout = str(rng.choice(["low_cell", "centre_cell", "side_board", "l_board", "feature"]))
    it = Item(f"phone_{layout}", "phone")
    if layout == "feature":
        L, W = _u(rng, 100, 125), _u(rng, 45, 52)
        it.add(shell("abs", 0, 0, L, W, 1.5, 13))
        it.add(slab("display", 5, 5, L * 0.45, W - 5, 1.1))
        it.add(slab("fr4", 3, 3, L - 3, W - 3, 1.0))
        it.add(slab("li_cell", L * 0.45, 6, L * 0.9, W - 6, 5.0, corner=2))
        for k in range(12):
            it.add(disc("silicone", L * 0.55 + (k // 3) * 10, 10 + (k % 3) * 14, 4, 5, 2))
        return it
    L, W = _u(rng, 125, 170), _u(rng, 60, 80)
    metal = bool(rng.random() < 0.6)
    it.add(shell("alu" if metal else "pc", 0, 0, L, W, _u(rng, 1.0, 2.5), _u(rng, 7, 9.5)))
    it.add(slab("display", 1.5, 1.5, L - 1.5, W - 1.5, _u(rng, 1.0, 1.6), corner=6))
    it.add(slab("soda_glass" if rng.random() < 0.5 else "pc", 1.5, 1.5, L - 1.5, W - 1.5, 0.6, corner=6))
    cell_t = _u(rng, 3.5, 5.5)
    board: tuple[float, float, float, float]
    cell: tuple[float, float, float, float]
    if layout == "low_cell":
        board = (L * 0.62, 4, L - 4, W - 4)
        cell = (6, 6, L * 0.6, W - 6)
    elif layout == "centre_cell":
        board = (L * 0.7, 4, L - 4, W - 4)
        cell = (L * 0.22, 6, L * 0.68, W - 6)
        it.add(slab("fr4", 4, 4, L * 0.2, W - 4, 0.9))   # lower sub-board
    elif layout == "side_board":
        board = (L * 0.08, W * 0.62, L * 0.92, W - 4)
        cell = (L * 0.12, 5, L * 0.85, W * 0.58)
    else:
        board = (L * 0.6, 4, L - 4, W - 4)
        cell = (8, 6, L * 0.55, W * 0.66)
        it.add(slab("fr4", 4, W * 0.7, L * 0.6, W - 4, 0.9))
    it.add(slab("li_cell", cell[0], cell[1], cell[2], cell[3], cell_t, corner=2))
    it.add(slab("alu", cell[0], cell[1], cell[2], cell[3], 0.12))          # pouch foil
    it.add(slab("fr4", board[0], board[1], board[2], board[3], 1.0))
    for k in range(int(rng.integers(2, 6))):                                  # shields and chips
        bu = _u(rng, board[0], board[2] - 12)
        bv = _u(rng, board[1], board[3] - 10)
        it.add(slab(str(rng.choice(["inox", "ceramic"])), bu, bv, bu + _u(rng, 6, 14), bv + _u(rng, 6, 12), _u(rng, 0.3, 1.2)))
    cam_u = L - _u(rng, 12, 25)
    for k in range(int(rng.integers(1, 4))):
        it.add(disc("soda_glass", cam_u, W * 0.25 + 12 * k, 5, 5, 4))
        it.add(disc("ndfeb", cam_u, W * 0.25 + 12 * k, 3, 3, 1.0))
    it.add(slab("ndfeb", 3, W / 2 - 8, 8, W / 2 + 8, 2.5))                # loudspeaker magnet
    it.add(slab("inox", 0, W / 2 - 5, 3, W / 2 + 5, 3))                   # port
    return it


def _cell(it: Item, u: float, v: float, length: float, r: float, along: bool = True) -> None:
    b = (u + length, v) if along else (u, v + length)
    it.add(rod("iron", (u, v), b, r, r - 0.25))
    it.add(rod("li_cell", (u, v), b, r - 0.25))


def battery(rng: np.random.Generator) -> Item:
    """Power banks (cells in a case, or a pouch block) and loose cylindrical cells."""
    kind = str(rng.choice(["cells", "pouch", "loose"]))
    it = Item(f"battery_{kind}", "battery")
    length, r = [(65, 9.0), (70, 10.5), (50, 7.0), (65, 13.0)][int(rng.integers(4))]
    if kind == "cells":
        rows, cols = int(rng.integers(1, 3)), int(rng.integers(1, 5))
        it.add(shell("abs", -4, -r - 4, rows * (length + 2) + 22, (cols - 1) * 2 * r + r + 4, 1.5, 2 * r + 4))
        for i in range(rows):
            for j in range(cols):
                _cell(it, i * (length + 2), j * 2 * r, length, r)
        it.add(slab("fr4", rows * (length + 2), -r, rows * (length + 2) + 18, (cols - 1) * 2 * r + r, 1.2))
        it.add(slab("cu", rows * (length + 2), -r, rows * (length + 2) + 3, (cols - 1) * 2 * r + r, 0.4))
    elif kind == "pouch":
        L, W = _u(rng, 90, 150), _u(rng, 60, 80)
        it.add(shell(str(rng.choice(["alu", "abs"])), 0, 0, L, W, 1.4, _u(rng, 12, 24)))
        it.add(slab("li_cell", 3, 3, L * 0.85, W - 3, _u(rng, 6, 18), corner=2))
        it.add(slab("fr4", L * 0.86, 4, L - 3, W - 4, 1.2))
        it.add(slab("inox", L - 6, W / 2 - 8, L, W / 2 + 8, 3))
    else:
        for k in range(int(rng.integers(1, 5))):
            _cell(it, _u(rng, 0, 20), k * (2 * r + _u(rng, 0, 25)), length, r)
    return it


def drugs(rng: np.random.Generator) -> Item:
    """Pressed bricks in tape, soft bags of powder, or clusters of swallowed-style pellets."""
    kind = str(rng.choice(["brick", "bag", "pellets"]))
    it = Item(f"drugs_{kind}", "drugs")
    mat = str(rng.choice(["cocaine_hcl", "heroin_base", "meth_hcl"]))
    if kind == "brick":
        L, W, T = _u(rng, 160, 260), _u(rng, 100, 150), _u(rng, 30, 55)
        it.add(slab(mat, 0, 0, L, W, T, corner=8))
        it.add(slab("pvc", -1, -1, L + 1, W + 1, 0.8, corner=9))
    elif kind == "bag":
        n = int(rng.integers(7, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(55, 100, n)
        pts = [(float(np.cos(a) * q), float(np.sin(a) * q * 0.7)) for a, q in zip(ang, rad)]
        it.add(polygon(mat, pts, _u(rng, 15, 35), taper=((0, 0), (float(rad.max()), 0), 0.5)))
        it.add(polygon("pp", pts, 0.15))
    else:
        for k in range(int(rng.integers(8, 30))):
            u, v = _u(rng, 0, 90), _u(rng, 0, 70)
            ru, rv = _u(rng, 18, 24), _u(rng, 8, 11)
            it.add(disc(mat, u, v, ru, rv, 2 * rv, dome=True))
            it.add(disc("silicone", u, v, ru + 0.4, rv + 0.4, 0.3))
    return it


THREATS: dict[str, list[Maker]] = {
    "firearm": [pistol, revolver], "knife": [knife], "ammunition": [ammunition], "cigarettes": [cigarettes],
    "phone": [phone], "battery": [battery], "drugs": [drugs],
}

# --- hard negatives and ordinary goods -----------------------------------------------------------


def laptop(rng: np.random.Generator) -> Item:
    """Shell, display, keyboard, board with heat pipe and fan, and a cell strip (cylindrical or pouch)."""
    it = Item("laptop", None)
    L, W = _u(rng, 300, 380), _u(rng, 200, 260)
    it.add(shell(str(rng.choice(["alu", "abs", "pc"])), 0, 0, L, W, 1.5, _u(rng, 14, 22)))
    it.add(slab("display", 3, 3, L - 3, W - 3, 1.5))
    it.add(slab("alu", 3, 3, L - 3, W - 3, 0.5))
    it.add(slab("fr4", L * 0.1, 8, L * 0.9, W * 0.45, 1.2))
    it.add(rod("cu", (L * 0.3, W * 0.2), (L * 0.8, W * 0.15), 3.0, 2.4))
    it.add(disc("abs", L * 0.82, W * 0.25, 30, 30, 6, hole=8))
    if rng.random() < 0.4:
        for k in range(int(rng.integers(3, 7))):
            _cell(it, L * 0.08 + k * 40, W - 28, 36, 9, along=False)
    else:
        it.add(slab("li_cell", L * 0.1, W * 0.58, L * 0.9, W - 8, _u(rng, 4, 7), corner=2))
    it.add(ribbed("abs", 10, W * 0.5, L - 10, W * 0.55, 1.2, across=False))
    return it


def tablet(rng: np.random.Generator) -> Item:
    it = Item("tablet", None)
    L, W = _u(rng, 190, 280), _u(rng, 130, 190)
    it.add(shell(str(rng.choice(["alu", "pc"])), 0, 0, L, W, 1.2, _u(rng, 6, 8)))
    it.add(slab("display", 2, 2, L - 2, W - 2, 1.2))
    it.add(slab("li_cell", L * 0.12, 6, L * 0.88, W / 2 - 3, _u(rng, 3, 4)))
    it.add(slab("li_cell", L * 0.12, W / 2 + 3, L * 0.88, W - 6, _u(rng, 3, 4)))
    it.add(slab("fr4", L * 0.02, 6, L * 0.1, W - 6, 1.0))
    return it


def ereader(rng: np.random.Generator) -> Item:
    it = Item("ereader", None)
    L, W = _u(rng, 150, 180), _u(rng, 110, 130)
    it.add(shell("pc", 0, 0, L, W, 1.2, 8))
    it.add(slab("display", 10, 8, L - 25, W - 8, 1.0))
    it.add(slab("li_cell", L - 24, 8, L - 6, W - 8, 3.5))
    return it


def charger(rng: np.random.Generator) -> Item:
    """Wall chargers and laptop power supplies: transformer (ferrite and copper), board, prongs, cable."""
    big = bool(rng.random() < 0.5)
    it = Item("power_supply" if big else "charger", None)
    L, W = (_u(rng, 100, 140), _u(rng, 50, 65)) if big else (_u(rng, 35, 60), _u(rng, 30, 45))
    it.add(shell("pc", 0, 0, L, W, 2, _u(rng, 25, 32)))
    it.add(slab("fr4", 3, 3, L - 3, W - 3, 1.4))
    it.add(slab("ferrite", L * 0.3, W * 0.25, L * 0.55, W * 0.75, W * 0.4))
    it.add(slab("cu", L * 0.33, W * 0.2, L * 0.52, W * 0.8, 3))
    it.add(disc("alu", L * 0.75, W * 0.35, 6, 6, 16))
    it.add(rod("brass70", (-14, W * 0.35), (0, W * 0.35), 2.2))
    it.add(rod("brass70", (-14, W * 0.65), (0, W * 0.65), 2.2))
    cable(rng, it, (L, W / 2))
    return it


def cable(rng: np.random.Generator, it: Item | None = None, start: tuple[float, float] = (0, 0)) -> Item:
    it = it or Item("cable", None)
    u, v = start
    for _ in range(int(rng.integers(3, 9))):
        nu, nv = u + _u(rng, 20, 80), v + _u(rng, -60, 60)
        it.add(rod("pvc", (u, v), (nu, nv), 2.5))
        it.add(rod("cu", (u, v), (nu, nv), 0.8))
        u, v = nu, nv
    return it


def camera(rng: np.random.Generator) -> Item:
    it = Item("camera", None)
    L, W = _u(rng, 100, 140), _u(rng, 60, 90)
    it.add(shell(str(rng.choice(["abs", "alu"])), 0, 0, L, W, 2, 50))
    it.add(slab("fr4", 5, 5, L - 5, W - 5, 1.2))
    for k, rr in enumerate((28, 24, 20)):
        it.add(disc("soda_glass", L / 2, W / 2, rr, rr, 6 + 3 * k, dome=True))
        it.add(disc("alu", L / 2, W / 2, rr + 3, rr + 3, 2, hole=rr))
    it.add(slab("li_cell", L * 0.72, W * 0.2, L * 0.92, W * 0.8, 12))
    return it


def drill(rng: np.random.Generator) -> Item:
    """A corded drill: pistol-shaped housing, motor (iron, copper, ferrite), gearbox, steel chuck."""
    it = Item("drill", None)
    L = _u(rng, 180, 240)
    it.add(shell("polyamide", 0, 0, L, 65, 2.5, 60))
    it.add(polygon("polyamide", [(L * 0.45, 65), (L * 0.7, 65), (L * 0.8, 190), (L * 0.5, 190)], 40))
    it.add(slab("iron", L * 0.35, 12, L * 0.7, 53, 30))
    it.add(slab("cu", L * 0.38, 15, L * 0.67, 50, 6))
    it.add(slab("ferrite", L * 0.4, 8, L * 0.65, 57, 8))
    it.add(rod("iron", (L * 0.1, 32), (L * 0.35, 32), 16))
    it.add(rod("inox", (-40, 32), (0, 32), 18, 5))
    cable(rng, it, (L * 0.65, 190))
    return it


def hair_dryer(rng: np.random.Generator) -> Item:
    """Barrel with a heating coil on mica, a small motor and fan, and a handle with its cable."""
    it = Item("hair_dryer", None)
    L, R = _u(rng, 160, 220), _u(rng, 30, 40)
    it.add(rod("abs", (0, 0), (L, 0), R, R - 2.5))
    it.add(slab("mica", L * 0.2, -R * 0.7, L * 0.6, R * 0.7, 2))
    for k in range(int(L * 0.4 / 6)):
        it.add(rod("nicr_wire", (L * 0.2 + 6 * k, -R * 0.7), (L * 0.2 + 6 * k + 3, R * 0.7), 0.3))
    it.add(rod("iron", (L * 0.68, 0), (L * 0.85, 0), 14))
    it.add(rod("cu", (L * 0.7, 0), (L * 0.83, 0), 11, 8))
    it.add(polygon("abs", [(L * 0.62, R), (L * 0.8, R), (L * 0.85, R + 110), (L * 0.67, R + 110)], 28))
    cable(rng, it, (L * 0.75, R + 110))
    return it


def umbrella(rng: np.random.Generator) -> Item:
    """Folded: a steel shaft, eight steel ribs along it, fabric, a handle (straight or crook)."""
    it = Item("umbrella", None)
    L = _u(rng, 240, 330) if rng.random() < 0.6 else _u(rng, 600, 850)
    it.add(rod("iron", (0, 0), (L, 0), _u(rng, 4, 6), 3))
    for k in range(8):
        it.add(rod("iron", (30, -6 + 1.6 * k), (L * 0.92, -6 + 1.6 * k), 0.9))
    it.add(slab("polyester", 20, -14, L * 0.95, 14, 3))
    it.add(rod("abs", (L, 0), (L + 90, 0), 14))
    return it


def belt(rng: np.random.Generator) -> Item:
    it = Item("belt", None)
    L = _u(rng, 400, 900)
    coiled = bool(rng.random() < 0.5)
    if coiled:
        for k in range(4):
            it.add(disc("leather", 0, 0, 45 + 8 * k, 45 + 8 * k, 8, hole=38 + 8 * k))
    else:
        it.add(slab("leather", 0, 0, L, 35, 4, corner=4))
    kind = str(rng.choice(["zinc_alloy", "inox", "brass70"]))
    it.add(slab(kind, -50, -8, 0, 43, 6, corner=6))
    it.add(slab(kind, -42, -2, -8, 37, -4, corner=3))  # the buckle's opening (thinner centre)
    it.add(rod("inox", (-25, -4), (-25, 39), 1.8))
    return it


def can(rng: np.random.Generator) -> Item:
    """Drink cans lying down (aluminium around liquid), singly or a few together."""
    it = Item("cans", None)
    r, L = _u(rng, 28, 34), _u(rng, 110, 160)
    for k in range(int(rng.integers(1, 5))):
        it.add(rod("alu", (0, k * 2 * r), (L, k * 2 * r), r, r - 0.12))
        it.add(rod(str(rng.choice(["water", "spirits", "sugar_food"])), (1, k * 2 * r), (L - 1, k * 2 * r), r - 0.12))
    return it


def jar(rng: np.random.Generator) -> Item:
    it = Item("jar", None)
    r, L = _u(rng, 35, 55), _u(rng, 80, 150)
    upright = bool(rng.random() < 0.5)
    if upright:
        it.add(disc("soda_glass", 0, 0, r, r, 6, hole=0))
        it.add(disc("soda_glass", 0, 0, r, r, L, hole=r - 4))
        it.add(disc(str(rng.choice(["sugar_food", "water"])), 0, 0, r - 4, r - 4, L * 0.9))
        it.add(disc("iron", 0, 0, r, r, 0.3))
    else:
        it.add(rod("soda_glass", (0, 0), (L, 0), r, r - 4))
        it.add(rod(str(rng.choice(["sugar_food", "water"])), (4, 0), (L - 4, 0), r - 4))
        it.add(slab("iron", L, -r, L + 12, r, 0.6))
    return it


def shoes(rng: np.random.Generator) -> Item:
    """A pair of shoes or boots: sole, foam, upper, and in many a steel shank under the arch."""
    it = Item("shoes", None)
    L, W = _u(rng, 240, 310), _u(rng, 85, 110)
    for k in range(int(rng.integers(1, 3))):
        v = k * (W + _u(rng, 5, 30))
        it.add(slab("rubber_sole", 0, v, L, v + W, _u(rng, 12, 30), corner=W / 2.2))
        it.add(slab("eva_foam", 5, v + 5, L - 5, v + W - 5, 20, corner=W / 2.5))
        it.add(shell("leather", 0, v, L, v + W, 2, 60))
        if rng.random() < 0.7:
            it.add(slab("iron", L * 0.35, v + W / 2 - 8, L * 0.62, v + W / 2 + 8, _u(rng, 1.2, 2.0), corner=3))
            it.add(disc("iron", L * 0.2, v + W / 2, 4, 4, 3))
    return it


def toy(rng: np.random.Generator) -> Item:
    """A plastic toy car or robot with a small motor, gears and a speaker."""
    it = Item("toy", None)
    L, W = _u(rng, 100, 250), _u(rng, 60, 140)
    it.add(shell("abs", 0, 0, L, W, 2.5, _u(rng, 40, 90)))
    for u in (L * 0.2, L * 0.8):
        it.add(disc("rubber_sole", u, -5, 18, 8, 25))
        it.add(rod("iron", (u, -10), (u, W + 10), 1.5))
    it.add(rod("iron", (L * 0.4, W / 2), (L * 0.55, W / 2), 10))
    it.add(disc("ferrite", L * 0.7, W / 2, 14, 14, 5))
    for k in range(int(rng.integers(2, 6))):
        it.add(disc("pp", L * 0.3 + 10 * k, W * 0.3, 8, 8, 4, hole=2))
    return it


def book(rng: np.random.Generator) -> Item:
    it = Item("book", None)
    L, W = _u(rng, 180, 300), _u(rng, 120, 220)
    t = _u(rng, 10, 50)
    it.add(slab("paper", 0, 0, L, W, t))
    it.add(slab("board", -2, -2, L + 2, W + 2, 5))
    if rng.random() < 0.2:    # spiral binding
        it.add(ribbed("iron", -6, 0, -1, W, 0.6, across=True))
    return it


def clothes(rng: np.random.Generator) -> Item:
    """A folded garment: an irregular stack of fabric with seams, sometimes a zip and buttons."""
    it = Item("clothes", None)
    L, W = _u(rng, 150, 380), _u(rng, 120, 300)
    mat = str(rng.choice(["cotton", "polyester"]))
    it.add(slab(mat, 0, 0, L, W, _u(rng, 15, 60), corner=_u(rng, 5, 40)))
    it.add(slab(mat, L * 0.1, W * 0.2, L * 0.9, W * 0.8, _u(rng, 5, 30), corner=10))
    if rng.random() < 0.4:
        it.add(ribbed("zinc_alloy" if rng.random() < 0.5 else "pp", L * 0.2, W * 0.5, L * 0.8, W * 0.5 + 4, 0.8, across=False))
    for k in range(int(rng.integers(0, 6))):
        it.add(disc(str(rng.choice(["pp", "brass70"])), L * 0.1 + 20 * k, W * 0.3, 6, 6, 2, hole=1))
    return it


def toiletries(rng: np.random.Generator) -> Item:
    it = Item("toiletries", None)
    for k in range(int(rng.integers(1, 5))):
        r, L = _u(rng, 15, 30), _u(rng, 80, 180)
        v = k * 70
        if rng.random() < 0.3:   # aerosol: aluminium can with gas and liquid
            it.add(rod("alu", (0, v), (L, v), r, r - 0.4))
            it.add(rod("spirits", (0, v), (L * 0.6, v), r - 0.4))
        else:
            it.add(rod("pp", (0, v), (L, v), r, r - 1))
            it.add(rod("shampoo", (0, v), (L * _u(rng, 0.3, 0.95), v), r - 1))
            it.add(rod("pp", (L, v), (L + 20, v), r * 0.5))
    return it


def keys_coins(rng: np.random.Generator) -> Item:
    it = Item("keys_coins", None)
    for k in range(int(rng.integers(1, 6))):
        it.add(polygon(str(rng.choice(["brass70", "inox"])), [(0, k * 8), (55, k * 8 + 3), (55, k * 8 + 10), (0, k * 8 + 14)], 2.2))
    it.add(disc("inox", -12, 20, 14, 14, 2.5, hole=11))
    for k in range(int(rng.integers(0, 8))):
        rr = _u(rng, 9, 13)
        it.add(disc(str(rng.choice(["cu", "brass70", "inox"])), 70 + _u(rng, 0, 50), _u(rng, 0, 50), rr, rr, 1.9))
    return it


def food(rng: np.random.Generator) -> Item:
    it = Item("food", None)
    L, W = _u(rng, 80, 220), _u(rng, 60, 150)
    it.add(slab("sugar_food", 0, 0, L, W, _u(rng, 20, 70), corner=_u(rng, 2, 30)))
    it.add(slab(str(rng.choice(["pp", "board", "alu"])), 0, 0, L, W, 0.3 if rng.random() < 0.5 else 1.0))
    return it


GOODS: dict[str, tuple[Maker, float]] = {   # name -> (maker, relative frequency in bags)
    "clothes": (clothes, 6.0), "book": (book, 1.2), "shoes": (shoes, 1.2), "toiletries": (toiletries, 1.5),
    "cable": (cable, 1.2), "charger": (charger, 1.2), "laptop": (laptop, 0.9), "tablet": (tablet, 0.7),
    "ereader": (ereader, 0.4), "camera": (camera, 0.4), "drill": (drill, 0.3), "hair_dryer": (hair_dryer, 0.5),
    "umbrella": (umbrella, 0.6), "belt": (belt, 0.8), "cans": (can, 0.6), "jar": (jar, 0.5), "toy": (toy, 0.5),
    "keys_coins": (keys_coins, 0.8), "food": (food, 0.8),
}
