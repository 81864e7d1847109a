"""Bulk generation of synthetic scans into one float16 attenuation array plus their truth boxes.

float16 keeps weak contrasts: a cigarette pack is ~0.012 on the attenuation scale, 3 grey levels
in 8 bits but ~25 float16 steps (relative step 1e-3). Sets stored as uint8 by older recipes still load.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from unittest import mock

import numpy as np

from models.training.scene import SceneSpec, synth_scan
from models.training.threats import CLASSES

LOG_RANGE = np.log(1e4)
# The fresh held-out block (issue 20): seeds base + 700,000 .. base + 701,999 of every recipe seed
# (base = seed × 1,000,000) were never rendered for, nor scored by, cpe-tiny 1.0.0 to 2.0.0. They
# belong to `python -m models.evalbag.evaluate` alone; training and validation sets refuse them.
FRESH_OFFSET, FRESH_SIZE = 700_000, 2_000
TRAIN_IMAGES, VAL_IMAGES, HELDOUT_IMAGES = 12000, 400, 800


def seed_ranges(seed: int, train_images: int = TRAIN_IMAGES) -> dict[str, range]:
    """Disjoint seed blocks of a recipe seed: training and validation draw known variants, held-out
    draws novel ones (models.training.recipe; the closed loop's simulated share draws from "train")."""
    base = seed * 1_000_000
    if not 0 < train_images <= 500_000:
        raise ValueError(f"--train-images {train_images} must be 1 to 500000 (the validation seeds start 500000 on)")
    return {"train": range(base, base + train_images), "val": range(base + 500_000, base + 500_000 + VAL_IMAGES),
            "heldout": range(base + 800_000, base + 800_000 + HELDOUT_IMAGES)}


def fresh_heldout(seed: int) -> range:
    """The fresh held-out seed block of a recipe seed (scored only by models.evalbag.evaluate)."""
    base = seed * 1_000_000
    return range(base + FRESH_OFFSET, base + FRESH_OFFSET + FRESH_SIZE)


def refuse_fresh(seeds: range, what: str) -> None:
    """Raise ValueError when a set of seeds to train or validate on reaches into a fresh held-out block."""
    if len(seeds) == 0:
        return
    for block in range(seeds.start // 1_000_000, (seeds.stop - 1) // 1_000_000 + 1):
        fresh = fresh_heldout(block)
        if seeds.start < fresh.stop and fresh.start < seeds.stop:
            raise ValueError(f"{what} seeds {seeds.start}..{seeds.stop - 1} reach into the fresh held-out block "
                             f"{fresh.start}..{fresh.stop - 1}, which only models.evalbag.evaluate may render")


def attenuation(t: np.ndarray) -> np.ndarray:
    """The model's input normalisation: 0 for air, 1 for opaque (T ≤ 1e-4)."""
    return (-np.log(np.clip(t.astype(np.float32) / 65535.0, 1e-4, 1.0)) / LOG_RANGE).astype(np.float32)


def _one(args: tuple[int, SceneSpec]) -> tuple[np.ndarray, list[dict]]:
    seed, spec = args
    scan = synth_scan(seed, spec)
    a = np.stack([attenuation(scan.high), attenuation(scan.low)])
    return a.astype(np.float16), scan.meta["truth"]


def generate(out: Path, seeds: range, spec: SceneSpec, workers: int = 1) -> None:
    """Render scans for the seeds into out.npy (N×2×H×W float16) and out.json (truth per image).

    Every set rendered here may train or select a model, so fresh held-out seeds are refused."""
    refuse_fresh(seeds, f"set {out.name}")
    images = np.lib.format.open_memmap(out.with_suffix(".npy"), mode="w+", dtype=np.float16,
                                       shape=(len(seeds), 2, spec.lines, spec.pixels))
    truth = []
    jobs = [(s, spec) for s in seeds]
    # Fresh (spawned) workers with one BLAS thread each: forked workers inherit a BLAS pool as wide
    # as the machine; 16 of them on a 16-core GPU machine rendered ~8x slower per scan than one
    # process on this 2-core machine (2026-11-25), thread oversubscription being the likely cause.
    single = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    with mock.patch.dict(os.environ, single), \
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, (img, boxes) in enumerate(pool.map(_one, jobs, chunksize=8)):
            images[i] = img
            truth.append(boxes)
    images.flush()
    out.with_suffix(".json").write_text(json.dumps({"seeds": [seeds.start, seeds.stop], "novel": spec.novel, "wide": spec.wide,
                                                    "classes": CLASSES, "truth": truth}))


def as_input(images: np.ndarray) -> np.ndarray:
    """float32 attenuation from stored images: float16 as is, legacy uint8 scaled by 1/255."""
    x = images.astype(np.float32)
    return x / 255.0 if images.dtype == np.uint8 else x


def load(path: Path) -> tuple[np.ndarray, list[list[dict]]]:
    """Memory-mapped images and truth lists of a generated set (the first `count` images where a set
    written with an upper bound of images says how many it holds)."""
    images = np.load(path.with_suffix(".npy"), mmap_mode="r")
    info = json.loads(path.with_suffix(".json").read_text())
    if "seeds" in info and list(info.get("classes", CLASSES)) == list(CLASSES):  # baggage sets (portal: own blocks)
        refuse_fresh(range(*info["seeds"]), f"set {path.name}")
    return images[:info.get("count", len(images))], info["truth"]


def classes_of(path: Path) -> tuple[str, ...]:
    """The class list a generated set was labelled with (baggage sets: threats.CLASSES)."""
    return tuple(json.loads(path.with_suffix(".json").read_text()).get("classes", CLASSES))
