"""What the station screen's browser tests share: Debian's Chromium, its flags, a station to test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS, StationHarness

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = "Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
OFFICER, SUPERVISOR, TECHNICIAN = ((b, p) for b, _, _, p in DEMO_USERS)
BROWSER_ONLY = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)]


@pytest.fixture
def station(tmp_path: Path) -> Iterator[StationHarness]:
    """A running station screen without TIP, with the demo's officer, supervisor and technician."""
    with StationHarness(tmp_path / "data", WebConfig(tip=TipConfig(enabled=False))) as h:
        h.add_demo_users()
        yield h


def launch(pw: Any) -> Any:
    """Debian's Chromium, headless, with the screenshots folder ready."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
