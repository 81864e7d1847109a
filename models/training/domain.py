"""Domain randomisation of the training simulator (SceneSpec(wide=True)), issue 20.

A real fleet varies what one simulated scanner fixes: tube voltage and filtration, detector layers
(channel responses), quanta (noise), blur, crosstalk between detector pixels, gain drift along the
scan, pixel pitch (0.8–1.5 mm) and belt speed (line pitch). Each wide scan draws one `Drawn`
scanner from its own random stream (seed, 7), so the scene itself is the same as without it.
Pitch and belt speed set the field of view: the scene is built at 1 mm over lines × line_mm by
pixels × pixel_mm and resampled to lines × pixels, so a 1.5 mm scanner sees a bag in fewer, larger
pixels, and the truth boxes follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.training.physics import Scanner

PITCH_MM = (0.8, 1.5)
KVP = (120.0, 180.0)


@dataclass(frozen=True)
class Drawn:
    """One drawn scanner: the physics Scanner plus what the image chain adds."""

    scanner: Scanner
    line_mm: float        # belt travel per line (belt speed / line rate)
    crosstalk: float      # share of signal leaking into each neighbouring detector pixel
    drift: float          # amplitude of slow gain drift along the scan


def draw(rng: np.random.Generator) -> Drawn:
    """A scanner from the fleet's ranges (values on coarse steps, so channel weights are reused)."""
    pitch = round(float(rng.uniform(*PITCH_MM)), 2)
    scanner = Scanner(kvp=float(rng.choice(np.arange(KVP[0], KVP[1] + 1, 10.0))),
                      tube_filter_al_mm=round(float(rng.uniform(1.0, 3.0)), 1),
                      tube_filter_cu_mm=round(float(rng.uniform(0.0, 0.5)), 1),
                      front_csi_mm=round(float(rng.uniform(0.2, 0.5)), 1),
                      mid_filter_cu_mm=round(float(rng.uniform(0.3, 1.0)), 1),
                      rear_csi_mm=round(float(rng.uniform(2.0, 5.0))),
                      photons_low=float(rng.uniform(2.5e4, 9e4)), photons_high=float(rng.uniform(1.5e4, 6e4)),
                      blur_sigma_px=float(rng.uniform(0.4, 1.1)), electronic_noise=float(rng.uniform(1e-4, 8e-4)),
                      pixel_mm=pitch)
    line = round(pitch * float(rng.uniform(0.85, 1.2)), 3)
    return Drawn(scanner, line, float(rng.uniform(0.0, 0.08)), float(rng.uniform(0.0, 0.01)))


def field_of_view(lines: int, pixels: int, d: Drawn) -> tuple[int, int]:
    """Scene size in 1 mm pixels that the drawn scanner images as lines × pixels."""
    return max(8, int(round(lines * d.line_mm))), max(8, int(round(pixels * d.scanner.pixel_mm)))


def resample(high: np.ndarray, low: np.ndarray, truth: list[dict], lines: int, pixels: int,
             d: Drawn) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The 1 mm transmission of the field of view seen as lines × pixels at the drawn pitches, with crosstalk."""
    out = []
    for plane in (high, low):
        img = cv2.resize(plane, (pixels, lines), interpolation=cv2.INTER_AREA)
        if d.crosstalk > 0:
            k = np.array([[d.crosstalk, 1 - 2 * d.crosstalk, d.crosstalk]], np.float32)
            img = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REPLICATE)
        out.append(img)
    sx, sy = pixels / high.shape[1], lines / high.shape[0]
    boxes = [{**t, "box": [t["box"][0] * sx, t["box"][1] * sy, t["box"][2] * sx, t["box"][3] * sy]} for t in truth]
    return out[0], out[1], boxes


def drift(lines: int, d: Drawn, rng: np.random.Generator) -> np.ndarray:
    """Per-line gain (lines × 1): slow drift of the detector's gain along the scan."""
    phase, cycles = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 3.0)
    return (1 + d.drift * np.sin(np.linspace(0, 2 * np.pi * cycles, lines) + phase)).astype(np.float32)[:, None]
