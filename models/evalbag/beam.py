"""The evaluation generator's scanner: an X-ray tube, a two-layer detector and its faults.

Tube: thick-target bremsstrahlung after Kramers (photons ∝ (E0 − E)/E per unit energy), tungsten
Kα/Kβ lines (59.3 and 67.2 keV) when the voltage allows, through a beryllium window and drawn
aluminium/copper filtration. Detector: a gadolinium-oxysulfide front screen (low channel), a copper
or tin interleaf, a caesium-iodide rear crystal (high channel); each channel integrates energy.
Everything per-scan is drawn from `ScannerDraw`: voltage, filters, screen thicknesses, quanta,
blur, channel crosstalk, afterglow along the belt, gain ripple and drift, dead channels.

Scenes arrive as areal density maps per material (g/cm²), so transmission is
T = Σ_E w(E) · exp(−Σ_m (μ/ρ)_m(E) · x_m) per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from models.evalbag.matter import density, mass_attenuation

FULL_SCALE = 65535.0


@dataclass(frozen=True)
class ScannerDraw:
    """One drawn scanner; `draw` samples a plausible baggage line scanner of another make."""

    kvp: float = 150.0
    be_mm: float = 0.8
    al_mm: float = 1.5
    cu_mm: float = 0.1
    gos_mm: float = 0.2            # front screen (low channel), mm of Gd2O2S
    interleaf: str = "cu"          # "cu" or "sn"
    interleaf_mm: float = 0.5
    csi_mm: float = 4.0            # rear crystal (high channel)
    quanta: float = 3.0e4          # quanta per pixel in air (high channel; low gets 1.6 times more)
    blur_mm: float = 0.6
    crosstalk: float = 0.04        # share of signal that leaks to each neighbouring detector pixel
    afterglow: float = 0.01        # share of a line's signal that remains in the next line
    gain_ripple: float = 0.006     # spread of channel gains
    drift: float = 0.004           # slow gain drift along the scan
    pixel_mm: float = 1.0

    @classmethod
    def draw(cls, rng: np.random.Generator, pitch: tuple[float, float] = (0.9, 1.15)) -> ScannerDraw:
        return cls(kvp=float(rng.choice([140.0, 150.0, 160.0, 170.0])), be_mm=float(rng.uniform(0.5, 1.2)),
                   al_mm=float(rng.uniform(0.5, 3.0)), cu_mm=float(rng.choice([0.0, 0.1, 0.3])),
                   gos_mm=float(rng.uniform(0.12, 0.3)), interleaf=str(rng.choice(["cu", "sn"])),
                   interleaf_mm=float(rng.uniform(0.3, 0.8)), csi_mm=float(rng.uniform(2.5, 5.0)),
                   quanta=float(rng.uniform(1.5e4, 6e4)), blur_mm=float(rng.uniform(0.4, 0.9)),
                   crosstalk=float(rng.uniform(0.0, 0.08)), afterglow=float(rng.uniform(0.0, 0.03)),
                   gain_ripple=float(rng.uniform(0.002, 0.01)), drift=float(rng.uniform(0.0, 0.008)),
                   pixel_mm=round(float(rng.uniform(*pitch)), 3))


ENERGIES_STEP = 4.0


def energies(kvp: float) -> tuple[float, ...]:
    return tuple(float(e) for e in np.arange(10.0 + ENERGIES_STEP / 2, kvp, ENERGIES_STEP))


# Detector and filter layers, written as materials of this module only (not in the scene table).
_LAYERS = {"be": ((4, 1.0),), "gos": ((64, 0.8365), (8, 0.0854), (16, 0.0781)), "cu": ((29, 1.0),),
           "sn": ((50, 1.0),), "csi": ((55, 0.5116), (53, 0.4884),)}
_LAYER_DENSITY = {"be": 1.85, "gos": 7.34, "cu": 8.94, "sn": 7.29, "csi": 4.51}


def _layer_mu(name: str, e: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) of a detector or filter layer."""
    import xraylib

    mu = np.array([sum(w * xraylib.CS_Total(z, float(x)) for z, w in _LAYERS[name]) for x in e])
    return mu * _LAYER_DENSITY[name] / 10.0


@lru_cache(maxsize=64)
def channel_weights(s: ScannerDraw) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) energy weights per bin of energies(s.kvp), each summing to 1."""
    e = np.array(energies(s.kvp))
    photons = np.clip(s.kvp - e, 0, None) / e
    if s.kvp > 70:
        for line, share in ((59.3, 0.07), (67.2, 0.02)):
            photons[np.argmin(np.abs(e - line))] += share * photons.sum()
    photons = photons * np.exp(-_layer_mu("be", e) * s.be_mm)
    photons = photons * np.exp(-mass_attenuation("alu", tuple(e)) * density("alu") / 10 * s.al_mm)
    photons = photons * np.exp(-_layer_mu("cu", e) * s.cu_mm)
    front = 1 - np.exp(-_layer_mu("gos", e) * s.gos_mm)
    passed = np.exp(-_layer_mu("gos", e) * s.gos_mm - _layer_mu(s.interleaf, e) * s.interleaf_mm)
    rear = passed * (1 - np.exp(-_layer_mu("csi", e) * s.csi_mm))
    low, high = photons * e * front, photons * e * rear
    return high / high.sum(), low / low.sum()


def transmission(areal: dict[str, np.ndarray], s: ScannerDraw) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free (high, low) transmission of areal density maps (g/cm²) per material."""
    names = sorted(areal)
    shape = next(iter(areal.values())).shape
    high = np.ones(shape, np.float32)
    low = np.ones(shape, np.float32)
    if not names:
        return high, low
    e = energies(s.kvp)
    stack = np.stack([areal[n].ravel() for n in names]).astype(np.float32)
    hit = np.flatnonzero(stack.max(axis=0) > 1e-6)
    mu = np.stack([mass_attenuation(n, e) for n in names], axis=1).astype(np.float32)  # E × M
    line = np.minimum(mu @ stack[:, hit], 40.0)
    t = np.exp(-line)
    w_high, w_low = channel_weights(s)
    high.ravel()[hit] = w_high.astype(np.float32) @ t
    low.ravel()[hit] = w_low.astype(np.float32) @ t
    return high, low


def read_out(high: np.ndarray, low: np.ndarray, s: ScannerDraw, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What the detector reports: blur, crosstalk, afterglow, quantum and electronic noise, gains, faults; uint16."""
    lines, pixels = high.shape
    sigma = s.blur_mm / s.pixel_mm
    kernel = np.array([s.crosstalk, 1 - 2 * s.crosstalk, s.crosstalk], np.float32)
    gains = 1 + rng.normal(0, s.gain_ripple, (1, pixels))
    drift = 1 + s.drift * np.sin(np.linspace(0, rng.uniform(1, 6), lines) + rng.uniform(0, 6))[:, None]
    dead = rng.integers(0, pixels, size=int(rng.poisson(0.3)))
    out = []
    for plane, quanta in ((high, s.quanta), (low, 1.6 * s.quanta)):
        x = cv2.GaussianBlur(plane, (0, 0), sigma)
        x = cv2.filter2D(x, -1, kernel[None, :], borderType=cv2.BORDER_REPLICATE)  # across detector pixels
        if s.afterglow > 0:
            x = x.copy()
            for i in range(1, lines):
                x[i] += s.afterglow * (x[i - 1] - x[i])
        x = x + np.asarray(rng.standard_normal(x.shape), np.float32) * np.sqrt(np.clip(x, 0, None) / quanta)
        x = x + rng.normal(0, 2e-4, x.shape).astype(np.float32)
        x = x * np.asarray(gains * drift, np.float32)
        x[:, dead] *= 0.01
        out.append(np.clip(x * FULL_SCALE + 0.5, 0, FULL_SCALE).astype(np.uint16))
    return out[0], out[1]
