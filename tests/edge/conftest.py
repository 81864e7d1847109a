import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, started once for a test file: Playwright's driver and the browser take 1–4 s to start on a
    loaded two-core machine, paid by every browser test when each started its own. Tests use it through `browser`.
    While it lives Playwright's sync API keeps its event loop running on the main thread: no other test of a file that
    uses it may start Playwright itself or run an event loop there (async tests, asyncio.run)."""
    from playwright.sync_api import sync_playwright

    from station_browser import launch

    with sync_playwright() as pw:
        started = launch(pw)
        yield started
        started.close()


class OwnBrowser:
    """The file's Chromium as one test uses it: each page it opens has a context of its own (cookies, storage, as a
    fresh browser's), and every page and context it opened is closed at its end."""

    def __init__(self, chromium: Any) -> None:
        self._chromium = chromium
        self._contexts: list[Any] = []

    def new_context(self, **options: Any) -> Any:
        context = self._chromium.new_context(**options)
        self._contexts.append(context)
        return context

    def new_page(self, **options: Any) -> Any:
        return self.new_context(**options).new_page()

    def close(self) -> None:
        for context in self._contexts:
            context.close()
        self._contexts.clear()


@pytest.fixture
def browser(chromium: Any) -> Iterator[OwnBrowser]:
    """This test's pages and contexts in the file's Chromium (`chromium`), closed at its end."""
    own = OwnBrowser(chromium)
    yield own
    own.close()
