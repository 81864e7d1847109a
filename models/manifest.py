"""Model package manifest (`manifest.toml` beside `model.onnx`): parsing, validation, integrity.

A package is `models/zoo/<name>/model.onnx` + `manifest.toml`:

    name, version, sha256 (hex of model.onnx), description
    clears = true                 (false: the model's detections mark an item suspect, but finding
                                   nothing never clears one: an officer looks at every item; for a
                                   model below its goals, see its card)
    [input]  channels = ["high", "low"]   (tensor channel order; 2 or 3 of "high"/"low")
             size = [640, 640]            (tile H, W; at most [model] max_tile_px each way, 2048 by default)
             normalisation = "attenuation" (a = -ln(clip(T/65535, 1e-4, 1)) / ln(1e4); pad = air = 0)
             pixel_mm
    [output] format = "cpe-fcos-v1" | "yolov8" | "yolov5"; stride (cpe-fcos-v1 only)
    [[classes]] name, threshold
    [applies] item_kinds, pixel_mm, energy_kev, lines, pixels, opaque_share, channel_ratio, single_energy
              (optional; see AppliesSpec; pixel_mm defaults to [input] pixel_mm ± 10 %)
    [evaluation] free-form figures

Three-channel inputs (YOLO tool-chains trained on RGB) list their mapping explicitly, e.g.
`channels = ["high", "low", "high"]` feeds attenuation of the high channel to tensor channels 0
and 2 and the low channel to channel 1. A detector trained elsewhere drops in like this:

    name = "vendor-yolo"            version = "3.1"       sha256 = "<sha256sum model.onnx>"
    [input]  channels = ["high", "low", "high"]   size = [640, 640]   pixel_mm = 1.0
    [output] format = "yolov8"      (Ultralytics export, no NMS in the graph: [1, 4+K, N])
    [[classes]] name = "knife"      threshold = 0.4
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.errors import ManifestError, ModelIntegrityError

MANIFEST_FILE = "manifest.toml"
MODEL_FILE = "model.onnx"
OUTPUT_FORMATS = ("cpe-fcos-v1", "yolov8", "yolov5")
ItemKindName = Literal["baggage", "parcel", "vehicle", "container"]  # central_sync.schema.ItemKind values
PIXEL_TOLERANCE = 0.1  # a package whose [applies] states no pixel_mm judges scans within 10 % of its [input] one
# the longest tile side (pixels) a station runs unless `[model] max_tile_px` says otherwise: a model whose graph
# leaves the tile's size open takes tiles as large as its manifest asks, and one of 262144 x 262144 pixels needed
# 512 GiB at warm-up (a MemoryError ended the daemon)
MAX_TILE_PX = 2048


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Frozen):
    """How a scan becomes the model's input tensor."""

    channels: tuple[Literal["high", "low"], ...] = Field(min_length=2, max_length=3)
    size: tuple[int, int]
    normalisation: Literal["attenuation"] = "attenuation"
    pixel_mm: float = Field(gt=0)

    @field_validator("size")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 32:
            raise ValueError(f"tile size {list(v)} must be at least 32 pixels each way")
        return v


class OutputSpec(_Frozen):
    """Which output layout the model emits."""

    format: Literal["cpe-fcos-v1", "yolov8", "yolov5"]
    stride: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _stride_for_fcos(self) -> OutputSpec:
        if self.format == "cpe-fcos-v1" and self.stride is None:
            raise ValueError("format 'cpe-fcos-v1' needs a 'stride'")
        return self


class ClassSpec(_Frozen):
    """One class and its score threshold."""

    name: str = Field(min_length=1)
    threshold: float = Field(gt=0, le=1, strict=True)  # strict: `true` is not 1.0 (an integer is a number)


class AppliesSpec(_Frozen):
    """The scans a model is made for; each range is inclusive, a missing one does not restrict (but a missing
    `pixel_mm` is the `[input]` one within 10 %, Manifest.applicability).

        [applies]
        item_kinds = ["vehicle", "container"]
        pixel_mm = [5.0, 10.0]
        energy_kev = [200.0, 9500.0]   # the scan's peak energy (kVp of a tube, MeV x 1000 of a linac)
        lines = [64, 8000]
        pixels = [256, 1400]
        opaque_share = 0.05            # at most this share of sampled pixels at the detector floor
        channel_ratio = [1.05, 2.5]    # median ln T_low / ln T_high of sampled pixels holding matter
        single_energy = false          # true: also made for single-energy scans (the default refuses them)
    """

    item_kinds: tuple[ItemKindName, ...] | None = Field(default=None, min_length=1)
    pixel_mm: tuple[float, float] | None = None
    energy_kev: tuple[float, float] | None = None
    lines: tuple[int, int] | None = None
    pixels: tuple[int, int] | None = None
    opaque_share: float | None = Field(default=None, gt=0, le=1)
    channel_ratio: tuple[float, float] | None = None
    single_energy: bool = False

    @field_validator("pixel_mm", "energy_kev", "lines", "pixels", "channel_ratio")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 < v[0] <= v[1]:
            raise ValueError(f"range {list(v)} must be [low, high] with 0 < low <= high")
        return v


class CalibrationSpec(_Frozen):
    """Per-class Platt scaling of reported scores: p = sigmoid(a · logit(s) + b), a > 0 (order kept);
    thresholds and decisions stay on the raw scores.

        [calibration]
        method = "platt"
        fitted_on = "validation seeds 1500000..1500199"
        platt = { firearm = [1.4, -0.3], knife = [0.9, 0.2] }
    """

    method: Literal["platt"] = "platt"
    fitted_on: str = ""
    platt: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("platt")
    @classmethod
    def _increasing(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        bad = {k: list(ab) for k, ab in v.items() if not (0 < ab[0] < 100 and abs(ab[1]) < 100)}
        if bad:
            raise ValueError(f"each class needs [a, b] with 0 < a < 100 and |b| < 100, got {bad}")
        return v


class Manifest(_Frozen):
    """The whole manifest."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    description: str = ""
    clears: bool = True
    input: InputSpec
    output: OutputSpec
    classes: tuple[ClassSpec, ...] = Field(min_length=1)
    applies: AppliesSpec | None = None
    calibration: CalibrationSpec | None = None
    evaluation: dict[str, Any] = Field(default_factory=dict)

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("classes")
    @classmethod
    def _unique(cls, v: tuple[ClassSpec, ...]) -> tuple[ClassSpec, ...]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"class names repeat: {dupes}")
        return v

    @model_validator(mode="after")
    def _calibrated_classes_exist(self) -> Manifest:
        unknown = sorted(set(self.calibration.platt) - set(self.class_names)) if self.calibration else []
        if unknown:
            raise ValueError(f"calibration names unknown classes {unknown}")
        return self

    def calibrated(self, label: str, score: float) -> float:
        """The reported score of a detection: Platt-scaled where [calibration] names the class."""
        ab = self.calibration.platt.get(label) if self.calibration else None
        if ab is None or not 0 < score < 1:
            return score
        logit = float(np.log(score / (1 - score)))
        return float(1 / (1 + np.exp(-(ab[0] * logit + ab[1]))))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def thresholds(self) -> dict[str, float]:
        return {c.name: c.threshold for c in self.classes}

    @property
    def applicability(self) -> AppliesSpec:
        """`[applies]` (none: anything), its pixel pitch where it states none the `[input] pixel_mm` the model was
        trained at within 10 %: a table naming only item kinds must not turn the pitch check off."""
        spec = self.applies or AppliesSpec()
        if spec.pixel_mm is not None:
            return spec
        p = self.input.pixel_mm
        return spec.model_copy(update={"pixel_mm": (p * (1 - PIXEL_TOLERANCE), p * (1 + PIXEL_TOLERANCE))})


def tile_problem(manifest: Manifest, max_tile_px: int = MAX_TILE_PX) -> str | None:
    """Why the manifest's tile is too large for a station that runs tiles of at most `max_tile_px` each way, or None."""
    (th, tw), m = manifest.input.size, manifest
    if max(th, tw) <= max_tile_px:
        return None
    return (f"model {m.name} {m.version} asks for tiles of {th} x {tw} pixels ([input] size), more than the "
            f"{max_tile_px} pixels each way this station runs ([model] max_tile_px), so it is not loaded")


def _describe(err: ValidationError, path: Path) -> str:
    """One sentence naming the first failing key and the file."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"manifest {path} key {key!r}: {first['msg']}{more}"


def load_manifest(model_dir: str | Path) -> Manifest:
    """Read and validate `manifest.toml` in `model_dir`; any defect raises ManifestError naming it."""
    path = Path(model_dir) / MANIFEST_FILE
    try:
        return parse_manifest(path.read_bytes(), path)
    except FileNotFoundError as exc:
        raise ManifestError(f"model package {model_dir} has no {MANIFEST_FILE}") from exc
    except OSError as exc:
        raise ManifestError(f"manifest {path} is not readable TOML: {exc}") from exc


def parse_manifest(data: bytes, path: Path) -> Manifest:
    """Validate manifest bytes (`path` names them in errors); ManifestError naming the defect."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"manifest {path} is not readable TOML: {exc}") from exc
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(_describe(exc, path)) from exc


def read_verified_model(model_dir: str | Path, manifest: Manifest) -> bytes:
    """Return the ONNX bytes only if their sha256 matches the manifest (checked before any load)."""
    path = Path(model_dir) / MODEL_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"model file {path} cannot be read: {exc.strerror or exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.sha256:
        raise ModelIntegrityError(
            f"model file {path} ({len(data)} bytes) has sha256 {actual}, but its manifest says "
            f"{manifest.sha256}; refusing to load a tampered or truncated model"
        )
    return data
