"""Round trip to the hub: measured through its broker, FAIL with guidance when unreachable, SKIPPED without sync."""

from __future__ import annotations

import socket

from hil_tests.conftest import REPO, diag, phase


def test_unreachable_hub_fails_with_its_diagnosis(twin, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("EDGE_SYNC__PORT", str(closed))
    rc, rec = diag(tmp_path, "--config", "examples/xray.toml", "--phases", "hub")
    hub = phase(rec, "hub")
    assert rc == 1 and hub["outcome"] == "FAIL"
    assert [m["message"] for m in hub["measurements"]] == ["hub.unreachable"]
    assert f"127.0.0.1:{closed}" in hub["diagnoses"][0]


def test_station_without_sync_skips_the_hub_with_the_reason(twin, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_SYNC__PORT")  # an EDGE_SYNC__* variable alone would configure a hub
    text = (REPO / "examples" / "xray.toml").read_text()
    cfg = tmp_path / "no-sync.toml"
    cfg.write_text(text[: text.index("[sync]")])
    rc, rec = diag(tmp_path / "out", "--config", str(cfg), "--phases", "hub,clock")
    assert rc == 0
    assert phase(rec, "hub")["outcome"] == "SKIPPED" and "No hub (sync)" in phase(rec, "hub")["reason"]


def test_a_broker_that_refuses_the_login_is_named_as_refusing_not_as_unreachable(twin, tmp_path, monkeypatch):
    from central_sync.devtools import Mosquitto

    with Mosquitto(tmp_path / "broker", anonymous=False) as strict:  # answers CONNACK "Not authorized"
        monkeypatch.setenv("EDGE_SYNC__PORT", str(strict.port))
        rc, rec = diag(tmp_path / "out", "--config", "examples/xray.toml", "--phases", "hub")
    hub = phase(rec, "hub")
    assert rc == 1 and hub["outcome"] == "FAIL"
    assert [m["message"] for m in hub["measurements"]] == ["hub.refused"]
    assert f"127.0.0.1:{strict.port} refused the login of an anonymous client: Not authorized" in hub["diagnoses"][0]
    assert "broker account" in hub["diagnoses"][0] and "did not accept a connection within" not in hub["diagnoses"][0]
