"""Records: chained across runs, trends in the report, baseline comparison, tampering detected."""

from __future__ import annotations

import json

from edge.diag import verify_chain
from edge.diag.cli import main_diag
from hil_tests.conftest import diag, phase


def test_second_run_chains_trends_and_compares_with_the_baseline(twin, tmp_path):
    args = ("--config", "examples/conveyor.toml", "--phases", "imaging,clock")
    _, first = diag(tmp_path, *args)
    _, second = diag(tmp_path, *args)
    assert second["seq"] == 2 and second["prev_hash"] == first["hash"]
    assert (tmp_path / "imaging-baseline.json").is_file()
    ratios = [m for m in phase(second, "imaging")["measurements"] if m["name"] == "imaging.baseline_ratio"]
    assert len(ratios) == 4 and all(m["outcome"] == "PASS" for m in ratios)
    assert "<polyline" in (tmp_path / "report.html").read_text()
    png = [a for a in phase(second, "imaging")["attachments"] if a["mime"] == "image/png"]
    assert png and (tmp_path / png[0]["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert verify_chain(tmp_path).records == 2


def test_a_changed_record_breaks_the_chain(twin, tmp_path):
    for _ in range(2):
        diag(tmp_path, "--config", "examples/xray.toml", "--phases", "clock")
    first = sorted((tmp_path / "records").glob("*.json"))[0]
    rec = json.loads(first.read_text())
    rec["phases"][0]["measurements"][0]["value"] = 1.0
    first.write_text(json.dumps(rec))
    report = verify_chain(tmp_path)
    assert not report.ok and report.broken_at == first.name and "changed" in report.reason
    assert main_diag(["--verify", str(tmp_path)]) == 65


def test_a_changed_attachment_breaks_the_chain(twin, tmp_path):
    diag(tmp_path, "--config", "examples/conveyor.toml", "--phases", "links")
    trace = next((tmp_path / "runs").glob("*/links-modbus-trace.txt"))
    trace.write_text("nothing to see")
    report = verify_chain(tmp_path)
    assert not report.ok and "modbus-trace" in report.reason


def _rechain(folder, change) -> None:
    """Rewrite records as a forger would: change one, then recompute every hash and link after it."""
    from edge.diag.records import record_hash

    prev = None
    for path in sorted((folder / "records").glob("*.json")):
        rec = json.loads(path.read_text())
        if prev is None:
            change(rec)
        else:
            rec["prev_hash"] = prev
        rec["hash"] = record_hash(rec)
        prev = rec["hash"]
        path.write_text(json.dumps(rec))


def test_a_fail_rewritten_to_pass_with_recomputed_hashes_fails_the_signature(twin, tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on: the hub phase fails
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("EDGE_SYNC__PORT", str(s.getsockname()[1]))
    rc, failed = diag(tmp_path, "--config", "examples/xray.toml", "--phases", "hub")
    assert rc == 1 and failed["outcome"] == "FAIL"
    diag(tmp_path, "--config", "examples/xray.toml", "--phases", "clock")
    assert verify_chain(tmp_path).ok

    def to_pass(rec: dict) -> None:
        rec["outcome"] = rec["phases"][0]["outcome"] = "PASS"
        for m in rec["phases"][0]["measurements"]:
            m["outcome"], m["value"], m["diagnosis"] = "PASS", True, ""

    _rechain(tmp_path, to_pass)
    report = verify_chain(tmp_path)
    assert not report.ok and report.broken_at.startswith("000001") and "signature" in report.reason
    assert main_diag(["--verify", str(tmp_path), "--config", "examples/xray.toml"]) == 65
