"""The hub's link keeps what waits for a link that is down bounded, and learns a size limit the broker enforces without announcing it (Mosquitto's
message_size_limit): an ack over it ended the hub's session, and the same ack, resent with the
station's window, ended every session after it (the outbox never drained)."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto
from central_sync.hub.link import HubLink
from polling import wait_until

pytestmark = pytest.mark.slow


def test_a_session_ended_after_an_oversized_publish_halves_what_the_link_publishes(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker", "message_size_limit 3000") as broker:
        link = HubLink(BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5), "hub-l",
                       queue.Queue(), "priority")
        stop = threading.Event()
        runner = threading.Thread(target=link.run, args=(stop,), daemon=True)
        runner.start()
        try:
            wait_until(lambda: link.connected, "the link connected", timeout=20)
            assert link.payload_limit() > 200_000          # nothing announced: 256 kB less headers
            link.send("cpe/v1/gate-1/ack", b"x" * 6000)      # over the broker's unannounced 3,000 bytes
            wait_until(lambda: link.learned_max, "the link learnt the broker's limit", timeout=20)
            assert link.learned_max == 3000 and link.payload_limit() <= 3000
            wait_until(lambda: link.connected and link.sessions >= 2, "the link back up", timeout=20)
            sessions = link.sessions
            link.send("cpe/v1/gate-1/ack", b"y" * link.payload_limit())   # what fits now goes through
            link.send("cpe/v1/gate-1/ack", b"z" * 100)
            wait_until(lambda: not link.outbox, "the outbox sent", timeout=20)
            threading.Event().wait(1.0)
            assert link.sessions == sessions and link.connected   # no session ended by the fitting publish
        finally:
            stop.set()
            runner.join(10)


def test_a_link_that_is_down_keeps_the_newest_acks_and_sends_them_in_order_once_up(tmp_path: Path) -> None:
    """Before, acks for what the bulk lane ingested while the priority link was down waited in an unbounded
    queue (a long broker outage: the hub's memory grew without end). At most `outbox_max` wait; the oldest go,
    counted; what is kept is published in order once the link is up."""
    with Mosquitto(tmp_path / "broker") as broker:
        link = HubLink(BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=0.5), "hub-o",
                       queue.Queue(), "priority", outbox_max=50)
        for n in range(53):                         # the link has not connected yet
            link.send("cpe/v1/gate-1/ack", str(n).encode())
        assert len(link.outbox) == 50 and link.outbox_dropped == 3
        received: list[bytes] = []
        watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5)
        granted = threading.Event()
        watcher.on_message = lambda c, u, m: received.append(bytes(m.payload))
        watcher.on_subscribe = lambda *args: granted.set()
        watcher.connect("127.0.0.1", broker.port)
        watcher.subscribe("cpe/v1/gate-1/ack", qos=1)
        watcher.loop_start()
        stop = threading.Event()
        runner = threading.Thread(target=link.run, args=(stop,), daemon=True)
        try:
            assert granted.wait(10), "the watcher's subscription was not granted"
            runner.start()
            wait_until(lambda: len(received) >= 50, "the kept acks published", timeout=20)
            assert received == [str(n).encode() for n in range(3, 53)]
        finally:
            stop.set()
            runner.join(10)
            watcher.loop_stop()
            watcher.disconnect()
