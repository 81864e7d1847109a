"""The live stream: bus events become SSE frames; slow screens are told what they lost; a reconnecting
screen gets what it missed; streams end when the session or the app does."""

import asyncio
import json
import time

import httpx
import numpy as np

from central_sync.schema import Verdict
from edge.events import Event, EventBus
from edge.web import sse
from edge.web.demo import DEMO_USERS, StationHarness, record_for, synthetic_scan


async def _mapper(event):
    if event.topic != "inspection":
        return None
    return "inspection", {"id": event.data["id"]}, None


def _parse(text):
    fields = dict(line.split(": ", 1) for line in text.strip().split("\n") if ": " in line and not line.startswith(":"))
    return fields.get("event"), json.loads(fields["data"]) if "data" in fields else None


async def test_events_become_frames_in_order_and_others_are_filtered():
    bus, stop = EventBus(maxsize=8), asyncio.Event()
    gen = sse.stream(bus, _mapper, stop)
    assert _parse(await anext(gen))[0] == "hello"
    bus.publish("health", {"x": 1})
    bus.publish("inspection", {"id": "a"})
    bus.publish("inspection", {"id": "b"})
    assert _parse(await anext(gen)) == ("inspection", {"id": "a"})
    assert _parse(await anext(gen)) == ("inspection", {"id": "b"})
    await gen.aclose()
    assert not bus._subs  # the subscription ends with the stream


async def test_a_slow_screen_is_told_how_many_items_it_lost():
    bus, stop = EventBus(maxsize=2), asyncio.Event()
    gen = sse.stream(bus, _mapper, stop)
    await anext(gen)
    for i in range(5):
        bus.publish("inspection", {"id": str(i)})
    assert _parse(await anext(gen)) == ("inspection", {"id": "3"})
    assert _parse(await anext(gen)) == ("dropped", {"count": 3})
    await gen.aclose()


async def test_stream_ends_when_the_session_does(monkeypatch):
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.05)
    monkeypatch.setattr(sse, "POLL_S", 0.02)
    bus, stop = EventBus(), asyncio.Event()

    async def signed_out():
        return False

    frames = [f async for f in sse.stream(bus, _mapper, stop, signed_out)]
    assert [_parse(f)[0] for f in frames] == ["hello", "signed_out"]


async def test_stream_ends_soon_after_the_app_stops(monkeypatch):
    monkeypatch.setattr(sse, "POLL_S", 0.02)
    bus, stop = EventBus(), asyncio.Event()
    gen = sse.stream(bus, _mapper, stop)
    await anext(gen)
    stop.set()
    async with asyncio.timeout(1):
        assert [f async for f in gen] == []


async def test_replay_comes_first():
    bus, stop = EventBus(), asyncio.Event()

    async def replay():
        return [Event("inspection", {"id": "old"})]

    gen = sse.stream(bus, _mapper, stop, replay=replay)
    await anext(gen)
    bus.publish("inspection", {"id": "new"})
    assert _parse(await anext(gen)) == ("inspection", {"id": "old"})
    assert _parse(await anext(gen)) == ("inspection", {"id": "new"})
    await gen.aclose()


def _frames(lines, n):
    """The next n event frames (id, event, data) from an iterator over a stream's lines."""
    out, block = [], {}
    for line in lines:
        if line == "":
            if "event" in block and block["event"] != "hello":
                out.append((int(block["id"]) if "id" in block else None, block["event"], json.loads(block["data"])))
            block = {}
            if len(out) == n:
                return out
        elif not line.startswith(":") and ": " in line:
            key, value = line.split(": ", 1)
            block[key] = value
    return out


def test_reconnecting_screen_gets_what_it_missed_once(tmp_path):
    rng = np.random.default_rng(1)
    with StationHarness(tmp_path / "data") as h:
        h.add_demo_users()
        recs = []
        for _ in range(4):
            scan, truth = synthetic_scan(rng, threat=True)
            recs.append(h.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth)))
        with httpx.Client(base_url=h.url, timeout=10) as client:
            assert client.post("/api/signin", json={"badge": DEMO_USERS[0][0], "pin": DEMO_USERS[0][3]}).is_success
            with client.stream("GET", "/api/stream", headers={"Last-Event-ID": str(recs[1].seq)}) as r:
                lines = r.iter_lines()
                replayed = _frames(lines, 2)
                assert [(f[0], f[2]["id"]) for f in replayed] == [(recs[2].seq, recs[2].id), (recs[3].seq, recs[3].id)]
                h.publish_record(recs[3])  # the live copy of an item already replayed is not sent twice
                scan, truth = synthetic_scan(rng, threat=False)
                fresh = h.commit(scan, record_for(scan, Verdict.CLEAR, "clear", truth))
                time.sleep(0.05)
                h.publish_record(fresh)
                assert [(f[0], f[2]["id"]) for f in _frames(lines, 1)] == [(fresh.seq, fresh.id)]


def test_a_screen_that_missed_more_than_the_replay_is_told_how_many_older_items_it_did_not_get(tmp_path):
    """A screen back after missing 103 items got the newest 100 and no word of the 3 before them: now one
    `not_replayed` event with their count comes first."""
    from edge.web.routes_cases import REPLAY_MAX

    rng = np.random.default_rng(2)
    scan, truth = synthetic_scan(rng, threat=False)
    with StationHarness(tmp_path / "data") as h:
        h.add_demo_users()
        recs = [h.commit(None, record_for(scan, Verdict.CLEAR, "clear", truth)) for _ in range(REPLAY_MAX + 4)]
        with httpx.Client(base_url=h.url, timeout=10) as client:
            assert client.post("/api/signin", json={"badge": DEMO_USERS[0][0], "pin": DEMO_USERS[0][3]}).is_success
            with client.stream("GET", "/api/stream", headers={"Last-Event-ID": str(recs[0].seq)}) as r:
                frames = _frames(r.iter_lines(), REPLAY_MAX + 1)
        assert frames[0] == (None, "not_replayed", {"count": 3})
        assert [f[2]["id"] for f in frames[1:]] == [r.id for r in recs[4:]]
        with httpx.Client(base_url=h.url, timeout=10) as client:  # missed no more than the replay sends: no note
            assert client.post("/api/signin", json={"badge": DEMO_USERS[0][0], "pin": DEMO_USERS[0][3]}).is_success
            with client.stream("GET", "/api/stream", headers={"Last-Event-ID": str(recs[3].seq)}) as r:
                frames = _frames(r.iter_lines(), REPLAY_MAX)
        assert [f[1] for f in frames] == ["inspection"] * REPLAY_MAX


def test_the_daemons_stop_event_ends_open_streams_so_the_server_can_stop(tmp_path):
    import threading

    with StationHarness(tmp_path / "data") as h:
        h.server.config.timeout_graceful_shutdown = None  # as the daemon serves it: waits for open requests
        h.add_demo_users()
        stop = asyncio.Event()
        h.app.state.web.stopping = stop  # what create_app does with ctx.stopping
        client = httpx.Client(base_url=h.url, timeout=10)
        client.post("/api/signin", json={"badge": DEMO_USERS[0][0], "pin": DEMO_USERS[0][3]})
        ended = threading.Event()

        def watch():
            with client.stream("GET", "/api/stream") as r:
                for _ in r.iter_lines():
                    pass
            ended.set()

        threading.Thread(target=watch, daemon=True).start()
        time.sleep(0.5)
        h.loop.call_soon_threadsafe(stop.set)
        assert ended.wait(5), "the live stream did not end after the stop event"
        client.close()
