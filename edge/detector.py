"""The station's detection engine: the ONNX runtime behind the pipeline's narrow interface.

A model that is missing, tampered or broken does not stop the station: it runs with no engine
model, every item goes to `manual` (reason model_unavailable) and an alarm stands. Without
`[model] dir` the station takes the shipped package whose manifest is made for its scans (item
kind, scanner pitch and energy); when none is, the same holds.

The model judges only scans it is made for (models.applicability): the station's facts are checked
when a scan starts, so a scan the model may not judge costs no inference, and the scan's own meta
and content when it ends; either refusal ends in `manual` / model_not_applicable with the reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import structlog

from central_sync.schema import ModelRef
from edge.errors import StationFault
from edge.store import StoreWriter
from edge.verdict import Reason
from models.applicability import ScanFacts, metadata_problem, scan_problem
from models.cli import ZOO, select_model
from models.detection import Detection
from models.errors import ManifestError, ModelError
from models.manifest import MANIFEST_FILE, MAX_TILE_PX, Manifest, load_manifest, tile_problem
from models.pool import DeadlineUnreachable, InferencePool, PoolOverloaded
from models.runtime import CPU, Detector, load_detector
from models.scan import Scan
from models.streaming import StripDetector

if TYPE_CHECKING:
    from edge.config import ModelSection, StationConfig

log = structlog.get_logger()


@dataclass
class Engine:
    """The loaded detector (or the reason there is none) and the shared inference pool.

    Every model the station runs (its own, one the hub switches to, a candidate on canary and once promoted)
    is loaded with `[model] threads` and `providers` and judged under the station's thresholds in force
    (`[model] thresholds`, then the hub's set_thresholds) over its manifest's.
    """

    detector: Detector | None
    pool: InferencePool
    problem: str = ""
    facts: ScanFacts = ScanFacts()  # what the station knows of its scans: item kind, scanner pitch and energy
    threads: int = 1
    providers: tuple[str, ...] = (CPU,)
    thresholds: dict[str, float] = field(default_factory=dict)  # the station's overrides in force
    max_tile_px: int = MAX_TILE_PX  # `[model] max_tile_px`: a model asking for larger tiles is refused at load

    @property
    def model(self) -> ModelRef | None:
        if self.detector is None:
            return None
        info = self.detector.info
        return ModelRef(name=info.name, version=info.version, sha256=info.sha256)

    @property
    def classes(self) -> tuple[str, ...]:
        """What the model can find; none without a model."""
        return self.detector.manifest.class_names if self.detector is not None else ()

    def open_stream(self, station: str, item_kind: str) -> "_Stream":
        return _Stream(self, station, self.facts.updated(ScanFacts(item_kind=item_kind)))

    def set_thresholds(self, overrides: dict[str, float]) -> None:
        if self.detector is None:
            raise ModelError("the station has no model whose thresholds could change")
        self.detector = self.detector.with_thresholds(overrides)
        self.thresholds = {**self.thresholds, **overrides}
        log.info("model.thresholds_changed", thresholds=overrides)

    async def switch_model(self, sha256: str) -> None:
        """Make a model package the station already holds active; it is verified by its hash."""
        model_dir = held_model(sha256)
        self.use(await asyncio.to_thread(self.load, model_dir))

    def load(self, model_dir: Path) -> Detector:
        """Load another package as the station's own was loaded (threads, providers, largest tile; blocking); `use`
        and `under_station_thresholds` put the station's thresholds over its manifest's."""
        return load_detector(model_dir, intra_op_threads=self.threads, providers=list(self.providers),
                             max_tile_px=self.max_tile_px)

    def under_station_thresholds(self, detector: Detector) -> Detector:
        """`detector` with the station's threshold overrides for the classes it has; those naming classes it
        lacks are logged, never applied to another class."""
        carried = carried_thresholds(detector.manifest, self.thresholds)
        return detector.with_thresholds(carried) if carried else detector

    def use(self, detector: Detector) -> None:
        """Make a loaded detector active under the station's thresholds in force (one assignment: a scan in
        progress finishes on the old one)."""
        detector = self.under_station_thresholds(detector)
        problem = metadata_problem(detector.manifest, self.facts)
        self.detector, self.problem = detector, _not_made_for(problem) if problem else ""
        log.info("model.switched", name=detector.info.name, version=detector.info.version, sha256=detector.info.sha256)


class _Stream:
    """One scan's streaming detection; the strip detector is made when the width is known.

    `refused` holds why the model may not judge this scan, once known: from the station's facts at
    once, from the width and length as lines arrive (strips queued so far are cancelled), from the
    scan's meta and content at the end.
    """

    def __init__(self, engine: Engine, station: str, facts: ScanFacts) -> None:
        self.engine = engine
        self.station = station
        self.facts = facts
        self._strips: StripDetector | None = None
        self._lines = 0
        # the model the scan started on judges all of it, its manifest included: a model switched or its
        # thresholds changed mid-scan take the next scan (a model that may not clear must not have its
        # empty result read under a successor's `clears = true`)
        self.detector = detector = engine.detector
        self.refused = metadata_problem(detector.manifest, facts) if detector is not None else None

    async def feed(self, high: np.ndarray, low: np.ndarray) -> None:
        if self.refused is not None:
            return
        detector = self.detector
        if detector is None:  # the inspector opens no stream without a model; a model error if it did
            raise ModelError(f"station {self.station} has no usable model to detect with")
        self._lines += len(high)
        so_far = self.facts.updated(ScanFacts(lines=self._lines, pixels=high.shape[1]))
        self.refused = metadata_problem(detector.manifest, so_far, growing=True)
        if self.refused is not None:
            await self.aclose()
            return
        if self._strips is None:
            self._strips = StripDetector(detector, high.shape[1], pool=self.engine.pool, station=self.station)
        await self._strips.feed_async(high, low)

    async def finish(self, scan: Scan, deadline: float) -> list[Detection]:
        """The detections, once the whole scan is judged to be one the model may decide on; queued strips are
        cancelled otherwise."""
        try:
            self._judge(scan)
            if self._strips is None:
                raise StationFault(Reason.SCAN_INCOMPLETE, "the scan delivered no lines")
            return _unless_it_cannot_clear(self.detector, await self._strips.finish_async(deadline=deadline))
        except DeadlineUnreachable as exc:
            raise StationFault(Reason.DEADLINE_UNREACHABLE, str(exc)) from exc
        except PoolOverloaded as exc:
            raise StationFault(Reason.OVERLOAD, str(exc)) from exc
        finally:
            await self.aclose()

    def _judge(self, scan: Scan) -> None:
        """Raise model_not_applicable unless the model may judge the whole scan.

        The scan's meta states its pitch and energy over the station's config; the item kind stays the
        item's (the record's), since a scanner's meta has none and a file's is only its generator's label.
        """
        detector = self.detector
        if self.refused is None and detector is not None:
            facts = self.facts.updated(ScanFacts.of_meta(scan.meta, scan.shape)).updated(
                ScanFacts(item_kind=self.facts.item_kind))
            self.refused = scan_problem(detector.manifest, facts, scan.high, scan.low)
        if self.refused is not None:
            model = detector.manifest.name if detector is not None else "the model"
            raise StationFault(Reason.MODEL_NOT_APPLICABLE, f"{model} may not judge this scan: {self.refused}")

    async def aclose(self) -> None:
        if self._strips is not None:
            await self._strips.aclose()


def _unless_it_cannot_clear(detector: Detector | None, detections: list[Detection]) -> list[Detection]:
    """The detections; a model that may not clear (manifest `clears = false`) finding nothing sends the item to manual."""
    if not detections and detector is not None and not detector.manifest.clears:
        m = detector.manifest
        raise StationFault(Reason.MODEL_CANNOT_CLEAR, f"{m.name} {m.version} found nothing, but it is not trusted to "
                                                      f"clear a scan (manifest clears = false): an officer looks at it")
    return detections


def carried_thresholds(manifest: Manifest, thresholds: dict[str, float]) -> dict[str, float]:
    """The station's thresholds for the classes the model has; those naming classes it lacks are logged."""
    lacking = {k: v for k, v in thresholds.items() if k not in manifest.class_names}
    if lacking:
        m = manifest
        log.warning("model.thresholds_not_carried", model=f"{m.name} {m.version}", classes=sorted(lacking),
                    error=f"model {m.name} {m.version} has no classes {sorted(lacking)}, so the station's "
                          f"thresholds for them ({lacking}) do not apply to it; it has {list(m.class_names)}")
    return {k: v for k, v in thresholds.items() if k in manifest.class_names}


def held_model(sha256: str, zoo: Path = ZOO) -> Path:
    """The package under `zoo` whose manifest names `sha256`; ManifestError when none does."""
    for manifest in sorted(zoo.glob(f"*/{MANIFEST_FILE}")):
        if load_manifest(manifest.parent).sha256 == sha256:
            return manifest.parent
    raise ManifestError(f"the station holds no model with sha256 {sha256} under {zoo}")


def station_facts(config: StationConfig) -> ScanFacts:
    """What a station knows of its scans before they arrive: item kind, and the scanner's pitch and energy."""
    device = config.devices.scanner or config.devices.source
    return ScanFacts(item_kind=config.station.item_kind.value, pixel_mm=getattr(device, "pixel_mm", None),
                     energy_kev=getattr(device, "kvp", None))


def model_dir_for(cfg: ModelSection, facts: ScanFacts) -> Path:
    """The configured package, or the shipped one made for these scans (NoApplicableModel when none is)."""
    return cfg.dir if cfg.dir is not None else select_model(facts)


def model_problem(cfg: ModelSection, facts: ScanFacts) -> str | None:
    """Why the station's model will not judge its scans (none shipped for them, or the configured one is
    made for others), or None; read from manifests only, for `edge check-config` and the start-up alarm."""
    try:
        manifest = load_manifest(model_dir_for(cfg, facts))
    except ModelError as exc:
        return str(exc)
    problem = metadata_problem(manifest, facts)
    if problem:
        return _not_made_for(problem)
    too_large = tile_problem(manifest, cfg.max_tile_px)
    if too_large:
        return too_large
    unknown = sorted(set(cfg.thresholds) - set(manifest.class_names))
    if unknown:  # the detector refuses them at start: the station would run without its model
        return (f"[model] thresholds name classes the model {manifest.name} does not have: {unknown}; "
                f"it has {list(manifest.class_names)}")
    return None


def _not_made_for(problem: str) -> str:
    return f"the configured model is not made for this station's scans: {problem}"


async def open_detector(cfg: ModelSection, facts: ScanFacts = ScanFacts()) -> Detector:
    """Verify, load and warm up the station's model off the event loop (`edge run` and `edge diag`)."""
    model_dir = model_dir_for(cfg, facts)
    return await asyncio.to_thread(load_detector, model_dir, intra_op_threads=cfg.threads,
                                   providers=list(cfg.providers), thresholds=cfg.thresholds or None,
                                   max_tile_px=cfg.max_tile_px)


async def load_engine(cfg: ModelSection, station: str, store: StoreWriter, pool: InferencePool,
                      facts: ScanFacts = ScanFacts()) -> Engine:
    """Load and warm up the model off the event loop; on failure raise an alarm and run without.

    A configured model made for other scans is loaded (each scan then says why it is not judged)
    and the alarm stands all the same: every item will go to manual.
    """
    def engine(detector: Detector | None, problem: str = "") -> Engine:
        return Engine(detector, pool, problem, facts, cfg.threads, tuple(cfg.providers), dict(cfg.thresholds),
                      cfg.max_tile_px)

    try:
        detector = await open_detector(cfg, facts)
    except ModelError as exc:
        log.error("model.unavailable", station=station, error=str(exc))
        await store.call(store.store.raise_alarm, "model_unavailable", f"{exc}; every item goes to manual")
        return engine(None, str(exc))
    problem = metadata_problem(detector.manifest, facts)
    if problem is not None:
        log.error("model.not_applicable", station=station, error=problem)
        await store.call(store.store.raise_alarm, "model_unavailable", f"{_not_made_for(problem)}; every item goes to manual")
        return engine(detector, _not_made_for(problem))
    await store.call(store.store.clear_alarm, "model_unavailable")
    return engine(detector)
