"""The control room's retention API: who may do what, a reason for every change, and each station's disk and
retention figures as its status reports them."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import protocol as p
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store
from tests.central_sync.test_hub_retention import _releases

PASSWORD = "correct horse battery"


@pytest.fixture
async def client(tmp_path):
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        for name, role in (("op1", "operator"), ("sup1", "supervisor"), ("adm1", "admin")):
            auth.add_user(store, name, role, PASSWORD)
        app = room.install(create_app(store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
            http.store = store  # type: ignore[attr-defined]
            http.room = room  # type: ignore[attr-defined]
            yield http


async def as_user(http: httpx.AsyncClient, user: str) -> None:
    assert (await http.post("/cr/api/login", json={"username": user, "password": PASSWORD})).status_code == 200


POLICY = {"policy": {"clear_days": 30, "suspect_days": 365, "manual_days": None}, "reason": "court guidance"}


async def test_operators_see_no_holds_supervisors_hold_and_only_admins_set_the_policy(client):
    await as_user(client, "op1")
    assert (await client.get("/cr/api/holds")).status_code == 403
    assert (await client.post("/cr/api/holds", json={"kind": "plate", "value": "AB1234", "reason": "x"})).status_code == 403
    await as_user(client, "sup1")
    assert (await client.put("/cr/api/retention/policy", json=POLICY)).status_code == 403
    r = await client.post("/cr/api/holds", json={"kind": "plate", "value": "AB1234", "reason": ""})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = await client.post("/cr/api/holds", json={"kind": "plate", "value": "-", "reason": "court order 5"})
    assert r.status_code == 422 and "names no vehicle" in r.json()["detail"]
    r = await client.post("/cr/api/holds", json={"kind": "plate", "value": "AB1234", "reason": "court order 5"})
    assert r.status_code == 200 and r.json()["published_version"] is None  # no signing key: not delivered
    hold = r.json()["id"]
    assert [h["value"] for h in (await client.get("/cr/api/holds")).json()] == ["AB1234"]
    assert (await client.post(f"/cr/api/holds/{hold}/release", json={"reason": ""})).status_code == 422
    assert (await client.post(f"/cr/api/holds/{hold}/release", json={"reason": "lifted"})).status_code == 200
    assert (await client.post(f"/cr/api/holds/{hold}/release", json={"reason": "again"})).status_code == 409
    assert (await client.get("/cr/api/holds")).json() == []
    assert len((await client.get("/cr/api/holds?all=true")).json()) == 1
    await as_user(client, "adm1")
    r = await client.put("/cr/api/retention/policy", json=POLICY)
    assert r.status_code == 200 and r.json()["policy_version"] == 1
    assert (await client.get("/cr/api/retention")).json()["hub"]["policy"] == POLICY["policy"]


async def test_each_stations_disk_figures_come_from_its_status(client):
    storage = p.StorageFigures(data_bytes=5 * 2**30, free_bytes=80 * 2**30, oldest="2026-01-01T00:00:00+00:00",
                               records={"clear": 900, "suspect": 12}, next_prune=40, kept={"held": 2}, holds=1)
    status = p.StatusMsg(station="gate-1", state="online", session=1, at=time.time(), retention_version=3,
                         storage=storage)
    Ingestor(client.store, "hub-t", lambda *a: None).handle([(p.topic("gate-1", "status"),
                                                              status.model_dump_json().encode())])
    await as_user(client, "sup1")
    got = (await client.get("/cr/api/retention")).json()
    assert got["stations"][0]["station"] == "gate-1" and got["stations"][0]["retention_version"] == 3
    assert got["stations"][0]["storage"] == storage.model_dump()


class Link:
    """The command link's publish, recorded (no broker needed for what the control room hands it)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.sent.append((topic, payload, retain))

    async def __aexit__(self, *exc: object) -> None:
        """Closed with the control room."""


async def test_a_state_over_its_limits_is_not_published_and_the_retention_view_says_so(client):
    """Before, a hold placed once 100,001 seizures were released answered 500 (the state failed validation) and the
    view said nothing. Now the hold is stored, the state refused is counted and the view says which version the
    stations keep."""
    room = client.room
    room.key, room.link = Ed25519PrivateKey.generate(), Link()
    await as_user(client, "sup1")
    r = await client.post("/cr/api/holds", json={"kind": "plate", "value": "AB1234", "reason": "court order 5"})
    assert r.json()["published_version"] == 1 and (await client.get("/cr/api/retention")).json()["state_refused"] is None
    _releases(client.store, 100_001, 40)
    r = await client.post("/cr/api/holds", json={"kind": "plate", "value": "CD5678", "reason": "court order 6"})
    assert r.status_code == 200 and r.json()["published_version"] is None
    got = (await client.get("/cr/api/retention")).json()
    assert got["published_version"] == 1 and got["state_refused"] == {
        "detail": "retention state 2 lists 2 holds and 100001 released seizures, over the limit of 100000 each",
        "kept_version": 1}
    assert room.counters["retention_state_refused"] == 1 and len(room.link.sent) == 1
