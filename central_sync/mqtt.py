"""A paho-mqtt 2.x MQTT v5 client built from BrokerConfig (TLS, credentials, Last Will)."""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from central_sync.config import BrokerConfig
from central_sync.errors import BrokerError, SessionLost

REASON_NAMES = {0x80: "unspecified", 0x83: "implementation specific", 0x86: "bad user name or password", 0x87: "not authorised",
                0x8E: "session taken over",
                0x90: "topic name invalid", 0x91: "packet id in use", 0x95: "packet too large",
                0x97: "quota exceeded", 0x99: "payload format invalid"}

# The connections a client opens, one broker account each (`{username}.{link}`, issue 22 item 7):
STATION_LINKS = ("sync", "cmd", "diag", "risk", "model")  # outbox sender, command link, diagnostics, risk bundles, models
HUB_LINKS = ("priority", "bulk", "cr", "risk", "model")  # two lanes, control room commands, risk bundles, models


def login(username: str, link: str) -> str:
    """The account (and client id) of connection `link` of a client configured with `username`."""
    return f"{username}.{link}"


def new_client(cfg: BrokerConfig, client_id: str, max_inflight: int, link: str) -> mqtt.Client:
    """A fresh v5 client (never reused across sessions, so paho cannot replay stale publishes).

    With a user name it logs in as `login(username, link)` and takes that as its client id: the
    shipped broker sets client id = user name, so no account can take over another's connection.
    paho ignores the broker's Receive Maximum, so callers keep their own window at or below both
    `max_inflight` (paho's limit, fixed before connecting) and the value in CONNACK."""
    account = login(cfg.username, link) if cfg.username else None
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=account or client_id, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(max_inflight)
    if account:
        client.username_pw_set(account, cfg.password())
    if cfg.tls is not None:
        client.tls_set(ca_certs=str(cfg.tls.ca_file),
                       certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                       keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def connect_properties(receive_maximum: int = 65535) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = receive_maximum
    props.SessionExpiryInterval = 0
    return props


def connack_limits(props: Properties | None) -> tuple[int, int | None]:
    """(Receive Maximum, Maximum Packet Size or None) announced by the broker in CONNACK."""
    receive_max = getattr(props, "ReceiveMaximum", None) if props is not None else None
    max_packet = getattr(props, "MaximumPacketSize", None) if props is not None else None
    return int(receive_max or 65535), (int(max_packet) if max_packet else None)


def reason_text(code: int) -> str:
    return f"0x{code:02X} {REASON_NAMES.get(code, 'error')}"


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential back-off: uniform in [low, min(high, low * 2**attempt)]."""
    cap = min(high, low * (2 ** min(attempt, 20)))
    return (rng or random).uniform(low, max(low, cap))


def attempt_after(attempt: int, up_since: float | None, cfg: BrokerConfig) -> int:
    """The back-off's attempt after a session ended: 0 (the shortest wait again) for a session the broker kept
    as long as the longest wait (`reconnect_max_s`), else one more. A broker that refuses or never answers, and one
    that accepts and soon ends the session (another client of the same name taking it over, an account it drops),
    is then tried at growing waits, not at the shortest for ever. up_since: time.monotonic() when the session was
    accepted (None: it never was)."""
    if up_since is not None and time.monotonic() - up_since >= cfg.reconnect_max_s:
        return 0
    return attempt + 1


def loop_step(client: mqtt.Client, cfg: BrokerConfig, timeout: float, who: str,
              session: Callable[[], tuple[Any, str | None]]) -> None:
    """One paho loop step; a refused CONNACK, a DISCONNECT from the broker or a failed socket
    becomes BrokerError / SessionLost naming the broker and `who` (e.g. "hub hub-a-12").

    `session()` returns (connack, disconnect reason); it is read after the step because paho's
    callbacks set them during it."""
    rc = client.loop(timeout)
    connack, ended = session()
    where = f"{cfg.host}:{cfg.port}"
    if connack is not None and connack[0].is_failure:
        code = connack[0].value
        raise BrokerError(f"broker {where} refused {who}: {reason_text(code)}", code)
    if ended is not None:
        raise SessionLost(f"broker {where} ended the session of {who}: {ended}")
    if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
        raise SessionLost(f"MQTT link of {who} to {where} failed: {mqtt.error_string(rc)}")
