"""Records without devices: the hash chain, JUnit XML and the static HTML report."""

from __future__ import annotations

import json
import shutil
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from appliance import hashchain
from edge.diag.cli import main_diag

from edge.diag.messages import Catalogue
from edge.diag.records import GENESIS, load_records, next_name, record_hash, verify_chain, write_record
from edge.diag.report import junit_xml, render_html, sparkline, trends
from edge.diag.signing import KEY_FILE, StationKeyError, load_or_create, pinned_public


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
    assert not rep.ok and rep.broken_at.startswith("000003") and "entry 2 is missing" in rep.reason


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


def test_a_safe_state_left_unconfirmed_is_headed_in_the_technicians_language(tmp_path):
    body = {**_body(150.0), "teardown_unconfirmed": ["belt stop: no answer within 2.3 s"]}
    seq, name = next_name(tmp_path, "s1")
    rec = write_record(tmp_path, body, seq, name)
    html = render_html(rec, [rec], Catalogue("zh-Hant"))
    assert "執行結束時未能確認安全狀態" in html and "belt stop: no answer within 2.3 s" in html
    assert "Teardown" not in html and "unsigned" not in html and "prev " not in html


def _sign_write(folder, key, *values):
    for v in values:
        seq, name = next_name(folder, f"s{v}")
        write_record(folder, _body(v, "FAIL" if v > 400 else "PASS"), seq, name, key)


def test_station_key_is_private_and_named_in_each_record(tmp_path):
    key, created = load_or_create(tmp_path / "data")
    assert created and stat.S_IMODE(key.path.stat().st_mode) == 0o600
    again, created_again = load_or_create(tmp_path / "data")
    assert not created_again and again.public_hex == key.public_hex
    _sign_write(tmp_path, key, 150.0)
    rec = load_records(tmp_path)[0]
    assert rec["signer"] == {"alg": "ed25519", "public_key": key.public_hex} and len(rec["signature"]) == 128
    rep = verify_chain(tmp_path, pinned_public(tmp_path / "data"))
    assert rep.ok and rep.pinned and (rep.signed, rep.unsigned) == (1, 0)


def test_a_station_key_readable_by_others_is_refused(tmp_path):
    key, _ = load_or_create(tmp_path)
    key.path.chmod(0o644)
    with pytest.raises(StationKeyError, match="readable by others"):
        load_or_create(tmp_path)


def test_a_fail_rewritten_to_pass_and_rehashed_does_not_verify(tmp_path):
    key, _ = load_or_create(tmp_path / "data")
    _sign_write(tmp_path, key, 480.0, 150.0)
    paths = sorted((tmp_path / "records").glob("*.json"))
    first, second = (json.loads(p.read_text()) for p in paths)
    first["outcome"] = first["phases"][0]["outcome"] = "PASS"
    first["phases"][0]["measurements"][0].update(value=150.0, outcome="PASS", diagnosis="", message="")
    first["hash"] = record_hash(first)
    second["prev_hash"] = first["hash"]
    second["hash"] = record_hash(second)
    for p, rec in zip(paths, (first, second)):
        p.write_text(json.dumps(rec))
    rep = verify_chain(tmp_path, key.public_hex)
    assert not rep.ok and rep.broken_at == paths[0].name and "signature does not verify" in rep.reason


def test_records_resigned_with_another_key_fail_against_the_pinned_key(tmp_path):
    key, _ = load_or_create(tmp_path / "station")
    forger, _ = load_or_create(tmp_path / "forger")
    _sign_write(tmp_path, forger, 150.0)
    assert verify_chain(tmp_path).ok  # consistent in itself ...
    rep = verify_chain(tmp_path, key.public_hex)
    assert not rep.ok and "pinned key" in rep.reason  # ... but not the station's


def test_old_unsigned_records_are_reported_unsigned_and_stripped_ones_do_not_count_as_signed(tmp_path):
    key, _ = load_or_create(tmp_path / "data")
    _write(tmp_path, 150.0)  # written before records were signed
    _sign_write(tmp_path, key, 160.0)
    rep = verify_chain(tmp_path, key.public_hex)
    assert rep.ok and (rep.signed, rep.unsigned) == (1, 1)
    assert main_diag(["--verify", str(tmp_path), "--public-key", key.public_hex]) == 66
    last = sorted((tmp_path / "records").glob("*.json"))[-1]
    rec = json.loads(last.read_text())
    del rec["signature"], rec["signer"]
    rec["hash"] = record_hash(rec)
    last.write_text(json.dumps(rec))
    _sign_write(tmp_path, key, 170.0)
    rep = verify_chain(tmp_path, key.public_hex)  # a stripped record counts as unsigned, never as signed
    assert (rep.signed, rep.unsigned) == (1, 2)
    assert main_diag(["--verify", str(tmp_path), "--public-key", key.public_hex]) == 66


def test_the_marginal_band_is_shown_in_json_junit_and_the_report(tmp_path):
    from edge.diag.context import PhaseContext
    from edge.diag.core import PhaseResult

    ctx = PhaseContext(None, None, PhaseResult("io", "I/O"), Catalogue("en"), 1.0)  # type: ignore[arg-type]
    m = ctx.measure("io.divert_ms", 300.0, target="to pass").as_dict()
    assert m["outcome"] == "MARGINAL" and m["marginal_band"] == [[250, 400]]
    body = _body(300.0, "MARGINAL")
    body["phases"][0]["measurements"] = [m]
    seq, name = next_name(tmp_path, "m")
    rec = write_record(tmp_path, body, seq, name)
    html = render_html(rec, [rec], Catalogue("en"))
    assert "MARGINAL" in html and "marginal above 250" in html
    case = ET.fromstring(junit_xml(rec)).find("testcase")
    assert case.find("failure") is None
    marginal = case.find("properties/property[@name='marginal']")
    assert marginal is not None and "300 ms in the marginal band 250 to 400 ms" in marginal.get("value")
    assert "marginal above 250" in case.find("system-out").text


V1_RECORDS = Path(__file__).parent / "fixtures" / "diag_records_v1"


def _old_chain(tmp_path):
    """A copy of records written by the pre-issue-15 code (one unsigned, two signed) and their station key."""
    folder = tmp_path / "out"
    shutil.copytree(V1_RECORDS, folder)
    (folder / "station-key" / KEY_FILE).chmod(0o600)
    return folder, (folder / "station-public-key.txt").read_text().strip()


def test_records_written_by_the_old_code_verify_and_new_ones_continue_the_chain(tmp_path):
    folder, public = _old_chain(tmp_path)
    rep = verify_chain(folder, public)
    assert rep.ok and rep.records == 3 and (rep.signed, rep.unsigned) == (2, 1)
    key, created = load_or_create(folder / "station-key")
    assert not created and key.public_hex == public
    _sign_write(folder, key, 180.0)
    newest = load_records(folder)[-1]
    assert hashchain.version_of(newest["hash"]) == hashchain.CURRENT and newest["seq"] == 4
    rep = verify_chain(folder, public)
    assert rep.ok and rep.records == 4 and (rep.signed, rep.unsigned) == (3, 1)


def test_a_changed_old_record_is_named(tmp_path):
    folder, public = _old_chain(tmp_path)
    path = sorted((folder / "records").glob("*.json"))[1]
    rec = json.loads(path.read_text(encoding="utf-8"))
    rec["phases"][0]["notes"] = ["technician: belt fine"]
    path.write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
    rep = verify_chain(folder, public)
    assert not rep.ok and rep.broken_at == path.name
    assert rep.reason == "diagnostic records entry 2 was changed after it was written (its content does not match its hash)"


def test_diagnostics_refuse_a_data_dir_the_station_daemon_holds(tmp_path, capsys):
    """Nothing stopped `edge diag` from driving the devices a running daemon drives (belt, barrier, X-ray permit)."""
    import os

    from edge.datadir import data_dir_lock

    root = Path(__file__).resolve().parents[2]
    config = tmp_path / "xray.toml"
    config.write_text((root / "examples" / "xray.toml").read_text()
                      .replace('data_dir = "var/xray-01"', f'data_dir = "{tmp_path / "data"}"'))
    (tmp_path / "data").mkdir()
    with data_dir_lock("xray-01", tmp_path / "data"):  # what the running daemon holds
        rc = main_diag(["--config", str(config), "--phases", "clock", "--out", str(tmp_path / "out")])
    assert rc == 75
    err = capsys.readouterr().err
    assert f"in use by another process (pid {os.getpid()}" in err and "stop the station first" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_diagnostics_run_refused_by_the_daemons_lock_leaves_no_sign_in_and_no_key(tmp_path, capsys):
    """`edge diag --technician` signed in (an audit row `diag.signin` in the station's database) and made the record
    signing key before it met the running daemon's lock and was refused (exit 75)."""
    import io
    import sqlite3

    from edge.auth import add_user
    from edge.datadir import data_dir_lock
    from edge.diag.signing import KEY_FILE
    from edge.store import Store

    root = Path(__file__).resolve().parents[2]
    config = tmp_path / "xray.toml"
    config.write_text((root / "examples" / "xray.toml").read_text()
                      .replace('data_dir = "var/xray-01"', f'data_dir = "{tmp_path / "data"}"'))
    with Store(tmp_path / "data", station="xray-01") as store:
        add_user(store, "5A5B5C5D5E", "Technician Lee", "technician", "5678")
    with data_dir_lock("xray-01", tmp_path / "data"):  # what the running daemon holds
        rc = main_diag(["--config", str(config), "--technician", "5A5B5C5D5E", "--pin-stdin", "--phases", "clock",
                        "--out", str(tmp_path / "out")], stdin=io.StringIO("5678\n"))
    assert rc == 75, capsys.readouterr().err
    assert "stop the station first" in capsys.readouterr().err
    conn = sqlite3.connect(tmp_path / "data" / "station.db")
    actions = [action for (action,) in conn.execute("SELECT action FROM audit_log")]
    conn.close()
    assert actions == ["user.add"]  # no diag.signin
    assert not (tmp_path / "data" / KEY_FILE).exists()
