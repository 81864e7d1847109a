"""Round trip to the hub: a QoS 1 message through the broker the hub consumes from, back to us.

The hub has no echo service; the round trip through its broker is the part of the path to the
control room that the station can measure alone (the hub's own commit is proven by its acks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from central_sync.config import SyncConfig
from central_sync.mqtt import login, new_client
from edge.diag.context import DiagError, PhaseContext
from edge.diag.specs import SPECS

PINGS = 5
CONNECT_TIMEOUT_S = 5.0


async def run(ctx: PhaseContext) -> None:
    cfg = ctx.station.cfg.sync
    assert cfg is not None
    where = f"{cfg.host}:{cfg.port}"
    try:
        times = await asyncio.to_thread(_round_trips, cfg, ctx.station.name)
    except HubUnreachable as exc:  # a refused login is no network fault: its guidance is the account's
        spec = dataclasses.replace(SPECS["hub.reachable"], message="hub.refused") if exc.refused else None
        ctx.measure("hub.reachable", False, target=where, detail=str(exc), spec=spec)
        return
    ctx.measure("hub.reachable", True, target=where)
    ctx.measure("hub.round_trip_ms", statistics.median(times), target=where)
    ctx.note("round trip through the hub's MQTT broker (QoS 1 publish to our own diag topic)")


class HubUnreachable(DiagError):
    """The broker did not accept the connection (`refused`: it answered with a refusal) or did not deliver in time."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def _round_trips(cfg: SyncConfig, station: str) -> list[float]:
    """Blocking: connect, subscribe to a private diag topic, time PINGS publish->receive loops."""
    topic = f"cpe/v1/{station}/diag/{uuid.uuid4().hex[:12]}"
    client = new_client(cfg, f"{station}-diag-{uuid.uuid4().hex[:6]}", 8, "diag")
    answered, got = threading.Event(), threading.Event()
    refusals: list[str] = []

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object = None) -> None:
        if rc.is_failure:  # the broker answered: say what it said, not that it did not answer
            refusals.append(str(rc))
        answered.set()

    client.on_connect = on_connect
    client.on_message = lambda c, u, msg: got.set()
    try:
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        if not answered.wait(CONNECT_TIMEOUT_S):
            raise HubUnreachable(f"broker at {cfg.host}:{cfg.port} did not accept a connection "
                                 f"within {CONNECT_TIMEOUT_S:g} s")
        if refusals:
            who = f"account {login(cfg.username, 'diag')}" if cfg.username else "an anonymous client"
            raise HubUnreachable(f"broker at {cfg.host}:{cfg.port} refused the login of {who}: {refusals[0]}",
                                 refused=True)
        client.subscribe(topic, qos=1)
        time.sleep(0.05)
        return [_one(client, topic, got) for _ in range(PINGS)]
    finally:
        client.disconnect()
        client.loop_stop()


def _one(client: mqtt.Client, topic: str, got: threading.Event) -> float:
    got.clear()
    t0 = time.perf_counter()
    client.publish(topic, b"ping", qos=1)
    if not got.wait(CONNECT_TIMEOUT_S):
        raise HubUnreachable(f"a message to {topic} did not come back within {CONNECT_TIMEOUT_S:g} s")
    return (time.perf_counter() - t0) * 1000
