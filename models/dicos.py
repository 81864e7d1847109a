"""A scan as NEMA DICOS Digital X-Ray (DX) images, and DX images back into a scan.

DICOS models a DX image as one 2-D frame (IIC 1 v03, section 8.2.2.2: the DX Image module has
no multi-frame form), and says which energy a frame holds in Image Type value 2 (`HIGH ENERGY`,
`LOW ENERGY`). So a dual-energy scan is two DX objects in one series, one per energy, rather
than one object with two frames. The scan's transmission is written as it is ("FOR
PROCESSING", 16-bit unsigned, linear, higher value = more transmission).

Reading is for files a retrofit machine drops: header first (stop before the pixels), every
check that can refuse a file before a pixel array is allocated, then the pixels. Every defect
raises ScanFormatError with one sentence naming the file and the values.
"""

from __future__ import annotations

import contextlib
import io
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import (
    UID,
    DICOSDigitalXRayImageStorageForPresentation,
    DICOSDigitalXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PYDICOM_IMPLEMENTATION_UID,
)

from models.errors import ScanFormatError
from models.scan import Scan

HIGH, LOW = "HIGH ENERGY", "LOW ENERGY"
DX_CLASSES = {
    DICOSDigitalXRayImageStorageForProcessing: "DICOS DX for processing",
    DICOSDigitalXRayImageStorageForPresentation: "DICOS DX for presentation",
    DigitalXRayImageStorageForProcessing: "DICOM DX for processing",
    DigitalXRayImageStorageForPresentation: "DICOM DX for presentation",
}
READABLE_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
MAX_PIXELS = 100_000_000  # 20,000 lines x 5,000 pixels: larger than any scanner we know, small enough to allocate
DICOS_VERSION = "V03"
UID_NAMESPACE = uuid.UUID("5b0d6a34-3c4e-5f8a-9d2b-7e1f0c9a8b61")  # Checkpoint Edge's own: fixed forever


def dicos_uid(*parts: str) -> UID:
    """A UID derived from `parts`: a name-based UUID in the 2.25 form (PS3.5 B.2), so that the same
    record exported twice gives the same UIDs (pydicom's generate_uid ignores entropy under 2.25)."""
    return UID(f"2.25.{uuid.uuid5(UID_NAMESPACE, '/'.join(parts)).int}")


def da_tm(at: datetime) -> tuple[str, str]:
    """DICOM DA and TM (UTC) of an aware datetime."""
    return at.strftime("%Y%m%d"), at.strftime("%H%M%S.%f")


def dt(at: datetime) -> str:
    """DICOM DT with its UTC offset."""
    return at.strftime("%Y%m%d%H%M%S.%f%z")


def file_bytes(ds: Dataset) -> bytes:
    """A DICOM Part 10 file (preamble, meta group, explicit VR little endian) of `ds`."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buf.getvalue()


@dataclass(frozen=True)
class DxSeries:
    """What the two DX objects of one scan share: their UIDs and the attributes of every module
    other than the image itself (set by the caller: object of inspection, scan, equipment)."""

    series_uid: str
    frame_of_reference_uid: str
    acquired_at: datetime
    common: Dataset = field(default_factory=Dataset)


def dx_dataset(scan: Scan, energy: str, series: DxSeries, sop_uid: str, number: int) -> Dataset:
    """One energy channel of `scan` as a DICOS DX (for processing) dataset."""
    pixels = scan.high if energy == HIGH else scan.low
    ds = Dataset()
    ds.update(series.common)
    date, time = da_tm(series.acquired_at)
    ds.SOPClassUID = DICOSDigitalXRayImageStorageForProcessing
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.Modality = "DX"
    ds.SeriesInstanceUID = series.series_uid
    ds.SeriesNumber = 1
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.AcquisitionStatus = "SUCCESSFUL" if scan.complete else "INCOMPLETE"
    ds.PresentationIntentType = "FOR PROCESSING"
    ds.ImageType = ["ORIGINAL", energy]
    ds.InstanceNumber = number
    ds.ContentDate, ds.ContentTime = date, time
    ds.AcquisitionDateTime = dt(series.acquired_at)
    ds.BurnedInAnnotation = "NO"
    _set_physics(ds, scan.meta)
    _set_pixels(ds, pixels)
    return ds


def _set_physics(ds: Dataset, meta: dict[str, Any]) -> None:
    """Pixel pitch and peak voltage when the scan knows them (Type 2/3 attributes otherwise empty)."""
    pitch = meta.get("pixel_mm")
    if isinstance(pitch, (int, float)) and pitch > 0:
        line = meta.get("line_mm", pitch)
        ds.ImagerPixelSpacing = ds.PixelSpacing = [f"{float(line):.6g}", f"{float(pitch):.6g}"]
    kvp = meta.get("kvp")
    ds.KVP = f"{float(kvp):.6g}" if isinstance(kvp, (int, float)) else None


def _set_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()


# ---- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DxHeader:
    """What a dropped DX file says about itself before its pixels are read."""

    path: Path
    series_uid: str
    energy: str  # HIGH, LOW, or "" for a single-energy image
    rows: int
    columns: int


# What pydicom raises on a malformed file: it decodes values lazily, so these can come from any
# attribute access, not only from dcmread (the fuzz test in tests/models/test_dicos_reader.py).
MALFORMED = (BytesLengthException, OSError, EOFError, ValueError, KeyError, IndexError, TypeError, OverflowError,
             AttributeError, NotImplementedError, struct.error)


@contextlib.contextmanager
def _malformed_is_refused(path: Path) -> Iterator[None]:
    """Translate pydicom's errors on a malformed file into ScanFormatError naming the file."""
    try:
        yield
    except ScanFormatError:
        raise
    except MALFORMED as exc:
        raise ScanFormatError(f"{path.name} is a truncated or malformed DICOM file "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from exc


def read_dx_header(path: Path) -> DxHeader:
    """Read and check a DX file's header; ScanFormatError says why it cannot be used."""
    with _malformed_is_refused(path):
        ds = _read(path, stop_before_pixels=True)
        _check_header(path, ds)
        return DxHeader(path, str(ds.get("SeriesInstanceUID", "")), _energy(ds), int(ds.Rows), int(ds.Columns))


def read_dx_scan(paths: list[Path], source: str) -> Scan:
    """A scan from one single-energy DX file or a HIGH/LOW pair of one series."""
    images = {h.energy: _pixels(h.path) for h in (read_dx_header(p) for p in paths)}
    with _malformed_is_refused(paths[0]):
        first = _read(paths[0], stop_before_pixels=True)
        meta: dict[str, Any] = {"source": source, "file": paths[0].name,
                                "dicos_series": str(first.get("SeriesInstanceUID", "")), **_physics(first)}
    if len(paths) == 1:
        img = next(iter(images.values()))
        return Scan(high=img, low=img.copy(), meta={**meta, "single_energy": True})
    if set(images) != {HIGH, LOW}:
        raise ScanFormatError(f"DX files {[p.name for p in paths]} hold energies {sorted(images)}, not one high and one low")
    high, low = images[HIGH], images[LOW]
    if high.shape != low.shape:
        raise ScanFormatError(f"DX pair {[p.name for p in paths]} differs in size: high {high.shape}, low {low.shape}")
    return Scan(high=high, low=low, meta={**meta, "files": [p.name for p in paths]})


def _read(path: Path, *, stop_before_pixels: bool) -> Dataset:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise ScanFormatError(f"{path.name} is not a DICOM file ({exc})") from exc
    for element in ds.iterall():  # decode every value now, so that a bad one is refused here
        element.value
    return ds


def _check_header(path: Path, ds: Dataset) -> None:
    """Every refusal that needs no pixel: object class, encoding, pixel layout, size."""
    sop = str(ds.get("SOPClassUID", ""))
    if not sop:
        raise ScanFormatError(f"{path.name} names no SOP class: it is truncated, or not an image object")
    if sop not in DX_CLASSES:
        raise ScanFormatError(f"{path.name} is a {UID(sop).name} object ({sop}), not a DX image")
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if syntax not in READABLE_SYNTAXES:
        raise ScanFormatError(f"{path.name} uses transfer syntax {syntax.name or 'none'} ({syntax or '-'}); "
                              f"only uncompressed little-endian DX images are accepted")
    layout = {k: ds.get(k) for k in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PixelRepresentation")}
    if None in layout.values():
        missing = sorted(k for k, v in layout.items() if v is None)
        raise ScanFormatError(f"{path.name} lacks the image attributes {missing}")
    if layout["SamplesPerPixel"] != 1 or layout["BitsAllocated"] not in (8, 16) or layout["PixelRepresentation"] != 0:
        raise ScanFormatError(f"{path.name} has {layout['SamplesPerPixel']} samples of {layout['BitsAllocated']} bits "
                              f"(representation {layout['PixelRepresentation']}); one unsigned 8- or 16-bit sample is accepted")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows * cols > MAX_PIXELS or rows == 0 or cols == 0:
        raise ScanFormatError(f"{path.name} declares {rows} x {cols} pixels; 1 to {MAX_PIXELS} are accepted")


def _energy(ds: Dataset) -> str:
    kinds = list(ds.get("ImageType", []) or [])
    return str(kinds[1]).upper() if len(kinds) > 1 and str(kinds[1]).upper() in (HIGH, LOW) else ""


def _pixels(path: Path) -> np.ndarray:
    """The image as uint16 (8-bit scaled by 257), after checking the byte count matches the header."""
    with _malformed_is_refused(path):
        return _pixels_of(path, _read(path, stop_before_pixels=False))


def _pixels_of(path: Path, ds: Dataset) -> np.ndarray:
    if "PixelData" not in ds:
        raise ScanFormatError(f"{path.name} has no pixel data")
    rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    want, got = rows * cols * bits // 8, len(ds.PixelData)
    if got < want:
        raise ScanFormatError(f"{path.name} holds {got} bytes of pixel data; {rows} x {cols} at {bits} bits needs {want}")
    dtype = np.dtype("<u2") if bits == 16 else np.dtype("u1")
    img = np.frombuffer(ds.PixelData, dtype=dtype, count=rows * cols).reshape(rows, cols)
    return img.astype(np.uint16) * 257 if bits == 8 else img.astype(np.uint16)


def _physics(ds: Dataset) -> dict[str, float]:
    """pixel_mm (detector pitch: the column spacing), line_mm when rows differ, and kvp."""
    out: dict[str, float] = {}
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is not None and len(spacing) == 2 and all(float(s) > 0 for s in spacing):
        out["pixel_mm"] = float(spacing[1])
        if float(spacing[0]) != float(spacing[1]):
            out["line_mm"] = float(spacing[0])
    if ds.get("KVP") not in (None, ""):
        out["kvp"] = float(ds.KVP)
    return out
