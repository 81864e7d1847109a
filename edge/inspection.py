"""One inspection: identify -> acquire (streaming detection) -> detect -> decide -> actuate -> record.

Every kind of station runs this one path. The budget runs from the end of acquisition (the last
scan line) to the verdict; anything that prevents a decision ends in `manual` with its reason,
at once, and every stage is timed into the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import AsyncGenerator, Awaitable, Callable, Protocol

import numpy as np
import structlog

from central_sync.schema import (
    ContainerPass,
    DetectionOut,
    Identity,
    InspectionRecord,
    ItemKind,
    ModelRef,
    RiskOut,
    ScanRef,
    SealEventOut,
    Verdict,
)
from drivers.errors import DriverError
from edge.errors import DiskFull, StationFault
from edge.events import EventBus
from edge.history import container_pass
from edge.identity import conflicts, fuse, unidentified_container
from edge.ids import new_id
from edge.metrics import StationMetrics
from edge.risk import RiskCheck
from edge.seals import SealExpectation, for_item, strictest
from edge.store import StoreWriter
from edge.verdict import Outcome, Reason, decide, with_risk
from models.dense import dense_problem, zero_band_problem
from models.detection import Detection
from models.errors import ModelError
from models.scan import Scan
from models.shadow import Shadow

log = structlog.get_logger()
LOAD_PRESENT = "load_present"  # the detector class saying a container or a load bed carries goods


class StreamingDetection(Protocol):
    """One scan's detection: blocks as they arrive, then the whole scan (judged for applicability) and a deadline;
    closed on every way out (`aclose` cancels the strips still queued)."""

    async def feed(self, high: np.ndarray, low: np.ndarray) -> None: ...
    async def finish(self, scan: Scan, deadline: float) -> list[Detection]: ...
    async def aclose(self) -> None: ...


class DetectionEngine(Protocol):
    """The station's detector as the pipeline needs it (edge.detector adapts the runtime)."""

    @property
    def model(self) -> ModelRef | None: ...
    @property
    def classes(self) -> tuple[str, ...]: ...
    def open_stream(self, station: str, item_kind: str) -> StreamingDetection: ...


class Acquisition(Protocol):
    """A scan being acquired: line blocks as they arrive, then the whole scan."""

    def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]: ...
    def result(self) -> Scan: ...


@dataclass
class Item:
    """An item under inspection; identities may be added until the record is written."""

    ref: str
    kind: ItemKind
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    identities: list[Identity] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    seal_events: list[SealEventOut] = field(default_factory=list)
    size_type: str | None = None  # a container's ISO 6346 size/type code as its camera read it (45G1)
    on_identity: Callable[[], None] | None = field(default=None, repr=False, compare=False)  # set while inspected

    def identified(self) -> None:
        """Readers call this after adding identities: the risk is assessed again at once (Inspector)."""
        if self.on_identity is not None:
            self.on_identity()


@dataclass
class Timer:
    stages: dict[str, float] = field(default_factory=dict)
    _t: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> float:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + (now - self._t) * 1000
        self._t = now
        return now


Actuate = Callable[["Item", Verdict, Reason], Awaitable[Reason | None]]
"""Carry out a verdict (divert, light, barrier); return a reason when it could not be confirmed."""


@dataclass
class Inspector:
    station: str
    lane: str
    budget_ms: float
    engine: DetectionEngine | None
    store: StoreWriter
    events: EventBus
    metrics: StationMetrics
    actuate: Actuate
    after_commit: Callable[[], None] | None = None  # e.g. wake the sync publisher
    shadow: "Shadow | None" = None  # a candidate model compared on the same scans, verdicts untouched
    seals: SealExpectation | None = None  # the lane's declared seals (edge.seals); None: no seal is declared
    risk: RiskCheck | None = None  # edge.risk: the verdict only gets stricter; None: the station has no [risk]
    dense_alert_mm2: float | None = None  # a bag with a region the beam cannot penetrate this large is not cleared

    async def inspect(self, item: Item, acquisition: Acquisition) -> InspectionRecord:
        """Run one item to a committed record; never raises for a device or model fault."""
        timer = Timer()
        self._early_risk(item)
        item.on_identity = lambda: self._early_risk(item)  # a read during the scan: assessed as it arrives
        scan: Scan | None = None
        detections: list[Detection] = []
        failure: Reason | None = None
        within_budget = completed = False
        stage = "acquire"
        # the model the scan starts on judges it to the end (edge.detector) and is the one the record names
        judge = _Judge(self.engine.model, self.engine.classes) if self.engine is not None else _Judge(None, ())
        try:
            # every exit (incomplete scan, fault, cancellation) cancels the scan's strips still queued in the
            # shared pool: an abandoned scan's strips would otherwise run on and crowd out the next item's
            async with contextlib.aclosing(self._open_stream(item)) as stream:
                async with contextlib.aclosing(acquisition.blocks()) as blocks:  # an abandoned scan is stopped now
                    async for high, low in blocks:
                        await stream.feed(high, low)
                scan = acquisition.result()
                end_of_scan = timer.lap("acquire")
                stage = "detect"
                deadline = asyncio.get_running_loop().time() + self.budget_ms / 1000
                if scan.complete:
                    async with asyncio.timeout_at(deadline):
                        detections = await stream.finish(scan, deadline)
                    completed = True
                    within_budget = (time.perf_counter() - end_of_scan) * 1000 <= self.budget_ms
            timer.lap("detect")
        except StationFault as exc:
            failure = self._fail(item, exc.reason, str(exc), timer, "detect")
        except TimeoutError:
            failure = self._fail(item, Reason.BUDGET_MISSED, f"detection passed the {self.budget_ms:.0f} ms budget",
                                 timer, "detect")
        except DriverError as exc:
            failure = self._fail(item, Reason.DEVICE_FAULT, str(exc), timer, "acquire")
        except ModelError as exc:
            failure = self._fail(item, Reason.INFERENCE_FAILED, str(exc), timer, "detect")
        except MemoryError as exc:  # a scan too large to hold (a scanner that never ends its scan): this item's fault
            failure = self._fail(item, Reason.DEVICE_FAULT, f"the scan could not be held in memory ({exc!r})",
                                 timer, "acquire")
        except Exception as exc:  # the supervisor of one item: a defect in a driver's blocks or a model's decoder
            # (an IndexError from an output shape the decoder did not expect) left the item with no record at all
            log.exception("pipeline.defect", station=self.station, item=item.ref, stage=stage)
            failure = self._fail(item, Reason.INFERENCE_FAILED if stage == "detect" else Reason.DEVICE_FAULT,
                                 f"the {'detection' if stage == 'detect' else 'scan'} failed unexpectedly "
                                 f"({type(exc).__name__}: {exc})", timer, stage)
        item.on_identity = None
        if scan is None:
            scan = _partial(acquisition)
        elif completed and self.shadow is not None:
            self.shadow.submit(self.station, scan, detections)
        identities = self._identities(item)
        declaration = self.risk.declaration(identities) if self.risk is not None else None
        seal_problem = self._seal_problem(item, identities)
        unidentified = self._unidentified(item, identities)
        judged = completed and failure is None and not detections
        band = self._zero_band(item, scan) if judged else None
        dense = self._dense_problem(item, scan) if judged and band is None else None
        verdict, reason = decide(Outcome(completed, within_budget, scan.complete if scan else False,
                                         tuple(detections), failure, seal_problem=seal_problem,
                                         container_problem=unidentified, dense_problem=dense, zero_band=band))
        risk = None
        if self.risk is not None:
            labels = [d.label for d in detections]
            assessment = self.risk.assess(item.id, identities, verdict.value, labels,
                                          judge.load_present(labels) if completed and failure is None else None,
                                          container_item=item.kind is ItemKind.CONTAINER)
            verdict, reason = with_risk(verdict, reason, assessment)
            risk = RiskOut.model_validate(assessment.to_record())
        return await self._conclude(item, scan, detections, verdict, reason, timer, identities, risk,
                                    container_pass(item.kind, identities, declaration, item.size_type), judge.model)

    def _seal_problem(self, item: Item, identities: list[Identity]) -> str | None:
        """Why the item's declared seals are not intact, or None: every container's declaration counts (edge.seals)."""
        declarations = self.risk.declarations(identities) if self.risk is not None else [None]
        seals = strictest([for_item(d, self.seals) for d in declarations])
        problem = seals.problem(item.kind, identities, item.seal_events) if seals else None
        if problem is not None:
            log.warning("pipeline.seal_not_intact", station=self.station, item=item.ref, detail=problem)
        return problem

    def _unidentified(self, item: Item, identities: list[Identity]) -> str | None:
        """Where the station looks up declarations, why a container's cannot be found (a code not read, or failing
        its check): its seal and its goods would go unchecked."""
        if self.risk is None or not self.risk.declares:
            return None
        problem = unidentified_container(identities, item.kind is ItemKind.CONTAINER)
        if problem is not None:
            log.warning("pipeline.container_unidentified", station=self.station, item=item.ref, detail=problem)
        return problem

    def _zero_band(self, item: Item, scan: Scan | None) -> str | None:
        """A bag or parcel the detector would clear whose scan holds a band of lines reading exactly 0 in every pixel
        of both energies (models.dense.zero_band): a detector or link fault, not an opaque load; nothing in that
        band was judged. Logged, counted (edge_bad_input_total{source="xray_zero_lines"}); `manual` / device_fault.
        Not for vehicles and containers: a portal's cab avoidance switches the beam off on purpose."""
        if scan is None or item.kind not in (ItemKind.BAGGAGE, ItemKind.PARCEL):
            return None
        problem = zero_band_problem(scan)
        if problem is not None:
            self.metrics.bad_input.labels("xray_zero_lines").inc()
            log.warning("pipeline.zero_band", station=self.station, item=item.ref, detail=problem)
        return problem

    def _dense_problem(self, item: Item, scan: Scan | None) -> str | None:
        """A bag or parcel the detector would clear but whose beam did not get through part of it: nothing
        behind that part was judged. Not for vehicles and containers (an engine block is always dense; their
        officers read every image)."""
        if not self.dense_alert_mm2 or scan is None or item.kind not in (ItemKind.BAGGAGE, ItemKind.PARCEL):
            return None
        problem = dense_problem(scan, self.dense_alert_mm2)
        if problem is not None:
            log.warning("pipeline.dense_object", station=self.station, item=item.ref, detail=problem)
        return problem

    def _early_risk(self, item: Item) -> None:
        """As soon as an identity is known (when the item opens, then at each read during its scan), before the
        detector's outcome: shown to the officer at once (event "risk"); the record keeps the final assessment."""
        if self.risk is None or not item.identities:
            return
        assessment = self.risk.assess(item.id, fuse(item.identities), container_item=item.kind is ItemKind.CONTAINER)
        self.events.publish("risk", {"item": item.id, "ref": item.ref, "station": self.station,
                                     **assessment.to_record()})

    def _identities(self, item: Item) -> list[Identity]:
        """The item's reads fused (edge.identity); conflicts are logged and stay flagged on the record."""
        identities = fuse(item.identities)
        for conflict in conflicts(identities):
            log.warning("identity.conflict", station=self.station, item=item.ref, detail=conflict)
        return identities

    def _open_stream(self, item: Item) -> StreamingDetection:
        if self.engine is None or self.engine.model is None:
            return _NoModel(self.station)
        return self.engine.open_stream(self.station, item.kind.value)

    def _fail(self, item: Item, reason: Reason, message: str, timer: Timer, stage: str) -> Reason:
        timer.lap(stage)
        log.warning("pipeline.manual", station=self.station, item=item.ref, reason=reason.value, detail=message)
        if reason is Reason.BUDGET_MISSED:
            self.metrics.budget_misses.inc()
        return reason

    async def _conclude(self, item: Item, scan: Scan | None, detections: list[Detection], verdict: Verdict,
                        reason: Reason, timer: Timer, identities: list[Identity],
                        risk: RiskOut | None = None, container: ContainerPass | None = None,
                        model: ModelRef | None = None) -> InspectionRecord:
        timer.lap("decide")
        if self.store.store.full is not None:  # no record can be written: nothing is cleared that is not recorded
            verdict, reason = Verdict.MANUAL, Reason.STORE_FULL
        problem = await self.actuate(item, verdict, reason)
        if problem is not None:
            verdict, reason = Verdict.MANUAL, problem
        timer.lap("actuate")
        scan_ref, stored = await self._store_scan(scan)
        record = InspectionRecord(
            id=item.id, seq=0, station=self.station, lane=self.lane, kind=item.kind, started_at=item.started_at,
            decided_at=datetime.now(timezone.utc), identities=identities, seal_events=list(item.seal_events),
            scan=scan_ref,
            detections=[DetectionOut(label=d.label, score=d.score, box=d.box) for d in detections],
            model=model, verdict=verdict, reason=reason.value,
            latencies_ms={k: round(v, 3) for k, v in timer.stages.items()}, budget_ms=self.budget_ms, risk=risk,
            container=container)
        try:
            record = await self.store.call(self.store.store.commit, record, stored)
        except DiskFull as exc:
            record = await self._unrecorded(item, record, exc)
        timer.lap("record")
        if self.after_commit is not None:
            self.after_commit()
        self._observe(record, timer)
        self.events.publish("inspection", record.model_dump(mode="json", by_alias=True))
        return record

    async def _unrecorded(self, item: Item, record: InspectionRecord, exc: DiskFull) -> InspectionRecord:
        """The record could not be written: shown to the officer as manual, logged with the verdict acted on.

        Only the item that finds the store full is acted on with its own verdict (actuation is not
        repeated: a flow acts once per item); every later item is manual before it is acted on.
        """
        log.error("pipeline.record_not_written", station=self.station, item=item.ref, acted=record.verdict.value,
                  error=str(exc))
        return record.model_copy(update={"verdict": Verdict.MANUAL, "reason": Reason.STORE_FULL.value})

    async def _store_scan(self, scan: Scan | None) -> tuple[ScanRef | None, bool]:
        if scan is None:
            return None, False
        data = await asyncio.to_thread(scan.to_bytes)
        sha = hashlib.sha256(data).hexdigest()
        stored = await self.store.call(self.store.store.put_scan, sha, data)
        return ScanRef(sha256=sha, size=len(data), shape=scan.shape), stored

    def _observe(self, record: InspectionRecord, timer: Timer) -> None:
        for stage, ms in timer.stages.items():
            self.metrics.stage_seconds.labels(stage).observe(ms / 1000)
        self.metrics.verdicts.labels(record.verdict.value, record.reason).inc()
        if record.risk is not None:
            bundle = "none" if record.risk.bundle is None else "stale" if record.risk.stale else "current"
            self.metrics.risk_lanes.labels(record.risk.lane, bundle).inc()
        log.info("pipeline.decided", station=self.station, item=record.id, seq=record.seq,
                 verdict=record.verdict.value, reason=record.reason, detections=len(record.detections),
                 **{f"{k}_ms": round(v, 1) for k, v in timer.stages.items()})


@dataclass(frozen=True)
class _Judge:
    """The model a scan started on (None: none): named on the record, and what its classes can say."""

    model: ModelRef | None
    classes: tuple[str, ...]

    def load_present(self, labels: list[str]) -> bool | None:
        """Whether the model that judged the scan saw a load (risk fact detector.load_present); unknown (None)
        when the model has no load_present class: only a model made to see a load can say a container is empty."""
        return LOAD_PRESENT in labels if LOAD_PRESENT in self.classes else None


class _NoModel:
    """Without a model the scan is still acquired and kept as evidence; the decision is manual."""

    def __init__(self, station: str) -> None:
        self.station = station

    async def feed(self, high: np.ndarray, low: np.ndarray) -> None:
        return None

    async def finish(self, scan: Scan, deadline: float) -> list[Detection]:
        raise StationFault(Reason.MODEL_UNAVAILABLE, f"station {self.station} has no usable model")

    async def aclose(self) -> None:
        return None


def _partial(acquisition: Acquisition) -> Scan | None:
    """Whatever part of the scan arrived before a fault, kept as evidence (marked incomplete)."""
    try:
        scan = acquisition.result()
    except (DriverError, ModelError, RuntimeError, MemoryError):
        return None
    return Scan(scan.high, scan.low, scan.meta, complete=False)
