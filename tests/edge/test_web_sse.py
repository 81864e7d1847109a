"""The live stream: bus events become SSE frames; slow screens are told what they lost; bad events are skipped."""

import asyncio
import json

from edge.events import EventBus
from edge.web import sse


async def _mapper(event):
    if event.topic != "inspection":
        return None
    return "inspection", {"id": event.data["id"]}


def _parse(frame):
    name, data = frame.strip().split("\n")
    return name.removeprefix("event: "), json.loads(data.removeprefix("data: "))


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
    bus, stop = EventBus(), asyncio.Event()

    async def signed_out():
        return False

    frames = [f async for f in sse.stream(bus, _mapper, stop, signed_out)]
    assert [_parse(f)[0] for f in frames] == ["hello", "signed_out"]
