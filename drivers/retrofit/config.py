"""Configuration of a retrofit image source (`[devices.retrofit]` in the station config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".filepart", ".swp", ".lock")


class SimRetrofitConfig(BaseModel):
    """What the simulators feed: scans from `scan_dir` written as files or drawn into a video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan_dir: Path
    interval_ms: int = Field(500, ge=0, description="pause between two dropped files")
    file_format: Literal["npz", "png", "tiff"] = "png"
    fps: float = Field(25.0, gt=0)
    items: int = Field(3, ge=1, description="items drawn into the generated video")


class RetrofitConfig(BaseModel):
    """An existing X-ray machine whose images arrive as files or as its monitor's video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["filedrop", "video", "sim-filedrop", "sim-video"]
    folder: Path | None = Field(None, description="drop folder (filedrop kinds)")
    device: str | int | None = Field(None, description="capture index, file or URL (video)")
    settle_ms: int = Field(1000, ge=0, description="a file must keep size and mtime this long")
    poll_ms: int = Field(200, gt=0)
    max_file_mb: int = Field(256, gt=0)
    dicos_pair_ms: int = Field(10_000, ge=0, description="a DX image's other energy must arrive within this")
    keep_days: float = Field(7.0, ge=0, description="files in processed/ and rejected/ are deleted this long after "
                             "they were written (the station's scan store keeps each scan); 0 keeps them for ever")
    ignore_suffixes: tuple[str, ...] = TEMP_SUFFIXES
    change_threshold: float = Field(2.0, gt=0,
                                    description="mean absolute grey difference (0..255) that counts as change")
    still_frames: int = Field(10, ge=1, description="unchanged frames after a change that cut a scan")
    roi: tuple[int, int, int, int] | None = Field(None, description="x, y, width, height of the image on screen")
    pixel_mm: float | None = Field(None, gt=0)
    kvp: float | None = Field(None, gt=0)
    sim: SimRetrofitConfig | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> RetrofitConfig:
        if self.kind in ("filedrop", "sim-filedrop") and self.folder is None:
            raise ValueError(f"kind {self.kind!r} needs folder")
        if self.kind == "video" and self.device is None:
            raise ValueError("kind 'video' needs device")
        if self.kind.startswith("sim-") and self.sim is None:
            raise ValueError(f"kind {self.kind!r} needs a [sim] section with scan_dir")
        return self
