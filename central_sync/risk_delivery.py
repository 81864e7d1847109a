"""Delivery of signed risk bundles hub -> station over MQTT, with an end-to-end acknowledgement.

Topics (MQTT v5, QoS 1):

    cpe/v1/{s}/risk        hub -> station, one chunk: RiskChunk header JSON, b"\\n", chunk bytes
    cpe/v1/{s}/risk/ack    station -> hub, RiskAck JSON {"version", "sha256", "outcome", "code"}

A bundle envelope (risk.bundle, signed) for a million watchlist entries is tens of MB: it travels
in chunks under the broker's Maximum Packet Size, like images, so the broker's limit stays what the
record lanes need. `sha256` everywhere is the hash of the whole envelope as delivered; the station
joins the chunks, checks that hash, then opens and verifies the envelope itself (signature, key,
version, validity) and answers `applied` or `refused` with the BundleError code.

The rules (who gets what, when to re-send) are the pure state machine `Dispatch`: a station's
retained status says whether it takes bundles and which version it runs; a station online that
takes them and does not run the offered
version gets it (the delta when it runs the delta's base, else the snapshot); a delivery not
acknowledged within `resend_s` is sent again; a refused one is not sent again in that session
(a new session, e.g. after the operator pinned the key, tries again). `RiskDelivery` is the
driver: one MQTT connection (`{username}.risk`), paho callbacks only enqueue, one worker thread
feeds the core and publishes. Several hub processes may each run one: the station acknowledges a
bundle it already runs as `applied` again, so a duplicate costs bandwidth, never a refusal.
"""

from __future__ import annotations

import hashlib
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.commands import CommandLink
from central_sync.config import BrokerConfig
from central_sync.errors import WireFormatError
from central_sync.protocol import ROOT, SHA256_HEX, StatusMsg, decode_model, parse_topic

M = TypeVar("M", bound=BaseModel)

log = structlog.get_logger("central_sync.risk_delivery")

RISK_LEAF = "risk"
ACK_LEAF = "risk/ack"
CHUNK_BYTES = 1024 * 1024  # under the shipped broker's max_packet_size (2 MiB) with room for the header
Outcome = Literal["applied", "refused", "ready"]  # ready: the station's link has just subscribed (no bundle named)


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskChunk(_Wire):
    """Header of one chunk of a bundle envelope; `size` is the whole envelope's length."""

    v: Literal[1] = 1
    version: int = Field(ge=1)
    sha256: str = Field(pattern=SHA256_HEX.pattern)
    index: int = Field(ge=0)
    count: int = Field(ge=1, le=100_000)
    size: int = Field(ge=1)


class RiskAck(_Wire):
    """What the station did with a bundle; `code` is the BundleError code of a refusal."""

    version: int
    sha256: str = Field(pattern=SHA256_HEX.pattern)
    outcome: Outcome
    code: str | None = Field(None, max_length=64)


def risk_topic(station: str) -> str:
    return f"{ROOT}/{station}/{RISK_LEAF}"


def ack_topic(station: str) -> str:
    return f"{ROOT}/{station}/{ACK_LEAF}"


def chunks(version: int, envelope: bytes, chunk_bytes: int = CHUNK_BYTES) -> list[bytes]:
    """The payloads that carry `envelope`, in order."""
    sha = hashlib.sha256(envelope).hexdigest()
    count = max(1, math.ceil(len(envelope) / chunk_bytes))
    return [RiskChunk(version=version, sha256=sha, index=i, count=count, size=len(envelope)).model_dump_json().encode()
            + b"\n" + envelope[i * chunk_bytes:(i + 1) * chunk_bytes] for i in range(count)]


def decode_chunk(payload: bytes) -> tuple[RiskChunk, bytes]:
    """Header and data of one chunk; WireFormatError when the header is missing or invalid."""
    head, sep, data = payload.partition(b"\n")
    if not sep:
        raise WireFormatError(f"risk bundle chunk of {len(payload)} bytes has no header line")
    return _decode(RiskChunk, head), data


# ---- the rules --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Offer:
    """The bundle the hub wants every station to run: a snapshot, and the delta from its base."""

    version: int
    snapshot: bytes
    delta: bytes | None = None
    base_version: int | None = None
    stations: frozenset[str] | None = None  # only these stations (a model roll-out's choice); None: all

    def for_station(self, runs: int | None) -> bytes:
        """The delta for a station on its base, else the snapshot."""
        if self.delta is not None and runs is not None and runs == self.base_version:
            return self.delta
        return self.snapshot


@dataclass(frozen=True, slots=True)
class Send:
    station: str
    version: int
    envelope: bytes
    attempt: int


@dataclass
class _Station:
    online: bool = False
    enabled: bool = True  # the station takes bundles (its status says so)
    session: int = -1
    runs: int | None = None  # version the station reports (status) or acknowledged as applied
    sent_sha: str | None = None  # in flight, awaiting the station's ack
    sent_at: float = 0.0
    attempt: int = 0
    refused: set[str] = field(default_factory=set)  # envelopes refused in this session


Reads = Callable[[StatusMsg], tuple[bool, int | None]]
"""From a station's status: whether it takes these deliveries and the version it runs."""


def risk_fields(msg: StatusMsg) -> tuple[bool, int | None]:
    return msg.risk_enabled, msg.risk_version


class Dispatch:
    """Sans-IO: feed statuses, acks and the clock; get the sends to make."""

    def __init__(self, resend_s: float = 60.0, reads: Reads = risk_fields) -> None:
        self.resend_s, self.reads = resend_s, reads
        self.offer: Offer | None = None
        self.stations: dict[str, _Station] = {}
        self.counters: Counter[str] = Counter()

    def offered(self, offer: Offer, now: float) -> list[Send]:
        """A new bundle: every online station not running it gets it."""
        self.offer = offer
        for st in self.stations.values():
            st.sent_sha, st.attempt = None, 0
        return [s for name in sorted(self.stations) if (s := self._maybe_send(name, now)) is not None]

    def status(self, msg: StatusMsg, now: float) -> list[Send]:
        st = self.stations.setdefault(msg.station, _Station())
        if msg.session < st.session:
            return []  # a late status of an older session
        if msg.session != st.session:
            st.sent_sha, st.attempt, st.refused = None, 0, set()
        same_session = msg.session == st.session
        st.session, st.online = msg.session, msg.state == "online"
        st.enabled, runs = self.reads(msg)
        # a status sent before the station applied what it acknowledged (in flight, or published on its period)
        # must not take the station back: within a session versions only grow (an older one is refused)
        if same_session and st.runs is not None and (runs is None or runs < st.runs):
            runs = st.runs
        st.runs = runs
        if not st.online:
            st.sent_sha = None
            return []
        send = self._maybe_send(msg.station, now)
        return [send] if send else []

    def ready(self, station: str, now: float) -> list[Send]:
        """The station's link has just subscribed: what was sent before could not arrive; send now rather than
        after resend_s (a station starting, or back after a broker restart)."""
        st = self.stations.setdefault(station, _Station())
        self.counters["ready"] += 1
        st.sent_sha, st.attempt = None, 0
        send = self._maybe_send(station, now)
        return [send] if send else []

    def acked(self, station: str, ack: RiskAck) -> bool:
        """Record an ack; True when it answers the delivery in flight (else it is stale or foreign)."""
        st = self.stations.setdefault(station, _Station())
        self.counters[f"ack_{ack.outcome}"] += 1
        if ack.outcome == "applied":
            st.runs = ack.version
        else:
            st.refused.add(ack.sha256)
        if ack.sha256 != st.sent_sha:
            return False
        st.sent_sha = None
        return True

    def tick(self, now: float) -> list[Send]:
        """Re-send what was not acknowledged in time."""
        out = []
        for name, st in sorted(self.stations.items()):
            if st.online and st.enabled and st.sent_sha is not None and now - st.sent_at >= self.resend_s:
                st.sent_sha = None
                self.counters["resent"] += 1
                if (send := self._maybe_send(name, now)) is not None:
                    out.append(send)
        return out

    def _maybe_send(self, name: str, now: float) -> Send | None:
        st, offer = self.stations[name], self.offer
        if offer is None or not (st.online and st.enabled) or st.sent_sha is not None or st.runs == offer.version:
            return None
        if offer.stations is not None and name not in offer.stations:
            return None
        envelope = offer.for_station(st.runs)
        sha = hashlib.sha256(envelope).hexdigest()
        if sha in st.refused:
            return None
        st.sent_sha, st.sent_at, st.attempt = sha, now, st.attempt + 1
        self.counters["sent"] += 1
        return Send(name, offer.version, envelope, st.attempt)

    def stale(self) -> list[str]:
        """Stations that take bundles and are known to run another version than the one offered."""
        if self.offer is None:
            return []
        chosen = self.offer.stations
        return sorted(n for n, st in self.stations.items()
                      if st.enabled and st.runs != self.offer.version and (chosen is None or n in chosen))


# ---- the driver --------------------------------------------------------------------------------
AckSink = Callable[[str, RiskAck, float], None]  # (station, ack, at)


class AckStore(Protocol):
    """Where the hub keeps acks: central_sync.hub.store.HubStore (not imported: stations import this module)."""

    def record_bundle_ack(self, station: str, version: int, sha256: str, outcome: str, code: str | None,
                          at: float) -> None: ...


def store_acks(store: AckStore) -> AckSink:
    """Keep every ack in the hub's bundle_acks table (the control room lists stations on stale bundles)."""
    def keep(station: str, ack: RiskAck, at: float) -> None:
        store.record_bundle_ack(station, ack.version, ack.sha256, ack.outcome, ack.code, at)
    return keep


class RiskDelivery:
    """The hub's bundle sender: `offer()` from publish(); acks go to `on_ack` (the hub store).

        with RiskDelivery(broker, "hub-a", store.record_bundle_ack) as rd:
            rd.offer(Offer(7, snapshot_bytes, delta_bytes, base_version=6))
    """

    def __init__(self, broker: BrokerConfig, hub_id: str, on_ack: AckSink | None = None, resend_s: float = 60.0,
                 chunk_bytes: int = CHUNK_BYTES, *, leaf: str = RISK_LEAF, reads: Reads = risk_fields) -> None:
        """`leaf`: the topic leaf (`risk`; `model` for model packages, central_sync.model_delivery), acks on
        `{leaf}/ack`, over the broker connection `{username}.{leaf}`."""
        self.hub_id, self.on_ack, self.chunk_bytes, self.leaf = hub_id, on_ack, chunk_bytes, leaf
        self.core = Dispatch(resend_s, reads)
        self.counters = self.core.counters
        self.link = CommandLink(broker, f"{hub_id}-{leaf}", [f"{ROOT}/+/status", f"{ROOT}/+/{leaf}/ack"], self._arrived,
                                link=leaf)
        self._inbox: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{hub_id}-{leaf}", daemon=True)

    async def __aenter__(self) -> "RiskDelivery":
        await self.link.__aenter__()
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self.link.__aexit__(None, None, None)
        self._thread.join(10.0)

    def offer(self, offer: Offer) -> None:
        """Deliver `offer` to every station (thread-safe; returns at once)."""
        self._inbox.put(("offer", offer))

    def _arrived(self, topic: str, payload: bytes) -> None:
        try:
            self._inbox.put_nowait(("mqtt", (topic, payload)))
        except queue.Full:
            self.counters["dropped_queue_full"] += 1  # statuses are retained and acks re-sent: nothing is lost

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                kind, item = self._inbox.get(timeout=0.5)
            except queue.Empty:
                kind, item = "tick", None
            try:
                self._send(self._handle(kind, item, time.time()))
            except Exception:  # top of the worker thread: one bad event must not stop deliveries
                self.counters["worker_errors"] += 1
                log.exception(f"{self.leaf}.delivery_failed", hub=self.hub_id, event=kind)

    def _handle(self, kind: str, item: object, now: float) -> list[Send]:
        if kind == "offer" and isinstance(item, Offer):
            log.info(f"{self.leaf}.offered", hub=self.hub_id, version=item.version, bytes=len(item.snapshot))
            return self.core.offered(item, now)
        if kind == "mqtt" and isinstance(item, tuple):
            topic, payload = item
            return self._message(topic, payload, now) + self.core.tick(now)
        return self.core.tick(now)

    def _message(self, topic: str, payload: bytes, now: float) -> list[Send]:
        try:
            station, leaf = parse_topic(topic)
            if leaf == ["status"]:
                return self.core.status(decode_model(StatusMsg, payload), now)
            ack = _decode(RiskAck, payload)
        except WireFormatError as exc:
            self.counters["bad_message"] += 1
            log.warning(f"{self.leaf}.bad_message", hub=self.hub_id, topic=topic, error=str(exc))
            return []
        if ack.outcome == "ready":
            log.info(f"{self.leaf}.station_ready", hub=self.hub_id, station=station)
            return self.core.ready(station, now)
        current = self.core.acked(station, ack)
        log.info(f"{self.leaf}.acked", hub=self.hub_id, station=station, version=ack.version, outcome=ack.outcome,
                 code=ack.code, current=current)
        if self.on_ack is not None:
            self.on_ack(station, ack, now)
        return []

    def _send(self, sends: list[Send]) -> None:
        for send in sends:
            parts = chunks(send.version, send.envelope, self.chunk_bytes)
            for part in parts:
                self.link.publish(f"{ROOT}/{send.station}/{self.leaf}", part)
            self.counters["chunks_sent"] += len(parts)
            log.info(f"{self.leaf}.sent", hub=self.hub_id, station=send.station, version=send.version,
                     bytes=len(send.envelope), chunks=len(parts), attempt=send.attempt)

    def stats(self) -> dict:
        return {"counters": dict(self.counters), "stale": self.core.stale(),
                "offered": self.core.offer.version if self.core.offer else None}



def _decode(model: type[M], payload: bytes) -> M:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        raise WireFormatError(f"{model.__name__} of {len(payload)} bytes is invalid: {where}: {err.get('msg')}") from exc
