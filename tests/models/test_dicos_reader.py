"""The DX reader never raises anything but ScanFormatError, however a valid file is cut or corrupted."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.dicos import HIGH, DxSeries, dicos_uid, dx_dataset, file_bytes, read_dx_header, read_dx_scan
from models.errors import ScanFormatError
from models.scan import Scan

SCAN = Scan(high=np.arange(12 * 16, dtype=np.uint16).reshape(12, 16), low=np.zeros((12, 16), np.uint16),
            meta={"pixel_mm": 0.8, "kvp": 120})
SERIES = DxSeries(dicos_uid("fuzz", "series"), dicos_uid("fuzz", "frame"), datetime(2026, 1, 1, tzinfo=timezone.utc))
VALID = file_bytes(dx_dataset(SCAN, HIGH, SERIES, dicos_uid("fuzz", "dx"), 1))


def _read(data: bytes) -> Scan | ScanFormatError:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.dcm"
        path.write_bytes(data)
        try:
            read_dx_header(path)
            return read_dx_scan([path], "fuzz")
        except ScanFormatError as exc:
            assert str(exc).startswith("fuzz.dcm ") or str(exc).startswith("DX "), str(exc)
            return exc


def test_the_valid_file_reads_back() -> None:
    got = _read(VALID)
    assert isinstance(got, Scan)
    np.testing.assert_array_equal(got.high, SCAN.high)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, len(VALID)))
def test_any_truncation_is_refused_or_read(cut: int) -> None:
    got = _read(VALID[:cut])
    if isinstance(got, Scan):
        assert got.shape == (12, 16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_any_corruption_is_refused_or_read(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for at, value in flips:
        data[at] = value
    got = _read(bytes(data))
    if isinstance(got, Scan):
        assert got.high.dtype == np.uint16 and got.high.ndim == 2
