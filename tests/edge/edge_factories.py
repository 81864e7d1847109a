"""Builders shared by the edge tests."""
from __future__ import annotations

from datetime import datetime, timezone

from central_sync.schema import DetectionOut, InspectionRecord, ItemKind, ScanRef, Verdict
from edge.ids import new_id


def make_record(verdict: Verdict = Verdict.CLEAR, reason: str = "clear", station: str = "st-1",
                scan_sha: str | None = None) -> InspectionRecord:
    now = datetime.now(timezone.utc)
    return InspectionRecord(
        id=new_id(), seq=0, station=station, lane="1", kind=ItemKind.BAGGAGE, started_at=now, decided_at=now,
        scan=ScanRef(sha256=scan_sha, size=10, shape=(4, 4)) if scan_sha else None,
        detections=[DetectionOut(label="knife", score=0.9, box=(1, 2, 3, 4))] if verdict is Verdict.SUSPECT else [],
        verdict=verdict, reason=reason, latencies_ms={"detect": 1.0}, budget_ms=500)


