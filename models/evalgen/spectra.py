"""Portal sources and detectors of generator B, reduced to a fast transmission lookup.

Tube portals: a Kramers thick-target spectrum (photons ∝ (E0 − E)/E) through the tube window and
a filter, read by a sandwich detector (thin CsI in front = low channel, copper, thick CsI behind =
high channel), each energy-integrating (signal ∝ photons × E × absorbed fraction).
Linac portals: interlaced pulses at two end-point energies, each a Kramers-shaped MV spectrum
hardened by the target and flattening steel, read by one thick CdWO4 crystal.

Attenuation in the scene is carried as two basis thicknesses, water and steel (g/cm²): every
material is fitted to a water + steel mix over the source's spectrum (Alvarez–Macovski), and the
channel's −ln T over a grid of those two is tabulated once per source, so a scan of millions of
pixels costs one bilinear lookup instead of a sum over energies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.evalgen.attenuation import mass_attenuation
from models.evalgen.materials import catalogue, material

GRID = 256
NEGATIVE_NODES = 8  # linear nodes below zero; the rest are dense near zero (u²)


@dataclass(frozen=True)
class Source:
    """A portal's beam: `kind` "tube" or "linac"; `peaks_kev` = (high, low) end points."""

    name: str
    kind: str
    peaks_kev: tuple[float, float]
    photons: tuple[float, float]  # quanta per pixel per line in air, high and low channel
    scatter: float  # share of the primary signal that returns as broad scatter
    heavy: str  # second basis material: steel for tubes, lead for linacs (no K-edge there)
    water_range: tuple[float, float]  # tabulated basis thicknesses, g/cm²
    heavy_range: tuple[float, float]


SOURCES = {
    "tube300": Source("tube300", "tube", (300.0, 300.0), (4.0e4, 1.5e4), 0.015, "steel", (-10, 600), (-3, 250)),
    "tube450": Source("tube450", "tube", (450.0, 450.0), (6.0e4, 2.5e4), 0.02, "steel", (-10, 800), (-3, 350)),
    "linac6": Source("linac6", "linac", (6000.0, 4000.0), (2.0e5, 1.2e5), 0.012, "lead", (-20, 1500), (-3, 80)),
    "linac9": Source("linac9", "linac", (9000.0, 6000.0), (3.0e5, 2.0e5), 0.015, "lead", (-20, 1800), (-3, 100)),
}


def _energies(src: Source) -> np.ndarray:
    """Bin centres: 10 keV steps for tubes, 28 log-spaced bins from 150 keV for linacs."""
    top = max(src.peaks_kev)
    if src.kind == "tube":
        return np.arange(15.0, top, 10.0) + 5.0
    return np.geomspace(150.0, top * 0.985, 28)


def _through(names_thick: list[tuple[str, float]], e: np.ndarray) -> np.ndarray:
    """Transmission of layers given as (material, thickness in mm)."""
    t = np.ones_like(e)
    for name, mm in names_thick:
        m = material(name)
        t *= np.exp(-mass_attenuation(m, e) * m.density * mm / 10)
    return t


def _absorbed(name: str, mm: float, e: np.ndarray) -> np.ndarray:
    """Fraction of photons a detector layer stops."""
    return 1 - _through([(name, mm)], e)


def channel_weights(src: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energies, high weights, low weights): each channel's signal per bin, normalised to 1."""
    e = _energies(src)
    if src.kind == "tube":
        photons = np.clip(src.peaks_kev[0] - e, 0, None) / e
        photons *= _through([("beryllium", 1.0), ("aluminium", 2.0), ("copper", 0.5)], e)
        low = photons * e * _absorbed("csi", 0.4, e)
        high = photons * e * _through([("csi", 0.4), ("copper", 1.0)], e) * _absorbed("csi", 5.0, e)
    else:
        spectra = []
        for peak in src.peaks_kev:
            photons = np.clip(peak - e, 0, None) / e * _through([("tungsten", 1.5), ("steel", 12.0)], e)
            spectra.append(photons * e * _absorbed("cdwo4", 30.0, e))
        high, low = spectra
    return e, high / high.sum(), low / low.sum()


@lru_cache(maxsize=None)
def basis_table(src_name: str) -> dict[str, tuple[float, float]]:
    """Each material as (water, heavy) coefficients: μ_m ≈ a·μ_water + b·μ_heavy, fitted over the spectrum."""
    src = SOURCES[src_name]
    e, high, low = channel_weights(src)
    weight = np.sqrt(high + low + 1e-6)
    mw, ms = mass_attenuation(material("water"), e), mass_attenuation(material(src.heavy), e)
    out = {}
    for name, mat in catalogue().items():
        mu = mass_attenuation(mat, e)
        relative = weight / mu  # fit relative error, so the photoelectric peak at 20 keV does not rule
        design = np.stack([mw * relative, ms * relative], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, mu * relative, rcond=None)
        out[name] = (float(a), float(b))
    return out


def _axis(lo: float, hi: float) -> np.ndarray:
    """Grid nodes: a few linear ones from lo to 0, then hi·u² (dense near zero, exact 0 node)."""
    neg = np.linspace(lo, 0.0, NEGATIVE_NODES)[:-1]
    u = np.linspace(0.0, 1.0, GRID - NEGATIVE_NODES + 1)
    return np.concatenate([neg, hi * u**2])


@lru_cache(maxsize=None)
def line_integral_table(src_name: str) -> tuple[np.ndarray, np.ndarray]:
    """−ln T of the high and low channel over the (water, steel) grid, each GRID×GRID float32."""
    src = SOURCES[src_name]
    e, high, low = channel_weights(src)
    mw, ms = mass_attenuation(material("water"), e), mass_attenuation(material(src.heavy), e)
    aw, as_ = _axis(*src.water_range), _axis(*src.heavy_range)
    expo = np.exp(-(aw[:, None, None] * mw + as_[None, :, None] * ms))
    tables = []
    for w in (high, low):
        t = np.clip(expo @ w, 1e-30, None)
        tables.append((-np.log(t)).astype(np.float32))
    return tables[0], tables[1]


def _grid_index(values: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer node below each value and the fraction towards the next, on `_axis`'s grid."""
    v = np.clip(values, lo, hi)
    pos = np.sqrt(np.maximum(v, 0) / hi) * (GRID - NEGATIVE_NODES) + (NEGATIVE_NODES - 1)
    u = np.where(v < 0, (v - lo) / -lo * (NEGATIVE_NODES - 1), pos)
    i = np.minimum(u.astype(np.int32), GRID - 2)
    return i, (u - i).astype(np.float32)


def transmit(src_name: str, water: np.ndarray, heavy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Primary transmission (high, low) of basis thickness maps (g/cm²), by bilinear lookup."""
    src = SOURCES[src_name]
    iw, fw = _grid_index(water, *src.water_range)
    is_, fs = _grid_index(heavy, *src.heavy_range)
    out = []
    for table in line_integral_table(src_name):
        flat = table.ravel()
        base = iw * GRID + is_
        top = flat[base] * (1 - fs) + flat[base + 1] * fs
        bottom = flat[base + GRID] * (1 - fs) + flat[base + GRID + 1] * fs
        out.append(np.exp(-(top * (1 - fw) + bottom * fw)))
    return out[0], out[1]
