"""Training of the tiny detector on generated sets: CenterNet heat-maps (focal loss) and GIoU on ltrb."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.training.dataset import as_input, load
from models.training.model import STRIDE, Exported, TinyDet
from models.training.threats import CLASSES


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; steps × batch crops of crop×crop pixels; init: checkpoint to continue from."""

    steps: int = 4500
    batch: int = 8
    crop: int = 448
    lr: float = 2e-3
    seed: int = 1
    max_minutes: float = 42.0   # hard time limit: the cosine schedule follows the clock and stops early
    threads: int = 1
    init: str | None = None


def targets(boxes: list[tuple[int, list[float]]], size: int, ignore: list[tuple[int, list[float]]] = ()
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heat-map (K×h×w), ltrb target (4×h×w), regression weight (h×w) and ignore mask (K×h×w).

    Objects cut by the crop edge (less than half visible) are neither positive nor negative: their
    cells are ignored by the heat-map loss.
    """
    n = size // STRIDE
    ignored = np.zeros((len(CLASSES), n, n), np.float32)
    for k, (x0, y0, x1, y1) in ignore:
        ignored[k, int(y0 // STRIDE):int(np.ceil(y1 / STRIDE)), int(x0 // STRIDE):int(np.ceil(x1 / STRIDE))] = 1.0
    heat = np.zeros((len(CLASSES), n, n), np.float32)
    ltrb = np.zeros((4, n, n), np.float32)
    weight = np.zeros((n, n), np.float32)
    centres = (np.arange(n, dtype=np.float32) + 0.5) * STRIDE
    order = sorted(boxes, key=lambda b: -(b[1][2] - b[1][0]) * (b[1][3] - b[1][1]))
    for k, (x0, y0, x1, y1) in order:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sx, sy = max(0.8 * STRIDE, 0.16 * (x1 - x0)), max(0.8 * STRIDE, 0.16 * (y1 - y0))
        g = np.exp(-((centres[None, :] - cx) ** 2) / (2 * sx**2) - ((centres[:, None] - cy) ** 2) / (2 * sy**2))
        col, row = min(n - 1, int(cx // STRIDE)), min(n - 1, int(cy // STRIDE))
        g[row, col] = 1.0
        heat[k] = np.maximum(heat[k], g)
        inside = (centres[None, :] > x0) & (centres[None, :] < x1) & (centres[:, None] > y0) & (centres[:, None] < y1)
        inside[row, col] = True
        cells = inside & (g > 0.3)
        ltrb[0][cells] = (centres[None, :] - x0).repeat(n, 0)[cells]
        ltrb[1][cells] = (centres[:, None] - y0).repeat(n, 1)[cells]
        ltrb[2][cells] = (x1 - centres[None, :]).repeat(n, 0)[cells]
        ltrb[3][cells] = (y1 - centres[:, None]).repeat(n, 1)[cells]
        weight[cells] = g[cells]
    return heat, np.clip(ltrb, 0, None), weight, ignored


class Sampler:
    """Random crops (biased towards threats) with flips, and their targets."""

    def __init__(self, path: Path, crop: int, rng: np.random.Generator) -> None:
        self.images, self.truth = load(path)
        self.crop, self.rng = crop, rng

    def one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng, c = self.rng, self.crop
        i = int(rng.integers(len(self.truth)))
        img, truth = self.images[i], self.truth[i]
        h, w = img.shape[1:]
        if truth and rng.random() < 0.6:
            b = truth[int(rng.integers(len(truth)))]["box"]
            x = int(np.clip(rng.uniform(*sorted((b[2] - c, b[0]))), 0, w - c))
            y = int(np.clip(rng.uniform(*sorted((b[3] - c, b[1]))), 0, h - c))
        else:
            x, y = int(rng.integers(0, w - c + 1)), int(rng.integers(0, h - c + 1))
        crop = as_input(img[:, y:y + c, x:x + c])
        boxes, ignore = [], []
        for t in truth:
            x0, y0, x1, y1 = t["box"]
            cx0, cy0, cx1, cy1 = max(x0 - x, 0), max(y0 - y, 0), min(x1 - x, c), min(y1 - y, c)
            if cx1 > cx0 and cy1 > cy0:
                whole = (cx1 - cx0) * (cy1 - cy0) >= 0.5 * (x1 - x0) * (y1 - y0)
                (boxes if whole else ignore).append((CLASSES.index(t["label"]), [cx0, cy0, cx1, cy1]))
        if rng.random() < 0.5:
            crop = crop[:, :, ::-1]
            boxes, ignore = ([(k, [c - b[2], b[1], c - b[0], b[3]]) for k, b in bs] for bs in (boxes, ignore))
        if rng.random() < 0.5:
            crop = crop[:, ::-1, :]
            boxes, ignore = ([(k, [b[0], c - b[3], b[2], c - b[1]]) for k, b in bs] for bs in (boxes, ignore))
        return (np.ascontiguousarray(crop), *targets(boxes, c, ignore))

    def batch(self, n: int) -> list[torch.Tensor]:
        parts = list(zip(*(self.one() for _ in range(n))))
        return [torch.from_numpy(np.stack(p)) for p in parts]


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, ignored: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of peaks."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos) * (1 - ignored)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def giou_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """1 − GIoU of ltrb boxes sharing their cell centre, weighted per cell."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)) * (torch.min(pt, tt) + torch.min(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    hull = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pt, tt) + torch.max(pb, tb))
    giou = inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)
    return ((1 - giou) * weight).sum() / weight.sum().clamp(min=1e-6)


def train(data: Path, out: Path, cfg: TrainConfig = TrainConfig(), log=print) -> TinyDet:
    """Train from a generated set; checkpoints to out/checkpoint.pt; returns the network in eval mode."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    sampler = Sampler(data, cfg.crop, np.random.default_rng(cfg.seed))
    net = TinyDet(len(CLASSES))
    history: list[dict] = []
    if cfg.init:
        start_from = torch.load(cfg.init, map_location="cpu")
        net.load_state_dict(start_from["model"])
        history = start_from.get("history") or [{"steps": int(start_from["step"]) + 1, "data": "uint8"}]
        log(f"continuing from {cfg.init} ({sum(h['steps'] for h in history)} earlier steps)")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    start = time.monotonic()
    for step in range(cfg.steps):
        progress = max(step / cfg.steps, (time.monotonic() - start) / (cfg.max_minutes * 60))
        if progress >= 1.0:
            log(f"stopped by the time limit at step {step}")
            break
        lr = cfg.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        x, heat, ltrb, weight, ignored = sampler.batch(cfg.batch)
        logits, pred = net(x)
        loss_h, loss_r = focal_loss(logits, heat, ignored), giou_loss(pred, ltrb, weight)
        opt.zero_grad()
        (loss_h + 2.0 * loss_r).backward()
        opt.step()
        if step % 50 == 0 or step == cfg.steps - 1:
            log(f"step {step} lr {lr:.5f} heat {loss_h.item():.3f} giou {loss_r.item():.3f} "
                f"t {time.monotonic() - start:.0f}s")
            _save(net, step, cfg, history, str(sampler.images.dtype), out / "checkpoint.pt")
    _save(net, step, cfg, history, str(sampler.images.dtype), out / "checkpoint.pt")
    return net.eval()


def _save(net: TinyDet, step: int, cfg: TrainConfig, history: list[dict], data: str, path: Path) -> None:
    """Checkpoint with the training history (one entry per run: steps, data precision, limits)."""
    run = {"steps": step + 1, "data": data, "lr": cfg.lr, "threads": cfg.threads,
           "max_minutes": cfg.max_minutes, "planned_steps": cfg.steps}
    torch.save({"model": net.state_dict(), "step": step, "history": [*history, run]}, path)


def export_onnx(net: TinyDet, path: Path, size: int = 640) -> Path:
    """ONNX opset 17, input 'input' 1×2×size×size, outputs 'scores' and 'ltrb' (cpe-fcos-v1)."""
    net = net.eval()
    torch.onnx.export(Exported(net), torch.zeros(1, 2, size, size), str(path), opset_version=17,
                      input_names=["input"], output_names=["scores", "ltrb"], dynamo=False)
    return path
