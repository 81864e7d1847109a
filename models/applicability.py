"""Whether a model may judge a scan: its manifest's `[applies]` against the scan's facts and content.

A model decides only on scans it was made for. Two checks, both pure and cheap:

- **metadata** (`metadata_problem`): item kind, pixel pitch, peak energy, lines and pixels against
  the manifest's ranges, and a single-energy scan (meta `single_energy`: a retrofit source's image,
  its low channel a copy of the high) against a model not made for one. A station knows its item kind, pitch and energy before the first line
  arrives, so a streamed scan the model may not judge costs no inference.
- **content** (`content_problem`): shapes no model can judge (1 x 1, a 64 x 100,000 strip) and
  images with nothing to judge (opaque, all air, pure noise), from statistics on a fixed sample of
  rows, so the cost does not grow with the scan; it runs when the scan has ended.
- **input statistics** (`statistics_problem`): the manifest's `opaque_share` (the most detector-floor
  pixels the model's training scans held) and `channel_ratio` (median ln T_low / ln T_high of matter:
  a single-energy or channel-swapped scan, or another detector, falls outside). A model never saw
  such scans, so it may not clear them; the station sends them to manual as model_not_applicable.

Each returns None when the scan may be judged, else one sentence with the values. A fact the scan
does not state (no `pixel_mm` in its meta) is not held against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from models.decode import ATTENUATION_LUT
from models.manifest import AppliesSpec, Manifest

MIN_SIDE = 32            # fewer lines or pixels than this hold no object a model could find
MAX_ASPECT = 40.0        # longer/shorter side: a 40 ft container at 5 mm is about 12:1
SAMPLE_ROWS = 64         # row pairs sampled for the content statistics
SAMPLE_COLS = 1024       # at most this many columns of each sampled row
AIR_ATTENUATION = 0.008  # attenuation (0 air .. 1 opaque) below which a pixel is air (air noise stays < 0.003)
MIN_MATTER = 0.001       # a scan with a smaller share of non-air pixels is all air
FLOOR_ATTENUATION = 0.95  # at or above: the detector floor (nothing gets through)
MAX_OPAQUE = 0.9         # a scan with a larger share of floor pixels is opaque
MAX_ROUGHNESS = 0.75     # neighbour differences / those of white noise of the same spread
WHITE_NOISE_MAD = 2 / np.sqrt(np.pi)  # E|X - Y| / sigma for independent normal X, Y


@dataclass(frozen=True)
class ScanFacts:
    """What is known about a scan before judging it; None = not stated."""

    item_kind: str | None = None
    pixel_mm: float | None = None
    energy_kev: float | None = None
    lines: int | None = None
    pixels: int | None = None
    single_energy: bool | None = None  # True: one channel, the low a copy of the high (retrofit sources)

    @classmethod
    def of_meta(cls, meta: Mapping[str, Any], shape: tuple[int, int] | None = None) -> ScanFacts:
        """Facts stated by a scan's meta (`kind`, `pixel_mm`, `energy_kev` or else `kvp`, `single_energy`) and
        shape."""
        energy = meta.get("energy_kev", meta.get("kvp"))
        return cls(item_kind=_text(meta.get("kind")), pixel_mm=_number(meta.get("pixel_mm")),
                   energy_kev=_number(energy), lines=shape[0] if shape else None,
                   pixels=shape[1] if shape else None, single_energy=meta.get("single_energy") is True or None)

    def updated(self, other: ScanFacts) -> ScanFacts:
        """These facts with every value `other` states replacing ours."""
        stated = {k: v for k, v in other.__dict__.items() if v is not None}
        return replace(self, **stated)

    def describe(self) -> str:
        """The stated facts in words, e.g. 'vehicle scans at 8.0 mm, 160 keV'."""
        kind = f"{self.item_kind} scans" if self.item_kind else "scans"
        parts = [f"{self.pixel_mm:g} mm" if self.pixel_mm else "", f"{self.energy_kev:g} keV" if self.energy_kev else ""]
        stated = ", ".join(p for p in parts if p)
        return f"{kind} at {stated}" if stated else kind


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def _text(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def metadata_problem(manifest: Manifest, facts: ScanFacts, *, growing: bool = False) -> str | None:
    """Why the model may not judge scans with these facts, or None (unstated facts pass).

    `growing`: the scan is still arriving, so `lines` counts only against the upper bound.
    """
    spec, name = manifest.applicability, manifest.name
    if facts.item_kind is not None and spec.item_kinds is not None and facts.item_kind not in spec.item_kinds:
        return f"model {name} is made for {', '.join(spec.item_kinds)} scans, not {facts.item_kind}"
    if facts.single_energy and not spec.single_energy:
        return (f"model {name} is made for dual-energy scans; this scan is single-energy (one channel, its low a "
                f"copy of the high)")
    for key, what, unit, value, bounds in _ranges(spec, facts):
        if value is None or bounds is None or (growing and key == "lines" and value < bounds[0]):
            continue
        if not bounds[0] <= value <= bounds[1]:
            return f"model {name} is made for {what} {bounds[0]:g} to {bounds[1]:g}{unit}; this scan's is {value:g}{unit}"
    return None


def _ranges(spec: AppliesSpec, facts: ScanFacts) -> list[tuple[str, str, str, float | None, tuple[float, float] | None]]:
    """(key, words, unit, the scan's value, the model's range) of each ranged fact."""
    return [("pixel_mm", "pixel pitch", " mm", facts.pixel_mm, spec.pixel_mm),
            ("energy_kev", "peak energy", " keV", facts.energy_kev, spec.energy_kev),
            ("lines", "scan length", " lines", facts.lines, spec.lines),
            ("pixels", "scan width", " pixels", facts.pixels, spec.pixels)]


def shape_problem(shape: tuple[int, int]) -> str | None:
    """Why no model can judge a scan of this shape (too small, or a strip), or None."""
    lines, pixels = shape
    if min(lines, pixels) < MIN_SIDE:
        return f"the scan is {lines} lines x {pixels} pixels; fewer than {MIN_SIDE} either way holds nothing to judge"
    if max(lines, pixels) / min(lines, pixels) > MAX_ASPECT:
        return (f"the scan is {lines} lines x {pixels} pixels, a strip longer than {MAX_ASPECT:g} times its "
                f"width; no scanner makes such images")
    return None


def content_problem(high: np.ndarray, low: np.ndarray) -> str | None:
    """Why the scan holds nothing a model can judge (shape, opaque, all air, noise), or None."""
    problem = shape_problem(high.shape)
    if problem is not None:
        return problem
    a_high, a_low = _sample(high), _sample(low)
    matter = np.maximum(a_high, a_low)
    opaque = float(np.mean(a_high >= FLOOR_ATTENUATION))
    if opaque > MAX_OPAQUE:
        return f"the scan is opaque: {opaque:.0%} of sampled pixels are at the detector floor (limit {MAX_OPAQUE:.0%})"
    share = float(np.mean(matter >= AIR_ATTENUATION))
    if share < MIN_MATTER:
        return f"the scan is all air: {share:.2%} of sampled pixels attenuate (at least {MIN_MATTER:.1%} needed)"
    rough = roughness(a_high)
    if rough > MAX_ROUGHNESS:
        return (f"the scan is noise: neighbouring pixels differ {rough:.2f} times as much as independent "
                f"pixels would (limit {MAX_ROUGHNESS})")
    return None


def _sample(plane: np.ndarray) -> np.ndarray:
    """Attenuation of up to SAMPLE_ROWS pairs of adjacent rows, every k-th column: shape (2, n, m)."""
    lines, pixels = plane.shape
    starts = np.unique(np.linspace(0, lines - 2, min(SAMPLE_ROWS, lines - 1)).astype(int))
    step = max(1, pixels // SAMPLE_COLS)
    rows = plane[np.concatenate([starts, starts + 1])][:, ::step]
    return ATTENUATION_LUT[rows].reshape(2, len(starts), -1)


def roughness(a: np.ndarray) -> float:
    """Mean difference of neighbours (along and across lines) over that of white noise of the same spread.

    Near 1 for independent pixels; real scans, whose objects span many pixels, stay far below.
    """
    spread = float(a.std())
    if spread < 1e-6:
        return 0.0
    across = float(np.mean(np.abs(np.diff(a, axis=2))))
    along = float(np.mean(np.abs(a[0] - a[1])))
    return min(across, along) / (WHITE_NOISE_MAD * spread)


MATTER_ATTENUATION = 0.02  # pixels between this and the floor carry the channel ratio


def input_statistics(high: np.ndarray, low: np.ndarray) -> dict[str, float]:
    """Share of sampled pixels at the detector floor, and the median channel ratio of those holding matter."""
    a_high, a_low = _sample(high), _sample(low)
    matter = (a_high >= MATTER_ATTENUATION) & (a_high < FLOOR_ATTENUATION)
    ratio = float(np.median(a_low[matter] / a_high[matter])) if matter.any() else float("nan")
    return {"opaque_share": float(np.mean(a_high >= FLOOR_ATTENUATION)), "channel_ratio": ratio}


def statistics_problem(manifest: Manifest, high: np.ndarray, low: np.ndarray) -> str | None:
    """Why the scan's statistics lie outside what the model was made for, or None (no limits: None)."""
    spec, name = manifest.applicability, manifest.name
    if spec.opaque_share is None and spec.channel_ratio is None:
        return None
    stats = input_statistics(high, low)
    if spec.opaque_share is not None and stats["opaque_share"] > spec.opaque_share:
        return (f"model {name} was made for scans with at most {spec.opaque_share:.0%} of pixels at the detector "
                f"floor; this scan has {stats['opaque_share']:.0%}")
    ratio, bounds = stats["channel_ratio"], spec.channel_ratio
    if bounds is not None and np.isfinite(ratio) and not bounds[0] <= ratio <= bounds[1]:
        return (f"model {name} was made for dual-energy scans whose low/high attenuation ratio is {bounds[0]:g} to "
                f"{bounds[1]:g}; this scan's is {ratio:.2f}")
    return None


def scan_problem(manifest: Manifest, facts: ScanFacts, high: np.ndarray, low: np.ndarray) -> str | None:
    """The first reason the model may not judge this scan (metadata, content, then input statistics), or None."""
    return metadata_problem(manifest, facts) or content_problem(high, low) or statistics_problem(manifest, high, low)
