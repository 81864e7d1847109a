"""Retrofit sources: file drop (complete files only, each once, across restarts) and video cuts."""

from __future__ import annotations

import asyncio
import io
import shutil
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from drivers.errors import LinkLost
from drivers.retrofit import RetrofitConfig, open_source
from drivers.retrofit.filedrop import FileDropSource
from drivers.retrofit.sim import drop_file, encode_scan_file, make_video, to_display
from drivers.retrofit.video import VideoSource
from models.scan import Scan, save_scan
from polling import until


def _scan(lines: int = 60, width: int = 80, seed: int = 0) -> Scan:
    """A uint16 transmission image with a few attenuating rectangles."""
    rng = np.random.default_rng(seed)
    high = np.full((lines, width), 62000, np.uint16)
    for _ in range(4):
        y, x = rng.integers(0, lines - 15), rng.integers(0, width - 20)
        high[y : y + 15, x : x + 20] = rng.integers(1000, 30000)
    return Scan(high=high, low=(high // 3 * 2).astype(np.uint16), meta={"source": "test", "kvp": 140})


def _cfg(folder: Path, **kw: object) -> RetrofitConfig:
    return RetrofitConfig(kind="filedrop", folder=folder, settle_ms=150, poll_ms=20, **kw)


async def _take(it: AsyncIterator[Scan], n: int, timeout: float = 5.0) -> list[Scan]:
    out: list[Scan] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(it))
    return out


async def test_filedrop_ingests_only_complete_files_each_once(tmp_path: Path) -> None:
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    a, b = _scan(seed=1), _scan(seed=2)
    (tmp_path / "c.npz.part").write_bytes(b"half")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    writer = asyncio.create_task(drop_file(tmp_path, "a.npz", a.to_bytes(), chunks=5, pause_s=0.08))
    got = await _take(it, 1)
    assert writer.done(), "a file still being written was ingested"
    np.testing.assert_array_equal(got[0].high, a.high)
    assert got[0].meta["source"] == "filedrop:cabinet" and got[0].meta["file"] == "a.npz"
    await drop_file(tmp_path, "b.png", encode_scan_file(b, "png"), atomic=True)
    got += await _take(it, 1)
    np.testing.assert_array_equal(got[1].high, b.high)
    np.testing.assert_array_equal(got[1].low, b.high)
    assert got[1].meta["single_energy"]
    with pytest.raises(TimeoutError):
        await _take(it, 1, timeout=0.5)
    await it.aclose()
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["a.npz", "b.png"]
    assert (tmp_path / "c.npz.part").exists()
    assert src.counters == {"ingested": 2, "rejected": 0, "replaced": 0, "pruned": 0, "folder_lost": 0}


async def test_filedrop_restart_ingests_nothing_twice(tmp_path: Path) -> None:
    for i in range(3):
        save_scan(_scan(seed=i), tmp_path / f"s{i}.npz")
    first = FileDropSource(_cfg(tmp_path), "cabinet").scans()
    taken = await _take(first, 2)
    await first.aclose()  # stops while holding s1: s0 was handed over and moved, s1 was not
    second = FileDropSource(_cfg(tmp_path), "cabinet").scans()
    rest = await _take(second, 2)
    with pytest.raises(TimeoutError):
        await _take(second, 1, timeout=0.5)
    await second.aclose()
    files = [s.meta["file"] for s in taken + rest]
    assert files == ["s0.npz", "s1.npz", "s1.npz", "s2.npz"]  # s1 was never confirmed by the consumer
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["s0.npz", "s1.npz", "s2.npz"]


async def test_filedrop_a_file_replaced_while_its_scan_is_inspected_is_ingested_as_its_own_scan(tmp_path: Path) -> None:
    """A machine writing every scan under one name: the next scan must not be moved to processed/ unread."""
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    a, b = _scan(seed=1), _scan(seed=2)
    await drop_file(tmp_path, "last.png", encode_scan_file(a, "png"), atomic=True)
    got = await _take(it, 1)
    await drop_file(tmp_path, "last.png", encode_scan_file(b, "png"), atomic=True)  # while a is inspected
    got += await _take(it, 1)
    await it.aclose()
    np.testing.assert_array_equal(got[0].high, a.high)
    np.testing.assert_array_equal(got[1].high, b.high)
    assert src.counters["replaced"] == 1
    assert (tmp_path / "last.png").exists(), "b is held by the consumer: it stays until it is handed over"


async def test_filedrop_a_file_rewritten_while_it_is_read_is_read_again_not_handed_over(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """A machine rewriting a file in place while the station reads it: what was read may mix two scans (an
    uncompressed TIFF half rewritten parses cleanly) and was handed over. The file is read again once settled."""
    import drivers.retrofit.filedrop as filedrop

    a, b = _scan(seed=1), _scan(seed=2)
    real = filedrop.read_scan_file

    def read_while_rewritten(path: Path, source: str) -> Scan:
        scan = real(path, source)
        if np.array_equal(scan.high, a.high):
            path.write_bytes(encode_scan_file(b, "png"))  # the machine writes the next scan over it meanwhile
        return scan

    monkeypatch.setattr(filedrop, "read_scan_file", read_while_rewritten)
    (tmp_path / "x.png").write_bytes(encode_scan_file(a, "png"))
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    got = await _take(it, 1)
    await it.aclose()
    np.testing.assert_array_equal(got[0].high, b.high)
    assert src.counters["replaced"] == 1


@pytest.mark.parametrize("keep_days", [7.0, 0.0])
async def test_filedrop_deletes_processed_and_rejected_files_older_than_keep_days(tmp_path: Path,
                                                                                keep_days: float) -> None:
    """The scan store keeps each scan: a week of vendor files stays beside it, not every file for ever (0: kept)."""
    import os
    import time

    old_day = time.time() - 8 * 86400
    for folder, names in (("processed", ["old.npz", "new.npz"]), ("rejected", ["old.png", "old.png.reason.txt"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"x")
            if name.startswith("old"):
                os.utime(tmp_path / folder / name, (old_day, old_day))
    src = FileDropSource(_cfg(tmp_path, keep_days=keep_days), "cabinet")
    it = src.scans()
    save_scan(_scan(), tmp_path / "now.npz")
    await _take(it, 1)
    with pytest.raises(TimeoutError):
        await _take(it, 1, timeout=0.5)  # the loop goes on past the file: moved, then the folders pruned
    await it.aclose()
    left = sorted(p.name for p in (tmp_path / "processed").iterdir()) + \
        sorted(p.name for p in (tmp_path / "rejected").iterdir())
    if keep_days:
        assert left == ["new.npz", "now.npz"] and src.counters["pruned"] == 3
    else:
        assert left == ["new.npz", "now.npz", "old.npz", "old.png", "old.png.reason.txt"]
        assert src.counters["pruned"] == 0


async def test_filedrop_rejects_bad_files_with_a_reason_and_keeps_going(tmp_path: Path) -> None:
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    cv2.imwrite(str(tmp_path / "colour.png"), np.zeros((8, 8, 3), np.uint8))
    save_scan(_scan(), tmp_path / "good.npz")
    got = await _take(it, 3)
    await it.aclose()
    assert [(r.file, r.source) for r in got[:2]] == [("broken.npz", "cabinet"), ("colour.png", "cabinet")]
    assert "channels" in got[1].reason  # each rejection is handed to the consumer too: it records the item
    assert got[2].meta["file"] == "good.npz"
    rejected = tmp_path / "rejected"
    assert (rejected / "broken.npz").exists() and (rejected / "colour.png").exists()
    assert "channels" in (rejected / "colour.png.reason.txt").read_text()
    assert "not a readable" in (rejected / "broken.npz.reason.txt").read_text()
    assert src.counters["rejected"] == 2


def _npz_declaring(shape: tuple[int, ...]) -> bytes:
    """A few hundred bytes of .npz whose high and low members declare `shape` (uint16) and hold 64 bytes."""
    header = f"{{'descr': '<u2', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 64
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("high.npy", npy)
        zf.writestr("low.npy", npy)
    return buf.getvalue()


async def test_filedrop_rejects_an_npz_declaring_a_huge_shape_before_loading_it(tmp_path: Path) -> None:
    """588 bytes declaring 2**20 x 2**20 pixels: np.load allocated 2 TiB, MemoryError ended the source and the
    file stayed, so every restart ended the same way."""
    (tmp_path / "a-poison.npz").write_bytes(_npz_declaring((2**20, 2**20)))
    save_scan(_scan(), tmp_path / "b-good.npz")
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    rejected, good = await _take(it, 2)
    await it.aclose()
    assert rejected.file == "a-poison.npz" and rejected.reason == (
        "a-poison.npz declares array high.npy of shape (1048576, 1048576) and type uint16 (2199023255552 bytes); "
        "at most 200000000 bytes (100000000 uint16 pixels) are accepted")
    assert good.meta["file"] == "b-good.npz"
    assert (tmp_path / "rejected" / "a-poison.npz.reason.txt").read_text() == rejected.reason + "\n"
    assert src.counters["rejected"] == 1


def _png_of_zeros(width: int, height: int) -> bytes:
    """An 8-bit greyscale PNG of black, compressed row by row (never held whole): 12000 x 12000 is 140 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    deflate, row = zlib.compressobj(9), b"\x00" * (width + 1)
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


async def test_filedrop_rejects_an_image_declaring_more_pixels_than_a_scan_before_decoding_it(tmp_path: Path) -> None:
    """140 KB of PNG declaring 12000 x 12000 pixels was decoded (760 MB at its peak; 30000 x 30000, 5 GB) and
    ingested as a scan larger than any scanner makes."""
    (tmp_path / "a-bomb.png").write_bytes(_png_of_zeros(12000, 12000))
    save_scan(_scan(), tmp_path / "b-good.npz")
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    rejected, good = await _take(it, 2, timeout=10)
    await it.aclose()
    assert rejected.file == "a-bomb.png"
    assert rejected.reason == "a-bomb.png declares 12000 x 12000 pixels; 1 to 100000000 are accepted"
    assert good.meta["file"] == "b-good.npz"


async def test_filedrop_rejects_a_symbolic_link_unread_and_leaves_its_target(tmp_path: Path) -> None:
    """A link named like a scan was read as this machine's scan, whatever file it pointed to."""
    drop, elsewhere = tmp_path / "drop", tmp_path / "elsewhere.npz"
    drop.mkdir()
    save_scan(_scan(), elsewhere)
    (drop / "a-link.npz").symlink_to(elsewhere)
    save_scan(_scan(seed=1), drop / "b-good.npz")
    src = FileDropSource(_cfg(drop), "cabinet")
    it = src.scans()
    rejected, good = await _take(it, 2)
    await it.aclose()
    assert rejected.file == "a-link.npz"
    assert rejected.reason == (f"a-link.npz is a symbolic link to {elsewhere}; only files written into the drop "
                               f"folder are read")
    assert good.meta["file"] == "b-good.npz"
    assert (drop / "rejected" / "a-link.npz").is_symlink() and elsewhere.is_file()


async def test_filedrop_rejects_a_file_whose_parsing_fails_in_any_way_and_goes_on(tmp_path: Path, monkeypatch) -> None:
    """Any failure to parse one file (here a MemoryError injected into the scan reader) rejects that file."""
    import drivers.retrofit.filedrop as filedrop

    real = filedrop.load_scan

    def load(path: Path) -> Scan:
        if Path(path).name == "a-bad.npz":
            raise MemoryError("Unable to allocate 2.00 TiB")
        return real(path)

    monkeypatch.setattr(filedrop, "load_scan", load)
    save_scan(_scan(), tmp_path / "a-bad.npz")
    save_scan(_scan(seed=1), tmp_path / "b-good.npz")
    src = FileDropSource(_cfg(tmp_path), "cabinet")
    it = src.scans()
    rejected, good = await _take(it, 2)
    await it.aclose()
    assert rejected.reason == "a-bad.npz could not be read: MemoryError: Unable to allocate 2.00 TiB"
    assert good.meta["file"] == "b-good.npz" and (tmp_path / "rejected" / "a-bad.npz").exists()


async def test_filedrop_waits_for_a_drop_folder_that_went_away_degraded_and_goes_on(tmp_path: Path) -> None:
    """A share remounted (the folder gone for a moment) ended the source with FileNotFoundError."""
    folder = tmp_path / "drop"
    src = FileDropSource(_cfg(folder), "cabinet")
    changes: list[tuple[str, str]] = []
    src.on_health = lambda state, detail: changes.append((state, detail))
    it = src.scans()
    first = asyncio.create_task(_take(it, 1, timeout=10))
    await until(lambda: folder.exists())
    shutil.rmtree(folder)
    await until(lambda: changes, "the source shows degraded")
    assert changes[0][0] == "degraded" and changes[0][1].startswith(f"drop folder {folder} of source cabinet "
                                                                      f"cannot be used: [Errno 2]")
    folder.mkdir()
    save_scan(_scan(), folder / "back.npz")
    (scan,) = await first
    await it.aclose()
    assert scan.meta["file"] == "back.npz"
    assert changes[-1] == ("ok", "") and src.health.state == "ok" and src.counters["folder_lost"] == 1


async def test_video_cuts_one_scan_per_belt_stop(tmp_path: Path) -> None:
    items = [_scan(seed=s) for s in range(3)]
    path = tmp_path / "monitor.avi"
    make_video(path, items, size=(80, 60), hold_frames=15)
    cfg = RetrofitConfig(kind="video", device=str(path), still_frames=6)
    scans = [s async for s in VideoSource(cfg, "monitor").scans()]
    assert len(scans) == 3
    for scan, item in zip(scans, items, strict=True):
        expect = to_display(item, (80, 60)).astype(np.int32) * 257
        assert np.abs(scan.high.astype(np.int32) - expect).mean() < 2 * 257
        assert scan.meta["single_energy"] and scan.meta["source"] == "video:monitor"
        np.testing.assert_array_equal(scan.high, scan.low)


async def test_video_without_change_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "still.avi"
    make_video(path, [], lead_frames=40)
    cfg = RetrofitConfig(kind="video", device=str(path), still_frames=5)
    assert [s async for s in VideoSource(cfg, "monitor").scans()] == []


@pytest.mark.parametrize("kind", ["sim-filedrop", "sim-video"])
async def test_open_source_simulators_run_the_real_drivers(tmp_path: Path, kind: str) -> None:
    scan_dir = tmp_path / "scans"
    scan_dir.mkdir()
    for i in range(2):
        save_scan(_scan(seed=i), scan_dir / f"{i}.npz")
    cfg = RetrofitConfig(kind=kind, folder=tmp_path / "drop", settle_ms=100, poll_ms=20, still_frames=5,
                         sim={"scan_dir": scan_dir, "interval_ms": 10, "items": 2})
    async with open_source(cfg, "sim") as source:
        got = await _take(source.scans(), 2, timeout=10)
    assert all(s.shape[1] > 0 and s.meta["single_energy"] for s in got)


async def test_the_simulated_file_drop_fails_when_its_simulator_does(tmp_path: Path) -> None:
    """The simulator writing the files dies with its folder; the source, which waits for a folder that went away,
    fails with it instead (nothing would ever come, and the simulator's failure was swallowed)."""
    scan_dir = tmp_path / "scans"
    scan_dir.mkdir()
    save_scan(_scan(), scan_dir / "0.npz")
    drop = tmp_path / "drop"
    cfg = RetrofitConfig(kind="sim-filedrop", folder=drop, settle_ms=50, poll_ms=20,
                         sim={"scan_dir": scan_dir, "interval_ms": 10, "file_format": "npz"})
    async with open_source(cfg, "sim") as source:
        it = source.scans()
        await _take(it, 1)
        shutil.rmtree(drop)
        drop.write_text("not a folder")
        with pytest.raises(LinkLost, match=f"the simulated machine writing into {drop} for source sim failed"):
            await _take(it, 100, timeout=10)


def test_config_requires_what_its_kind_needs() -> None:
    with pytest.raises(ValidationError, match="folder"):
        RetrofitConfig(kind="filedrop")
    with pytest.raises(ValidationError, match="device"):
        RetrofitConfig(kind="video")
    with pytest.raises(ValidationError, match="sim"):
        RetrofitConfig(kind="sim-video")
