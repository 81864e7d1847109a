"""Export of reviewed items as a labelled dataset: COCO JSON plus the scan files, in one zip.

Boxes come from the officer's review (drawn or corrected); a confirmed threat without drawn boxes
takes the detector's boxes under the officer's class. False alarms are kept as images without
annotations (negative examples), which training needs as much as the positives.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from central_sync.schema import InspectionRecord


def _boxes(record: InspectionRecord) -> list[tuple[str, tuple[float, float, float, float]]]:
    review = record.review
    if review is None or review.outcome == "false_alarm" or not review.label:
        return []
    if review.boxes:
        return [(review.label, b) for b in review.boxes]
    return [(review.label, d.box) for d in record.detections]


def coco(records: list[InspectionRecord]) -> dict:
    """The COCO dictionary for `records`; file names point at scans/<sha256>.npz in the zip."""
    labels = sorted({label for r in records for label, _ in _boxes(r)})
    cat_id = {label: i for i, label in enumerate(labels, start=1)}
    images, annotations = [], []
    for img_id, r in enumerate(records, start=1):
        h, w = r.scan.shape
        images.append({"id": img_id, "file_name": f"scans/{r.scan.sha256}.npz", "height": h, "width": w,
                       "record_id": r.id, "station": r.station, "decided_at": r.decided_at.isoformat(),
                       "verdict": r.verdict.value, "review_outcome": r.review.outcome,
                       "officer": r.review.officer, "note": r.review.note})
        for label, (x0, y0, x1, y1) in _boxes(r):
            annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": cat_id[label],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                "iscrowd": 0})
    return {"info": {"description": "Checkpoint Edge officer-reviewed items",
                     "date_created": datetime.now(timezone.utc).isoformat()},
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": label} for label, i in cat_id.items()]}


def write_zip(records: list[InspectionRecord], scan_path, out: Path) -> Path:
    """Write the dataset zip to `out`; `scan_path(sha256)` locates each scan file."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("annotations.json", json.dumps(coco(records), indent=1))
        for sha in sorted({r.scan.sha256 for r in records}):
            zf.write(scan_path(sha), f"scans/{sha}.npz")
    return out
