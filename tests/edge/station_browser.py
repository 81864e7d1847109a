"""What the station screen's browser tests share: Debian's Chromium, its flags, a station to test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from central_sync.schema import Verdict
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS, StationHarness, record_for, synthetic_scan

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


@pytest.fixture
def download_page(browser: Any) -> Any:
    """A 1920×1080 page that accepts downloads (import it as `page`)."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
    page.set_default_timeout(10_000)
    return page


def error_checked_page(browser: Any, width: int, height: int) -> Iterator[Any]:
    """A page of width × height in this test's `browser` that fails its test on any script error (the body of a
    `page` fixture)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert errors == []


@pytest.fixture
def checked_page(browser: Any) -> Iterator[Any]:
    """A 1920×1080 page that fails its test on any script error (import it as `page`)."""
    yield from error_checked_page(browser, 1920, 1080)


def sign_in(page: Any, station: StationHarness, who: tuple[str, str]) -> None:
    """Badge and PIN on the keypad, then wait for the live screen."""
    page.goto(station.url)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#badge", who[0])
    for digit in who[1]:
        page.click(f"#keypad button:text-is('{digit}')")
    page.click("#signin-btn")
    page.wait_for_selector("#nav:not([hidden])")
    page.wait_for_selector("body[data-live='1']")


def commit_suspect(station: StationHarness, seed: int) -> str:
    """A suspect record with a synthetic threat scan, committed and shown live; its id."""
    scan, truth = synthetic_scan(np.random.default_rng(seed), threat=True)
    record = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(record)
    return record.id


def contrast(page: Any, selector: str, box: str) -> float:
    """The WCAG contrast ratio of the text of `selector` on the background of `box` (4.5 is enough to read)."""
    def luminance(css: str) -> float:
        r, g, b = (int(v) / 255 for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
        return sum(k * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
                   for k, c in zip((0.2126, 0.7152, 0.0722), (r, g, b)))
    fg = luminance(page.eval_on_selector(selector, "e => getComputedStyle(e).color"))
    bg = luminance(page.eval_on_selector(box, "e => getComputedStyle(e).backgroundColor"))
    return (max(fg, bg) + 0.05) / (min(fg, bg) + 0.05)
