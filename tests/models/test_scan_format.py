"""The scan file contract: round trip, and every defect refused with a sentence naming it."""

import io

import numpy as np
import pytest

from models.errors import ScanFormatError
from models.scan import Scan, load_scan, save_scan


def _scan() -> Scan:
    rng = np.random.default_rng(1)
    high = rng.integers(0, 65535, (40, 30), dtype=np.uint16)
    return Scan(high, (high // 2).astype(np.uint16), {"pixel_mm": 1.0, "source": "test"})


def test_round_trip_through_a_file(tmp_path):
    scan = _scan()
    loaded = load_scan(save_scan(scan, tmp_path / "a.npz"))
    assert np.array_equal(loaded.high, scan.high) and np.array_equal(loaded.low, scan.low)
    assert loaded.meta == scan.meta and loaded.complete
    assert not list(tmp_path.glob("*.part"))


def test_bytes_are_a_standard_npz_and_hash_is_stable():
    scan = _scan()
    with np.load(io.BytesIO(scan.to_bytes())) as npz:
        assert set(npz.files) == {"high", "low", "meta"}
    assert scan.sha256() == scan.sha256()


def test_truncated_file_is_refused(tmp_path):
    data = _scan().to_bytes()
    with pytest.raises(ScanFormatError, match="not a readable .npz"):
        load_scan(data[: len(data) // 2])


def test_garbage_is_refused():
    with pytest.raises(ScanFormatError):
        load_scan(b"\x89PNG not a scan")


def test_missing_channel_is_named():
    buf = io.BytesIO()
    np.savez(buf, high=np.zeros((4, 4), np.uint16))
    with pytest.raises(ScanFormatError, match=r"lacks arrays \['low'\]"):
        load_scan(buf.getvalue())


def test_wrong_dtype_and_shapes_are_named():
    with pytest.raises(ScanFormatError, match="'high' must be a 2-D uint16 array, got float32"):
        Scan(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint16))
    with pytest.raises(ScanFormatError, match=r"differ in shape: high \(4, 4\), low \(4, 5\)"):
        Scan(np.zeros((4, 4), np.uint16), np.zeros((4, 5), np.uint16))
    with pytest.raises(ScanFormatError, match="empty"):
        Scan(np.zeros((0, 4), np.uint16), np.zeros((0, 4), np.uint16))


def test_meta_must_be_an_object():
    buf = io.BytesIO()
    np.savez(buf, high=np.zeros((2, 2), np.uint16), low=np.zeros((2, 2), np.uint16), meta=np.array("[1, 2]"))
    with pytest.raises(ScanFormatError, match="meta of type list"):
        load_scan(buf.getvalue())
