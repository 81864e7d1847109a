"""Camera configuration: one camera per role, its source, its trigger and its recognition threshold."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["front_plate", "rear_plate", "container_side", "container_door"]
PLATE_ROLES: tuple[str, ...] = ("front_plate", "rear_plate")


class CameraSim(BaseModel):
    """Simulated camera: the render set (`tuning` or `held_out` fonts and conditions), seed, bad frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    profile: Literal["tuning", "held_out"] = "tuning"
    seed: int = 0
    cross_boundary: float = Field(default=0.5, ge=0, le=1, description="share of vehicles with a Guangdong plate")
    mainland: float = Field(default=0.0, ge=0, le=1,
                            description="share of vehicles registered on the mainland (only a mainland plate)")
    bad_every: int = Field(default=0, ge=0, description="every n-th frame is broken (0: none)")
    lane: str | None = Field(default=None, description="render the item last come inside this simulated lane "
                             "(drivers/simlane.py) instead of this camera's own n-th vehicle")


class CameraConfig(BaseModel):
    """One camera. `url` is an RTSP/HTTP stream, a V4L2 device (`/dev/video0` or an index such as `0`),
    a video or image file, or a folder of images; `kind = "sim"` renders frames instead."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["opencv", "sim"]
    role: Role
    url: str = ""
    trigger: Literal["eyes", "continuous"] = "eyes"
    fps: float = Field(default=4.0, gt=0, le=60)
    width: int | None = Field(default=None, gt=0, description="expected frame width; other sizes are bad frames")
    height: int | None = Field(default=None, gt=0)
    roi: tuple[int, int, int, int] | None = Field(default=None, description="x, y, w, h of the crop to read")
    loop: bool = Field(default=False, description="a file or folder starts again when it ends")
    max_frames: int = Field(default=6, ge=1, le=64, description="frames read per vehicle")
    min_confidence: float = Field(default=0.8, ge=0, le=1, description="below it a voted read is low_confidence")
    reconnect_min_ms: int = Field(default=500, ge=10)
    reconnect_max_ms: int = Field(default=10000, ge=10)
    sim: CameraSim | None = None

    @model_validator(mode="after")
    def _source(self) -> CameraConfig:
        """A real camera needs its url; a simulated one its [sim] table."""
        if self.kind == "opencv" and not self.url:
            raise ValueError("kind opencv needs url (rtsp://..., /dev/video0, a file or a folder)")
        if self.kind == "sim" and self.sim is None:
            object.__setattr__(self, "sim", CameraSim())
        return self

    @model_validator(mode="after")
    def _roi_inside(self) -> CameraConfig:
        """The roi must be a part of the frame: one outside it leaves nothing to read, on every frame."""
        if self.roi is None:
            return self
        x, y, w, h = self.roi
        if x < 0 or y < 0 or w <= 0 or h <= 0:
            raise ValueError(f"roi {list(self.roi)} must be [x, y, w, h] with x and y at least 0 and w and h above 0")
        if (self.width is not None and x + w > self.width) or (self.height is not None and y + h > self.height):
            raise ValueError(f"roi {list(self.roi)} reaches x {x + w} and y {y + h}, outside the "
                             f"{self.width or '?'}×{self.height or '?'} frame (width, height)")
        return self

    @property
    def reads(self) -> str:
        """What the camera reads: "plate" or "container"."""
        return "plate" if self.role in PLATE_ROLES else "container"
