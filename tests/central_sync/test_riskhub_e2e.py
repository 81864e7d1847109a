"""From the control room to a station over a real Mosquitto: a supervisor's watchlist, approved by an
administrator and published through the HTTP API, reaches the station signed, is applied and
acknowledged; the next version travels as a delta; the Bundles page shows the station current, and
then behind when a version is published while it cannot receive it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import Mosquitto, open_station_db
from central_sync.hub.api import create_app
from central_sync.hub.store import HubStore, open_store
from central_sync.publisher import Publisher
from central_sync.risk_delivery import RiskAck, RiskDelivery
from central_sync.riskhub import authoring, publish
from edge.risk import RiskConfig, RiskReceiver, RiskRuntime
from polling import until
from riskhub_fixtures import risk_key
from risk.engine import Facts

PASSWORD = "correct horse"


def facts(plate: str) -> Facts:
    return Facts(item_id="item-1", at=time.time(), identities=(("plate", plate),), station_id="gate-1",
                 station_kind="gantry", detector_verdict="clear")


def approved(store: HubStore, op: str, payload: dict) -> None:
    authoring.approve(store, authoring.propose(store, "sam", op, payload).id, "ada")


async def test_published_watchlist_reaches_the_station_signed_and_acknowledged(tmp_path: Path, broker: Mosquitto) -> None:
    key = risk_key(tmp_path)
    store = open_store(str(tmp_path / "hub.db"))
    cfg = BrokerConfig(port=broker.port)

    def keep(station: str, ack: RiskAck, at: float) -> None:
        store.record_bundle_ack(station, ack.version, ack.sha256, ack.outcome, ack.code, at)

    async with AsyncExitStack() as stack:
        delivery = await stack.enter_async_context(RiskDelivery(cfg, "hub-t", keep, resend_s=3))
        room = await stack.enter_async_context(ControlRoom(store, None, ControlRoomConfig(risk_key=tmp_path / "risk.key"),
                                                           risk_deliver=delivery.offer))
        await delivery.link.ready()
        auth.add_user(store, "ada", "admin", PASSWORD)
        client = await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app=room.install(create_app(store))), base_url="https://hub"))
        await client.post("/cr/api/login", json={"username": "ada", "password": PASSWORD})

        runtime = RiskRuntime.start("gate-1", RiskConfig(keys={key.key_id: tmp_path / "risk.pub"}, seed="s"), tmp_path / "data")
        open_station_db(tmp_path / "station.db").close()
        station = AsyncExitStack()
        rx = await station.enter_async_context(RiskReceiver(cfg, "gate-1", runtime))
        await station.enter_async_context(Publisher(SyncConfig(port=broker.port, status_period_s=0.2), "gate-1",
                                                    tmp_path / "station.db", tmp_path / "scans", extra_status=runtime.status))
        await rx.link.ready()

        approved(store, "watchlist.put", {"id": "stolen", "kind": "plate", "name": "Stolen", "lane": "red", "owner": "sam"})
        approved(store, "entry.put", {"list_id": "stolen", "value": "AB 123 CD", "reason": "reported stolen", "owner": "sam"})
        assert (await client.post("/cr/api/risk/publish")).json()["version"] == 1
        await until(lambda: runtime.version, "the station runs version 1", check=lambda v: v == 1, timeout=30)
        hit = runtime.evaluate(facts("ab-123-cd"))
        assert hit.lane == "red" and [f.kind for f in hit.fired if f.kind == "watchlist"] == ["watchlist"]

        # the hub sends a delta only to a station it knows runs the delta's base: wait for the ack to reach it
        await until(lambda: store.applied_bundle_versions(), "the hub has the ack of version 1", in_thread=True,
                    check=lambda v: v.get("gate-1") == 1, timeout=30)
        approved(store, "entry.delete", {"list_id": "stolen", "value": "AB123CD"})
        approved(store, "entry.put", {"list_id": "stolen", "value": "ZX 999", "reason": "reported stolen", "owner": "sam"})
        await client.post("/cr/api/risk/publish")
        await until(lambda: runtime.version, "the station runs version 2", check=lambda v: v == 2, timeout=30)
        assert "watchlist" not in [f.kind for f in runtime.evaluate(facts("AB123CD")).fired]
        assert runtime.evaluate(facts("ZX999")).lane == "red"

        async def current() -> dict:
            return {s["station"]: s for s in (await client.get("/cr/api/risk/bundles")).json()["stations"]}["gate-1"]
        await until(lambda: store.applied_bundle_versions(), "both acks stored", in_thread=True,
                    check=lambda v: v.get("gate-1") == 2, timeout=30)
        for _ in range(300):  # the station's retained status catches up with the ack
            if (now := await current())["version"] == 2:
                break
            await asyncio.sleep(0.1)
        assert (now["version"], now["stale"]) == (2, False)
        delta = publish.bundle_bytes(store, 2, "delta")
        assert delta is not None and store.query("SELECT sha256 FROM bundle_acks WHERE version=2") == [
            (hashlib.sha256(delta).hexdigest(),)]  # version 2 travelled as the delta on version 1

        await station.aclose()  # the station goes away; version 3 cannot reach it
        await client.post("/cr/api/risk/publish")
        behind = await current()
        assert (behind["version"], behind["newest"], behind["stale"], behind["stale_reason"]) == (2, 3, True, "behind")
