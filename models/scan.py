"""The scan file contract: dual-energy transmission images as `.npz`.

Arrays `high` and `low` are `uint16`, shape H×W (H = scan lines along the motion, W = detector
pixels), transmission where 65535 is unattenuated air and 0 is opaque. `meta` is a JSON string
with `pixel_mm`, `kvp`, `source` and `lines_per_s` where known.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ScanFormatError

AIR = 65535


@dataclass(frozen=True)
class Scan:
    """One dual-energy scan; `complete` is False when acquisition stopped early."""

    high: np.ndarray
    low: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    complete: bool = True

    def __post_init__(self) -> None:
        check_channels(self.high, self.low)

    @property
    def shape(self) -> tuple[int, int]:
        return self.high.shape

    def to_bytes(self) -> bytes:
        """A standard `.npz` (np.load reads it), deflated at level 1.

        Transmission images carry detector noise, so harder compression gains little: on the
        example bags level 1 gives 547 KB in about a third of the time level 6 takes for 532 KB.
        """
        buf = io.BytesIO()
        arrays = {"high": self.high, "low": self.low, "meta": np.array(json.dumps(self.meta))}
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, arr in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
        return buf.getvalue()

    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def check_channels(high: np.ndarray, low: np.ndarray) -> None:
    """Raise ScanFormatError unless both channels are 2-D uint16 arrays of one shape."""
    for name, arr in (("high", high), ("low", low)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint16 or arr.ndim != 2:
            raise ScanFormatError(
                f"channel {name!r} must be a 2-D uint16 array, got "
                f"{getattr(arr, 'dtype', type(arr).__name__)} with shape {getattr(arr, 'shape', None)}"
            )
    if high.shape != low.shape:
        raise ScanFormatError(f"channels differ in shape: high {high.shape}, low {low.shape}")
    if high.shape[0] == 0 or high.shape[1] == 0:
        raise ScanFormatError(f"scan is empty: shape {high.shape}")


def load_scan(source: str | Path | bytes) -> Scan:
    """Read a scan file (path or bytes); any defect raises ScanFormatError naming it."""
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
        with fh, np.load(fh, allow_pickle=False) as npz:
            missing = {"high", "low"} - set(npz.files)
            if missing:
                raise ScanFormatError(f"scan {name} lacks arrays {sorted(missing)}")
            high, low = npz["high"], npz["low"]
            meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    except ScanFormatError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ScanFormatError(f"scan {name} is not a readable .npz scan file: {exc}") from exc
    if not isinstance(meta, dict):
        raise ScanFormatError(f"scan {name} has meta of type {type(meta).__name__}, expected a JSON object")
    return Scan(high=high, low=low, meta=meta)



def load_scans(paths: list[Path]) -> list[Scan]:
    """Each file's scan, in order; paths that are links to one file read it once and share its Scan
    (a simulator's pool of links repeats a few bags many times)."""
    read: dict[Path, Scan] = {}
    for path in paths:
        key = Path(path).resolve()
        if key not in read:
            read[key] = load_scan(path)
    return [read[Path(p).resolve()] for p in paths]

def save_scan(scan: Scan, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so that readers never see half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(scan.to_bytes())
    tmp.replace(path)
    return path
