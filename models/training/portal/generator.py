"""Drive-through portal scans of vehicles and containers: Generator A (training) of issue 16.

A scan is a `Scan` whose rows are scan lines along the vehicle, front of the vehicle first, and whose
columns are detector pixels, **column 0 at the road** (the bottom of the detector column). Light
vehicles (cars, vans, minibuses) are scanned by a 300 or 450 kV dual-energy tube portal (xraylib
physics, models.training.physics); lorries and containers by a 9/6 or 6/4 MV dual-energy linac
(models.training.portal.linac). Both add scatter (a broad low-frequency build-up) and detector noise.

Geometry: the vehicle's speed changes during the scan, so line pitch varies along it (truth boxes
follow the same mapping); linac portals switch the beam off over the driver's cab (cab avoidance):
those lines read dark. meta follows the contract of issue 16 (pixel_mm, line_mm, kind, energy_kev,
energies_kev for linacs, source, seed, vehicle, declared_empty, truth with label/box/mass_kg,
boxes as [x0, y0, x1, y1] with x the detector column and y the line).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.scan import Scan
from models.training.physics import Scanner, detect, ideal_transmission, weighted_transmission
from models.training.portal.canvas import Canvas, Sketch
from models.training.portal.contents import Truth
from models.training.portal.linac import Linac, mv_channel_weights, mv_mu_matrix
from models.training.portal.smuggling import load_vehicle
from models.training.portal.vehicles import CONTAINER_TYPES, KNOWN, LIGHT, NOVEL, Vehicle, build_vehicle

CLASSES = ("cigarettes", "drugs", "firearm", "concealment", "load_present")
SOURCE = "cpe-portal-sim-a"
LIGHT_SCATTER = 0.05           # scatter fraction of the X-ray tube portal's high channel (the low: 1.2 ×)
SCATTER_SPREAD_MM = 250.0      # the scatter build-up's spread (Gaussian σ) in the vehicle
STYLES = ("empty", "mixed", "dense")


@dataclass(frozen=True)
class PortalSpec:
    """What to scan. novel: held-out vehicle designs and object families only (see vehicles, contents).

    suspect_share: probability that the vehicle carries contraband; load_share: probability that a
    container declared empty holds goods; empty_share: probability that a container is declared
    empty. vehicle, cargo ("empty", "mixed", "dense"), suspect and declared_empty force a choice;
    contents forces the smuggling events (labels of smuggling.EVENTS; implies suspect); pixel_mm
    forces the detector pitch.
    """

    novel: bool = False
    suspect_share: float = 0.5
    load_share: float = 0.5
    empty_share: float = 0.35
    vehicle: str | None = None
    cargo: str | None = None
    suspect: bool | None = None
    declared_empty: bool | None = None
    contents: tuple[str, ...] | None = None
    pixel_mm: float | None = None


@dataclass(frozen=True)
class Geometry:
    """Detector pitch and column height, nominal line pitch, air before the vehicle's front (mm)."""

    pixel_mm: float
    pixels: int
    line_mm: float
    lines: int
    lead_mm: float


def geometry(rng: np.random.Generator, v: Vehicle, light: bool, pixel_mm: float | None) -> Geometry:
    """Pitches and sizes within the contract: 600–1,200 pixels and 2,000–4,000 lines for linac scans."""
    p = pixel_mm or float(rng.uniform(5.0, 10.0))
    column = v.height + float(rng.uniform(300, 900)) if light else float(rng.uniform(4600, 6000))
    lo, hi = (256, 1400) if light else (600, 1200)
    pixels = int(np.clip(round(column / p), lo, hi))
    if pixel_mm is None:
        p = column / pixels
    lead = float(rng.uniform(300, 900))
    total = lead + v.length + float(rng.uniform(300, 900))
    line_mm = float(rng.uniform(5.0, 10.0))
    lines_lo, lines_hi = (500, 4000) if light else (2000, 4000)
    lines = int(np.clip(round(total / line_mm), lines_lo, lines_hi))
    return Geometry(p, pixels, total / lines, lines, lead)


def speed_profile(rng: np.random.Generator, lines: int) -> np.ndarray:
    """Canvas position (in nominal lines) of every scan line: the vehicle speeds up and slows down
    by up to ±30 % in smooth steps, normalised to cross the whole canvas in `lines` lines."""
    knots = rng.uniform(0.7, 1.3, size=int(rng.integers(3, 9)))
    speed = np.interp(np.linspace(0, 1, lines), np.linspace(0, 1, len(knots)), knots)
    pos = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    return pos * (lines - 1) / pos[-1]


def stretch(arr: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Resample a lines × pixels image at fractional canvas lines pos (linear interpolation)."""
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, arr.shape[0] - 2)
    f = (pos - i0).astype(np.float32)[:, None]
    return arr[i0] * (1 - f) + arr[i0 + 1] * f


def add_scatter(t: np.ndarray, fraction: float, sigma_px: float) -> np.ndarray:
    """Scatter build-up: a broad blur of what the load scatters (∝ √T·(1−T)), added to the primary."""
    small = cv2.resize(t, (max(2, t.shape[1] // 8), max(2, t.shape[0] // 8)), interpolation=cv2.INTER_AREA)
    source = np.sqrt(np.clip(small, 0, 1)) * (1 - small)
    halo = cv2.GaussianBlur(source, (0, 0), max(sigma_px / 8, 1.0))
    return t + fraction * cv2.resize(halo, (t.shape[1], t.shape[0]), interpolation=cv2.INTER_LINEAR)


def choose(rng: np.random.Generator, spec: PortalSpec) -> tuple[str, str, bool, bool, bool]:
    """Vehicle design, cargo style, declared-empty, loaded-while-declared-empty and suspect flags."""
    names: tuple[str, ...] = NOVEL if spec.novel else KNOWN
    if spec.declared_empty:                      # only containers are declared empty
        names = tuple(n for n in names if n in CONTAINER_TYPES)
    name = spec.vehicle or str(rng.choice(names))
    container = name in CONTAINER_TYPES
    declared = bool(container and (spec.declared_empty if spec.declared_empty is not None
                                   else rng.random() < spec.empty_share))
    style = spec.cargo or ("empty" if declared else str(rng.choice(STYLES, p=[0.1, 0.6, 0.3])))
    loaded = bool(declared and rng.random() < spec.load_share)
    suspect = spec.suspect if spec.suspect is not None else bool(rng.random() < spec.suspect_share)
    suspect = suspect or bool(spec.contents)
    return name, style, declared, loaded, suspect


def render(rng: np.random.Generator, canvas: Canvas, light: bool) -> tuple[np.ndarray, np.ndarray, dict, Scanner]:
    """Noise-free (high, low) transmission, lines × pixels, with scatter; meta of the source; noise model."""
    maps = {k: np.ascontiguousarray(np.maximum(v, 0).T) for k, v in canvas.maps.items()}
    sigma = SCATTER_SPREAD_MM / canvas.pitch_z
    if light:
        kvp = float(rng.choice([300.0, 450.0]))
        scanner = Scanner(kvp=kvp, tube_filter_al_mm=0.0, tube_filter_cu_mm=2.0, front_csi_mm=2.0,
                          mid_filter_cu_mm=3.0, rear_csi_mm=15.0, photons_low=3e4, photons_high=2e4,
                          blur_sigma_px=0.7, pixel_mm=canvas.pitch_z)
        high, low = ideal_transmission(maps, scanner)
        high, low = add_scatter(high, LIGHT_SCATTER, sigma), add_scatter(low, LIGHT_SCATTER * 1.2, sigma)
        return high, low, {"energy_kev": kvp}, scanner
    linac = Linac(9.0, 6.0, target_w_mm=6.0) if rng.random() < 0.6 else Linac(6.0, 4.0, target_w_mm=6.0)
    w_low, w_high = mv_channel_weights(linac)
    high, low = weighted_transmission(maps, mv_mu_matrix, w_low, w_high)
    high, low = add_scatter(high, linac.scatter, sigma), add_scatter(low, linac.scatter * 1.2, sigma)
    noise = Scanner(photons_low=linac.photons, photons_high=linac.photons, blur_sigma_px=linac.blur_sigma_px,
                    electronic_noise=linac.electronic_noise, pixel_mm=canvas.pitch_z)
    kev = [linac.high_mv * 1000, linac.low_mv * 1000]
    return high, low, {"energy_kev": kev[0], "energies_kev": kev}, noise


def scan_box(t: Truth, g: Geometry, pos: np.ndarray) -> list[float]:
    """A truth box in vehicle mm → [column0, line0, column1, line1] of the stretched scan."""
    x0, z0, x1, z1 = t["box"]
    lines = np.interp([(x0 + g.lead_mm) / g.line_mm, (x1 + g.lead_mm) / g.line_mm], pos, np.arange(len(pos)))
    return [round(z0 / g.pixel_mm, 1), round(float(lines[0]), 1), round(z1 / g.pixel_mm, 1), round(float(lines[1]), 1)]


@dataclass
class Scene:
    """A drawn scene before the portal renders it: what was chosen, the vehicle and its contents."""

    name: str
    style: str
    declared: bool
    vehicle: Vehicle
    light: bool
    contents: Sketch
    found: list[Truth]
    geometry: Geometry
    canvas: Canvas


def scene(rng: np.random.Generator, spec: PortalSpec) -> Scene:
    """Choose, build and load a vehicle and draw it on its canvas (the first draws of a seed's rng)."""
    name, style, declared, loaded, suspect = choose(rng, spec)
    vehicle = build_vehicle(rng, name)
    light = name in LIGHT
    contents, found = load_vehicle(rng, vehicle, novel=spec.novel, suspect=suspect, style=style,
                                   declared_empty=declared, loaded=loaded, events=spec.contents)
    g = geometry(rng, vehicle, light, spec.pixel_mm)
    canvas = Canvas(g.lines, g.pixels, g.line_mm, g.pixel_mm)
    vehicle.sketch.draw(canvas, g.lead_mm)
    contents.draw(canvas, g.lead_mm)
    return Scene(name, style, declared, vehicle, light, contents, found, g, canvas)


def avoid_cab(rng: np.random.Generator, s: Scene, pos: np.ndarray, high: np.ndarray, low: np.ndarray
              ) -> list[int] | None:
    """Linac portals switch the beam off until the cab has passed (in 80 % of scans): those lines read dark."""
    if s.light or rng.random() >= 0.8:
        return None
    end = int(np.searchsorted(pos, (s.vehicle.cab[1] + s.geometry.lead_mm + 150) / s.geometry.line_mm))
    high[:end], low[:end] = 0.0, 0.0
    return [0, end]


def portal_scan(seed: int, spec: PortalSpec = PortalSpec()) -> Scan:
    """One deterministic portal scan for a seed, truth under meta['truth']."""
    rng = np.random.default_rng(seed)
    s = scene(rng, spec)
    g, vehicle = s.geometry, s.vehicle
    high, low, source, noise = render(rng, s.canvas, s.light)
    pos = speed_profile(rng, g.lines)
    high, low = stretch(high, pos), stretch(low, pos)
    cab = avoid_cab(rng, s, pos, high, low)
    h16, l16 = detect(high, low, rng, noise, gaussian=True)
    truth = [{**t, "box": scan_box(t, g, pos)} for t in s.found]
    if cab is not None:                              # what the beam never lit is not in the image
        truth = [{**t, "box": [b[0], max(b[1], cab[1]), b[2], b[3]]} for t in truth for b in [t["box"]]]
    truth = [t for t in truth if t["box"][2] - t["box"][0] >= 2 and t["box"][3] - t["box"][1] >= 2]
    meta = {"pixel_mm": round(g.pixel_mm, 3), "line_mm": round(g.line_mm, 3), "kind": vehicle.kind,
            **source, "source": SOURCE, "seed": seed, "vehicle": s.name, "declared_empty": s.declared,
            "cargo": s.style, "novel": spec.novel, "cab_lines": cab, "lines_per_s": 250, "truth": truth}
    return Scan(high=h16, low=l16, meta=meta)
