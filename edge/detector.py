"""The station's detection engine: the ONNX runtime behind the pipeline's narrow interface.

A model that is missing, tampered or broken does not stop the station: it runs with no engine
model, every item goes to `manual` (reason model_unavailable) and an alarm stands.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import structlog

from central_sync.schema import ModelRef
from edge.errors import StationFault
from edge.store import StoreWriter
from edge.verdict import Reason
from models.cli import ZOO, default_model_dir
from models.detection import Detection
from models.errors import ManifestError, ModelError
from models.manifest import MANIFEST_FILE, load_manifest
from models.pool import DeadlineUnreachable, InferencePool, PoolOverloaded
from models.runtime import Detector, load_detector
from models.streaming import StripDetector

if TYPE_CHECKING:
    from edge.config import ModelSection

log = structlog.get_logger()


@dataclass
class Engine:
    """The loaded detector (or the reason there is none) and the shared inference pool."""

    detector: Detector | None
    pool: InferencePool
    problem: str = ""

    @property
    def model(self) -> ModelRef | None:
        if self.detector is None:
            return None
        info = self.detector.info
        return ModelRef(name=info.name, version=info.version, sha256=info.sha256)

    def open_stream(self, station: str, width: int) -> "_Stream":
        return _Stream(self, station)

    def set_thresholds(self, overrides: dict[str, float]) -> None:
        if self.detector is None:
            raise ModelError("the station has no model whose thresholds could change")
        self.detector = self.detector.with_thresholds(overrides)
        log.info("model.thresholds_changed", thresholds=overrides)

    async def switch_model(self, sha256: str, threads: int = 1) -> None:
        """Make a model package the station already holds active; it is verified by its hash."""
        model_dir = held_model(sha256)
        detector = await asyncio.to_thread(load_detector, model_dir, intra_op_threads=threads)
        self.detector, self.problem = detector, ""
        log.info("model.switched", name=detector.info.name, version=detector.info.version, sha256=sha256)


class _Stream:
    """One scan's streaming detection; the strip detector is made when the width is known."""

    def __init__(self, engine: Engine, station: str) -> None:
        self.engine = engine
        self.station = station
        self._strips: StripDetector | None = None

    async def feed(self, high: np.ndarray, low: np.ndarray) -> None:
        if self._strips is None:
            detector = self.engine.detector
            if detector is None:  # the inspector opens no stream without a model; a model error if it did
                raise ModelError(f"station {self.station} has no usable model to detect with")
            self._strips = StripDetector(detector, high.shape[1], pool=self.engine.pool, station=self.station)
        await self._strips.feed_async(high, low)

    async def finish(self, deadline: float) -> list[Detection]:
        if self._strips is None:
            raise StationFault(Reason.SCAN_INCOMPLETE, "the scan delivered no lines")
        try:
            return await self._strips.finish_async(deadline=deadline)
        except DeadlineUnreachable as exc:
            raise StationFault(Reason.DEADLINE_UNREACHABLE, str(exc)) from exc
        except PoolOverloaded as exc:
            raise StationFault(Reason.OVERLOAD, str(exc)) from exc
        finally:
            await self._strips.aclose()


def held_model(sha256: str, zoo: Path = ZOO) -> Path:
    """The package under `zoo` whose manifest names `sha256`; ManifestError when none does."""
    for manifest in sorted(zoo.glob(f"*/{MANIFEST_FILE}")):
        if load_manifest(manifest.parent).sha256 == sha256:
            return manifest.parent
    raise ManifestError(f"the station holds no model with sha256 {sha256} under {zoo}")


async def open_detector(cfg: ModelSection) -> Detector:
    """Verify, load and warm up the configured model off the event loop (`edge run` and `edge diag`)."""
    model_dir = cfg.dir if cfg.dir is not None else default_model_dir()
    return await asyncio.to_thread(load_detector, model_dir, intra_op_threads=cfg.threads,
                                   providers=list(cfg.providers), thresholds=cfg.thresholds or None)


async def load_engine(cfg: ModelSection, station: str, store: StoreWriter, pool: InferencePool) -> Engine:
    """Load and warm up the model off the event loop; on failure raise an alarm and run without."""
    try:
        detector = await open_detector(cfg)
    except ModelError as exc:
        log.error("model.unavailable", station=station, error=str(exc))
        await store.call(store.store.raise_alarm, "model_unavailable", str(exc))
        return Engine(None, pool, str(exc))
    await store.call(store.store.clear_alarm, "model_unavailable")
    return Engine(detector, pool)
