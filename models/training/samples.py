"""Write the small set of example scans shipped under examples/scans (clean bags and bags with threats)."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.scan import save_scan
from models.training.gantry import gantry_scan
from models.training.scene import SceneSpec, synth_scan

# file stem -> (seed, threats); seeds 900000+ are used nowhere else
EXAMPLES = {
    "bag_clean_01": (900001, ()), "bag_clean_02": (900002, ()), "bag_clean_03": (900003, ()),
    "bag_clean_04": (900004, ()),
    "bag_firearm_01": (900011, ("firearm",)), "bag_firearm_knife_02": (900012, ("firearm", "knife")),
    "bag_knife_01": (900013, ("knife",)), "bag_ammunition_phone_01": (900014, ("ammunition", "phone")),
    "bag_cigarettes_01": (900015, ("cigarettes",)), "bag_battery_01": (900016, ("battery",)),
    "bag_drugs_01": (900017, ("drugs",)), "bag_mixed_01": (900018, ("phone", "battery", "cigarettes")),
}
# drive-through portal scans of vans (8 mm pixels)
GANTRY_EXAMPLES = {"van_cigarettes_01": (900101, ("cigarettes",)), "van_drugs_01": (900102, ("drugs",))}


def write_examples(out: Path, lines: int = 448, pixels: int = 448) -> list[Path]:
    """Render every example scan into out/; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    bags = [save_scan(synth_scan(seed, SceneSpec(lines=lines, pixels=pixels, threats=threats)), out / f"{stem}.npz")
            for stem, (seed, threats) in EXAMPLES.items()]
    (out / "vehicles").mkdir(exist_ok=True)  # gantry scans (8 mm pixels) apart from the baggage
    vans = [save_scan(gantry_scan(seed, hidden), out / "vehicles" / f"{stem}.npz")
            for stem, (seed, hidden) in GANTRY_EXAMPLES.items()]
    return bags + vans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("examples/scans"))
    for path in write_examples(parser.parse_args().out):
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main()
