"""One command from a seed to the gantry model package cpe-gantry: data, training, export, thresholds, evaluation.

    PYTHONPATH=$PWD .venv/bin/python -m models.training.portal.recipe --seed 1 --stage all \\
        --out models/zoo/cpe-gantry --work /tmp/gantry-work --threads 2 --max-minutes 45

Stages: data (training crops of generator A), train (clock-limited, exports model.onnx), validate
(thresholds on a validation block of known designs, written to manifest.toml), evaluate (held-out
novel designs of generator A and generator B through the station runtime; evaluation.json, MODEL.md).
Designed for a CPU: the tiny TinyDet at stride 8, batch 8 crops of 384 pixels.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from models.training.portal.card import write_card, write_manifest
from models.training.portal.dataset import generate, training_spec
from models.training.portal.evaluate import Block, choose_thresholds, report, score_block
from models.training.sampler import Augment
from models.training.train import TrainConfig, export_onnx, load_checkpoint, train

TRAIN_SCANS = 2200


def blocks(seed: int, sizes: dict[str, int]) -> dict[str, Block]:
    """Seed blocks: validation (known designs) sets thresholds; held-out (novel) and B only measure."""
    base = seed * 1_000_000
    return {
        "val_mix": Block("val_mix", "A", range(base + 500_000, base + 500_000 + sizes["val"]),
                         (("suspect_share", 0.5),)),
        "val_empty": Block("val_empty", "A", range(base + 600_000, base + 600_000 + sizes["empty"]),
                           (("declared_empty", True), ("load_share", 0.5), ("suspect_share", 0.0))),
        "heldout_mix": Block("heldout_mix", "A", range(base + 800_000, base + 800_000 + sizes["heldout"]),
                             (("novel", True), ("suspect_share", 0.5))),
        "heldout_empty": Block("heldout_empty", "A", range(base + 900_000, base + 900_000 + sizes["empty"]),
                               (("novel", True), ("declared_empty", True), ("load_share", 0.5),
                                ("suspect_share", 0.0))),
        "b_mix": Block("b_mix", "B", range(base + 700_000, base + 700_000 + sizes["heldout"]),
                       (("suspect_share", 0.5),)),
        "b_empty_loaded": Block("b_empty_loaded", "B", range(base + 750_000, base + 750_000 + sizes["empty"] // 2),
                                (("vehicle", "tractor_40ft"), ("contents", ("load_present",)))),
        "b_containers": Block("b_containers", "B", range(base + 760_000, base + 760_000 + sizes["empty"]),
                              (("vehicle", "tractor_20ft"), ("suspect_share", 0.0))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("models/zoo/cpe-gantry"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/gantry-work"))
    parser.add_argument("--workers", type=int, default=2, help="processes rendering and scoring scans")
    parser.add_argument("--train-scans", type=int, default=TRAIN_SCANS)
    parser.add_argument("--val-scans", type=int, default=200)
    parser.add_argument("--heldout-scans", type=int, default=300)
    parser.add_argument("--empty-scans", type=int, default=100)
    parser.add_argument("--arch", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--steps", type=int, default=100_000, help="upper bound; the clock usually stops first")
    parser.add_argument("--max-minutes", type=float, default=45.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", type=Path, default=None, help="checkpoint to continue training from")
    parser.add_argument("--stage", choices=("all", "data", "train", "export", "validate", "evaluate"), default="all")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    data = args.work / "train"
    if args.stage in ("all", "data", "train") and not data.with_suffix(".json").exists():
        base = args.seed * 1_000_000
        n = generate(data, range(base, base + args.train_scans), training_spec(), args.workers)
        print(f"generated {n} training crops from {args.train_scans} scans in {time.monotonic() - start:.0f} s", flush=True)
    if args.stage in ("all", "train"):
        cfg = TrainConfig(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                          max_minutes=args.max_minutes, threads=args.threads, arch=args.arch, device="cpu",
                          ema=args.ema, warmup=100, init=str(args.init) if args.init else None,
                          augment=Augment(axis_swap=False, column_flip=False, zoom=(0.6, 1.15)))
        export_onnx(train(data, args.work, cfg, log=lambda m: print(m, flush=True)), args.out / "model.onnx")
        print(f"trained and exported in {time.monotonic() - start:.0f} s", flush=True)
    if args.stage == "export":
        export_onnx(load_checkpoint(args.init or args.work / "checkpoint.pt"), args.out / "model.onnx")
    sizes = {"val": args.val_scans, "heldout": args.heldout_scans, "empty": args.empty_scans}
    bl = blocks(args.seed, sizes)
    thr_path = args.work / "thresholds.json"
    if args.stage in ("all", "validate"):
        write_manifest(args.out, {c: 0.5 for c in ("cigarettes", "drugs", "firearm", "concealment", "load_present")})
        rows = [r for name in ("val_mix", "val_empty") for r in score_block(bl[name], args.out, args.work, args.workers)]
        thr = choose_thresholds(rows)
        thr_path.write_text(json.dumps(thr))
        write_manifest(args.out, thr)
        print(f"thresholds from validation: {thr}", flush=True)
    if args.stage in ("all", "evaluate"):
        thr = json.loads(thr_path.read_text())
        scored = [(name, score_block(b, args.out, args.work, args.workers)) for name, b in bl.items()]
        figures = report(scored, thr)
        combined = {"heldout_A": [r for n, rows in scored if n.startswith("heldout") for r in rows],
                    "generator_B": [r for n, rows in scored if n.startswith("b_") for r in rows],
                    "validation_A": [r for n, rows in scored if n.startswith("val") for r in rows]}
        figures.update(report(combined.items(), thr))
        write_card(args.out, args.work, thr, figures, {n: replace(b, options=tuple(b.options)) for n, b in bl.items()})
        print(f"done in {time.monotonic() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
