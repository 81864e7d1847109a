"""A hub holding a vehicle's earlier passes, written by the real ingest path: records, reviews, scan images."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import HubStore
from central_sync.schema import Identity, InspectionRecord, ItemKind, Review, ScanRef, Verdict

PLATE = "粤Z·A123港"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def vehicle_pass(seq: int, verdict: Verdict, days_ago: float, scan: bytes | None, review: str | None = None,
                 plate: str = PLATE, station: str = "gate-1", kind: str = "plate",
                 shape: tuple[int, int] = (64, 64)) -> InspectionRecord:
    """A vehicle's pass `days_ago` before NOW, read by its plate (or a `kind` identity), its scan file's bytes
    (of `shape`) and a review."""
    at = NOW - timedelta(days=days_ago)
    rec = make_record(station, seq, verdict).model_copy(update={
        "kind": ItemKind.VEHICLE, "started_at": at, "decided_at": at + timedelta(seconds=2),
        "identities": [Identity(kind=kind, value=plate, source="cam-front")],  # type: ignore[arg-type]
        "scan": ScanRef(sha256=hashlib.sha256(scan).hexdigest(), size=len(scan), shape=shape) if scan else None})
    if review is not None:
        rec = rec.model_copy(update={"review": Review(officer="op1", decided_at=at + timedelta(minutes=5),
                                                      outcome=review)})  # type: ignore[arg-type]
    return rec


def ingest(store: HubStore, records: list[InspectionRecord], scans: dict[str, bytes] | None = None) -> Ingestor:
    """Each record as the station sends it (alert or inspection; then its review), and the scan images."""
    ing = Ingestor(store, "hub-h", lambda t, b: None)
    msgs = []
    for i, r in enumerate(records, 1):
        kind = "alert" if r.verdict == Verdict.SUSPECT else "inspection"
        first = r.model_copy(update={"review": None}) if r.review else r
        msgs.append((p.topic(r.station, kind), p.encode_envelope(r.station, kind, i, r.seq, r.id,
                                                                   first.to_json().encode(), 0.0)))
        if r.review:
            msgs.append((p.topic(r.station, "review"), p.encode_envelope(r.station, "review", 1000 + i, r.seq, r.id,
                                                                           r.to_json().encode(), 0.0)))
    ing.handle(msgs)
    for n, (sha, data) in enumerate((scans or {}).items()):
        header = p.BlobChunkHeader(station="gate-1", msg=5000 + n, seq=n + 1, record_id="r", sha256=sha, index=0,
                                   count=1, size=len(data), chunk_sha256=hashlib.sha256(data).hexdigest())
        ing.handle([(p.blob_topic("gate-1", sha, 0), p.encode_chunk(header, data))])
    return ing
