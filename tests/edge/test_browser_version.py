"""The station's release (`edge --version`) on /healthz and, small, in the screen's health view, in
each language."""

from __future__ import annotations

import httpx
import pytest

from appliance.version import version
from station_browser import BROWSER_ONLY, SUPERVISOR, download_page as page, sign_in, station  # noqa: F401

pytestmark = BROWSER_ONLY


def test_the_health_view_shows_the_software_version(station, page):  # noqa: F811
    from playwright.sync_api import expect

    assert httpx.get(f"{station.url}/healthz", timeout=10).json()["version"] == version()
    sign_in(page, station, SUPERVISOR)
    page.click("#nav button[data-view='health']")
    page.wait_for_selector("#health-body dl")
    for lang, label in (("en", "Software version"), ("zh-Hant", "軟件版本"), ("zh-Hans", "软件版本")):
        page.select_option("#lang", lang)
        page.click("#nav button[data-view='health']")
        row = page.locator("#health-body dt", has_text=label)
        expect(row).to_have_count(1)
        expect(row.locator("xpath=following-sibling::dd[1]")).to_have_text(version())
