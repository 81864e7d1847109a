"""DICOS benchmark: exporting a record and reading a dropped DX pair back, at conveyor and gantry scan sizes.

Run:  .venv/bin/python bench/bench_dicos.py [--runs 10]

For each size (lines x pixels):
    export_ms       dicos_files(record, scan): the DX pair + machine and operator TDRs, encoded in memory
    bytes           their total size, and the `.npz` size of the same scan for comparison
    import_ms       read_dx_scan of the pair from disk: headers checked, then pixels (the file drop per item)

Prints figures and writes bench/results/dicos.json. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from central_sync.schema import (DetectionOut, InspectionRecord, ItemKind, ModelRef, Review,  # noqa: E402
                                 ScanRef, Verdict)
from edge.dicos import dicos_files, write_files  # noqa: E402
from models.dicos import read_dx_scan  # noqa: E402
from models.scan import Scan  # noqa: E402
from timing import timed  # noqa: E402

SIZES = {"conveyor": (800, 640), "gantry": (4000, 2048)}


def item(lines: int, pixels: int) -> tuple[InspectionRecord, Scan]:
    rng = np.random.default_rng(5)
    high = rng.integers(20000, 65535, (lines, pixels), dtype=np.uint16)
    scan = Scan(high=high, low=(high // 3 * 2).astype(np.uint16), meta={"pixel_mm": 1.0, "kvp": 160})
    at = datetime(2026, 12, 3, tzinfo=timezone.utc)
    record = InspectionRecord(
        id="0193bench000000000000000000", seq=1, station="bench", lane="1", kind=ItemKind.BAGGAGE, started_at=at,
        decided_at=at + timedelta(seconds=1), scan=ScanRef(sha256="0" * 64, size=0, shape=scan.shape),
        detections=[DetectionOut(label="knife", score=0.8, box=(10, 10, 60, 40))],
        model=ModelRef(name="cpe-tiny", version="1", sha256="1" * 64), verdict=Verdict.SUSPECT, reason="detection",
        budget_ms=1000, review=Review(officer="B1", decided_at=at + timedelta(minutes=1), outcome="threat_confirmed",
                                      label="knife"))
    return record, scan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    results: dict[str, object] = {"machine": platform.machine(), "python": platform.python_version()}
    for name, (lines, pixels) in SIZES.items():
        record, scan = item(lines, pixels)
        files = dicos_files(record, scan)
        with tempfile.TemporaryDirectory() as tmp:
            pair = sorted(p for p in write_files(files, Path(tmp)) if "-dx-" in p.name)
            imported = timed(lambda: read_dx_scan(pair, "bench"), args.runs)
        exported = timed(lambda: dicos_files(record, scan), args.runs)
        dicos_bytes, npz_bytes = sum(len(b) for b in files.values()), len(scan.to_bytes())
        results[name] = {"lines": lines, "pixels": pixels, "export_ms": exported, "import_ms": imported,
                         "dicos_bytes": dicos_bytes, "npz_bytes": npz_bytes}
        print(f"{name:9} {lines}x{pixels}: export {exported['median']} ms (p95 {exported['p95']}), "
              f"import {imported['median']} ms (p95 {imported['p95']}), DICOS {dicos_bytes / 1e6:.1f} MB "
              f"vs npz {npz_bytes / 1e6:.1f} MB")
    out = ROOT / "bench" / "results" / "dicos.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
