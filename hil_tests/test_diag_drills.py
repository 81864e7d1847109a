"""Fault drills against the twin: the right phase fails with the right diagnosis; safe, then recovered.

A drill that behaves as designed passes: the failures it causes are expected and marked so."""

from __future__ import annotations

import pytest

from edge.diag.drills import DRILLS
from hil_tests.conftest import diag, phase

CASES = {  # drill -> (station, phases to run, measurement that must fail with the drill's diagnosis)
    "plc-timeout": ("conveyor", "links", "links.plc_link_ok"),
    "controller-corrupt": ("conveyor", "links", "links.controller_retries"),
    "reader-unplugged": ("gantry", "links,rfid", "links.reader_link_ok"),
}


@pytest.mark.parametrize("drill", sorted(CASES))
def test_drill_fails_the_right_phase_with_the_right_diagnosis(twin, tmp_path, drill):
    station, phases, failing = CASES[drill]
    spec = DRILLS[drill]
    rc, rec = diag(tmp_path, "--config", f"examples/{station}.toml", "--drill", drill, "--phases", phases)
    assert rc == 0 and rec["outcome"] in ("PASS", "MARGINAL") and rec["drill"] == drill
    hit = phase(rec, spec.fails_phase)
    assert hit["outcome"] == "FAIL" and drill in hit["expected"]  # the fault's failure, shown and expected
    assert phase(rec, "drill-diagnosis")["outcome"] == "PASS"
    failed = {m["name"]: m for m in hit["measurements"] if m["outcome"] == "FAIL"}
    assert failing in failed and failed[failing]["message"] == spec.diagnosis
    assert failed[failing]["diagnosis"] in hit["diagnoses"]
    inject, recover = phase(rec, "drill-inject"), phase(rec, "drill-recover")
    assert inject["outcome"] == "PASS", inject["diagnoses"]  # noticed in time, degraded-safe
    assert recover["outcome"] == "PASS", recover["diagnoses"]  # back within bounds, nothing restarted
    assert {m["name"] for m in inject["measurements"]} >= {"drill.detected_ms", "drill.safe_while_faulted"}
    assert not rec["teardown_unconfirmed"]


def test_unplugged_reader_fails_the_badge_read_with_the_unplug_diagnosis(twin, tmp_path):
    rc, rec = diag(tmp_path, "--config", "examples/gantry.toml", "--drill", "reader-unplugged", "--phases", "rfid")
    rfid = phase(rec, "rfid")
    assert rfid["outcome"] == "FAIL"
    assert [m["message"] for m in rfid["measurements"] if m["outcome"] == "FAIL"] == ["reader.unplugged"]


def test_drill_is_refused_on_hardware(tmp_path, monkeypatch):
    cfg = tmp_path / "real.toml"
    cfg.write_text('[station]\nid = "c-1"\nkind = "xray"\nitem_kind = "parcel"\nbudget_ms = 2000\n'
                   f'data_dir = "{tmp_path}"\n[devices.source]\nkind = "filedrop"\nfolder = "{tmp_path}"\n')
    rc, rec = diag(tmp_path / "out", "--config", str(cfg), "--drill", "plc-timeout")
    assert rc == 64 and rec == {}
