"""The closed loop's data path (issue 20), measured: a station export of N bags read, validated, split and
written as a fine-tuning set; with torch installed, a few CPU fine-tuning steps of the `small` detector.

Run:  PYTHONPATH=. nice -n 19 .venv/bin/python bench/bench_closed_loop.py [--scans 40] [--steps 10]
      (the torch part: a Python with torch 2.13, e.g. a separate venv with PYTHONPATH=.:.venv's site-packages)

Bags come from the training simulator (narrow scenes: 1 mm, 160 kV, within the model's [applies]) at recipe seed 9's training block, which no
recipe trains on; the evaluation bag generator is never used here (it stays for evaluation). Each
bag with threats becomes a threat_confirmed record of its first threat's class with the boxes of that
class, each clean bag a false_alarm, then edge.web.export.write_zip writes the zip the station's
GET /api/export.zip gives. Prints JSON; writes bench/results/closed_loop.json. Never asserts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central_sync.schema import InspectionRecord  # noqa: E402
from edge.web.export import write_zip  # noqa: E402
from models.manifest import load_manifest  # noqa: E402
from models.training import closed_loop as cl  # noqa: E402
from models.training.dataset import seed_ranges  # noqa: E402
from models.training.scene import SceneSpec, synth_scan  # noqa: E402

PACKAGE = ROOT / "models" / "zoo" / "cpe-tiny"


def station_export(n: int, tmp: Path) -> tuple[Path, float]:
    """The export zip of n simulated bags, and the seconds rendering them took."""
    now = datetime.now(timezone.utc).isoformat()
    records, start = [], time.perf_counter()
    (tmp / "scans").mkdir()
    for i, seed in enumerate(seed_ranges(9, n)["train"]):
        scan = synth_scan(seed, SceneSpec())
        truth = scan.meta.pop("truth")
        (tmp / "scans" / f"{scan.sha256()}.npz").write_bytes(scan.to_bytes())
        label = truth[0]["label"] if truth else None
        review = {"officer": "B7", "decided_at": now, "outcome": "threat_confirmed" if truth else "false_alarm",
                  "label": label, "boxes": [t["box"] for t in truth if t["label"] == label]}
        records.append(InspectionRecord.model_validate({
            "id": f"r{i:05d}", "seq": i, "station": "bench", "lane": "bags", "kind": "baggage", "started_at": now,
            "decided_at": now, "verdict": "suspect", "reason": "detection", "budget_ms": 2000.0, "review": review,
            "scan": {"sha256": scan.sha256(), "size": len(scan.to_bytes()), "shape": list(scan.shape)}}))
    rendered = time.perf_counter() - start
    return write_zip(records, lambda sha: tmp / "scans" / f"{sha}.npz", tmp / "export.zip"), rendered


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scans", type=int, default=40)
    p.add_argument("--steps", type=int, default=10, help="CPU fine-tuning steps where torch is installed")
    args = p.parse_args()
    classes = load_manifest(PACKAGE).class_names
    out: dict[str, object] = {"scans": args.scans, "machine": platform.node(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        export, rendered = station_export(args.scans, tmp)
        out["render_s"] = round(rendered, 2)
        out["export_mb"] = round(export.stat().st_size / 1e6, 1)
        t = time.perf_counter()
        reading = cl.read_export(export, classes, manifest=load_manifest(PACKAGE))
        out["read_and_validate_ms_per_scan"] = round((time.perf_counter() - t) * 1000 / args.scans, 1)
        train, val = cl.split(reading.items)
        plan = cl.plan_mix(len(train), 0.0)
        out["provenance"] = cl.provenance(reading, train, val, plan)
        t = time.perf_counter()
        cl.write_set(tmp / "train", train, export, classes)
        out["write_set_ms_per_scan"] = round((time.perf_counter() - t) * 1000 / max(1, len(train)), 1)
        if importlib.util.find_spec("torch") is not None and args.steps:
            import torch

            from models.training.model import ARCHS, TinyDet
            from models.training.train import TrainConfig, _save, train as run

            _save(TinyDet(len(classes), arch=ARCHS["small"]), 0, TrainConfig(), [], "float16", tmp / "base.pt")
            cfg = TrainConfig(steps=args.steps, init=str(tmp / "base.pt"), batch=8, crop=448, lr=3e-4, warmup=1,
                              device="cpu", threads=torch.get_num_threads(), max_minutes=30)
            t = time.perf_counter()
            run(tmp / "train", tmp, cfg, log=lambda m: None)
            out["finetune_s_per_step_cpu_batch8_crop448"] = round((time.perf_counter() - t) / args.steps, 2)
            out["torch_threads"] = torch.get_num_threads()
    print(json.dumps(out, indent=1))
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "closed_loop.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
