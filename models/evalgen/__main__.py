"""`python -m models.evalgen --out DIR --count N --seed S [--png]`: write generator B scans to look at."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from models.evalgen.portal import LABELS, VEHICLES, alt_portal_scan
from models.scan import Scan, save_scan

COLOURS = {"cigarettes": (255, 170, 0), "drugs": (255, 40, 40), "firearm": (60, 140, 255),
           "concealment": (40, 220, 80), "load_present": (220, 60, 220)}


def preview(scan: Scan) -> Image.Image:
    """The high plane as a side view (front left, road at the bottom), log grey, truth boxes drawn."""
    att = -np.log(np.clip(scan.high.astype(np.float32) / 65535.0, 1e-4, 1.0)) / np.log(1e4)
    grey = (255 * (1 - np.sqrt(att))).astype(np.uint8)
    img = Image.fromarray(grey.T[::-1].copy()).convert("RGB")
    draw = ImageDraw.Draw(img)
    cols = scan.shape[1]
    for t in scan.meta["truth"]:
        c0, r0, c1, r1 = t["box"]
        draw.rectangle([r0, cols - c1, r1, cols - c0], outline=COLOURS[t["label"]], width=2)
        draw.text((r0, max(cols - c1 - 12, 0)), f"{t['label']} {t['mass_kg']:.1f} kg", fill=COLOURS[t["label"]])
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.evalgen", description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suspect-share", type=float, default=0.5)
    ap.add_argument("--vehicle", choices=VEHICLES)
    ap.add_argument("--contents", nargs="*", choices=LABELS, help="force these labels (none given = clean)")
    ap.add_argument("--png", action="store_true", help="also write a preview PNG per scan")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seed, args.seed + args.count):
        scan = alt_portal_scan(seed, suspect_share=args.suspect_share, vehicle=args.vehicle, contents=args.contents)
        stem = f"{scan.meta['vehicle']}_{seed:06d}"
        save_scan(scan, args.out / f"{stem}.npz")
        if args.png:
            preview(scan).save(args.out / f"{stem}.png")
        print(json.dumps({"file": f"{stem}.npz", "shape": list(scan.shape), "portal": scan.meta["portal"],
                          "truth": [(t["label"], t["mass_kg"]) for t in scan.meta["truth"]]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
