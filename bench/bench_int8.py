"""int8 (QDQ) quantisation of cpe-tiny (issue 20, optional): speed-up and accuracy change, measured.

Run:  PYTHONPATH=. nice -n 19 .venv/bin/python bench/bench_int8.py [--calib 32] [--scans 60]

Quantises models/zoo/cpe-tiny/model.onnx with onnxruntime.quantization (static, QDQ, per-channel
int8 weights, uint8 activations) calibrated on validation-block scans of the training simulator
(seeds 1,500,000.., never the held-out blocks), writes the copy to /tmp (it is not shipped), and
reports the median single-thread latency per 640 × 640 tile of both models and their box recall
(IoU ≥ 0.3) and clean-bag alarms at the shipped thresholds on the first `--scans` scans of the fresh
held-out block and of the evaluation bag generator (latency: both models' runs interleaved). Writes bench/results/int8.json. Never asserts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static  # noqa: E402

from models.evalbag.evaluate import bag_scans, fresh_scans, score  # noqa: E402
from models.training.infer import session, tile_input  # noqa: E402
from models.training.scene import SceneSpec, synth_scan  # noqa: E402

PACKAGE = ROOT / "models" / "zoo" / "cpe-tiny"


class Validation(CalibrationDataReader):
    """Inputs of validation-block scans (the block thresholds are chosen on)."""

    def __init__(self, count: int) -> None:
        self.seeds = iter(range(1_500_000, 1_500_000 + count))

    def get_next(self) -> dict[str, np.ndarray] | None:
        seed = next(self.seeds, None)
        if seed is None:
            return None
        scan = synth_scan(seed, SceneSpec())
        return {"input": tile_input(scan.high, scan.low)}


def latencies_ms(models: dict[str, Path], runs: int = 30) -> dict[str, float]:
    """Median single-thread time per 640 × 640 tile, the models' runs interleaved so that a shared,
    busy machine slows them alike (one after the other, 20 runs each, gave a 15-fold "speed-up")."""
    sessions = {k: session(m) for k, m in models.items()}
    x = np.random.default_rng(0).random((1, 2, 640, 640), dtype=np.float32) * 0.5
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(runs + 1):
        for k, sess in sessions.items():
            t = time.perf_counter()
            sess.run(None, {"input": x})
            if i:
                times[k].append((time.perf_counter() - t) * 1000)
    return {k: round(float(np.median(v)), 1) for k, v in times.items()}


def summary(f: dict) -> dict:
    return {"boxes_found": {c: f"{v['boxes']['k']}/{v['boxes']['n']}" for c, v in f["classes"].items()},
            "clean_alarm": f"{f['clean_alarm']['k']}/{f['clean_alarm']['n']}", "map50": f["map50"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--scans", type=int, default=60)
    args = ap.parse_args()
    fp32 = PACKAGE / "model.onnx"
    int8 = Path("/tmp/cpe-tiny-int8.onnx")
    t0 = time.perf_counter()
    quantize_static(str(fp32), str(int8), Validation(args.calib), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    result: dict = {"machine": platform.node(), "quantise_s": round(time.perf_counter() - t0, 1),
                    "calibration_scans": args.calib, "bytes": {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size},
                    "ms_per_tile": latencies_ms({"fp32": fp32, "int8": int8})}
    result["speed_up"] = round(result["ms_per_tile"]["fp32"] / result["ms_per_tile"]["int8"], 2)
    for name, scans in (("fresh", lambda: fresh_scans(1, args.scans)), ("evalbag", lambda: bag_scans(0, args.scans))):
        result[name] = {"fp32": summary(score(PACKAGE, scans())), "int8": summary(score(PACKAGE, scans(), model=int8))}
    print(json.dumps(result, indent=1))
    (ROOT / "bench" / "results" / "int8.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
