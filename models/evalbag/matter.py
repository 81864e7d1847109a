"""Materials of the evaluation bag generator: handbook compositions and bulk densities, and their
mass attenuation (cm²/g) from xraylib's per-element total cross-sections (the only thing this
generator shares with the training simulator is that physical table).

Compositions are written here for this generator alone: electronics as layered mixtures (a phone
board as glass-epoxy with its copper, a Li-ion cell as its electrode foils, oxide and electrolyte),
goods as their main formulas.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import xraylib


def _parse(formula: str) -> dict[int, float]:
    c = xraylib.CompoundParser(formula)
    return {int(z): float(w) for z, w in zip(c["Elements"], c["massFractions"])}


def _blend(*parts: tuple[str, float]) -> dict[int, float]:
    """Mass fractions of a blend of formulas given as (formula, mass share)."""
    out: dict[int, float] = {}
    total = sum(s for _, s in parts)
    for formula, share in parts:
        for z, w in _parse(formula).items():
            out[z] = out.get(z, 0.0) + w * share / total
    return out


# name -> (composition as (formula, mass share) parts, density g/cm³)
RECIPES: dict[str, tuple[tuple[tuple[str, float], ...], float]] = {
    "iron": ((("Fe", 0.98), ("C", 0.01), ("Mn", 0.01)), 7.87),
    "inox": ((("Fe", 0.70), ("Cr", 0.19), ("Ni", 0.09), ("Mn", 0.02)), 7.95),
    "alu": ((("Al", 0.97), ("Mg", 0.02), ("Si", 0.01)), 2.70),
    "zinc_alloy": ((("Zn", 0.95), ("Al", 0.04), ("Cu", 0.01)), 6.6),
    "cu": ((("Cu", 1.0),), 8.94),
    "brass70": ((("Cu", 0.70), ("Zn", 0.30)), 8.53),
    "pb": ((("Pb", 0.97), ("Sb", 0.03)), 11.2),
    "abs": ((("C15H17N", 1.0),), 1.05),
    "polyamide": ((("C6H11NO", 1.0),), 1.14),
    "pc": ((("C16H14O3", 1.0),), 1.20),
    "pp": ((("C3H6", 1.0),), 0.90),
    "pvc": ((("C2H3Cl", 1.0),), 1.38),
    "eva_foam": ((("C6H10O2", 1.0),), 0.12),
    "rubber_sole": ((("C5H8", 0.6), ("SiO2", 0.25), ("C", 0.15)), 1.2),
    "leather": ((("C5H9NO2", 0.85), ("Cr2O3", 0.03), ("H2O", 0.12)), 0.9),
    "cotton": ((("C6H10O5", 1.0),), 0.25),       # folded clothes as packed
    "polyester": ((("C10H8O4", 1.0),), 0.22),
    "fabric_shell": ((("C6H11NO", 1.0),), 1.1),  # bag walls (solid fibre)
    "paper": ((("C6H10O5", 0.82), ("CaCO3", 0.15), ("H2O", 0.03)), 0.85),
    "board": ((("C6H10O5", 0.93), ("H2O", 0.07)), 0.15),  # corrugated board as bulk
    "beech": ((("C6H10O5", 0.92), ("H2O", 0.08)), 0.70),
    "soda_glass": ((("SiO2", 0.73), ("Na2O", 0.14), ("CaO", 0.09), ("MgO", 0.04)), 2.5),
    "display": ((("SiO2", 0.6), ("Al2O3", 0.17), ("B2O3", 0.1), ("Na2O", 0.08), ("MgO", 0.05)), 2.45),
    "fr4": ((("SiO2", 0.55), ("C15H16O2", 0.35), ("Cu", 0.10)), 2.0),
    "li_cell": ((("LiCoO2", 0.38), ("C", 0.20), ("Cu", 0.13), ("Al", 0.07), ("C3H4O3", 0.14),
                 ("LiPF6", 0.03), ("C2H4", 0.05)), 2.6),
    "ferrite": ((("Fe2O3", 0.86), ("SrO", 0.14)), 4.9),
    "ndfeb": ((("Nd", 0.30), ("Fe", 0.69), ("B", 0.01)), 7.5),
    "water": ((("H2O", 1.0),), 1.0),
    "shampoo": ((("H2O", 0.85), ("C12H25NaO4S", 0.12), ("NaCl", 0.03)), 1.02),
    "spirits": ((("H2O", 0.6), ("C2H6O", 0.4)), 0.95),
    "sugar_food": ((("C12H22O11", 0.5), ("H2O", 0.35), ("C16H32O2", 0.15)), 1.1),
    "tobacco_cut": ((("C6H10O5", 0.76), ("H2O", 0.13), ("K2CO3", 0.05), ("CaC2O4", 0.06)), 0.23),
    "filter_tow": ((("C10H16O8", 1.0),), 0.12),
    "cocaine_hcl": ((("C17H22ClNO4", 1.0),), 1.2),
    "heroin_base": ((("C21H23NO5", 1.0),), 1.15),
    "meth_hcl": ((("C10H16ClN", 1.0),), 1.1),
    "silicone": ((("C2H6OSi", 1.0),), 1.1),
    "gunpowder": ((("C6H7N3O11", 0.85), ("C3H5N3O9", 0.1), ("C", 0.05)), 0.95),
    "ceramic": ((("Al2O3", 0.9), ("SiO2", 0.1)), 3.6),
    "nicr_wire": ((("Ni", 0.8), ("Cr", 0.2)), 8.4),
    "mica": ((("KAl3Si3O10(OH)2", 1.0),), 2.8),
    "cardboard_wall": ((("C6H10O5", 0.93), ("H2O", 0.07)), 0.7),  # a carton's solid walls
}


def density(name: str) -> float:
    if name not in RECIPES:
        raise KeyError(f"unknown evalbag material {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name][1]


@lru_cache(maxsize=None)
def mass_attenuation(name: str, energies_kev: tuple[float, ...]) -> np.ndarray:
    """μ/ρ (cm²/g) of the material at each energy: Σ_Z w_Z · CS_Total(Z, E)."""
    density(name)  # unknown names raise the one clear error
    comp = _blend(*RECIPES[name][0])
    out = np.zeros(len(energies_kev))
    for z, w in comp.items():
        out += w * np.array([xraylib.CS_Total(z, float(e)) for e in energies_kev])
    return out
