"""Materials of the simulator: composition by mass, density, and μ(E) from xraylib per energy bin."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Energy bins of the simulation (keV): 2.5 keV wide from 16 to 161 keV; lead's K-edge (88 keV) falls
# between bin centres, which is what makes lead look lighter than it is in a two-channel ratio.
BIN_KEV = 2.5
ENERGIES = np.arange(17.25, 161.0, BIN_KEV)
# Tubes above 161 kV (light-vehicle portals, up to 450 kV; xraylib stops at 800 keV): 7.5 keV bins,
# fewer of them because a portal scan has ~20 times the pixels of a bag.
PORTAL_BIN_KEV = 7.5


def energy_grid(kvp: float) -> np.ndarray:
    """Bin centres (keV) for a tube of kvp: the baggage grid up to 161 kV, a coarser one above."""
    if kvp <= 161.0:
        return ENERGIES
    return np.arange(20.0 + PORTAL_BIN_KEV / 2, kvp, PORTAL_BIN_KEV)

# name -> (density g/cm³, {xraylib formula or NIST compound name: mass fraction})
MATERIALS: dict[str, tuple[float, dict[str, float]]] = {
    "steel": (7.85, {"Fe": 0.98, "Mn": 0.01, "C": 0.01}),
    "stainless": (7.9, {"Fe": 0.70, "Cr": 0.19, "Ni": 0.09, "Mn": 0.02}),
    "aluminium": (2.70, {"Al": 1.0}),
    "copper": (8.96, {"Cu": 1.0}),
    "brass": (8.5, {"Cu": 0.65, "Zn": 0.35}),
    "cupronickel": (8.9, {"Cu": 0.75, "Ni": 0.25}),
    "zinc": (7.1, {"Zn": 1.0}),
    "lead": (11.35, {"Pb": 1.0}),
    "tungsten": (19.3, {"W": 1.0}),
    "tin": (7.3, {"Sn": 1.0}),
    "polyethylene": (0.94, {"Polyethylene": 1.0}),
    "polycarbonate": (1.20, {"Polycarbonate (Makrolon, Lexan)": 1.0}),
    "pvc": (1.38, {"Polyvinyl Chloride": 1.0}),
    "pet": (1.38, {"Polyethylene Terephthalate (Mylar)": 1.0}),
    "nylon": (1.14, {"Nylon, type 6 and type 6/6": 1.0}),
    "rubber": (1.10, {"Rubber, Natural": 0.85, "CaCO3": 0.15}),
    "pmma": (1.18, {"Polymethyl Methacralate (Lucite, Perspex)": 1.0}),
    "water": (1.00, {"H2O": 1.0}),
    "gel": (1.05, {"H2O": 0.75, "C3H8O3": 0.2, "NaCl": 0.05}),
    "textile": (0.25, {"C6H10O5": 0.6, "Nylon, type 6 and type 6/6": 0.4}),
    "paper": (0.80, {"C6H10O5": 0.88, "CaCO3": 0.12}),
    "cardboard": (0.55, {"C6H10O5": 0.95, "CaCO3": 0.05}),
    "wood": (0.65, {"C6H10O5": 1.0}),
    "tobacco": (0.32, {"C6H10O5": 0.86, "K2CO3": 0.05, "CaCO3": 0.06, "NaCl": 0.03}),
    "food": (1.05, {"H2O": 0.55, "C6H12O6": 0.35, "NaCl": 0.02, "C3H8O3": 0.08}),
    "cocaine": (1.20, {"C17H21NO4": 0.92, "CaCO3": 0.03, "H2O": 0.05}),
    "heroin": (1.30, {"C21H23NO5": 0.95, "H2O": 0.05}),
    "glass": (2.50, {"Glass, Plate": 1.0}),
    "pcb": (1.90, {"SiO2": 0.45, "C15H16O2": 0.35, "Cu": 0.15, "Br": 0.05}),
    "li_cell": (2.60, {"LiCoO2": 0.40, "C": 0.20, "Cu": 0.14, "Al": 0.08, "C3H4O3": 0.13, "LiPF6": 0.05}),
    "silicon": (2.33, {"Si": 1.0}),
    "ceramic": (2.40, {"SiO2": 0.6, "Al2O3": 0.3, "CaO": 0.1}),
    "salt": (1.2, {"NaCl": 0.5, "C6H10O5": 0.5}),
    "csi": (4.51, {"CsI": 1.0}),
    "cdwo4": (7.90, {"CdWO4": 1.0}),
    "methamphetamine": (1.10, {"C10H15N": 0.90, "H2O": 0.10}),
    "diesel": (0.84, {"C16H34": 1.0}),
}

ORGANIC = ("polyethylene", "polycarbonate", "pet", "nylon", "rubber", "pmma", "water", "gel", "textile",
           "paper", "cardboard", "wood", "tobacco", "food", "cocaine", "heroin")
INORGANIC = ("aluminium", "glass", "silicon", "ceramic", "pvc", "salt")
METAL = ("steel", "stainless", "copper", "brass", "cupronickel", "zinc", "tin", "lead", "tungsten")


def mass_attenuation(name: str, energies: np.ndarray = ENERGIES) -> np.ndarray:
    """μ/ρ in cm²/g of a material at every bin energy (keV, ≤ 800; total cross-section incl. coherent)."""
    return _mass_attenuation(name, tuple(float(e) for e in energies))


@lru_cache(maxsize=None)
def _mass_attenuation(name: str, energies: tuple[float, ...]) -> np.ndarray:
    import xraylib  # training extra only

    _, parts = MATERIALS[name]
    mu = np.zeros(len(energies))
    for formula, fraction in parts.items():
        mu += fraction * np.array([xraylib.CS_Total_CP(formula, e) for e in energies])
    return mu


@lru_cache(maxsize=None)
def elements(name: str) -> dict[int, float]:
    """Mass fraction of every element (atomic number) in a material."""
    import xraylib

    out: dict[int, float] = {}
    for formula, fraction in MATERIALS[name][1].items():
        try:
            data = xraylib.CompoundParser(formula)
        except ValueError:
            data = xraylib.GetCompoundDataNISTByName(formula)
        for z, w in zip(data["Elements"], data["massFractions"]):
            out[int(z)] = out.get(int(z), 0.0) + fraction * float(w)
    return out


def linear_attenuation_per_mm(name: str, density: float | None = None, energies: np.ndarray = ENERGIES) -> np.ndarray:
    """μ in 1/mm at every bin energy; density in g/cm³ defaults to the table's."""
    rho = MATERIALS[name][0] if density is None else density
    return mass_attenuation(name, energies) * rho / 10.0


def mu_matrix(names: list[str], energies: np.ndarray = ENERGIES) -> np.ndarray:
    """Bins × materials matrix of linear attenuation per mm (float32) for vectorised rendering."""
    return np.stack([linear_attenuation_per_mm(n, None, energies) for n in names], axis=1).astype(np.float32)
