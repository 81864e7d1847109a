"""MV linac physics for container portals: μ/ρ from 0.1 to 10 MeV, bremsstrahlung spectra, detector response.

xraylib's cross-sections stop at 800 keV, and above ~1 MeV pair production enters the attenuation
(it is what makes lead and steel differ from organics in a 9/6 MV dual-energy image). Below 800 keV
this module takes xraylib's values per element; from 1 to 10 MeV it uses the table below:

    Source: NIST XCOM (Berger, Hubbell, Seltzer et al., NIST Standard Reference Database 8), "total
    attenuation with coherent scattering", the values NIST publishes as the X-Ray Mass Attenuation
    Coefficients tables (Hubbell & Seltzer, NIST SRD 126) for water (liquid), aluminium, iron, lead.

Other elements are interpolated per electron: μ/ρ = (Z/A)·s(Z, E), where s (cross-section per
electron, cm²/g per unit Z/A) is linear in Z between the four references (water counted as Z 6.6,
its electron-weighted mean). Compton scattering is the same per electron for every element, pair
production grows about linearly with Z per electron, so this is within ~1–2 % of XCOM from carbon
to lead at these energies (tests check copper and carbon against XCOM and Klein–Nishina).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.training.materials import MATERIALS, elements

XCOM_MEV = np.array([1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0])
# μ/ρ in cm²/g at XCOM_MEV (NIST XCOM / SRD 126, total with coherent scattering)
XCOM: dict[str, np.ndarray] = {
    "water": np.array([0.07072, 0.06323, 0.05754, 0.04942, 0.03969, 0.03403, 0.03031, 0.02770, 0.02429, 0.02219]),
    "aluminium": np.array([0.06146, 0.05496, 0.05006, 0.04324, 0.03541, 0.03106, 0.02836, 0.02655, 0.02437, 0.02318]),
    "iron": np.array([0.05995, 0.05350, 0.04883, 0.04265, 0.03621, 0.03312, 0.03146, 0.03057, 0.02991, 0.02994]),
    "lead": np.array([0.07102, 0.05876, 0.05222, 0.04606, 0.04234, 0.04197, 0.04272, 0.04391, 0.04675, 0.04972]),
}
# (Z used for the interpolation, Z/A) of the references
XCOM_Z = {"water": (6.6, 0.55508), "aluminium": (13.0, 0.48181), "iron": (26.0, 0.46557), "lead": (82.0, 0.39575)}
XRAYLIB_MAX_KEV = 800.0
# Bin centres (keV): 100 keV to 9.5 MeV, finer at low energy where attenuation changes fastest.
MV_ENERGIES = np.concatenate([[100.0, 150.0, 200.0, 300.0, 400.0, 550.0, 750.0],
                              np.geomspace(1000.0, 9500.0, 14)])
MV_WIDTHS = np.gradient(MV_ENERGIES)


def _atomic_weight(z: int) -> float:
    import xraylib

    return float(xraylib.AtomicWeight(z))


def per_electron(z: float, mev: np.ndarray) -> np.ndarray:
    """s(Z, E) = (μ/ρ)/(Z/A) in cm²/g, linear in Z between the XCOM references (clamped beyond lead)."""
    refs = sorted(XCOM, key=lambda n: XCOM_Z[n][0])
    zs = np.array([XCOM_Z[n][0] for n in refs])
    s = np.stack([np.exp(np.interp(np.log(mev), np.log(XCOM_MEV), np.log(XCOM[n]))) / XCOM_Z[n][1] for n in refs])
    i = int(np.clip(np.searchsorted(zs, z) - 1, 0, len(zs) - 2))
    f = min((z - zs[i]) / (zs[i + 1] - zs[i]), 1.0)
    return (1 - f) * s[i] + f * s[i + 1]


def element_mu_rho(z: int, kev: np.ndarray) -> np.ndarray:
    """μ/ρ (cm²/g) of an element: xraylib up to 800 keV, the XCOM table interpolated per electron above."""
    import xraylib

    low = kev <= XRAYLIB_MAX_KEV
    out = np.empty(len(kev))
    out[low] = [xraylib.CS_Total(z, float(e)) for e in kev[low]]
    out[~low] = z / _atomic_weight(z) * per_electron(float(z), kev[~low] / 1000.0)
    return out


@lru_cache(maxsize=None)
def mv_mass_attenuation(name: str) -> np.ndarray:
    """μ/ρ (cm²/g) of a simulator material at MV_ENERGIES (mixture rule over its elements)."""
    return sum((w * element_mu_rho(z, MV_ENERGIES) for z, w in elements(name).items()), np.zeros(len(MV_ENERGIES)))


def mv_mu_matrix(names: list[str]) -> np.ndarray:
    """Bins × materials linear attenuation per mm (float32) at MV_ENERGIES."""
    return np.stack([mv_mass_attenuation(n) * MATERIALS[n][0] / 10.0 for n in names], axis=1).astype(np.float32)


@dataclass(frozen=True)
class Linac:
    """A dual-energy linac portal: interlaced pulses at two end-point energies, one thick scintillator row.

    The high channel is the image of the higher end-point (e.g. 9 MV), the low channel the lower (6 MV).
    """

    high_mv: float = 9.0
    low_mv: float = 6.0
    target_w_mm: float = 1.5          # tungsten target and flattening: removes the soft end of the spectrum
    detector_cdwo4_mm: float = 30.0   # energy-integrating CdWO4 crystal depth along the beam
    photons: float = 2.0e4            # detected quanta per pixel in air (each channel)
    scatter: float = 0.03             # scatter fraction relative to the primary in air
    blur_sigma_px: float = 0.8
    electronic_noise: float = 2.0e-4


def bremsstrahlung(end_mev: float, target_w_mm: float) -> np.ndarray:
    """Photons per MV_ENERGIES bin of a thick-target spectrum (Kramers-like (E0−E)/E), filtered by the target."""
    e = MV_ENERGIES / 1000.0
    n = np.clip((end_mev - e) / e, 0.0, None) * MV_WIDTHS
    return n * np.exp(-mv_mass_attenuation("tungsten") * MATERIALS["tungsten"][0] / 10.0 * target_w_mm)


@lru_cache(maxsize=8)
def mv_channel_weights(linac: Linac) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (low, high) weights per bin: spectrum × energy × absorption in the scintillator."""
    absorbed = 1.0 - np.exp(-mv_mass_attenuation("cdwo4") * MATERIALS["cdwo4"][0] / 10.0 * linac.detector_cdwo4_mm)
    out = []
    for end in (linac.low_mv, linac.high_mv):
        w = bremsstrahlung(end, linac.target_w_mm) * MV_ENERGIES * absorbed
        out.append((w / w.sum()).astype(np.float32))
    return out[0], out[1]
