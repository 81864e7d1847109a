"""The officer reads a conflicting read's sentence in the screen's language: the station screen says it from the
identity's code and values (`conflicts`), and shows an older record's English sentence, which has no code, as it is."""

from typing import TYPE_CHECKING

import numpy as np
import pytest

from central_sync.schema import Identity, Verdict
from edge.identity import fuse
from edge.web.demo import StationHarness, record_for, synthetic_scan
from station_browser import BROWSER_ONLY, OFFICER, checked_page as page, sign_in, station  # noqa: F401

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_ONLY

OLD = "plates AB1234 and CD5678 of jurisdiction HK were read on one vehicle"  # a record from before the codes


def test_a_conflict_is_said_in_chinese_from_its_code_and_an_older_records_sentence_stays_english(
        station: StationHarness, page: "Page") -> None:
    sign_in(page, station, OFFICER)
    page.select_option("#lang", "zh-Hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    identities = fuse([Identity(kind="container", value="CSQU3054384", status="read", source="side"),
                       Identity(kind="plate", value="CD5678", source="rear"),
                       Identity(kind="plate", value="AB1234", source="front")])
    assert identities[0].conflicts and identities[1].conflicts  # the codes the station sets
    scan, truth = synthetic_scan(np.random.default_rng(5), threat=False)
    rec = record_for(scan, Verdict.CLEAR, "clear", truth).model_copy(update={"identities": identities})
    rec = station.commit(scan, rec)
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    why = lambda kind: page.locator(f"#identities .ident[data-kind='{kind}'] .ident-why")  # noqa: E731
    expect(why("container")).to_have_text("⚠ 读数互相矛盾: 箱号 CSQU3054384 未通过 ISO 6346 校验位检查（校验位应为 3）")
    expect(why("plate")).to_have_text(["⚠ 读数互相矛盾: 同一车辆读到香港的多个车牌：AB1234和CD5678"] * 2)
    expect(page.locator("#identities .ident[data-kind='container']")).to_have_attribute(
        "title", "箱号 CSQU3054384 未通过 ISO 6346 校验位检查（校验位应为 3）")

    older = record_for(scan, Verdict.MANUAL, "detection", truth).model_copy(update={"identities": [
        Identity(kind="plate", value="AB1234", conflict=OLD)]})
    older = station.commit(scan, older)
    station.publish_record(older)
    page.wait_for_selector(f"#scan[data-loaded-id='{older.id}']")
    expect(why("plate")).to_have_text(f"⚠ 读数互相矛盾: {OLD}")
