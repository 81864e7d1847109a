"""The hub's MQTT side: one thread per connection owns its paho client and feeds its lane's
bounded queue; the priority connection also sends acks and commands.

A full inbound queue blocks this thread, so the broker holds (and, past its own limits, drops)
messages; stations re-send whatever the hub never acknowledged, so nothing is lost.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as mqtt
import structlog

from central_sync import protocol as p
from central_sync.config import BrokerConfig
from central_sync.errors import SessionLost, SyncError
from central_sync.mqtt import attempt_after, backoff_delay, connack_limits, connect_properties, loop_step, new_client, reason_text

log = structlog.get_logger("central_sync.hub")
ACK_INFLIGHT = 20  # the MQTT default Receive Maximum of brokers; acks beyond it wait in paho (few, small)
BURST = 256
PACKET_MAX = 256 * 1024   # the most a hub publishes in one packet, whatever the broker allows
OUTBOX_MAX = 10_000       # acks and commands waiting while this link is down; past it the oldest go (stations
                          # re-send what was never acknowledged, the gap checker asks again): memory stays bounded


class HubLink:
    """Consumes the shared subscriptions into `inbox`; publishes what is put in `outbox`."""

    def __init__(self, cfg: BrokerConfig, hub_id: str, inbox: queue.Queue[tuple[str, bytes]], lane: str,
                 group: str = p.SHARE_GROUP, beat: Callable[[], None] = lambda: None, outbox_max: int = OUTBOX_MAX) -> None:
        """beat: called on every turn of the link's loops (liveness for the watchdog)."""
        self.cfg, self.hub_id, self.inbox, self.group, self.lane = cfg, f"{hub_id}-{lane}", inbox, group, lane
        self.beat = beat
        self.outbox: deque[tuple[str, bytes]] = deque(maxlen=outbox_max)
        self.outbox_dropped = 0               # acks and commands dropped, oldest first, from a full outbox
        self.connected = False
        self.subscribed = threading.Event()  # set once the broker granted this session's subscriptions
        self.sessions = 0
        self.received = 0
        self.max_packet = PACKET_MAX
        self.learned_max: int | None = None   # a size limit the broker enforces without announcing it
        self.last_error: str | None = None
        self._ended: str | None = None
        self._up_since: float | None = None  # time.monotonic() when the session under way was accepted
        self._connack = None
        self._largest = 0                      # the largest payload published in this session

    def payload_limit(self) -> int:
        """Largest payload to publish: the broker's Maximum Packet Size (or the limit learnt from the
        sessions it ended) less room for headers."""
        return max(512, self.max_packet - 512)

    def _learn_limit(self) -> None:
        """A broker that limits messages without announcing it (Mosquitto's message_size_limit) ends the
        session of whoever publishes over it; acks grow with the window a station resends, so the same
        oversized ack would end every session. When a session that published more than 2 KB ends,
        publish at most half of that from then on (acks and commands split to fit), down to 1 KB."""
        if self._largest <= 2048:
            return
        limit = max(1024, self._largest // 2)
        if self.learned_max is None or limit < self.learned_max:
            self.learned_max = limit
            self.max_packet = min(self.max_packet, limit + 512)   # acks encoded before the next CONNACK fit too
            log.warning("hub.payload_shrunk", hub=self.hub_id, payload_bytes=limit,
                        reason=f"the broker ended the session after a {self._largest}-byte publish")

    def send(self, name: str, payload: bytes) -> None:
        """Thread-safe: queue one QoS 1 publish (acks, commands). While the link is down they wait, at most
        `outbox_max` of them: a full outbox drops its oldest (an ack or a resend request whose station sends
        again what was not acknowledged), counted in `outbox_dropped` and logged at the first and every
        1,000th drop."""
        if len(self.outbox) == self.outbox.maxlen:
            self.outbox_dropped += 1
            if self.outbox_dropped % 1000 == 1:
                log.warning("hub.outbox_dropped", hub=self.hub_id, dropped=self.outbox_dropped,
                            reason=f"{self.outbox.maxlen} acks and commands wait for a link that is down: the oldest go")
        self.outbox.append((name, payload))

    def run(self, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            self.beat()
            try:
                self._session(stop)
                attempt = 0
            except (OSError, SyncError, ValueError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.error("hub.link_lost", hub=self.hub_id, error=self.last_error)
                if self._ended is not None:
                    self._learn_limit()
                attempt = attempt_after(attempt, self._up_since, self.cfg)
            except Exception as exc:  # supervisor of the link thread: log, rebuild the client
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("hub.link_crashed", hub=self.hub_id)
                attempt += 1
            finally:
                self.connected = False
            stop.wait(backoff_delay(attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s))

    def _session(self, stop: threading.Event) -> None:
        client = new_client(self.cfg, self.hub_id, ACK_INFLIGHT, self.lane)
        self._ended, self._connack, self._largest, self._up_since = None, None, 0, None
        client.on_connect = lambda c, u, f, code, props: setattr(self, "_connack", (code, props))
        client.on_disconnect = lambda c, u, f, code, props: setattr(self, "_ended", reason_text(getattr(code, "value", 0)))
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s, clean_start=True, properties=connect_properties(1000))
        try:
            self._serve(client, stop)
        finally:
            self.subscribed.clear()
            client.disconnect()
            client.loop(0.01)

    def _serve(self, client: mqtt.Client, stop: threading.Event) -> None:
        deadline = time.monotonic() + 10
        while self._connack is None:
            self._loop(client)
            if time.monotonic() > deadline:
                raise SessionLost(f"broker {self.cfg.host}:{self.cfg.port} sent no CONNACK within 10 s")
        broker_max = connack_limits(self._connack[1])[1]
        self.max_packet = min(PACKET_MAX, broker_max or PACKET_MAX,
                              self.learned_max + 512 if self.learned_max else PACKET_MAX)
        client.subscribe([(t, 1) for t in p.hub_subscriptions(self.group, self.lane)])
        self.connected, self.sessions, self._up_since = True, self.sessions + 1, time.monotonic()
        log.info("hub.link_up", hub=self.hub_id, broker=f"{self.cfg.host}:{self.cfg.port}")
        while not stop.is_set():
            self.beat()
            self._drain_outbox(client)
            self._loop(client)
            self._read_burst(client)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, codes: list, props: object) -> None:
        """The broker's SUBACK: messages published from now on reach this hub (before it, a shared subscription
        with no member drops them, and stations send them again only after their ack timeout)."""
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("hub.subscribe_refused", hub=self.hub_id, reason=reason_text(refused[0].value),
                      refused=len(refused), asked=len(codes))
        self.subscribed.set()

    def _loop(self, client: mqtt.Client) -> None:
        loop_step(client, self.cfg, 0.02, f"hub {self.hub_id}", lambda: (self._connack, self._ended))

    def _read_burst(self, client: mqtt.Client) -> None:
        """Read on while messages keep coming: paho's loop() reads one packet per select()."""
        for _ in range(BURST):
            before = self.received
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self.received == before:
                return

    def _drain_outbox(self, client: mqtt.Client) -> None:
        while True:
            try:
                name, payload = self.outbox.popleft()
            except IndexError:
                return
            self._largest = max(self._largest, len(payload))
            client.publish(name, payload, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        self.inbox.put((msg.topic, bytes(msg.payload)))
