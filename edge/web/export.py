"""Export of reviewed items as a labelled dataset: COCO JSON plus the scan files, in one zip.

Boxes come from the officer's review (drawn or corrected); a confirmed threat without drawn boxes
takes the detector's boxes under the officer's class. False alarms are kept as images without
annotations (negative examples), which training needs as much as the positives.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from central_sync.schema import InspectionRecord, Review, ScanRef


def reviewed_boxes(record: InspectionRecord) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The officer's boxes with their class (the detector's boxes when a confirmed threat has none drawn)."""
    review = record.review
    if review is None or review.outcome == "false_alarm" or not review.label:
        return []
    if review.boxes:
        return [(review.label, b) for b in review.boxes]
    return [(review.label, d.box) for d in record.detections]


def _reviewed_scan(r: InspectionRecord) -> tuple[ScanRef, Review]:
    """The scan and review of an exported record (the export query selects only records with both)."""
    if r.scan is None or r.review is None:
        raise ValueError(f"record {r.id} lacks a scan or a review, so it cannot be exported")
    return r.scan, r.review


def coco(records: list[InspectionRecord], left_out: list[dict[str, str]] | None = None) -> dict:
    """The COCO dictionary for `records`; file names point at scans/<sha256>.npz in the zip. `left_out` (record id
    and why, one sentence) goes in its `info`: the reviewed items whose scan file could not be read."""
    labels = sorted({label for r in records for label, _ in reviewed_boxes(r)})
    cat_id = {label: i for i, label in enumerate(labels, start=1)}
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for img_id, r in enumerate(records, start=1):
        scan, review = _reviewed_scan(r)
        h, w = scan.shape
        images.append({"id": img_id, "file_name": f"scans/{scan.sha256}.npz", "height": h, "width": w,
                       "record_id": r.id, "station": r.station, "decided_at": r.decided_at.isoformat(),
                       "verdict": r.verdict.value, "review_outcome": review.outcome,
                       "officer": review.officer, "note": review.note})
        for label, (x0, y0, x1, y1) in reviewed_boxes(r):
            annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": cat_id[label],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                "iscrowd": 0})
    return {"info": {"description": "Checkpoint Edge officer-reviewed items",
                     "date_created": datetime.now(timezone.utc).isoformat(), "left_out": left_out or []},
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": label} for label, i in cat_id.items()]}


def write_zip(records: list[InspectionRecord], scan_path: Callable[[str], Path], out: Path) -> Path:
    """Write the dataset zip to `out`; `scan_path(sha256)` locates each scan file. A scan that cannot be read (gone
    from the disk since the query, a failing disk) leaves its items out, each named in the annotations' `info`:
    before, the whole export ended in an OSError (the screen answered 500)."""
    unreadable: dict[str, str] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for sha in sorted({_reviewed_scan(r)[0].sha256 for r in records}):
            try:
                zf.write(scan_path(sha), f"scans/{sha}.npz")  # opens the file before it writes anything
            except OSError as exc:
                unreadable[sha] = exc.strerror or str(exc)
        kept = [r for r in records if _reviewed_scan(r)[0].sha256 not in unreadable]
        left_out = [{"record_id": r.id, "why": f"scan {sha} could not be read at the station ({unreadable[sha]})"}
                    for r in records if (sha := _reviewed_scan(r)[0].sha256) in unreadable]
        zf.writestr("annotations.json", json.dumps(coco(kept, left_out), indent=1))
    return out
