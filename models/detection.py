"""Detections as the rest of the system sees them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    """One detected object; box is (x0, y0, x1, y1) in scan pixels (x across, y along lines)."""

    label: str
    score: float
    box: tuple[float, float, float, float]

    def as_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4), "box": [round(v, 1) for v in self.box]}
