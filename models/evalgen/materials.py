"""Materials of generator B: element mass fractions and densities, written for this generator alone.

Compositions are nominal handbook formulas (steel as Fe with C/Mn, tobacco as cellulose with its
mineral ash, the three drugs as their hydrochloride or base formulas); densities are bulk values as
packed (a master case of cigarettes is mostly air between the sticks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import xraylib


@dataclass(frozen=True)
class Material:
    """A named mixture: `fractions` maps atomic number to mass fraction; `density` in g/cm³."""

    name: str
    fractions: tuple[tuple[int, float], ...]
    density: float


def _formula(formula: str) -> tuple[tuple[int, float], ...]:
    """Mass fractions of a chemical formula, by xraylib's parser."""
    c = xraylib.CompoundParser(formula)
    return tuple((int(z), float(w)) for z, w in zip(c["Elements"], c["massFractions"]))


def _mix(*parts: tuple[str, float]) -> tuple[tuple[int, float], ...]:
    """Mass-weighted mixture of formulas: parts are (formula, mass share)."""
    total: dict[int, float] = {}
    norm = sum(share for _, share in parts)
    for formula, share in parts:
        for z, w in _formula(formula):
            total[z] = total.get(z, 0.0) + w * share / norm
    return tuple(sorted(total.items()))


@lru_cache(maxsize=None)
def catalogue() -> dict[str, Material]:
    """Every material the scenes use, by name (built once: xraylib parsing is not free)."""
    table = [
        ("air", _mix(("N2", 0.755), ("O2", 0.232), ("Ar", 0.013)), 0.0012),
        ("steel", _mix(("Fe", 0.985), ("C", 0.005), ("Mn", 0.01)), 7.85),
        ("cast_iron", _mix(("Fe", 0.94), ("C", 0.035), ("Si", 0.025)), 7.1),
        ("aluminium", _formula("Al"), 2.70),
        ("copper", _formula("Cu"), 8.96),
        ("lead", _formula("Pb"), 11.34),
        ("brass", _mix(("Cu", 0.65), ("Zn", 0.35)), 8.5),
        ("rubber", _mix(("C5H8", 0.65), ("C", 0.28), ("ZnO", 0.02), ("S", 0.02), ("SiO2", 0.03)), 1.15),
        ("glass", _mix(("SiO2", 0.72), ("Na2O", 0.14), ("CaO", 0.10), ("MgO", 0.04)), 2.5),
        ("plastic", _formula("C3H6"), 0.92),
        ("foam", _mix(("C25H42N2O6", 1.0)), 0.05),
        ("fabric", _mix(("C6H10O5", 0.6), ("C10H8O4", 0.4)), 0.35),
        ("diesel", _formula("C12H23"), 0.84),
        ("water", _formula("H2O"), 1.0),
        ("wood", _mix(("C6H10O5", 0.95), ("H2O", 0.05)), 0.55),
        ("paper", _mix(("C6H10O5", 0.9), ("CaCO3", 0.1)), 0.75),
        ("cardboard", _mix(("C6H10O5", 0.95), ("H2O", 0.05)), 0.12),
        ("ceramic", _mix(("SiO2", 0.6), ("Al2O3", 0.25), ("CaO", 0.08), ("Fe2O3", 0.04), ("K2O", 0.03)), 2.3),
        ("grain", _mix(("C6H10O5", 0.85), ("H2O", 0.13), ("K2O", 0.01), ("P2O5", 0.01)), 0.78),
        ("textile_bales", _mix(("C6H10O5", 0.7), ("C10H8O4", 0.3)), 0.45),
        ("battery", _mix(("Pb", 0.6), ("H2SO4", 0.2), ("H2O", 0.12), ("C3H6", 0.08)), 3.0),
        ("tobacco", _mix(("C6H10O5", 0.78), ("H2O", 0.12), ("K2CO3", 0.04), ("CaCO3", 0.04), ("Al", 0.02)), 0.27),
        ("cocaine", _formula("C17H22ClNO4"), 1.15),
        ("heroin", _formula("C21H23NO5"), 1.10),
        ("methamphetamine", _formula("C10H16ClN"), 1.05),
        ("csi", _formula("CsI"), 4.51),
        ("cdwo4", _formula("CdWO4"), 7.9),
        ("tungsten", _formula("W"), 19.3),
        ("beryllium", _formula("Be"), 1.85),
        ("machinery", _mix(("Fe", 0.9), ("Cu", 0.05), ("Al", 0.05)), 7.6),
    ]
    return {name: Material(name, fractions, density) for name, fractions, density in table}


def material(name: str) -> Material:
    """The material called `name`; an unknown name raises KeyError naming the known ones."""
    table = catalogue()
    if name not in table:
        raise KeyError(f"unknown material {name!r}; known: {sorted(table)}")
    return table[name]
