"""Step-wedge calibration of the material display: R = ln T_low / ln T_high of reference materials."""

from __future__ import annotations

import numpy as np

from models.training.physics import Scanner, ideal_transmission

# reference material -> thickness range (mm) of its step wedge
WEDGES = {"water": (1.0, 600.0), "aluminium": (0.2, 160.0), "steel": (0.05, 35.0), "lead": (0.01, 3.0)}
GRID = np.round(np.geomspace(0.03, 4.6, 24), 4)   # −ln T_high at which the table is tabulated


def wedge(material: str, thickness_mm: np.ndarray, scanner: Scanner = Scanner()) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free (high, low) transmission of a step wedge of one material."""
    high, low = ideal_transmission({material: thickness_mm.astype(np.float32)[None, :]}, scanner)
    return high[0], low[0]


def ratio_curve(material: str, scanner: Scanner = Scanner()) -> np.ndarray:
    """R of the material at every GRID value of high-energy attenuation."""
    lo, hi = WEDGES[material]
    high, low = wedge(material, np.geomspace(lo, hi, 400), scanner)
    a_high = -np.log(high)
    return np.interp(GRID, a_high, -np.log(low) / a_high)


def table(scanner: Scanner = Scanner()) -> dict[str, list[float]]:
    """The calibration table as embedded in models/material.py."""
    out = {"a_high": GRID.tolist()}
    out.update({m: np.round(ratio_curve(m, scanner), 4).tolist() for m in WEDGES})
    return out


if __name__ == "__main__":
    for key, values in table().items():
        print(f"    {key!r}: {values},")
