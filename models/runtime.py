"""The detector runtime: a verified model package behind one onnxruntime session.

`load_detector` checks the manifest and the model's sha256 before onnxruntime sees a byte, sets
the session up (threads, full graph optimisation, execution provider with CPU fallback), warms it
up and measures the time of one tile, so the station can report ready right after it returns.
`Detector.detect` is blocking: callers on an event loop run it in `models.pool.InferencePool`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state
import structlog
from pydantic import BaseModel, ConfigDict, Field

from models.decode import ATTENUATION_LUT, DECODERS, Boxes
from models.detection import Detection
from models.errors import InferenceError, ManifestError, ModelError
from models.manifest import MAX_TILE_PX, Manifest, load_manifest, read_verified_model, tile_problem
from models.scan import Scan
from models.tiling import TileBoxes, axis_starts, merge_tiles

log = structlog.get_logger("models.runtime")

CPU = "CPUExecutionProvider"
# onnxruntime's own exceptions derive from Exception directly; these are translated at this boundary
ORT_ERRORS: tuple[type[Exception], ...] = (RuntimeError, ValueError) + tuple(
    getattr(_ort_state, n) for n in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError",
                                     "RuntimeException", "InvalidProtobuf", "ModelLoaded", "NotImplemented",
                                     "InvalidGraph", "EPFail") if hasattr(_ort_state, n))
EWMA = 0.2  # weight of a new observation in the running tile time


class ThresholdError(ModelError, ValueError):
    """A threshold override names an unknown class or lies outside (0, 1]."""


class DetectorConfig(BaseModel):
    """Detector settings the station config composes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path | None = None
    intra_op_threads: int = Field(default=1, ge=1, le=64)
    providers: tuple[str, ...] = (CPU,)
    tile_overlap: int | None = Field(default=None, ge=0)
    thresholds: dict[str, float] = Field(default_factory=dict)
    max_tile_px: int = Field(default=MAX_TILE_PX, ge=32)


@dataclass(frozen=True)
class DetectorInfo:
    """What the station reports about its model."""

    name: str
    version: str
    sha256: str
    classes: tuple[str, ...]
    thresholds: dict[str, float]
    format: str
    tile_size: tuple[int, int]
    providers: tuple[str, ...]

    def as_dict(self) -> dict:
        return {**self.__dict__, "classes": list(self.classes), "tile_size": list(self.tile_size),
                "providers": list(self.providers)}


@dataclass
class _Engine:
    """The session and everything fixed by the model; shared by threshold variants."""

    manifest: Manifest
    session: ort.InferenceSession
    input_name: str
    providers: tuple[str, ...]
    tile_seconds: float = 0.0
    bare_seconds: float = 0.0
    runs: int = 0
    run_seconds: float = 0.0
    warned_pixel: bool = False
    local: threading.local = field(default_factory=threading.local)

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        try:
            outs = self.session.run(None, {self.input_name: tensor})
        except ORT_ERRORS as exc:
            raise InferenceError(
                f"onnxruntime failed on model {self.manifest.name} {self.manifest.version} "
                f"with input {list(tensor.shape)}: {exc}"
            ) from exc
        self.run_seconds += time.perf_counter() - t0
        named = {o.name: v for o, v in zip(self.session.get_outputs(), outs)}
        broken = {name: int(np.size(v) - np.count_nonzero(np.isfinite(v))) for name, v in named.items()}
        if any(broken.values()):  # a NaN score passes no threshold: read as nothing found, it would clear
            raise InferenceError(
                f"model {self.manifest.name} {self.manifest.version} gave NaN or infinite values "
                f"({', '.join(f'{n} in {k}' for k, n in broken.items() if n)}) for input {list(tensor.shape)}: "
                f"its result is not used")
        return named

    def observe(self, seconds: float) -> None:
        self.tile_seconds += EWMA * (seconds - self.tile_seconds)
        self.runs += 1


class Detector:
    """A loaded, warmed-up detector; thread-safe (onnxruntime sessions are)."""

    def __init__(self, engine: _Engine, thresholds: Mapping[str, float], overlap: int) -> None:
        self._engine = engine
        self._m = engine.manifest
        self._thr = np.array([thresholds[c] for c in self._m.class_names], np.float32)
        if not 0 <= overlap < min(self._m.input.size):
            raise ModelError(f"tile overlap {overlap} must lie in [0, {min(self._m.input.size)}) for model {self._m.name}")
        self.overlap = overlap
        self._decode = DECODERS[self._m.output.format]

    @property
    def manifest(self) -> Manifest:
        return self._m

    @property
    def session(self) -> ort.InferenceSession:
        """The onnxruntime session (for diagnostics and benchmarks)."""
        return self._engine.session

    @property
    def info(self) -> DetectorInfo:
        m = self._m
        return DetectorInfo(m.name, m.version, m.sha256, m.class_names, self.thresholds,
                            m.output.format, m.input.size, self._engine.providers)

    @property
    def thresholds(self) -> dict[str, float]:
        return {c: float(t) for c, t in zip(self._m.class_names, self._thr)}

    @property
    def tile_size(self) -> tuple[int, int]:
        return self._m.input.size

    @property
    def tile_seconds(self) -> float:
        """Running (EWMA) wall time of one tile including pre- and post-processing."""
        return self._engine.tile_seconds

    @property
    def bare_tile_seconds(self) -> float:
        """Median `session.run` time of one tile measured at warm-up."""
        return self._engine.bare_seconds

    def stats(self) -> dict[str, float]:
        """Figures for metrics: tiles run, seconds inside session.run, running and bare tile times."""
        e = self._engine
        return {"tiles": e.runs, "session_run_seconds": e.run_seconds, "tile_seconds": e.tile_seconds,
                "bare_tile_seconds": e.bare_seconds}

    def with_thresholds(self, overrides: Mapping[str, float]) -> Detector:
        """A detector sharing this session with some class thresholds replaced."""
        unknown = sorted(set(overrides) - set(self._m.class_names))
        if unknown:
            raise ThresholdError(f"model {self._m.name} has no classes {unknown}; it has {list(self._m.class_names)}")
        bad = {k: v for k, v in overrides.items()
               if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v <= 1)}
        if bad:
            raise ThresholdError(f"thresholds must lie in (0, 1], got {bad}")
        return Detector(self._engine, {**self.thresholds, **overrides}, self.overlap)

    def tile_grid(self, shape: tuple[int, int]) -> tuple[list[int], list[int]]:
        """Tile start rows and columns for a scan of `shape`."""
        (th, tw), (h, w) = self.tile_size, shape
        return axis_starts(h, th, self.overlap), axis_starts(w, tw, self.overlap)

    def estimate_seconds(self, shape: tuple[int, int]) -> float:
        """Expected wall time of `detect` on a scan of `shape`, from measured figures."""
        ys, xs = self.tile_grid(shape)
        return len(ys) * len(xs) * self.tile_seconds

    def detect(self, scan: Scan) -> list[Detection]:
        """Detections on a whole scan, boxes in scan pixels (blocking)."""
        self._check_pixel(scan.meta.get("pixel_mm"))
        ys, xs = self.tile_grid(scan.shape)
        return self.finalise(self.run_tiles(scan.high, scan.low, ys, xs), scan.shape)

    def run_tiles(self, high: np.ndarray, low: np.ndarray, ys: Sequence[int], xs: Sequence[int],
                  y_offset: int = 0) -> list[TileBoxes]:
        """Run the tiles at rows `ys` x columns `xs` of raw planes; boxes shifted to scan pixels."""
        th, tw = self.tile_size
        out = []
        for y in ys:
            for x in xs:
                t0 = time.perf_counter()
                boxes = self._decode(self._engine.run(self._fill_tile(high, low, y, x)), self._thr,
                                     self._m.output.stride)
                self._engine.observe(time.perf_counter() - t0)
                out.append(TileBoxes(y + y_offset, x, th, tw, boxes.shifted(x, y + y_offset)))
        return out

    def finalise(self, tiles: Sequence[TileBoxes], shape: tuple[int, int]) -> list[Detection]:
        """Merge tile boxes of a scan of `shape` into detections."""
        return self.to_detections(merge_tiles(tiles, *shape))

    def to_detections(self, boxes: Boxes) -> list[Detection]:
        names = self._m.class_names
        return [
            Detection(names[c], self._m.calibrated(names[c], float(s)),
                      (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
            for b, s, c in zip(boxes.xyxy, boxes.scores, boxes.classes)
        ]

    def _check_pixel(self, pixel_mm: object) -> None:
        """Warn (once per model) when scans come at another pixel pitch than the model was trained on."""
        want = self._m.input.pixel_mm
        if isinstance(pixel_mm, (int, float)) and abs(pixel_mm / want - 1) > 0.1 and not self._engine.warned_pixel:
            self._engine.warned_pixel = True
            log.warning("detector.pixel_mismatch", model=self._m.name, model_pixel_mm=want, scan_pixel_mm=pixel_mm)

    def tile_tensor(self, high: np.ndarray, low: np.ndarray, y: int, x: int) -> np.ndarray:
        """A fresh input tensor of the tile at (y, x) of raw (uint16) planes, padded with air."""
        return self._fill_tile(high, low, y, x).copy()

    def _fill_tile(self, high: np.ndarray, low: np.ndarray, y: int, x: int) -> np.ndarray:
        """The tile normalised by table look-up straight into this thread's reused input buffer.

        Invariant: the buffer is air (0) outside the extent written last, so padding costs nothing
        when consecutive tiles have the same size.
        """
        th, tw = self.tile_size
        chans = self._m.input.channels
        local = self._engine.local
        if getattr(local, "tile", None) is None:
            local.tile, local.extent = np.zeros((1, len(chans), th, tw), np.float32), (th, tw)
        buf, (eh, ew) = local.tile, local.extent
        src = {"high": high[y : y + th, x : x + tw], "low": low[y : y + th, x : x + tw]}
        h, w = src["high"].shape
        for i, c in enumerate(chans):
            np.take(ATTENUATION_LUT, src[c], out=buf[0, i, :h, :w], mode="clip")
        if h < eh:
            buf[0, :, h:eh, :ew] = 0.0
        if w < ew:
            buf[0, :, : min(h, eh), w:ew] = 0.0
        local.extent = (h, w)
        return buf


def _providers(wanted: Sequence[str] | None) -> list[str]:
    """Requested providers that this onnxruntime offers, always ending with the CPU."""
    available = set(ort.get_available_providers())
    chosen = [p for p in (wanted or [CPU]) if p in available and p != CPU]
    missing = [p for p in (wanted or []) if p not in available]
    if missing:
        log.warning("detector.provider_unavailable", missing=missing, available=sorted(available))
    return chosen + [CPU]


def _session(data: bytes, model_dir: Path, threads: int, providers: list[str]) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=so, providers=providers)
    except ORT_ERRORS as exc:
        if providers != [CPU]:
            log.warning("detector.provider_failed", providers=providers, error=str(exc))
            return _session(data, model_dir, threads, [CPU])
        raise ManifestError(f"model file {model_dir / 'model.onnx'} is not a loadable ONNX model: {exc}") from exc


def _check_io(session: ort.InferenceSession, m: Manifest, model_dir: Path) -> str:
    """The input name, after checking the graph agrees with the manifest."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ManifestError(f"model in {model_dir} has {len(inputs)} inputs; the runtime feeds exactly one")
    shape = inputs[0].shape
    want = [1, len(m.input.channels), *m.input.size]
    if len(shape) != 4 or any(isinstance(s, int) and s != w for s, w in zip(shape, want)):
        raise ManifestError(f"model in {model_dir} takes input {shape} but its manifest implies {want}")
    names = {o.name for o in session.get_outputs()}
    if m.output.format == "cpe-fcos-v1" and not {"scores", "ltrb"} <= names:
        raise ManifestError(f"model in {model_dir} has outputs {sorted(names)}; cpe-fcos-v1 needs 'scores' and 'ltrb'")
    return inputs[0].name


def _check_outputs(outs: dict[str, np.ndarray], m: Manifest, model_dir: Path) -> None:
    """The outputs of a real run must fit the manifest's format, class count and stride."""
    k, fmt, (th, tw) = len(m.classes), m.output.format, m.input.size
    if fmt == "cpe-fcos-v1":
        s = m.output.stride
        if s is None:
            raise ManifestError(f"model in {model_dir} has format cpe-fcos-v1 but no stride")
        grid = (th // s, tw // s)
        ok = outs["scores"].shape == (1, k, *grid) and outs["ltrb"].shape == (1, 4, *grid)
        want = f"scores [1, {k}, {grid[0]}, {grid[1]}] and ltrb [1, 4, {grid[0]}, {grid[1]}] (stride {s})"
    else:
        width = (4 if fmt == "yolov8" else 5) + k
        first = next(iter(outs.values()))
        ok = first.ndim == 3 and first.shape[0] == 1 and width in first.shape[1:]
        want = f"[1, {width}, N] or [1, N, {width}]"
    if not ok:
        got = {name: list(v.shape) for name, v in outs.items()}
        raise ManifestError(f"model in {model_dir} outputs {got}, but its manifest ({fmt}, {k} classes) needs {want}")
    try:
        DECODERS[fmt](outs, np.ones(k, np.float32), m.output.stride)
    except InferenceError as exc:
        raise ManifestError(f"model in {model_dir} is refused: on a blank tile {exc}") from exc


def _warm_up(engine: _Engine, runs: int) -> dict[str, np.ndarray]:
    """Run blank tiles and record the median bare tile time (the first run is left out); a tile the machine has
    no memory for is an InferenceError."""
    m = engine.manifest
    times = []
    try:
        tile = np.zeros((1, len(m.input.channels), *m.input.size), np.float32)
        for _ in range(max(runs, 2)):
            t0 = time.perf_counter()
            outs = engine.run(tile)
            times.append(time.perf_counter() - t0)
    except MemoryError as exc:
        (th, tw) = m.input.size
        raise InferenceError(f"model {m.name} {m.version} could not be warmed up on a tile of {th} x {tw} pixels "
                             f"and {len(m.input.channels)} channels: out of memory ({exc})") from exc
    engine.bare_seconds = statistics.median(times[1:])
    engine.tile_seconds = engine.bare_seconds
    return outs


def load_detector(model_dir: str | Path, *, intra_op_threads: int = 1, providers: Sequence[str] | None = None,
                  overlap: int | None = None, thresholds: Mapping[str, float] | None = None,
                  warmup_runs: int = 3, max_tile_px: int = MAX_TILE_PX) -> Detector:
    """Verify, load, warm up and time a model package; raises ManifestError (ModelIntegrityError on a
    hash mismatch; a tile larger than `max_tile_px` either way, before onnxruntime sees the model) or
    InferenceError, all ModelError. Blocking for up to a few seconds."""
    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    too_large = tile_problem(manifest, max_tile_px)
    if too_large is not None:
        raise ManifestError(f"{too_large} (package {model_dir})")
    data = read_verified_model(model_dir, manifest)
    chosen = _providers(providers)
    session = _session(data, model_dir, intra_op_threads, chosen)
    engine = _Engine(manifest, session, _check_io(session, manifest, model_dir), tuple(session.get_providers()))
    _check_outputs(_warm_up(engine, warmup_runs), manifest, model_dir)
    default_overlap = min(manifest.input.size) // 5
    det = Detector(engine, manifest.thresholds, default_overlap if overlap is None else overlap)
    if thresholds:
        det = det.with_thresholds(thresholds)
    log.info("detector.ready", name=manifest.name, version=manifest.version, sha256=manifest.sha256[:12],
             providers=list(engine.providers), tile_ms=round(engine.bare_seconds * 1e3, 2))
    return det


def detector_from_config(cfg: DetectorConfig) -> Detector:
    """`load_detector` with the settings of a `DetectorConfig`; no model_dir means the zoo's default."""
    from models.cli import default_model_dir

    return load_detector(cfg.model_dir or default_model_dir(), intra_op_threads=cfg.intra_op_threads,
                         providers=cfg.providers, overlap=cfg.tile_overlap, thresholds=cfg.thresholds,
                         max_tile_px=cfg.max_tile_px)
