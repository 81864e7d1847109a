"""The hub warns before the broker's CRL lapses (then Mosquitto refuses every client) and shows
certificates expiring within 30 days: on the clock the test injects, in /metrics and in the control room."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.metrics import install_metrics
from central_sync.hub.store import open_store
from central_sync.pki import CRL_WARN, Authority, CrlWatch, crl_status, report

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.fixture
def ca(tmp_path):
    authority = Authority(tmp_path / "ca")
    authority.init(now=T0)
    return authority


def test_the_crl_alarm_fires_a_week_before_the_broker_would_refuse_everyone(ca):
    ca.write_crl(now=T0, days=30)
    lapses = T0 + timedelta(days=30)
    quiet = crl_status(ca.crl_path, now=lapses - CRL_WARN - timedelta(minutes=1))
    alarm = crl_status(ca.crl_path, now=lapses - CRL_WARN + timedelta(minutes=1))
    assert not quiet.warn and quiet.next_update == lapses
    assert alarm.warn and alarm.seconds_left > 6 * 86400  # days before Mosquitto's refusals begin
    ca.write_crl(now=lapses - timedelta(days=6))  # `edge-hub pki crl`
    assert not crl_status(ca.crl_path, now=lapses - timedelta(days=6)).warn


def test_a_missing_crl_alarms_at_once(ca):
    ca.crl_path.unlink()
    status = crl_status(ca.crl_path, now=T0)
    assert status.warn and status.error and str(ca.crl_path) in status.error


def test_expiring_lists_live_certificates_within_30_days_not_renewed_or_revoked(ca):
    ca.issue_with_key("gate-1", days=397, now=T0)
    ca.issue_with_key("gate-2", days=40, now=T0)
    ca.issue_with_key("gate-3", days=40, now=T0)
    ca.issue_with_key("gate-3", days=397, now=T0 + timedelta(days=20))  # renewed
    ca.issue_with_key("gate-4", days=40, now=T0)
    ca.revoke("gate-4", now=T0)
    at = T0 + timedelta(days=15)
    assert [r.subject for r in ca.expiring(at)] == ["gate-2"]
    assert [r.subject for r in ca.expiring(T0 + timedelta(days=5))] == []
    assert [(r.subject, r.days_left(T0 + timedelta(days=41)) < 0) for r in ca.expiring(T0 + timedelta(days=41))] == \
        [("gate-2", True)]


async def test_metrics_carry_the_crl_time_left_and_the_expiring_count(ca):
    ca.issue_with_key("gate-2", days=20, now=T0)
    at = T0 + timedelta(days=25)
    app = install_metrics(FastAPI(), lambda: {"connected": True, "sessions": 1, "queued": {}, "counters": {},
                                              "gap_seqs_asked": 0, "stalled": []}, lambda: report(ca, now=at))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
        text = (await http.get("/metrics")).text
    assert "hub_crl_warning 1.0" in text and f"hub_crl_seconds_left {5 * 86400:.1f}" in text
    assert "hub_certificates_expiring 1.0" in text


async def test_the_control_room_shows_the_warnings(tmp_path, ca):
    now = datetime.now(UTC)
    ca.write_crl(now=now - timedelta(days=25), days=30)
    ca.issue_with_key("gate-2", days=10)
    ca.issue_with_key("gate-1")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(pki_dir=ca.root)) as room:
        auth.add_user(store, "op1", "operator", "correct horse")
        app = room.install(create_app(store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
            assert (await http.get("/cr/api/pki")).status_code == 401
            assert (await http.post("/cr/api/login", json={"username": "op1", "password": "correct horse"})).is_success
            body = (await http.get("/cr/api/pki")).json()
    assert body["enabled"] and body["crl"]["warn"] and 4 * 86400 < body["crl"]["seconds_left"] < 6 * 86400
    assert [(c["subject"], c["kind"]) for c in body["expiring"]] == [("gate-2", "station")]


def test_the_hub_logs_the_alarm_once_when_the_crl_enters_its_warning_period(ca):
    ca.write_crl(now=T0, days=30)
    lapses = T0 + timedelta(days=30)
    watch = CrlWatch(ca.crl_path)
    with capture_logs() as logs:
        for hours_before in (8 * 24, 7 * 24 - 1, 6 * 24, 24):
            watch.check(now=lapses - timedelta(hours=hours_before))
        ca.write_crl(now=lapses - timedelta(hours=23))
        watch.check(now=lapses - timedelta(hours=23))
    assert [(e["event"], e.get("hours_left")) for e in logs] == [("pki.crl_lapsing", 167.0), ("pki.crl_renewed", None)]
    assert logs[0]["log_level"] == "warning" and logs[0]["next_update"] == lapses.isoformat()
