"""The stations board in headless Chromium warns of a CRL about to lapse and of a station's
certificate expiring within 30 days, in the user's language. Screenshot in test-artifacts/control_room/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from central_sync.pki import Authority

from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD
from test_control_room_tip_browser import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_board_warns_of_the_crl_and_expiring_certificates_in_three_languages(tmp_path: Path) -> None:
    from playwright.async_api import expect
    ca = Authority(tmp_path / "ca")
    ca.init()
    now = datetime.now(UTC)
    ca.write_crl(now=now - timedelta(days=25), days=30)  # five days left
    ca.issue_with_key("gate-2", days=12, now=now - timedelta(hours=12))  # 11.5 days left
    ca.issue_with_key("gate-1")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(pki_dir=ca.root)) as room:
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with signed_in(room.install(create_app(store)), "op1") as page:
            warnings = page.locator("#pki-warnings")
            await expect(warnings).to_be_visible()
            await expect(warnings.locator("li[data-warning=crl]")).to_contain_text("edge-hub pki crl")
            await expect(warnings.locator("li[data-warning=expiring]")).to_have_count(1)
            await expect(warnings.locator("li[data-subject=gate-2]")).to_contain_text("11 days left")
            await page.screenshot(path=ARTIFACTS / "pki_warnings.png")
            for lang, word in (("zh-Hant", "憑證"), ("zh-Hans", "证书")):
                await page.select_option("#lang", lang)
                await expect(warnings.locator("li[data-subject=gate-2]")).to_contain_text(word)
                await expect(warnings.locator("li[data-subject=gate-2]")).to_contain_text("11")
            ca.write_crl()  # `edge-hub pki crl`
            await page.click("#nav button[data-view=board]")
            await expect(warnings.locator("li[data-warning=crl]")).to_have_count(0)
