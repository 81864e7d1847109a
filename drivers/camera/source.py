"""OpenCV sources: RTSP/HTTP streams, V4L2 devices, video files, image files and folders of images.

Images are read as bytes and decoded here, so that a truncated JPEG or PNG (no end marker) is a
bad frame rather than a half-grey picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.camera.config import CameraConfig
from drivers.camera.frames import CameraBase
from drivers.errors import LinkLost

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


def decode_image(data: bytes, suffix: str) -> np.ndarray | None:
    """The image in `data`, or None when it does not decode or is cut short (JPEG without EOI, PNG without IEND)."""
    suffix = suffix.lower()
    if suffix in (".jpg", ".jpeg") and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    if suffix == ".png" and b"IEND" not in data[-16:]:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image)


class FolderCamera(CameraBase):
    """The images of a folder (or one image file) in name order, one per frame."""

    def __init__(self, cfg: CameraConfig, name: str) -> None:
        super().__init__(cfg, name)
        self._files: list[Path] = []
        self._next = 0

    def _open(self) -> None:
        path = Path(self.cfg.url)
        if path.is_file():
            self._files = [path]
        elif path.is_dir():
            self._files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise LinkLost(f"camera {self.name}: {path} is neither an image file nor a folder", device=self.name)
        self._next = 0

    def _grab(self) -> np.ndarray | None:
        if not self._files:
            raise LinkLost(f"camera {self.name}: no images under {self.cfg.url}", device=self.name)
        if self._next >= len(self._files):
            if not self.cfg.loop:
                raise EOFError
            self._next = 0
        path = self._files[self._next]
        self._next += 1
        try:
            return decode_image(path.read_bytes(), path.suffix)
        except OSError:
            return None


class CaptureCamera(CameraBase):
    """cv2.VideoCapture on a stream URL, a V4L2 device or a video file."""

    def __init__(self, cfg: CameraConfig, name: str) -> None:
        super().__init__(cfg, name)
        self._cap: Any = None

    def _target(self) -> str | int:
        return int(self.cfg.url) if self.cfg.url.isdigit() else self.cfg.url

    def _open(self) -> None:
        cap = cv2.VideoCapture(self._target())
        if not cap.isOpened():
            cap.release()
            raise LinkLost(f"camera {self.name}: OpenCV could not open {self.cfg.url}", device=self.name)
        self._cap = cap

    def _grab(self) -> np.ndarray | None:
        if self._cap is None:
            raise LinkLost(f"camera {self.name}: {self.cfg.url} is not open", device=self.name)
        ok, image = self._cap.read()
        if ok:
            return np.asarray(image) if image is not None else None
        if self._is_file() and not self.cfg.loop:
            raise EOFError
        if self._is_file():
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            return None
        raise LinkLost(f"camera {self.name}: the stream {self.cfg.url} gave no frame", device=self.name)

    def _is_file(self) -> bool:
        return Path(self.cfg.url).is_file()

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def opencv_camera(cfg: CameraConfig, name: str) -> CameraBase:
    """The source for `cfg.url`: a folder or image file, else a capture (stream, device, video)."""
    path = Path(cfg.url)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return FolderCamera(cfg, name)
    return CaptureCamera(cfg, name)
