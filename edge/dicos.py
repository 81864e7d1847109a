"""An inspection record as NEMA DICOS objects: the scan, the detector's report, the officer's.

    dicos_files(record, scan) -> {file name: bytes}
        <id>-dx-high.dcm       DICOS DX, Image Type ORIGINAL\\HIGH ENERGY   (models/dicos.py)
        <id>-dx-low.dcm        DICOS DX, Image Type ORIGINAL\\LOW ENERGY
        <id>-tdr-machine.dcm   Threat Detection Report, TDR Type MACHINE: the detector's result
        <id>-tdr-operator.dcm  Threat Detection Report, TDR Type OPERATOR: the officer's review (when reviewed)

Every object shares the object of inspection (OOI ID = record id), the scan (Study) and the
frame of reference; both TDRs reference both DX images, the operator's TDR also the machine's.
UIDs are derived from the record id and the bytes hold no time but the record's, so exporting a
record twice gives the same files (a case bundle's hashes stay stable). The attribute mapping is
in docs/dicos.md.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset
from pydicom.uid import DICOSDigitalXRayImageStorageForProcessing, DICOSThreatDetectionReportStorage

from central_sync.schema import InspectionRecord, ItemKind, Review, Verdict
from edge.errors import EdgeError
from edge.web.export import reviewed_boxes
from models.dicos import DICOS_VERSION, HIGH, LOW, DxSeries, da_tm, dicos_uid, dt, dx_dataset, file_bytes
from models.errors import ScanFormatError
from models.scan import Scan, load_scan

if TYPE_CHECKING:
    from edge.store import Store

Box = tuple[float, float, float, float]

OOI_TYPES = {ItemKind.BAGGAGE: "BAGGAGE", ItemKind.PARCEL: "BAGGAGE", ItemKind.CONTAINER: "CARGO",
             ItemKind.VEHICLE: "OTHER"}
# the detector's classes -> DICOS Threat Category (PI = prohibited item); the class itself is the description
THREAT_CATEGORIES = {"firearm": "PI", "knife": "PI", "ammunition": "PI", "explosive": "EXPLOSIVE",
                     "cigarettes": "CONTRABAND", "drugs": "CONTRABAND", "concealment": "ANOMALY",
                     "load_present": "ANOMALY"}
MACHINE_DECISIONS = {Verdict.SUSPECT: "ALARM", Verdict.CLEAR: "CLEAR", Verdict.MANUAL: "UNKNOWN"}
OPERATOR_DECISIONS = {"threat_confirmed": "ALARM", "false_alarm": "CLEAR", "cleared": "CLEAR", "override": "UNKNOWN"}
OFFICER_SCHEME = "99CPE"  # a private coding scheme (DICOM PS3.16 8.2: 99 prefix) for badge numbers


class DicosExportError(EdgeError):
    """A record that cannot be exported as DICOS (no scan, or the scan file is gone)."""


@dataclass(frozen=True)
class Equipment:
    """The station as DICOS General Equipment; serial defaults to the station id."""

    station: str
    manufacturer: str = "Checkpoint Edge"
    model_name: str = "Checkpoint Edge station"
    serial: str = ""
    software_version: str = "0.1.0"


@dataclass(frozen=True)
class _Ref:
    sop_class: str
    sop_uid: str


def dicos_files(record: InspectionRecord, scan: Scan, equipment: Equipment | None = None) -> dict[str, bytes]:
    """The record's DICOS objects as named file contents (the DX pair, the TDRs)."""
    eq = equipment or Equipment(station=record.station)
    common = _common(record, eq)
    series = DxSeries(series_uid=dicos_uid(record.id, "dx-series"), frame_of_reference_uid=dicos_uid(record.id, "frame"),
                      acquired_at=record.started_at, common=common)
    images = [_Ref(DICOSDigitalXRayImageStorageForProcessing, dicos_uid(record.id, "dx", e)) for e in (HIGH, LOW)]
    out = {f"{record.id}-dx-{e.split()[0].lower()}.dcm": file_bytes(dx_dataset(scan, e, series, ref.sop_uid, n))
           for n, (e, ref) in enumerate(zip((HIGH, LOW), images), start=1)}
    machine = _machine_tdr(record, common, series, images)
    out[f"{record.id}-tdr-machine.dcm"] = file_bytes(machine)
    if record.review is not None:
        operator = _operator_tdr(record, record.review, common, series, images,
                                 _Ref(DICOSThreatDetectionReportStorage, machine.SOPInstanceUID))
        out[f"{record.id}-tdr-operator.dcm"] = file_bytes(operator)
    return out


def write_files(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    """Write named files into `out_dir` (created); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in files]
    for path, data in zip(paths, files.values()):
        path.write_bytes(data)
    return paths


def _common(record: InspectionRecord, eq: Equipment) -> Dataset:
    """Object of inspection, scan (Study) and equipment: the same in every object of the record."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.DICOSVersion = DICOS_VERSION
    ds.PatientID, ds.IssuerOfPatientID, ds.TypeOfPatientID = record.id, record.station, "TEXT"
    ds.OOIType, ds.OOITypeDescriptor = OOI_TYPES[record.kind], record.kind.value
    ds.OtherPatientIDsSequence = [_identity(i.kind, i.value, i.source) for i in record.identities]
    ds.StudyInstanceUID = dicos_uid(record.id, "scan")
    ds.StudyID = str(record.seq)[-16:]
    ds.StudyDate, ds.StudyTime = da_tm(record.started_at)
    ds.ScanType = "OPERATIONAL"
    ds.Manufacturer, ds.ManufacturerModelName = eq.manufacturer, eq.model_name
    ds.StationName = eq.station[:16]
    ds.InstitutionalDepartmentName = f"lane {record.lane}"
    ds.DeviceSerialNumber = eq.serial or eq.station
    ds.SoftwareVersions = eq.software_version
    return ds


def _identity(kind: str, value: str, source: str) -> Dataset:
    item = Dataset()
    item.PatientID, item.IssuerOfPatientID, item.TypeOfPatientID = value[:64], f"{kind}:{source}"[:64], "TEXT"
    return item


def _tdr(record: InspectionRecord, common: Dataset, series: DxSeries, images: Sequence[_Ref], kind: str,
         number: int) -> Dataset:
    """The modules both TDRs share: SOP common, TDR series, references to the DX images."""
    ds = Dataset()
    ds.update(common)
    ds.SOPClassUID = DICOSThreatDetectionReportStorage
    ds.SOPInstanceUID = dicos_uid(record.id, "tdr", kind)
    ds.Modality = "TDR"
    ds.SeriesInstanceUID = dicos_uid(record.id, "tdr-series", kind)
    ds.SeriesNumber = number
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.TDRType = kind
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = series.series_uid
    ref_series.ReferencedInstanceSequence = [_ref(r) for r in images]
    ds.ReferencedSeriesSequence = [ref_series]
    return ds


def _machine_tdr(record: InspectionRecord, common: Dataset, series: DxSeries, images: Sequence[_Ref]) -> Dataset:
    """The detector's result: alarm decision from the verdict, one PTO per detection, the model as ATR."""
    ds = _tdr(record, common, series, images, "MACHINE", 2)
    _when(ds, record.decided_at)
    ds.AlarmDecision = MACHINE_DECISIONS[record.verdict]
    ds.AbortFlag = "ABORT" if record.verdict is Verdict.MANUAL else "SUCCESS"
    if record.model is not None:
        ds.ThreatDetectionAlgorithmAndVersion = [record.model.name, record.model.version, record.model.sha256[:16]]
    if "inference" in record.latencies_ms:
        ds.TotalProcessingTime = record.latencies_ms["inference"]
    threats = [(d.label, d.box, d.score) for d in record.detections]
    _threats(ds, threats, images, alarm=record.verdict is Verdict.SUSPECT)
    return ds


def _operator_tdr(record: InspectionRecord, review: Review, common: Dataset, series: DxSeries, images: Sequence[_Ref],
                  machine: _Ref) -> Dataset:
    """The officer's decision: alarm decision from the outcome, the officer's boxes, who decided."""
    ds = _tdr(record, common, series, images, "OPERATOR", 3)
    _when(ds, review.decided_at)
    ds.AlarmDecision = OPERATOR_DECISIONS[review.outcome]
    ds.AbortFlag = "SUCCESS"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = review.officer[:16], OFFICER_SCHEME, "officer badge"
    operator = Dataset()
    operator.PersonIdentificationCodeSequence = [code]
    ds.OperatorIdentificationSequence = [operator]
    ds.OperatorsName = review.officer
    ds.ReferencedTDRInstanceSequence = [_ref(machine)]
    _threats(ds, [(label, box, None) for label, box in reviewed_boxes(record)], images,
             alarm=review.outcome == "threat_confirmed")
    return ds


def _when(ds: Dataset, at: datetime) -> None:
    ds.InstanceCreationDate, ds.InstanceCreationTime = da_tm(at)
    ds.ContentDate, ds.ContentTime = da_tm(at)
    ds.SeriesDate, ds.SeriesTime = da_tm(at)
    ds.AlarmDecisionTime = dt(at)


def _threats(ds: Dataset, threats: Sequence[tuple[str, Box, float | None]], images: Sequence[_Ref], *, alarm: bool) -> None:
    """Threat Sequence: one PTO per box, with counts of all and of alarming objects."""
    ds.NumberOfTotalObjects = len(threats)
    ds.NumberOfAlarmObjects = len(threats) if alarm else 0
    ds.ThreatSequence = [_pto(i, label, box, score, images, alarm) for i, (label, box, score) in enumerate(threats)]


def _pto(number: int, label: str, box: Box, score: float | None, images: Sequence[_Ref], alarm: bool) -> Dataset:
    """One potential threat object: assessment (category, class, score) and its box on both DX images.

    Coordinates are image pixels: x along a row (column index), y down the lines, z = 0; the box
    is the ROI base and extents, and the two-point bounding polygon (top-left, bottom-right)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    assessment = Dataset()
    assessment.ThreatCategory = THREAT_CATEGORIES.get(label, "OTHER")
    assessment.ThreatCategoryDescription = label
    assessment.ATDAbilityAssessment = "NO_INTERFERENCE"
    assessment.ATDAssessmentFlag = "THREAT" if alarm else "UNKNOWN"
    if score is not None:
        assessment.ATDAssessmentProbability = float(score)
    roi = Dataset()
    roi.ThreatROIBase = [x0, y0, 0.0]
    roi.ThreatROIExtents = [x1 - x0, y1 - y0, 1.0]
    representation = Dataset()
    representation.ReferencedInstanceSequence = [_ref(r) for r in images]
    representation.ThreatROIVoxelSequence = [roi]
    representation.BoundingPolygon = [x0, y0, 0.0, x1, y1, 0.0]
    pto = Dataset()
    pto.PotentialThreatObjectID = number
    pto.ATDAssessmentSequence = [assessment]
    pto.PTORepresentationSequence = [representation]
    return pto


def _ref(r: _Ref) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = r.sop_class, r.sop_uid
    return item


def locate(store: Store, record_id: str) -> tuple[InspectionRecord, Path]:
    """A stored record and its scan file; DicosExportError says why it cannot be exported."""
    record = store.get(record_id)
    if record is None:
        raise DicosExportError(f"record {record_id} is not in the station store at {store.data_dir}")
    if record.scan is None:
        raise DicosExportError(f"record {record_id} has no scan (verdict {record.verdict.value}, reason {record.reason})")
    path = store.scan_path(record.scan.sha256)
    if not path.exists():
        raise DicosExportError(f"record {record_id}'s scan {record.scan.sha256[:12]} is no longer kept at {path}")
    return record, path


def stored_dicos_files(store: Store, record_id: str, equipment: Equipment | None = None) -> dict[str, bytes]:
    """The DICOS files of a stored record (what a case bundle includes); DicosExportError says why not."""
    record, path = locate(store, record_id)
    return scan_file_dicos(record, path, equipment)


def scan_file_dicos(record: InspectionRecord, path: Path, equipment: Equipment | None = None) -> dict[str, bytes]:
    """dicos_files of a record whose scan is the file at `path`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DicosExportError(f"record {record.id}'s scan file cannot be read: {exc}") from exc
    return scan_bytes_dicos(record, data, equipment)


def scan_bytes_dicos(record: InspectionRecord, data: bytes, equipment: Equipment | None = None) -> dict[str, bytes]:
    """dicos_files of a record whose scan file holds `data`: only when it is the scan the record names (its sha256;
    a file damaged or replaced on disk would be exported as the record's images)."""
    named = record.scan.sha256 if record.scan is not None else None
    if named is not None and (actual := hashlib.sha256(data).hexdigest()) != named:
        raise DicosExportError(f"record {record.id}'s scan file is not the scan the record names: it hashes to "
                               f"{actual[:12]}, the record names {named[:12]}")
    try:
        scan = load_scan(data)
    except ScanFormatError as exc:
        raise DicosExportError(f"record {record.id}'s scan file cannot be read: {exc}") from exc
    return dicos_files(record, scan, equipment)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """The files in one zip (stored: DICOM pixels are already dense enough that deflate buys little time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()
