"""One command from a seed to a shipped model package: data, training, export, evaluation, manifest.

    .venv/bin/python -m models.training.recipe --seed 1 --out models/zoo/cpe-tiny --work /tmp/cpe-work

Training takes a CUDA GPU when there is one (see gpu_job.sh for a lent machine without network);
the defaults are those of cpe-tiny 2.0.0's first run. On a CPU, lower --batch and expect days.

    .venv/bin/python -m models.training.recipe finetune --coco EXPORT --checkpoint CKPT --out DIR

fine-tunes a candidate from officer-confirmed scans (models/training/closed_loop.py, docs/closed-loop.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from models.training.dataset import TRAIN_IMAGES, generate, seed_ranges
from models.training.scene import SceneSpec
from models.training.model import ARCHS
from models.training.train import TrainConfig, export_onnx, load_checkpoint, train

__all__ = ["make_data", "seed_ranges", "TRAIN_IMAGES"]


def make_data(work: Path, seed: int, workers: int, only: tuple[str, ...] = ("train", "val", "heldout"),
              train_images: int = TRAIN_IMAGES, domain: str = "wide") -> None:
    """Render the sets that are not on disk yet.

    domain "wide" (issue 20, from 2.1 on): training and validation scans carry hard negatives, extra
    cues per class and drawn scanners (SceneSpec.wide); "narrow" renders them as 1.x and 2.0.0 were.
    The held-out set stays the one every version was scored on (narrow, novel variants); the fresh
    held-out block is never rendered here (models.evalbag.evaluate scores it)."""
    for name, seeds in seed_ranges(seed, train_images).items():
        if name in only and not (work / f"{name}.json").exists():
            spec = SceneSpec(novel=name == "heldout", wide=domain == "wide" and name != "heldout")
            generate(work / name, seeds, spec, workers=workers)
            print(f"generated {name}: {len(seeds)} scans", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["finetune"]:  # the closed loop (issue 20): fine-tune from officer-confirmed scans
        from models.training.closed_loop import main as finetune

        finetune(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("models/zoo/cpe-tiny"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/cpe-work"))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes rendering scans")
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES)
    parser.add_argument("--domain", choices=("wide", "narrow"), default="wide",
                        help="training/validation scenes: wide (hard negatives, drawn scanners; issue 20) or narrow (2.0.0)")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="small")
    parser.add_argument("--device", default="auto", help="auto: a CUDA GPU when there is one, else the CPU")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--loaders", type=int, default=max(0, (os.cpu_count() or 1) - 2),
                        help="processes cutting training crops")
    parser.add_argument("--crop", type=int, default=TrainConfig.crop,
                        help="training crop size; objects larger than a crop are never learned")
    parser.add_argument("--ema", type=float, default=0.9995, help="decay of the exported weight average")
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--max-minutes", type=float, default=16.0,
                        help="hard training time limit; the cosine schedule follows the clock")
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads, help="torch CPU threads")
    parser.add_argument("--init", type=Path, default=None, help="checkpoint to continue training from")
    parser.add_argument("--candidate", type=Path, default=None, help="ONNX file the validate stage scores")
    parser.add_argument("--stage", choices=("all", "data", "train", "export", "validate", "evaluate"), default="all")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    if args.stage in ("all", "data", "train"):
        make_data(args.work, args.seed, args.workers, ("train", "val"), args.train_images, args.domain)
    if args.stage in ("all", "train"):
        cfg = TrainConfig(steps=args.steps, seed=args.seed, max_minutes=args.max_minutes, lr=args.lr,
                          threads=args.threads, init=str(args.init) if args.init else None, arch=args.arch,
                          device=args.device, batch=args.batch, crop=args.crop, loaders=args.loaders, ema=args.ema, warmup=500)
        net = train(args.work / "train", args.work, cfg, log=lambda m: print(m, flush=True))
        export_onnx(net, args.out / "model.onnx")
        print(f"trained and exported in {time.monotonic() - start:.0f} s", flush=True)
    if args.stage == "export":  # the checkpoint in --work (or --init) to --out/model.onnx
        export_onnx(load_checkpoint(args.init or args.work / "checkpoint.pt"), args.out / "model.onnx")
    if args.stage == "validate":
        from models.training.evaluate import validate

        make_data(args.work, args.seed, args.workers, ("val",), domain=args.domain)
        validate(args.candidate or args.out / "model.onnx", args.work)
    if args.stage in ("all", "evaluate"):
        from models.training.evaluate import evaluate_package

        make_data(args.work, args.seed, args.workers, ("heldout",))
        evaluate_package(args.out, args.work, args.seed)
        print(f"done in {time.monotonic() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
