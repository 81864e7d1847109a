"""The customs declaration system feeds the hub over a real Mosquitto and over HTTP with a feeder's
service token: good declarations are stored, bad ones answered one sentence each with their row."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from central_sync.commands import CommandLink
from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto
from central_sync.hub.api import create_app
from central_sync.hub.api_auth import ServiceTokens, new_token
from central_sync.riskhub import declarations, declgen
from central_sync.riskhub.feed import RESULT_TOPIC, TOPIC, DeclarationFeed, feed_router
from riskhub_fixtures import open_risk_store


def void(_: object) -> None:
    """Drop a value (the link's handler returns nothing)."""


async def test_declarations_over_mqtt_are_stored_and_answered(tmp_path: Path, broker: Mosquitto) -> None:
    store = open_risk_store(str(tmp_path / "hub.db"))
    cfg = BrokerConfig(port=broker.port)
    answers: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    items = [d.model_dump(mode="json") for d in declgen.generate(4, seed=9)] + [{"ref": "BAD", "trader": "T", "origin": "XX1"}]
    async with DeclarationFeed(cfg, store, "hub-t-customs") as feed, \
            CommandLink(cfg, "customs-system", [RESULT_TOPIC], lambda t, p: void(loop.call_soon_threadsafe(answers.put_nowait, p))) as system:
        await feed.link.ready()
        await system.ready()
        system.publish(TOPIC, json.dumps(items).encode())
        answer = json.loads(await asyncio.wait_for(answers.get(), 15))
        system.publish(TOPIC, b"\xff not json")
        garbage = json.loads(await asyncio.wait_for(answers.get(), 15))
        system.publish(TOPIC, b"[" * 100_000)  # raised RecursionError: the worker died, later deliveries went unanswered
        deep = json.loads(await asyncio.wait_for(answers.get(), 15))
        system.publish(TOPIC, json.dumps(items[:1]).encode())
        after = json.loads(await asyncio.wait_for(answers.get(), 15))
    assert (answer["accepted"], answer["refused"]) == (4, 1)
    assert deep["accepted"] == 0 and "nested too deep" in deep["errors"][0] and after["accepted"] == 1
    assert answer["errors"][0].startswith("row 5: origin")
    assert garbage["accepted"] == 0 and garbage["errors"][0].startswith("the upload is not JSON")
    assert sorted(d["ref"] for d in declarations.recent(store, 0)) == sorted(i["ref"] for i in items[:4])
    assert feed.counters["accepted"] == 5 and feed.counters["refused"] == 3


async def test_declarations_over_http_need_a_feeders_token(tmp_path: Path) -> None:
    store = open_risk_store(str(tmp_path / "hub.db"))
    feeder, feeder_line = new_token("customs-feed")
    reader, reader_line = new_token("dashboard")
    tokens = ServiceTokens({line.split()[1]: line.split()[0] for line in (feeder_line, reader_line)})
    app = create_app(store, service_tokens=tokens)
    app.include_router(feed_router(store))
    csv_text = declgen.to_csv(declgen.generate(3, seed=2))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
        ok = await client.post("/api/declarations?format=csv", content=csv_text, headers={"Authorization": f"Bearer {feeder}"})
        read_only = await client.post("/api/declarations", content="[]", headers={"Authorization": f"Bearer {reader}"})
        nobody = await client.post("/api/declarations", content="[]")
    assert ok.json() == {"accepted": 3, "refused": 0, "errors": []}
    assert read_only.status_code == 403 and "token:dashboard" in read_only.json()["detail"]
    assert nobody.status_code == 401
    assert {d["source"] for d in declarations.recent(store, 0)} == {"token:customs-feed"}
