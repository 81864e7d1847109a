"""The demo: three simulated stations live in the control room (screenshots for the README)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from edge import control_room_demo as demo
from central_sync.devtools import free_port
from polling import until

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "control_room"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_demo_shows_three_live_stations(tmp_path):
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    running = asyncio.create_task(demo.demo(tmp_path, port, seconds=25, lang="en", rate_s=0.4))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.fill("input[name=username]", "supervisor")
        await page.fill("input[name=password]", demo.PASSWORD)
        await page.click("#signin-form button[type=submit]")
        for station in demo.STATIONS:
            await expect(page.locator(f'.station[data-station="{station}"]')).to_have_attribute("data-state", "online", timeout=15000)
        await page.screenshot(path=ARTIFACTS / "demo-board.png")
        await page.click("#nav button[data-view=alerts]")
        await expect(page.locator("article.alert img").first).to_have_js_property("complete", True, timeout=15000)
        # polled from here: the page's CSP (script-src 'self') refuses wait_for_function's string evaluation
        await until(lambda: page.evaluate("() => [...document.querySelectorAll('article.alert')].map(a => a.textContent)"
                                          ".join(' ').match(/gate-1|conveyor-1|xray-1/g)?.length || 0"),
                    "alerts of two stations", check=lambda n: n >= 2, timeout=30)
        await page.screenshot(path=ARTIFACTS / "demo-alerts.png")
        await page.click("#nav button[data-view=kpi]")
        await expect(page.locator("#kpi-table td").first).to_be_visible()
        assert await page.locator("#kpi-table tr").count() == 4  # header + three stations
        await page.screenshot(path=ARTIFACTS / "demo-kpi.png", full_page=True)
        await browser.close()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
