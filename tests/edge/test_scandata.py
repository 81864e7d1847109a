"""The scan data the station screen's image tools draw from (edge/web/scandata.py), and the dense-object finder."""

import gzip
import json

import cv2
import numpy as np
import pytest

from central_sync.schema import ItemKind, Verdict
from edge import audit
from edge.web import render, scandata
from edge.web.demo import record_for, synthetic_scan
from models.dense import LINAC_DENSE_FROM, LINAC_KEV, PORTAL_MIN_DENSE_MM2, dense_regions, pixel_mm, screen_dense
from models.scan import Scan, load_scan
from models.training.portal import PortalSpec, portal_scan
from test_web_api import OFFICER, station  # noqa: F401


def test_a_lead_block_is_a_dense_region_and_a_clean_bag_has_none():
    clean, _ = synthetic_scan(np.random.default_rng(1), threat=True)  # a steel pistol is dense, not opaque
    lead, _ = synthetic_scan(np.random.default_rng(1), threat=True, dense=True)
    assert scandata.dense_regions(clean.high) == []
    [region] = scandata.dense_regions(lead.high)
    x0, y0, x1, y1 = region.box  # the 6 mm block drawn at (40, 250)-(110, 310), blurred by one pixel
    assert abs(x0 - 40) <= 2 and abs(y0 - 250) <= 2 and abs(x1 - 111) <= 2 and abs(y1 - 311) <= 2
    assert region.pixels == pytest.approx(71 * 61, rel=0.1) and region.area_mm2 == region.pixels


def test_a_dense_spot_smaller_than_the_minimum_is_not_an_alert_and_pixel_size_counts():
    high = np.full((100, 100), 60000, np.uint16)
    high[10:16, 10:16] = 50   # 36 px: a coin at 1 mm pixels
    high[50:70, 50:70] = 50   # 400 px
    assert [r.box for r in scandata.dense_regions(high, pixel_mm=1.0)] == [(50, 50, 70, 70)]
    assert len(scandata.dense_regions(high, pixel_mm=2.0)) == 2  # 36 px of 4 mm² is 144 mm²
    with pytest.raises(ValueError, match="pixel_mm=0"):
        scandata.dense_regions(high, pixel_mm=0)


def test_the_payload_round_trips_and_a_portal_scan_is_turned_as_its_png():
    scan, _ = synthetic_scan(np.random.default_rng(2), threat=False, dense=True)
    header, high, low, cls = scandata.decode(gzip.decompress(scandata.encode(scan)))
    assert (header["width"], header["height"], header["portal"]) == (560, 360, False)
    assert np.array_equal(high, scan.high) and np.array_equal(low, scan.low)
    assert np.array_equal(cls, render.material_classes(scan.high, scan.low))
    assert header["dense"][0]["box"] == list(scandata.dense_regions(scan.high)[0].box)
    header, high, low, cls = scandata.decode(gzip.decompress(scandata.encode(scan, portal=True)))
    assert (header["width"], header["height"]) == (360, 560)
    assert np.array_equal(high, np.rot90(scan.high)) and np.array_equal(low, np.rot90(scan.low))
    with pytest.raises(ValueError, match="not a scan data payload"):
        scandata.decode(b"\x89PNG....")


def test_a_linac_portal_scan_is_dense_only_where_it_carries_nothing_and_its_cab_lines_are_not_scanned():
    """A 9 MV lorry scan (generator A) with the beam off over the cab: the tube's 1 % finds dozens of
    regions and calls the cab dense; a portal's own measure finds none, reports the cab lines apart, and
    still finds a block the linac does not get through (−ln T ≈ 11, 40 × 80 pixels of 10 mm)."""
    scan = portal_scan(2, PortalSpec(vehicle="lorry", suspect=False))
    assert scan.meta["energy_kev"] >= LINAC_KEV and len(dense_regions(scan.high, pixel_mm(scan))) > 30
    plain = screen_dense(scan, portal=True)
    assert plain.threshold == LINAC_DENSE_FROM and plain.regions == [] and plain.unlit == [(0, 606)]
    high = scan.high.copy()
    high[1200:1280, 300:340] = 1
    blocked = screen_dense(Scan(high, scan.low, scan.meta), portal=True)
    [region] = blocked.regions
    assert abs(region.box[0] - 300) <= 2 and abs(region.box[1] - 1200) <= 2 and region.area_mm2 >= PORTAL_MIN_DENSE_MM2
    header = scandata.decode(gzip.decompress(scandata.encode(scan, portal=True)))[0]
    assert header["unlit"] == [[0, 0, scan.shape[1], 606]] and header["dense"] == []
    assert header["dense_threshold"] == LINAC_DENSE_FROM and header["dense_from"] == scandata.DENSE_FROM
    assert screen_dense(scan, portal=False).threshold == scandata.DENSE_FROM   # a bag's measure is the tube's


def test_pixel_size_comes_from_the_scan_or_is_one_mm():
    scan, _ = synthetic_scan(np.random.default_rng(2), threat=False)
    assert scandata.pixel_mm(scan) == 1.0
    assert scandata.pixel_mm(Scan(scan.high, scan.low, {"pixel_mm": 2.5})) == 2.5
    assert scandata.pixel_mm(Scan(scan.high, scan.low, {"pixel_mm": "big"})) == 1.0


def test_the_route_serves_the_scan_as_data_audited_as_a_view(station):
    scan, truth = synthetic_scan(np.random.default_rng(3), threat=True, dense=True)
    record = record_for(scan, Verdict.SUSPECT, "detection", truth, station="t-1")
    rec = station.store.commit(record, station.store.put_scan(record.scan.sha256, scan.to_bytes()))
    c = station.client(OFFICER)
    r = c.get(f"/api/cases/{rec.id}/scan.bin")
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "no-store"
    header, high, low, _ = scandata.decode(r.content)  # httpx undoes the gzip, as the browser does
    assert np.array_equal(high, scan.high) and np.array_equal(low, scan.low) and len(header["dense"]) == 1
    views = [json.loads(e.detail) for e in audit.entries(station.store.conn, rec.id) if e.action == "case.image_view"]
    assert views == [{"mode": "data", "tip": False}]
    assert station.client().get(f"/api/cases/{rec.id}/scan.bin").status_code == 401
    unstored = station.item(store_scan=False)
    assert c.get(f"/api/cases/{unstored.id}/scan.bin").status_code == 404


def test_a_portal_record_is_served_side_on(station):
    scan, truth = synthetic_scan(np.random.default_rng(4), threat=False)
    record = record_for(scan, Verdict.CLEAR, "clear", truth, station="t-1").model_copy(update={"kind": ItemKind.VEHICLE})
    rec = station.store.commit(record, station.store.put_scan(record.scan.sha256, scan.to_bytes()))
    header, high, _, _ = scandata.decode(station.client(OFFICER).get(f"/api/cases/{rec.id}/scan.bin").content)
    assert header["portal"] is True and np.array_equal(high, np.rot90(scan.high))


def test_the_low_energy_png_is_the_low_channel(station):
    rec = station.item(Verdict.CLEAR, "clear")  # no boxes on it
    scan = load_scan(station.store.scan_path(rec.scan.sha256))
    r = station.client(OFFICER).get(f"/api/cases/{rec.id}/image.png", params={"mode": "low"})
    png = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(png, render.grey_view(scan.low)) and not np.array_equal(png, render.grey_view(scan.high))
