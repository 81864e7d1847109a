"""The retrofit file drop reads DICOS/DICOM DX images: pairs of energies, single images, and hostile files
refused with one sentence, moved aside and counted, while the drop keeps ingesting."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import DICOSThreatDetectionReportStorage, JPEGBaseline8Bit

from drivers.retrofit import RetrofitConfig
from drivers.retrofit.filedrop import FileDropSource, RejectedFile
from models.dicos import HIGH, LOW, DxSeries, dicos_uid, dx_dataset, file_bytes
from models.scan import Scan

AT = datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc)


def _scan(lines: int = 48, width: int = 64, seed: int = 0) -> Scan:
    rng = np.random.default_rng(seed)
    high = rng.integers(0, 65535, (lines, width), dtype=np.uint16)
    low = rng.integers(0, 65535, (lines, width), dtype=np.uint16)
    return Scan(high=high, low=low, meta={"pixel_mm": 2.5, "kvp": 160})


def _dx(scan: Scan, energy: str, name: str = "bag") -> Dataset:
    series = DxSeries(series_uid=dicos_uid(name, "series"), frame_of_reference_uid=dicos_uid(name, "frame"), acquired_at=AT)
    return dx_dataset(scan, energy, series, dicos_uid(name, energy), 1 if energy == HIGH else 2)


def _cfg(folder: Path, pair_ms: int = 10_000) -> RetrofitConfig:
    return RetrofitConfig(kind="filedrop", folder=folder, settle_ms=100, poll_ms=20, dicos_pair_ms=pair_ms)


async def _take(it: AsyncIterator[Scan | RejectedFile], n: int, timeout: float = 10.0) -> list[Scan | RejectedFile]:
    out: list[Scan | RejectedFile] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(it))
    return out


async def test_a_high_low_pair_becomes_one_scan_with_its_spacing_and_kvp(tmp_path: Path) -> None:
    scan = _scan()
    (tmp_path / "bag-low.dcm").write_bytes(file_bytes(_dx(scan, LOW)))
    (tmp_path / "bag-high.dcm").write_bytes(file_bytes(_dx(scan, HIGH)))
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    [got] = await _take(it, 1)
    assert isinstance(got, Scan)
    np.testing.assert_array_equal(got.high, scan.high)
    np.testing.assert_array_equal(got.low, scan.low)
    assert got.high.dtype == np.uint16 and got.meta["pixel_mm"] == 2.5 and got.meta["kvp"] == 160
    assert got.meta["source"] == "filedrop:cabinet" and "single_energy" not in got.meta
    with pytest.raises(TimeoutError):
        await _take(it, 1, timeout=0.5)  # the second half is not a second item
    await it.aclose()
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["bag-high.dcm", "bag-low.dcm"]
    assert src.counters == {"ingested": 1, "rejected": 0, "replaced": 0, "pruned": 0, "folder_lost": 0}


async def test_a_dx_image_without_energy_is_a_single_energy_scan(tmp_path: Path) -> None:
    scan = _scan(seed=3)
    ds = _dx(scan, HIGH)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    (tmp_path / "single.dcs").write_bytes(file_bytes(ds))
    it = FileDropSource(_cfg(tmp_path), "cabinet").scans()
    [got] = await _take(it, 1)
    await it.aclose()
    assert isinstance(got, Scan) and got.meta["single_energy"]
    np.testing.assert_array_equal(got.low, scan.high)


def _wrong_syntax(scan: Scan) -> bytes:
    ds = _dx(scan, HIGH, "jpeg")
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"])
    ds["PixelData"].VR = "OB"
    raw = io.BytesIO()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(raw, enforce_file_format=True)
    return raw.getvalue()


def _huge(scan: Scan) -> bytes:
    ds = _dx(scan, HIGH, "huge")
    ds.Rows, ds.Columns = 65535, 65535
    return file_bytes(ds)


def _no_pixels(scan: Scan) -> bytes:
    ds = _dx(scan, HIGH, "empty")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    del ds.PixelData
    return file_bytes(ds)


def _report(scan: Scan) -> bytes:
    ds = _dx(scan, HIGH, "tdr")
    ds.SOPClassUID = DICOSThreatDetectionReportStorage
    return file_bytes(ds)


def _short_pixels(scan: Scan) -> bytes:
    ds = _dx(scan, HIGH, "short")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    data = file_bytes(ds)
    return data[: len(data) - scan.high.size]  # the file ends half-way through the pixels


def _short_header(scan: Scan) -> bytes:
    return file_bytes(_dx(scan, HIGH, "cut"))[:300]


HOSTILE: dict[str, tuple[Callable[[Scan], bytes], str]] = {
    "a-jpeg.dcm": (_wrong_syntax, "uses transfer syntax JPEG Baseline (Process 1) (1.2.840.10008.1.2.4.50)"),
    "b-huge.dcm": (_huge, "declares 65535 x 65535 pixels; 1 to 100000000 are accepted"),
    "c-nopixels.dcm": (_no_pixels, "has no pixel data"),
    "d-report.dcm": (_report, "is a DICOS Threat Detection Report Storage object (1.2.840.10008.5.1.4.1.1.501.3), not a DX image"),
    "e-short.dcm": (_short_pixels, "holds 3072 bytes of pixel data; 48 x 64 at 16 bits needs 6144"),
    "f-cut.dcm": (_short_header, "names no SOP class: it is truncated, or not an image object"),
    "g-text.dcm": (lambda _: b"hello, this is not DICOM at all" * 10, "is not a DICOM file"),
}


async def test_hostile_files_are_refused_with_the_values_moved_aside_and_counted(tmp_path: Path) -> None:
    scan = _scan()
    for name, (make, _) in HOSTILE.items():
        (tmp_path / name).write_bytes(make(scan))
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    refused = await _take(it, len(HOSTILE))
    assert all(isinstance(r, RejectedFile) for r in refused)
    reasons = {r.file: r.reason for r in refused if isinstance(r, RejectedFile)}
    for name, (_, expected) in HOSTILE.items():
        assert reasons[name].startswith(name) and expected in reasons[name], reasons[name]
        assert "\n" not in reasons[name]
        assert (tmp_path / "rejected" / name).exists()
        assert expected in (tmp_path / "rejected" / f"{name}.reason.txt").read_text()
    assert src.counters == {"ingested": 0, "rejected": len(HOSTILE), "replaced": 0, "pruned": 0, "folder_lost": 0}
    (tmp_path / "z-high.dcm").write_bytes(file_bytes(_dx(scan, HIGH, "after")))
    (tmp_path / "z-low.dcm").write_bytes(file_bytes(_dx(scan, LOW, "after")))
    [after] = await _take(it, 1)  # the drop still works
    await it.aclose()
    assert isinstance(after, Scan)
    np.testing.assert_array_equal(after.low, scan.low)


async def test_a_half_whose_partner_never_comes_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "lonely-high.dcm").write_bytes(file_bytes(_dx(_scan(), HIGH, "lonely")))
    src = FileDropSource(_cfg(tmp_path, pair_ms=0), "cabinet")
    it = src.scans()
    [got] = await _take(it, 1)
    await it.aclose()
    assert isinstance(got, RejectedFile)
    assert got.reason == (f"lonely-high.dcm is the high energy half of DX series {dicos_uid('lonely', 'series')}; "
                          "its low energy half did not arrive within 0 ms")
    assert (tmp_path / "rejected" / "lonely-high.dcm").exists() and src.counters["rejected"] == 1


async def test_a_pair_of_different_sizes_is_rejected_whole(tmp_path: Path) -> None:
    (tmp_path / "p-high.dcm").write_bytes(file_bytes(_dx(_scan(48, 64), HIGH, "pair")))
    (tmp_path / "p-low.dcm").write_bytes(file_bytes(_dx(_scan(40, 64), LOW, "pair")))
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    [got] = await _take(it, 1)
    await it.aclose()
    assert isinstance(got, RejectedFile) and "differs in size: high (48, 64), low (40, 64)" in got.reason
    assert sorted(p.name for p in (tmp_path / "rejected").glob("*.dcm")) == ["p-high.dcm", "p-low.dcm"]
