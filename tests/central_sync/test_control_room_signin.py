"""Control-room sign-in against brute force, and its headers and cookie (issue 22 item 9 and Low)."""

from __future__ import annotations

import httpx
import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, auth
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store

PASSWORD = "correct horse"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def room(tmp_path):
    store = open_store(str(tmp_path / "hub.sqlite3"))
    cfg = ControlRoomConfig(signin_pair_max=3, signin_client_max=6, signin_window_s=60, signin_lockout_s=120)
    async with ControlRoom(store, None, cfg) as room:
        for name in ("op1", "op2"):
            auth.add_user(store, name, "operator", PASSWORD)
        room.guard.clock = room.clock = Clock()
        room.app = room.install(create_app(store))
        yield room


def client_at(room, host: str) -> httpx.AsyncClient:
    """A client at address `host`, over HTTPS as a browser behind TLS would be (the cookie is Secure)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=room.app, client=(host, 40000)), base_url="https://hub")


async def login(http, user: str, password: str) -> int:
    return (await http.post("/cr/api/login", json={"username": user, "password": password})).status_code


def audited(room, action: str) -> int:
    return sum(1 for e in audit.entries(room.store, limit=10_000) if e["action"] == action)


async def test_unknown_and_inactive_accounts_cost_the_same_hash_check(room, monkeypatch):
    checks = []
    real = auth.check_secret
    monkeypatch.setattr(auth, "check_secret", lambda pw, stored: checks.append(stored) or real(pw, stored))
    for user in ("op1", "nobody"):
        with pytest.raises(auth.AccountError):
            auth.authenticate(room.store, user, "wrong password")
    from central_sync.control_room.db import execute
    execute(room.store, "UPDATE cr_users SET active=0 WHERE username=?", ("op2",))
    with pytest.raises(auth.AccountError):
        auth.authenticate(room.store, "op2", PASSWORD)
    assert len(checks) == 3 and all(s.startswith("scrypt$") for s in checks)


async def test_failures_lock_the_account_for_that_client_only_and_the_lock_expires(room):
    async with client_at(room, "10.0.0.66") as stranger, client_at(room, "10.0.0.7") as desk:
        assert [await login(stranger, "op1", "guess") for _ in range(3)] == [401, 401, 401]
        r = await stranger.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) == 120  # right password, still locked
        assert await login(stranger, "op2", PASSWORD) == 200                 # other accounts from there work
        assert await login(desk, "op1", PASSWORD) == 200                     # the officer is not locked out
        room.clock.now += 121
        assert await login(stranger, "op1", PASSWORD) == 200                 # the lock expired
    assert room.guard.counters["locks"] == 1


async def test_a_client_guessing_across_accounts_is_rate_limited_and_audited_in_aggregate(room):
    async with client_at(room, "10.0.0.66") as stranger, client_at(room, "10.0.0.7") as desk:
        codes = [await login(stranger, f"user{n}", "guess") for n in range(50)]
        assert codes[:6] == [401] * 6 and set(codes[6:]) == {429}
        assert await login(stranger, "op1", PASSWORD) == 429
        assert await login(desk, "op1", PASSWORD) == 200
        room.clock.now += 61  # the window slides past the failures
        assert await login(stranger, "op1", PASSWORD) == 200
    assert audited(room, "sign_in_refused") == 6 and audited(room, "sign_in_throttled") == 1
    assert room.guard.counters["throttled"] == 45


async def test_pages_forbid_framing_and_foreign_content_and_the_cookie_is_secure(room):
    async with client_at(room, "10.0.0.7") as desk:
        page = await desk.get("/cr/")
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        r = await desk.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert (await desk.get("/api/stations")).headers["x-frame-options"] == "DENY"


async def test_plain_http_labs_turn_the_secure_flag_off(tmp_path):
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(secure_cookie=False)) as room:
        auth.add_user(store, "op1", "operator", PASSWORD)
        room.app = room.install(create_app(store))
        async with client_at(room, "127.0.0.1") as http:
            r = await http.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})
            assert "secure" not in r.headers["set-cookie"].lower()


async def test_guessing_one_account_from_many_clients_leaves_its_own_desk_working(room):
    room.guard.account_max = 10
    async with client_at(room, "10.0.0.7") as desk:
        assert await login(desk, "op1", PASSWORD) == 200  # the officer's PC has signed in before
        for n in range(10):  # one wrong guess from each of many addresses: under every per-client limit
            async with client_at(room, f"10.1.0.{n}") as bot:
                assert await login(bot, "op1", "guess") == 401
        async with client_at(room, "10.2.0.1") as bot:
            assert await login(bot, "op1", PASSWORD) == 429  # even right: the account is under attack
            assert await login(bot, "op2", PASSWORD) == 200  # other accounts are not
        assert await login(desk, "op1", PASSWORD) == 200
        room.clock.now += 61
        async with client_at(room, "10.2.0.1") as later:
            assert await login(later, "op1", PASSWORD) == 200
