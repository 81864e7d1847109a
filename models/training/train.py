"""Training of the tiny detector on generated sets: CenterNet heat-maps (focal loss) and GIoU on ltrb."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from models.training.dataset import classes_of
from models.training.model import ARCHS, Arch, Exported, TinyDet
from models.training.sampler import Augment, Sampler


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; steps × batch crops of crop×crop pixels; init: checkpoint to continue from.

    device "auto" takes a CUDA GPU when there is one (bf16 autocast there); loaders: processes that
    cut crops and build targets (0: in the training process). ema: decay of the weight average that
    is exported (0: export the raw weights).
    """

    steps: int = 4500
    batch: int = 8
    crop: int = 448
    lr: float = 2e-3
    seed: int = 1
    max_minutes: float = 42.0   # hard time limit: the cosine schedule follows the clock and stops early
    threads: int = 1
    init: str | None = None
    arch: str = "tiny"
    device: str = "auto"
    loaders: int = 0
    ema: float = 0.0
    warmup: int = 100
    augment: Augment = field(default_factory=lambda: Augment())


class Crops(torch.utils.data.IterableDataset):
    """An endless stream of training samples; each loader process draws from its own seed."""

    def __init__(self, path: Path, crop: int, seed: int, aug: Augment = Augment()) -> None:
        super().__init__()
        self.path, self.crop, self.seed, self.aug = path, crop, seed, aug

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        info = torch.utils.data.get_worker_info()
        sampler = Sampler(self.path, self.crop, np.random.default_rng([self.seed, info.id if info else 0]), self.aug)
        while True:
            yield sampler.one()


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


def _device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train(data: Path, out: Path, cfg: TrainConfig = TrainConfig(), log: Callable[[str], object] = print) -> TinyDet:
    """Train from a generated set; checkpoints to out/checkpoint.pt; returns the network in eval mode on the CPU."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    history: list[dict] = []
    if cfg.init:
        start_from = torch.load(cfg.init, map_location="cpu")
        net = _net_of(start_from)
        history = start_from.get("history") or [{"steps": int(start_from["step"]) + 1, "data": "uint8"}]
        log(f"continuing from {cfg.init} ({sum(h['steps'] for h in history)} earlier steps)")
    else:
        net = TinyDet(len(classes_of(data)), arch=ARCHS[cfg.arch])
    net = net.to(device).to(memory_format=torch.channels_last)
    ema = copy.deepcopy(net).eval() if cfg.ema else None
    crops = Crops(data, cfg.crop, cfg.seed, cfg.augment)
    loader = iter(torch.utils.data.DataLoader(crops, batch_size=cfg.batch,
                                              num_workers=cfg.loaders, pin_memory=device.type == "cuda",
                                              persistent_workers=cfg.loaders > 0,
                                              prefetch_factor=2 if cfg.loaders else None))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    log(f"training {cfg.arch} ({sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters) on {device}, "
        f"batch {cfg.batch}, {cfg.loaders} loader processes")
    start = time.monotonic()
    dtype = data_dtype(data)
    step = 0
    for step in range(cfg.steps):
        progress = max(step / cfg.steps, (time.monotonic() - start) / (cfg.max_minutes * 60))
        if progress >= 1.0:
            log(f"stopped by the time limit at step {step}")
            break
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        x, heat, ltrb, weight, ignored = (t.to(device, non_blocking=True) for t in next(loader))
        x = x.float()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, pred = net(x.contiguous(memory_format=torch.channels_last))
        loss_h, loss_r = focal_loss(logits.float(), heat, ignored), giou_loss(pred.float(), ltrb, weight)
        opt.zero_grad(set_to_none=True)
        (loss_h + 2.0 * loss_r).backward()
        opt.step()
        if ema is not None:
            _ema_update(ema, net, min(cfg.ema, (1 + step) / (10 + step)))
        if step % 200 == 0 or step == cfg.steps - 1:
            elapsed = time.monotonic() - start
            log(f"step {step} lr {lr:.5f} heat {loss_h.item():.3f} giou {loss_r.item():.3f} "
                f"t {elapsed:.0f}s ({(step + 1) * cfg.batch / max(elapsed, 1e-6):.0f} crops/s)")
            if step % 1000 == 0:
                _save(ema if ema is not None else net, step, cfg, history, dtype, out / "checkpoint.pt")
    final = (ema if ema is not None else net).cpu().eval()
    _save(final, step, cfg, history, dtype, out / "checkpoint.pt")
    return final


def data_dtype(data: Path) -> str:
    return str(np.load(data.with_suffix(".npy"), mmap_mode="r").dtype)


@torch.no_grad()
def _ema_update(ema: TinyDet, net: TinyDet, decay: float) -> None:
    """Exponential moving average of the parameters; buffers (batch-norm statistics) copied."""
    for e, p in zip(ema.parameters(), net.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), net.buffers()):
        e.copy_(b)


def _save(net: TinyDet, step: int, cfg: TrainConfig, history: list[dict], data: str, path: Path) -> None:
    """Checkpoint with the architecture and training history (one entry per run: steps, data, limits)."""
    run = {"steps": step + 1, "data": data, "lr": cfg.lr, "threads": cfg.threads, "batch": cfg.batch,
           "max_minutes": cfg.max_minutes, "planned_steps": cfg.steps, "device": str(_device(cfg.device)),
           "ema": cfg.ema}
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"model": state, "arch": net.arch.to_dict(), "step": step, "history": [*history, run]}, path)


def export_onnx(net: TinyDet, path: Path, size: int = 640) -> Path:
    """ONNX opset 17, input 'input' 1×2×size×size, outputs 'scores' and 'ltrb' (cpe-fcos-v1)."""
    net = net.cpu().eval()
    torch.onnx.export(Exported(net), torch.zeros(1, 2, size, size), str(path), opset_version=17,
                      input_names=["input"], output_names=["scores", "ltrb"], dynamo=False)
    return path


def load_checkpoint(path: Path) -> TinyDet:
    """The network of a checkpoint (its architecture recorded inside), in eval mode on the CPU."""
    return _net_of(torch.load(path, map_location="cpu")).eval()


def _net_of(checkpoint: dict) -> TinyDet:
    """The network a loaded checkpoint holds (checkpoints before `arch` was recorded are `tiny`)."""
    net = TinyDet(int(checkpoint["model"]["cls.weight"].shape[0]), arch=Arch.from_dict(checkpoint.get("arch")))
    net.load_state_dict(checkpoint["model"])
    return net
