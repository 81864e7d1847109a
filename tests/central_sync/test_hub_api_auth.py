"""The hub's /api needs a service token (machines) or a control-room session (people): issue 22 item 3."""

from __future__ import annotations

import httpx
import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import make_record
from central_sync.hub import api_auth
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store
from central_sync import protocol as p
from central_sync.schema import Verdict
from polling import until

PASSWORD = "correct horse"


@pytest.fixture
async def setup(tmp_path):
    store = open_store(str(tmp_path / "hub.sqlite3"))
    token, line = api_auth.new_token("archive")
    (tmp_path / "tokens").write_text(f"# service tokens\n{line}\n")
    tokens = api_auth.ServiceTokens.load(tmp_path / "tokens")
    async with ControlRoom(store, None, ControlRoomConfig()) as room:
        auth.add_user(store, "op1", "operator", PASSWORD)
        rec = make_record("gate-1", 1, Verdict.SUSPECT)
        Ingestor(store, "hub-t", lambda *a: None).handle(
            [(p.topic("gate-1", "alert"), p.encode_envelope("gate-1", "alert", 0, 1, rec.id, rec.to_json().encode(), 0.0))])
        app = room.install(create_app(store, lambda: {"hub": "hub-t"}, service_tokens=tokens))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
            yield http, token, rec, tmp_path


def routes(rec) -> list[str]:
    return ["/api/hub", "/api/stations", "/api/inspections", f"/api/inspections/{rec.id}", "/api/alerts",
            f"/api/images/{'0' * 64}"]


async def test_every_api_route_refuses_without_credentials(setup):
    http, _, rec, _ = setup
    for path in routes(rec):
        r = await http.get(path)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["www-authenticate"].startswith("Bearer"), path
    assert (await http.get("/healthz")).status_code == 200  # liveness stays open and says nothing else


async def test_a_service_token_reads_every_route(setup):
    http, token, rec, _ = setup
    bearer = {"Authorization": f"Bearer {token}"}
    for path in routes(rec):
        expect = 404 if path.startswith("/api/images/") else 200  # authorised, and the image is unknown
        assert (await http.get(path, headers=bearer)).status_code == expect, path
    alerts = (await http.get("/api/alerts", headers=bearer)).json()
    assert [a["record"]["id"] for a in alerts] == [rec.id]


async def test_a_wrong_or_malformed_token_is_refused(setup):
    http, token, rec, _ = setup
    for header in (f"Bearer {token}x", "Bearer ", f"Basic {token}", token):
        r = await http.get("/api/alerts", headers={"Authorization": header})
        assert r.status_code == 401, header


async def test_a_signed_in_control_room_user_reads_the_api(setup):
    http, _, rec, _ = setup
    assert (await http.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})).status_code == 200
    for path in routes(rec):
        expect = 404 if path.startswith("/api/images/") else 200
        assert (await http.get(path)).status_code == expect, path
    await http.post("/cr/api/logout")
    assert (await http.get("/api/alerts")).status_code == 401


async def test_tokens_are_stored_hashed_and_bad_lines_are_named(setup):
    _, token, _, tmp = setup
    text = (tmp / "tokens").read_text()
    assert token not in text and api_auth.token_hash(token) in text
    (tmp / "bad").write_text(f"archive {api_auth.token_hash(token)}\nplain-token-here\n")
    with pytest.raises(api_auth.TokenFileError, match="line 2 of the API token file .*bad"):
        api_auth.ServiceTokens.load(tmp / "bad")


async def test_without_tokens_or_control_room_nobody_reads(tmp_path):
    store = open_store(str(tmp_path / "hub.sqlite3"))
    store.migrate()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(store)), base_url="https://hub") as http:
        assert (await http.get("/api/stations")).status_code == 401
        assert (await http.get("/api/stations", headers={"Authorization": "Bearer anything"})).status_code == 401


async def test_edge_hub_run_serves_api_only_to_its_token_holders(tmp_path, broker, hubs, pg_url):
    """A real `edge-hub run` on PostgreSQL with --api-tokens, over real HTTP."""
    token, line = api_auth.new_token("archive")
    (tmp_path / "api.tokens").write_text(line + "\n")
    hub = hubs(pg_url, broker.port, "hub-api", http=True, extra=("--api-tokens", str(tmp_path / "api.tokens")))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http_port}") as http:
        async def healthy() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False
        await until(healthy, "the hub's HTTP server answered", timeout=30, interval=0.1)
        for path in ("/api/stations", "/api/inspections", "/api/alerts", "/api/hub"):
            assert (await http.get(path)).status_code == 401, path
            assert (await http.get(path, headers={"Authorization": f"Bearer {token}"})).status_code == 200, path
