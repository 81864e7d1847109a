"""The sync driver: one thread owns the paho client and the SQLite connection.

The delivery rules (windows, batches, lanes, acks, resends, parking) live in the sans-IO core
`central_sync.delivery`. This driver turns paho callbacks into events (they only enqueue), feeds
them and the clock to the core, and applies the actions it returns to paho and SQLite. A new
session (after any disconnect) starts with a fresh client and re-sends every unretired row; the
hub is idempotent.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from appliance.version import version
from central_sync import protocol as p
from central_sync import delivery_events as ev
from central_sync.blobs import BlobJob
from central_sync.config import SyncConfig
from central_sync.delivery import Delivery, limits_for
from central_sync.errors import SessionLost, SyncError, WireFormatError
from central_sync.mqtt import attempt_after, backoff_delay, connack_limits, connect_properties, loop_step, new_client, reason_text
from central_sync.station_db import StationDb

log = structlog.get_logger("central_sync.publisher")
TICK_S = 0.2


class SyncEngine:
    """One station's sync; `run` is the thread's body."""

    def __init__(self, cfg: SyncConfig, station: str, db_path: Path, scans_dir: Path,
                 extra_status: Callable[[], dict] | None = None) -> None:
        """extra_status: more StatusMsg fields, read at every status (the risk bundle run, edge/risk.py)."""
        self.cfg, self.station, self.db_path, self.scans_dir = cfg, p.check_station(station), db_path, scans_dir
        self.extra_status = extra_status
        self.core = Delivery(self.station, limits_for(cfg))
        self.counters = self.core.counters
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.last_error: str | None = None
        self.last_ack_at: float | None = None
        self.session = 0
        self.backlog: dict[str, dict] = {}
        self._up_since: float | None = None  # time.monotonic() when the session under way was accepted
        self._reset()
        self._publish_snapshot(connected=False)

    def _reset(self) -> None:
        self.events: deque[ev.Event] = deque()  # filled by paho callbacks, drained after each loop step
        self.refs: dict[int, int] = {}  # paho mid -> the core's publish ref
        self.blobs: dict[int, BlobJob] = {}  # open scan files by row id
        self.connack: tuple[ReasonCode, Properties | None] | None = None
        self.subscribed = False
        self.disconnect_reason: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Thread body: sessions with jittered back-off until `stop` is set."""
        attempt = 0
        while not stop.is_set():
            try:
                self.db = StationDb(self.db_path)
            except sqlite3.Error as exc:
                self._error("sync.db_unavailable", f"station database {self.db_path} cannot be opened: {exc}")
                stop.wait(backoff_delay(attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s))
                attempt += 1
                continue
            try:
                while not stop.is_set():
                    attempt = self._one_session(stop, attempt)
                    if not stop.is_set():
                        stop.wait(backoff_delay(attempt, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s))
            finally:
                self.db.close()

    def _one_session(self, stop: threading.Event, attempt: int) -> int:
        self._up_since = None  # set once the broker accepts it (`_connect`)
        try:
            self._session(stop)
            return 0
        except (OSError, SyncError, ValueError, sqlite3.Error) as exc:
            self._error("sync.session_ended", str(exc) or type(exc).__name__)
        except Exception as exc:  # top-level supervisor of the sync thread: log, rebuild the client
            log.exception("sync.session_crashed", station=self.station)
            self._error("sync.session_crashed", f"{type(exc).__name__}: {exc}")
        finally:
            self._publish_snapshot(connected=False)
        return attempt_after(attempt, self._up_since, self.cfg)

    def _session(self, stop: threading.Event) -> None:
        self.session = self.db.next_session()
        self._reset()
        client = self._connect()
        try:
            self._serve(client, stop)
        finally:
            self._close(client, graceful=stop.is_set())

    def _connect(self) -> mqtt.Client:
        client = new_client(self.cfg, f"station-{self.station}", self.cfg.max_inflight, "sync")
        client.will_set(p.topic(self.station, "status"), self._status("offline"), qos=1, retain=True)
        client.on_connect, client.on_publish = self._on_connect, self._on_publish
        client.on_message, client.on_disconnect, client.on_subscribe = self._on_message, self._on_disconnect, self._on_subscribe
        client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s, clean_start=True, properties=connect_properties())
        self._wait(client, lambda: self.connack is not None, "CONNACK")
        if self.connack is None:  # _wait returns only once it is set; this narrows it
            raise SessionLost(f"broker {self.cfg.host}:{self.cfg.port} ended the wait without a CONNACK")
        limits = limits_for(self.cfg, *connack_limits(self.connack[1]))
        self._up_since = time.monotonic()  # accepted: the back-off starts again once the broker keeps it
        client.subscribe([(p.topic(self.station, "ack"), 1), (p.topic(self.station, "cmd"), 1)])
        self._wait(client, lambda: self.subscribed, "SUBACK")
        self.client = client
        self._apply(ev.SessionUp(time.monotonic(), limits, self.db.newest_alert()))
        log.info("sync.connected", station=self.station, session=self.session, window=limits.window, max_payload=limits.max_payload)
        return client

    def _wait(self, client: mqtt.Client, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + max(5.0, self.cfg.keepalive_s)
        while not done():
            self._loop(client, 0.05)
            if time.monotonic() > deadline:
                raise SessionLost(f"broker {self.cfg.host}:{self.cfg.port} sent no {what} within {self.cfg.keepalive_s} s")

    def _loop(self, client: mqtt.Client, timeout: float) -> None:
        try:
            loop_step(client, self.cfg, timeout, f"station {self.station}", lambda: (self.connack, self.disconnect_reason))
        finally:
            while self.events:  # also when the session just ended: blame and acks still count
                self._apply(self.events.popleft())

    def _serve(self, client: mqtt.Client, stop: threading.Event) -> None:
        next_tick = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if self.wake.is_set():
                self.wake.clear()
                self._apply(ev.Wake())
            self._apply(ev.Fill(now, time.time()))
            if now >= next_tick:
                self._apply(ev.Tick(now))
                self._publish_snapshot(connected=True)
                next_tick = now + TICK_S
            self._loop(client, self.cfg.poll_s)

    def _close(self, client: mqtt.Client, graceful: bool) -> None:
        if graceful and self.connack is not None and self.disconnect_reason is None:
            info = client.publish(p.topic(self.station, "status"), self._status("offline"), qos=1, retain=True)
            end = time.monotonic() + 1.0
            while not info.is_published() and time.monotonic() < end and client.loop(0.05) == mqtt.MQTT_ERR_SUCCESS:
                pass
        client.disconnect()
        client.loop(0.01)

    # ---- paho callbacks (run inside client.loop, on this thread): they only record or enqueue --
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, code: ReasonCode,
                    props: Properties | None) -> None:
        self.connack = (code, props)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, codes: list[ReasonCode],
                      props: Properties | None) -> None:
        bad = [c for c in codes if c.is_failure]
        if bad:
            self._error("sync.subscribe_refused", f"broker refused ack/cmd subscription: {reason_text(bad[0].value)}")
        self.subscribed = True

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags, code: ReasonCode,
                       props: Properties | None) -> None:
        value = getattr(code, "value", 0x80)
        self.disconnect_reason = reason_text(value)
        self.events.append(ev.BrokerDisconnected(value))

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, code: ReasonCode,
                    props: Properties) -> None:
        ref = self.refs.pop(mid, None)
        if ref is not None:
            self.events.append(ev.PubAck(ref, code.value if code.is_failure else 0, time.monotonic()))

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)  # paho types it bytes | bytearray
        try:
            if msg.topic.endswith("/ack"):
                self.events.append(ev.HubAck(tuple(p.decode_model(p.AckMsg, payload).acks)))
            elif msg.topic.endswith("/cmd"):
                self.events.append(ev.ResendRequest(tuple(p.decode_model(p.CmdMsg, payload).seqs)))
        except WireFormatError as exc:
            self.counters["bad_hub_message"] += 1
            self._error("sync.bad_hub_message", f"{msg.topic}: {exc}")

    # ---- applying the core's actions ---------------------------------------------------------
    def _apply(self, event: ev.Event) -> None:
        """Feed one event; actions that read (Fetch, OpenBlob, a chunk) answer with further events."""
        todo = deque([event])
        while todo:
            for action in self.core.handle(todo.popleft()):
                answer = self._do(action)
                if answer is not None:
                    todo.append(answer)

    def _do(self, action: ev.Action) -> ev.Event | None:
        match action:
            case ev.Publish(ref, name, payload, _):
                self._publish(name, payload, ref)
            case ev.PublishChunk():
                return self._publish_chunk(action)
            case ev.PublishStatus(ref):
                self.backlog = self.db.backlog()
                self._publish(p.topic(self.station, "status"), self._status("online"), ref)
            case ev.Fetch(lane, after, limit):
                return ev.RowsFetched(lane, tuple(self.db.fetch(lane, after, limit)))
            case ev.OpenBlob():
                return self._open_blob(action)
            case ev.MarkSent(ids):
                self.db.mark_sent(list(ids), time.time())
            case ev.Retire(pairs):
                unknown = self.db.retire(list(pairs))
                self.counters["acked"] += len(pairs) - len(unknown)
                if len(unknown) < len(pairs):  # only a row retired is progress (the board's "acks stalled")
                    self.last_ack_at = time.time()
                self._unknown_acks(unknown)
                for row_id, _ in pairs:
                    self.blobs.pop(row_id, None)
            case ev.Park(row_id, record_id, reason):
                if not self.db.park(row_id, record_id, reason):
                    self._unknown_acks([(row_id, record_id)])
                self.blobs.pop(row_id, None)
            case ev.SaveProgress(row_id, chunk_bytes, stored):
                self.db.save_blob_progress(row_id, chunk_bytes, set(stored))
            case ev.Restart(reason):
                raise SessionLost(reason)
            case ev.Report(event, text):
                self._error(event, text, count=False)
            case ev.Note(event, fields, warning):
                (log.warning if warning else log.info)(event, station=self.station, **dict(fields))
        return None

    def _unknown_acks(self, pairs: list[tuple[int, str]]) -> None:
        """Count the hub's acks naming rows this station does not hold (unknown, or retired already: a row sent
        twice is acknowledged twice)."""
        if pairs:
            self.counters["ack_unknown"] += len(pairs)
            log.info("sync.ack_unknown", station=self.station, acks=len(pairs),
                     error=f"the hub acknowledged {len(pairs)} rows this station does not hold (unknown, or retired"
                           f" already): {', '.join(f'row {i} of record {r[:64]}' for i, r in pairs[:5])}")

    def _publish(self, name: str, payload: bytes, ref: int) -> None:
        info = self.client.publish(name, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise SessionLost(f"publish to {name} failed: {mqtt.error_string(info.rc)}")
        self.refs[info.mid] = ref

    def _publish_chunk(self, action: ev.PublishChunk) -> ev.Event | None:
        job = self.blobs[action.row_id]
        try:
            name, payload = job.chunk(self.station, action.index)
        except OSError as exc:
            return ev.ChunkUnreadable(action.ref, f"scan file {job.path} became unreadable: {exc}")
        self._publish(name, payload, action.ref)
        return None

    def _open_blob(self, action: ev.OpenBlob) -> ev.Event:
        row = action.row
        try:
            job = BlobJob.open(row, self.scans_dir, action.chunk_bytes, self.db.blob_progress(row.id, action.chunk_bytes))
        except WireFormatError as exc:
            return ev.BlobUnavailable(row.id, str(exc))
        self.blobs[row.id] = job
        return ev.BlobOpened(row.id, job.count, frozenset(job.done))

    # ---- figures -------------------------------------------------------------------------
    def _status(self, state: Literal["online", "offline"]) -> bytes:
        backlog = {k: p.LaneBacklog(**{f: v for f, v in b.items() if f != "parked"}) for k, b in self.backlog.items()}
        return p.StatusMsg(station=self.station, state=state, session=self.session, at=time.time(), backlog=backlog,
                           last_ack_at=self.last_ack_at, last_error=self.last_error, counters=dict(self.counters),
                           software_version=version(),
                           **(self.extra_status() if self.extra_status else {})).model_dump_json().encode()

    def _error(self, event: str, text: str, count: bool = True) -> None:
        self.last_error = text
        if count:
            self.counters["errors"] += 1
        log.error(event, station=self.station, error=text)

    def _publish_snapshot(self, connected: bool) -> None:
        snap = {"connected": connected, "session": self.session, **self.core.figures(), "backlog": self.backlog,
                "last_ack_at": self.last_ack_at, "last_error": self.last_error, "counters": dict(self.counters)}
        with self.lock:
            self.snapshot = snap
