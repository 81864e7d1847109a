import os
import subprocess
from pathlib import Path

import pytest

from edge.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "data", station="st-1") as s:
        yield s


class SmallDisk(type(Path())):
    """A mounted 4 MiB tmpfs (a Path) that can be filled to the last byte."""

    def fill(self, name: str = "filler") -> Path:
        """Write zeros to `name` on this disk until the disk is full; the file."""
        path = self / name
        with open(path, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        return path


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB tmpfs for the station's data (needs root and mount; skipped where the test may not mount)."""
    mount = SmallDisk(tmp_path / "small-disk")
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)
