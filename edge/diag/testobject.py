"""An image-quality test object in the manner of ASTM F792, its simulated scan and automatic scoring.

Four bands along the scan, each made of stripes along the motion (so every line sees them):

    wire display     copper wires of decreasing diameter on a 2 mm steel plate
    step wedge       steel steps 1..32 mm (simple penetration)
    resolution bars  steel bar groups of 3, 2, 1.5 and 1 mm bars with equal gaps
    materials        blocks of polyethylene, aluminium and steel (organic/inorganic/metal)

The scan is rendered with the training simulator's physics (per-energy-bin Beer-Lambert over the
tube spectrum, detector blur and noise); without xraylib it falls back to two-energy
Beer-Lambert with the NIST coefficients at 60/140 keV. Scores are what a person reads off the
test object: thinnest wire visible, thickest step resolved, finest bars resolved, materials right.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from models.material import INORGANIC, METAL, ORGANIC, material_class
from models.scan import Scan

WIRES_MM = (0.64, 0.51, 0.40, 0.32, 0.25, 0.20, 0.16, 0.13, 0.10)
STEPS_MM = (1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32)
BARS_MM = (3.0, 2.0, 1.5, 1.0)
BLOCKS = (("polyethylene", 40.0, ORGANIC), ("aluminium", 8.0, INORGANIC), ("steel", 2.0, METAL))
PLATE_MM = 2.0
WIDTH, SUB = 448, 8
BANDS = {"wires": (10, 70), "steps": (80, 140), "bars": (150, 200), "materials": (210, 260)}
LINES = 270
WIRE_X0, WIRE_DX = 40, 28
STEP_X0, STEP_W = 16, 24
BAR_X0, BAR_GAP = 40, 24
BLOCK_X0, BLOCK_W, BLOCK_DX = 30, 60, 100
BAR_MM = 3.0
# NIST μ/ρ (cm²/g) at 140 / 60 keV and densities, for the fallback without xraylib (DOMAIN.md)
FALLBACK_MU = {"steel": (0.215, 1.205, 7.85), "copper": (0.246, 1.593, 8.96), "aluminium": (0.142, 0.278, 2.70),
               "polyethylene": (0.157, 0.197, 0.94)}
MAX_PIXEL_MM = 2.0    # the test object and its limits are a baggage scanner's; a portal's (5-10 mm) needs its own
WIRE_ROSE = 5.0       # contrast of a wire against the noise of its averaged column: visible when >= 5
STEP_SEPARATION = 1.0  # a step is resolved when it differs from the previous by one pixel noise sigma
BAR_MODULATION = 0.25  # a bar group is resolved when its modulation reaches this


def _x(pixel_mm: float) -> np.ndarray:
    """Sub-pixel positions (mm) across the detector row."""
    return (np.arange(WIDTH * SUB) + 0.5) / SUB * pixel_mm


def _columns(profile: np.ndarray) -> np.ndarray:
    return profile.reshape(WIDTH, SUB).mean(axis=1)


def _profiles(pixel_mm: float) -> dict[str, dict[str, np.ndarray]]:
    """Per band, per material: path length (mm) for every detector column."""
    x, px = _x(pixel_mm), pixel_mm
    wires = np.zeros_like(x)
    for i, d in enumerate(WIRES_MM):
        xc = (WIRE_X0 + i * WIRE_DX + 0.5) * px
        wires += 2 * np.sqrt(np.clip((d / 2) ** 2 - (x - xc) ** 2, 0, None))
    plate = ((x >= 16 * px) & (x < (WIRE_X0 + len(WIRES_MM) * WIRE_DX) * px)) * PLATE_MM
    steps = np.zeros_like(x)
    for i, t in enumerate(STEPS_MM):
        steps[(x >= (STEP_X0 + i * STEP_W) * px) & (x < (STEP_X0 + (i + 1) * STEP_W) * px)] = t
    bars = np.zeros_like(x)
    start = BAR_X0 * px
    for w in BARS_MM:
        for k in range(4):
            bars[(x >= start + 2 * k * w) & (x < start + (2 * k + 1) * w)] = BAR_MM
        start += 8 * w + BAR_GAP * px
    blocks = {name: ((x >= (BLOCK_X0 + i * BLOCK_DX) * px) & (x < (BLOCK_X0 + i * BLOCK_DX + BLOCK_W) * px)) * t
              for i, (name, t, _) in enumerate(BLOCKS)}
    return {"wires": {"steel": _columns(plate), "copper": _columns(wires)},
            "steps": {"steel": _columns(steps)}, "bars": {"steel": _columns(bars)},
            "materials": {k: _columns(v) for k, v in blocks.items()}}


def _lengths(pixel_mm: float) -> dict[str, np.ndarray]:
    maps: dict[str, np.ndarray] = {}
    for band, mats in _profiles(pixel_mm).items():
        y0, y1 = BANDS[band]
        for name, prof in mats.items():
            arr = maps.setdefault(name, np.zeros((LINES, WIDTH), np.float32))
            arr[y0:y1] += prof
    return maps


@lru_cache(maxsize=4)
def make_test_object(pixel_mm: float = 1.0, seed: int = 792) -> Scan:
    """The scan of the test object as this station's scanner would produce it (simulated)."""
    lengths = _lengths(pixel_mm)
    rng = np.random.default_rng(seed)
    try:
        from models.training.physics import Scanner, detect, ideal_transmission

        scanner = Scanner(pixel_mm=pixel_mm)
        high, low = detect(*ideal_transmission(lengths, scanner), rng, scanner)
        how = "models.training.physics"
    except ImportError:
        high, low = _fallback(lengths, rng)
        how = "two-energy Beer-Lambert (NIST 60/140 keV)"
    return Scan(high, low, {"pixel_mm": pixel_mm, "kvp": 160, "source": f"diag test object ({how})"})


def _fallback(lengths: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    att_h = sum(FALLBACK_MU[n][0] * FALLBACK_MU[n][2] / 10 * t for n, t in lengths.items())
    att_l = sum(FALLBACK_MU[n][1] * FALLBACK_MU[n][2] / 10 * t for n, t in lengths.items())
    out = []
    for att, photons in ((att_h, 4e4), (att_l, 6e4)):
        t = rng.poisson(np.exp(-att) * photons) / photons
        out.append(np.clip(t * 65535 + 0.5, 0, 65535).astype(np.uint16))
    return out[0], out[1]


def _att(t: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(t.astype(np.float64), 1.0, 65535.0) / 65535.0)


def _rows(band: str) -> slice:
    y0, y1 = BANDS[band]
    return slice(y0 + 3, y1 - 3)


def score(scan: Scan) -> dict[str, float]:
    """Read the test object: the four scores and the continuous figures compared with a baseline."""
    a_low, a_high = _att(scan.low), _att(scan.high)
    wire_mm, wire_cnr = _wires(a_low[_rows("wires")])
    pen_mm, step_sep = _steps(a_high[_rows("steps")])
    res_mm, bar_mod = _bars(a_high[_rows("bars")])
    out = {"wire_mm": wire_mm, "penetration_mm": pen_mm, "resolution_mm": res_mm,
            "material_accuracy": _materials(scan.high[_rows("materials")], scan.low[_rows("materials")]),
            "wire_cnr_0.25mm": wire_cnr, "step_separation_16mm": step_sep, "bar_modulation_2mm": bar_mod}
    return {k: float(v) for k, v in out.items()}


def _wires(a: np.ndarray) -> tuple[float, float]:
    prof = a.mean(axis=0)
    centres = [WIRE_X0 + i * WIRE_DX for i in range(len(WIRES_MM))]
    mask = np.zeros(a.shape[1], bool)
    mask[20:centres[-1] + 10] = True
    for c in centres:
        mask[c - 4:c + 5] = False
    background = float(np.median(prof[mask]))
    sigma = float(a[:, mask].std()) / np.sqrt(a.shape[0])
    visible, cnr_ref = float("nan"), 0.0
    for d, c in zip(WIRES_MM, centres):
        cnr = (float(prof[c - 1:c + 2].max()) - background) / max(sigma, 1e-9)
        if d == 0.25:
            cnr_ref = cnr
        if cnr >= WIRE_ROSE:
            visible = d
    return visible, cnr_ref


def _steps(a: np.ndarray) -> tuple[float, float]:
    means, sigmas = [], []
    for i in range(len(STEPS_MM)):
        block = a[:, STEP_X0 + i * STEP_W + 3: STEP_X0 + (i + 1) * STEP_W - 3]
        means.append(float(block.mean()))
        sigmas.append(float(block.std()))
    resolved, sep16 = 0.0, 0.0
    for i in range(1, len(STEPS_MM)):
        sep = (means[i] - means[i - 1]) / max(sigmas[i], 1e-9)
        if STEPS_MM[i] == 16:
            sep16 = sep
        if sep >= STEP_SEPARATION and resolved == STEPS_MM[i - 1]:
            resolved = float(STEPS_MM[i])
        elif i == 1 and sep >= STEP_SEPARATION:
            resolved = float(STEPS_MM[1])
    return resolved, sep16


def _bars(a: np.ndarray) -> tuple[float, float]:
    prof = a.mean(axis=0)
    start, finest, mod2 = float(BAR_X0), float("nan"), 0.0
    for w in BARS_MM:
        lo, hi = int(start), int(np.ceil(start + 7 * w))
        seg = prof[lo:hi]
        mod = float((seg.max() - seg.min()) / max(seg.max() + seg.min(), 1e-9))
        if w == 2.0:
            mod2 = mod
        if mod >= BAR_MODULATION:
            finest = w
        start += 8 * w + BAR_GAP
    return finest, mod2


def _materials(high: np.ndarray, low: np.ndarray) -> float:
    cls = material_class(high, low)
    right = []
    for i, (_, _, want) in enumerate(BLOCKS):
        x0 = BLOCK_X0 + i * BLOCK_DX
        right.append(float((cls[:, x0 + 4: x0 + BLOCK_W - 4] == want).mean()))
    return float(np.mean(right))
