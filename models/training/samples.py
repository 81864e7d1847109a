"""Write the small set of example scans shipped under examples/scans (bags, and vehicles in a portal)."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.scan import save_scan
from models.training.portal import PortalSpec, portal_scan
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
# drive-through portal scans (generator A, models.training.portal): seeds chosen where the goods went
# where the name says
GANTRY_EXAMPLES = {
    "car_drugs_spare_wheel_01": (900209, PortalSpec(vehicle="saloon", contents=("drugs",), pixel_mm=6.0)),
    "van_cigarettes_01": (900301, PortalSpec(vehicle="van", contents=("cigarettes",), cargo="mixed", pixel_mm=7.0)),
    "van_clean_01": (900400, PortalSpec(vehicle="van", suspect=False, cargo="mixed", pixel_mm=7.0)),
}


def write_examples(out: Path, lines: int = 448, pixels: int = 448) -> list[Path]:
    """Render every example scan into out/; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    bags = [save_scan(synth_scan(seed, SceneSpec(lines=lines, pixels=pixels, threats=threats)), out / f"{stem}.npz")
            for stem, (seed, threats) in EXAMPLES.items()]
    (out / "vehicles").mkdir(exist_ok=True)  # portal scans (5–10 mm pixels) apart from the baggage
    for old in (out / "vehicles").glob("*.npz"):
        old.unlink()
    vehicles = [save_scan(portal_scan(seed, spec), out / "vehicles" / f"{stem}.npz")
                for stem, (seed, spec) in GANTRY_EXAMPLES.items()]
    return bags + vehicles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("examples/scans"))
    for path in write_examples(parser.parse_args().out):
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main()
