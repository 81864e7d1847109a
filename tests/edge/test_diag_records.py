"""Records without devices: the hash chain, JUnit XML and the static HTML report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from edge.diag.messages import Catalogue
from edge.diag.records import GENESIS, load_records, next_name, record_hash, verify_chain, write_record
from edge.diag.report import junit_xml, render_html, sparkline, trends


def _body(value: float, outcome: str = "PASS") -> dict:
    m = {"name": "io.divert_ms", "target": "to pass", "key": "io.divert_ms[to pass]", "unit": "ms", "value": value,
         "outcome": outcome, "low": None, "high": 400, "marginal_low": None, "marginal_high": 250, "expect": None,
         "message": "" if outcome == "PASS" else "divert.slow", "diagnosis": "" if outcome == "PASS" else "slow gate",
         "detail": ""}
    phase = {"name": "io", "title": "PLC I/O map", "outcome": outcome, "started": "t", "duration_s": 1.5,
             "reason": "", "notes": [], "prompts": [], "measurements": [m],
             "diagnoses": [m["diagnosis"]] if m["diagnosis"] else [], "attachments": []}
    return {"station": "c-1", "station_kind": "conveyor", "twin": True, "technician": "T-7", "software_version": "1",
            "firmware_version": "emu", "firmware_sha256": "ab", "config_path": None, "config_sha256": "cd",
            "model": None, "budget_ms": 2000, "drill": None, "started": "2026-01-01T00:00:00Z",
            "ended": "2026-01-01T00:00:05Z", "outcome": outcome, "teardown_unconfirmed": [], "phases": [phase]}


def _write(tmp_path, *values):
    for v in values:
        seq, name = next_name(tmp_path, f"s{v}")
        write_record(tmp_path, _body(v, "FAIL" if v > 400 else "PASS"), seq, name)
    return load_records(tmp_path)


def test_records_chain_and_any_change_is_found(tmp_path):
    recs = _write(tmp_path, 150.0, 160.0, 480.0)
    assert [r["seq"] for r in recs] == [1, 2, 3] and recs[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] == record_hash(a) for a, b in zip(recs, recs[1:]))
    assert verify_chain(tmp_path).ok
    second = sorted((tmp_path / "records").glob("*.json"))[1]
    second.unlink()
    rep = verify_chain(tmp_path)
    assert not rep.ok and rep.broken_at.startswith("000003") and "prev_hash" in rep.reason


def test_junit_maps_outcomes(tmp_path):
    recs = _write(tmp_path, 150.0, 480.0)
    ok, bad = (ET.fromstring(junit_xml(r)) for r in recs)
    assert ok.get("failures") == "0" and ok.find("testcase/failure") is None
    failure = bad.find("testcase/failure")
    assert bad.get("failures") == "1" and failure is not None and failure.text == "slow gate"


def test_report_is_static_and_shows_trends_and_guidance(tmp_path):
    recs = _write(tmp_path, 150.0, 160.0, 480.0)
    series = trends(recs)
    assert series == {"io.divert_ms[to pass]": [150.0, 160.0, 480.0]}
    assert sparkline(series["io.divert_ms[to pass]"]).count(",") == 3
    html = render_html(recs[-1], recs, Catalogue("en"))
    assert "slow gate" in html and "<polyline" in html and "T-7" in html and recs[-1]["hash"] in html
    assert "<script" not in html and "://" not in html
    assert json.loads(json.dumps(recs[-1])) == recs[-1]
