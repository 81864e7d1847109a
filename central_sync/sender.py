"""The publisher's engine: one thread owns the paho client and the SQLite connection.

Flow control (why the backlog never sits in paho's memory):
- at most `window` QoS 1 publishes lack a PUBACK; window = min(max_inflight, broker Receive Maximum);
- at most `max_unacked` record/image rows are published and awaiting the hub's end-to-end ack
  (alerts are exempt so they never wait behind a backlog);
- everything else stays in SQLite and is read in pages, alerts first, then records, then images.
A row is deleted only when the hub's ack says it is committed. A new session (after any
disconnect) starts with a fresh client and re-sends every unretired row; the hub is idempotent.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import structlog

from central_sync import protocol as p
from central_sync.blobs import BlobJob
from central_sync.config import SyncConfig
from central_sync.errors import SessionLost, SyncError, WireFormatError as ProtocolError
from central_sync.mqtt import backoff_delay, connack_limits, connect_properties, loop_step, new_client, reason_text
from central_sync.outbox import Lane
from central_sync.station_db import Row, StationDb

log = structlog.get_logger("central_sync.publisher")
PAGE = 256
HEADER_ROOM = 1024
PARK_CODES = {0x95}  # retrying a packet the broker finds too large can never succeed
# Session ends that point at the oldest unacknowledged publish: paho cannot parse a PUBACK with
# 0x95 (Mosquitto's answer to a payload over message_size_limit) and drops the link as a protocol
# error; PUBACKs come in order, so the oldest publish still in flight is the one refused.
BLAME_CODES = {0x81, 0x82, 0x95}
BLAME_STRIKES = 2


@dataclass(slots=True)
class Sent:
    row: Row | None  # None: a status message; the first row of a batch
    at: float
    index: int | None = None  # image chunk index
    batch: list[Row] | None = None  # rows of a batch message

    @property
    def rows(self) -> list[Row]:
        return self.batch or ([self.row] if self.row is not None else [])


class SyncEngine:
    """State of one station's sync; `run` is the thread's body."""

    def __init__(self, cfg: SyncConfig, station: str, db_path: Path, scans_dir: Path) -> None:
        self.cfg, self.station, self.db_path, self.scans_dir = cfg, p.check_station(station), db_path, scans_dir
        self.counters: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.snapshot: dict = {"connected": False, "session": 0, "backlog": {}, "last_ack_at": None, "last_error": None}
        self.wake = threading.Event()
        self.last_error: str | None = None
        self.last_ack_at: float | None = None
        self.session = 0
        self.backlog: dict[str, dict] = {}
        self.connack: tuple | None = None
        self.subscribed, self.disconnect_reason, self.connected_once = False, None, False
        self.disconnect_code = 0
        self.strikes: dict[int, int] = {}
        self._limits(65535, None)
        self._reset()
        self._publish_snapshot(connected=False)

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
        return 0 if self.connected_once else attempt + 1

    def _limits(self, receive_max: int, max_packet: int | None) -> None:
        """Window and size limits: ours, lowered by what the broker announced in CONNACK."""
        self.window = max(1, min(self.cfg.max_inflight, receive_max))
        limit = self.cfg.max_payload_bytes if max_packet is None else min(self.cfg.max_payload_bytes, max_packet - HEADER_ROOM)
        self.max_payload = limit
        self.batch_bytes = min(getattr(self, "batch_bytes", limit), limit)  # shrinks survive reconnects
        self.chunk_bytes = max(512, min(self.cfg.chunk_bytes, limit - HEADER_ROOM))

    def _reset(self) -> None:
        """Forget all per-session state; the next session re-reads the outbox from the start."""
        self.inflight: dict[int, Sent] = {}
        self.awaiting: dict[int, Sent] = {}
        self.blobs: dict[int, BlobJob] = {}
        self.busy: set[int] = set()
        self.retired: set[int] = set()
        self.queue: dict[Lane, deque[Row]] = {lane: deque() for lane in Lane}
        self.cursor: dict[Lane, int] = {lane: 0 for lane in Lane}
        self.next_poll: dict[Lane, float] = {lane: 0.0 for lane in Lane}
        self.retry: dict[Lane, list[tuple[float, int, Row]]] = {lane: [] for lane in Lane}
        self.sent_ids: list[int] = []  # attempts/last_sent_at are written once per tick, not per publish
        self.inflight_ids: set[int] = set()  # message rows published and not yet PUBACKed
        self.early_acked: set[int] = set()  # ... of which the hub already acknowledged
        self.alert_floor: float = 0  # id of the oldest uncommitted alert row
        self.alert_gate = 0  # newest alert of the backlog at session start; 0 once all are committed

    def _session(self, stop: threading.Event) -> None:
        self.session = self.db.next_session()
        self.connack, self.subscribed, self.disconnect_reason, self.connected_once = None, False, None, False
        self.disconnect_code = 0
        self._reset()
        client = self._connect()
        try:
            self._serve(client, stop)
        finally:
            self._close(client, graceful=stop.is_set())

    def _connect(self) -> mqtt.Client:
        client = new_client(self.cfg, f"station-{self.station}", self.cfg.max_inflight)
        client.will_set(p.topic(self.station, "status"), self._status("offline"), qos=1, retain=True)
        client.on_connect, client.on_publish = self._on_connect, self._on_publish
        client.on_message, client.on_disconnect, client.on_subscribe = self._on_message, self._on_disconnect, self._on_subscribe
        client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s, clean_start=True, properties=connect_properties())
        self._wait(client, lambda: self.connack is not None, "CONNACK")
        self._limits(*connack_limits(self.connack[1]))
        self.connected_once = True
        client.subscribe([(p.topic(self.station, "ack"), 1), (p.topic(self.station, "cmd"), 1)])
        self._wait(client, lambda: self.subscribed, "SUBACK")
        self.alert_gate = self.db.newest_alert()
        self._update_alert_floor()
        log.info("sync.connected", station=self.station, session=self.session, window=self.window, max_payload=self.max_payload)
        self.last_progress = self.last_status = time.monotonic() - self.cfg.status_period_s
        return client

    def _wait(self, client: mqtt.Client, done, what: str) -> None:
        deadline = time.monotonic() + max(5.0, self.cfg.keepalive_s)
        while not done():
            self._loop(client, 0.05)
            if time.monotonic() > deadline:
                raise SessionLost(f"broker {self.cfg.host}:{self.cfg.port} sent no {what} within {self.cfg.keepalive_s} s")

    def _loop(self, client: mqtt.Client, timeout: float) -> None:
        loop_step(client, self.cfg, timeout, f"station {self.station}", lambda: (self.connack, self.disconnect_reason))

    def _serve(self, client: mqtt.Client, stop: threading.Event) -> None:
        self.client = client
        next_tick = 0.0
        while not stop.is_set():
            now = time.monotonic()
            self._fill(client, now)
            if now >= next_tick:
                self._tick(client, now)
                next_tick = now + 0.2
            self._loop(client, self.cfg.poll_s)

    def _close(self, client: mqtt.Client, graceful: bool) -> None:
        if graceful and self.connack is not None and self.disconnect_reason is None:
            info = client.publish(p.topic(self.station, "status"), self._status("offline"), qos=1, retain=True)
            end = time.monotonic() + 1.0
            while not info.is_published() and time.monotonic() < end and client.loop(0.05) == mqtt.MQTT_ERR_SUCCESS:
                pass
        client.disconnect()
        client.loop(0.01)
        self._flush_blob_progress()

    # ---- paho callbacks (run inside client.loop, on this thread) ---------------------------
    def _on_connect(self, client, userdata, flags, code, props) -> None:
        self.connack = (code, props)

    def _on_subscribe(self, client, userdata, mid, codes, props) -> None:
        bad = [c for c in codes if c.is_failure]
        if bad:
            self._error("sync.subscribe_refused", f"broker refused ack/cmd subscription: {reason_text(bad[0].value)}")
        self.subscribed = True

    def _on_disconnect(self, client, userdata, flags, code, props) -> None:
        self.disconnect_code = getattr(code, "value", 0x80)
        self.disconnect_reason = reason_text(self.disconnect_code)
        if self.disconnect_code in BLAME_CODES:
            self._blame_oldest()

    def _blame_oldest(self) -> None:
        """Count a strike against the oldest unacknowledged row; park it at BLAME_STRIKES."""
        first = next((s for s in self.inflight.values() if s.row is not None), None)
        if first is None:
            return
        if first.batch and len(first.batch) > 1:
            self._shrink_batches(f"the broker ended the session ({self.disconnect_reason})")
            return
        row = first.row
        self.strikes[row.id] = strikes = self.strikes.get(row.id, 0) + 1
        self.counters["puback_unreadable"] += 1
        if strikes >= BLAME_STRIKES:
            self.strikes.pop(row.id, None)
            self._park(row, f"the broker ended the session {strikes} times when it was the oldest unacknowledged "
                            f"publish ({self.disconnect_reason}), most likely over its size limit")

    def _on_publish(self, client, userdata, mid, code, props) -> None:
        sent = self.inflight.pop(mid, None)
        self.last_progress = time.monotonic()
        if sent is None or sent.row is None:
            return
        if sent.index is None:
            self.inflight_ids.difference_update(r.id for r in sent.rows)
        if code.is_failure:
            self._puback_failed(sent, code.value)
            return
        self.counters["puback_ok"] += 1
        if sent.index is not None:
            job = self.blobs.get(sent.row.id)
            if job is not None:
                job.inflight.discard(sent.index)
                job.last_sent = self.last_progress
            return
        for row in sent.rows:
            if row.id in self.early_acked:
                self.early_acked.discard(row.id)
                self.busy.discard(row.id)
            else:
                self.awaiting[row.id] = Sent(row, self.last_progress)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            if msg.topic.endswith("/ack"):
                self._on_ack(p.decode_model(p.AckMsg, msg.payload))
            elif msg.topic.endswith("/cmd"):
                self._on_cmd(p.decode_model(p.CmdMsg, msg.payload))
        except ProtocolError as exc:
            self.counters["bad_hub_message"] += 1
            self._error("sync.bad_hub_message", f"{msg.topic}: {exc}")

    # ---- acknowledgements --------------------------------------------------------------
    def _shrink_batches(self, why: str) -> None:
        """A batch was refused or blamed: halve the batch size limit (single rows are judged alone)."""
        self.batch_bytes = max(1024, self.batch_bytes // 2)
        self.counters["batch_shrunk"] += 1
        log.warning("sync.batch_shrunk", station=self.station, batch_bytes=self.batch_bytes, reason=why)

    def _puback_failed(self, sent: Sent, code: int) -> None:
        if sent.batch and len(sent.batch) > 1:
            self.counters[f"puback_0x{code:02x}"] += 1
            self._error("sync.publish_refused", f"broker refused a batch of {len(sent.batch)} rows: {reason_text(code)}")
            shrink = code in PARK_CODES
            if shrink:
                self._shrink_batches(reason_text(code))
            for row in sent.batch:
                self.early_acked.discard(row.id)
                self.busy.discard(row.id)
                row.attempts += 1
                delay = 0.0 if shrink else backoff_delay(row.attempts, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
                heapq.heappush(self.retry[row.lane], (time.monotonic() + delay, row.id, row))
            return
        row = sent.row
        self.counters[f"puback_0x{code:02x}"] += 1
        self._error("sync.publish_refused", f"broker refused {row.kind} row {row.id} (seq {row.seq}): {reason_text(code)}")
        if code in PARK_CODES:
            self._park(row, f"broker refused it: {reason_text(code)}")
            return
        delay = backoff_delay(row.attempts, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
        row.attempts += 1
        if sent.index is not None and row.id in self.blobs:
            job = self.blobs[row.id]
            job.inflight.discard(sent.index)
            job.todo.appendleft(sent.index)
            return
        self.busy.discard(row.id)
        heapq.heappush(self.retry[row.lane], (time.monotonic() + delay, row.id, row))

    def _on_ack(self, ack: p.AckMsg) -> None:
        commits: list[tuple[int, str]] = []
        for item in ack.acks:
            if item.status == "chunk" and item.msg in self.blobs:
                job = self.blobs[item.msg]
                job.done.add(item.index or 0)
                job.dirty = True
            elif item.status == "committed":
                commits.append((item.msg, item.record_id))
                self._forget(item.msg)
            elif item.status == "rejected":
                self._reject(item)
        if commits:
            self.counters["acked"] += self.db.retire(commits)
            self.last_ack_at = time.time()
            self._update_alert_floor()
        self._flush_blob_progress()

    def _forget(self, row_id: int) -> None:
        """The row is committed or parked: drop it from every in-memory state."""
        if self.awaiting.pop(row_id, None) is not None or self.blobs.pop(row_id, None) is not None:
            self.busy.discard(row_id)
            return
        if row_id in self.inflight_ids:
            self.early_acked.add(row_id)
            return
        self.busy.discard(row_id)
        self.retired.add(row_id)

    def _reject(self, item: p.AckItem) -> None:
        self.counters["rejected"] += 1
        self._error("sync.hub_rejected", f"hub rejected row {item.msg} (record {item.record_id}): {item.reason}")
        self.db.park(item.msg, f"hub rejected it: {item.reason}")
        self._forget(item.msg)

    def _on_cmd(self, cmd: p.CmdMsg) -> None:
        wanted = set(cmd.seqs)
        again = [s for s in self.awaiting.values() if s.row.seq in wanted and s.row.kind in ("inspection", "alert")]
        for sent in again:
            self._requeue(sent.row, "resend_requested")
        log.info("sync.resend_requested", station=self.station, asked=len(wanted), resent=len(again))

    def _requeue(self, row: Row, why: str) -> None:
        self.awaiting.pop(row.id, None)
        self.busy.discard(row.id)
        self.counters[why] += 1
        heapq.heappush(self.retry[row.lane], (0.0, row.id, row))

    def _park(self, row: Row, reason: str) -> None:
        self.counters["parked"] += 1
        self.db.park(row.id, reason)
        self._update_alert_floor()
        self.blobs.pop(row.id, None)
        self.busy.discard(row.id)
        self._error("sync.row_parked", f"{row.kind} row {row.id} (seq {row.seq}) parked: {reason}")

    # ---- sending -----------------------------------------------------------------------
    def _fill(self, client: mqtt.Client, now: float) -> None:
        if self.wake.is_set():
            self.wake.clear()
            self.next_poll = {lane: 0.0 for lane in Lane}
        while len(self.inflight) < self.window:
            if not self._send_next(client, now, self.sent_ids):
                break

    def _send_next(self, client: mqtt.Client, now: float, sent_ids: list[int]) -> bool:
        for lane in Lane:
            if lane == Lane.RECORD and (len(self.busy) >= self.cfg.max_unacked or self._behind_alerts(now)):
                continue
            sent = self._send_image(client, now, sent_ids) if lane == Lane.IMAGE else self._send_message(client, lane, now, sent_ids)
            if sent:
                return True
        return False

    def _behind_alerts(self, now: float) -> bool:
        """True while an alert that was in the backlog when this session began is uncommitted:
        after a backlog every alert arrives before routine records (the hub reads alerts on its own
        connection, so sending order alone cannot promise it). Later alerts overtake by lane only,
        so a steady trickle of alerts never stalls a draining backlog."""
        if self.alert_gate and self.alert_floor > self.alert_gate:
            self.alert_gate = 0
        return bool(self.alert_gate)

    def _update_alert_floor(self) -> None:
        if self.alert_gate:
            self.alert_floor = self.db.oldest_alert()

    def _next_row(self, lane: Lane, now: float) -> Row | None:
        heap = self.retry[lane]
        if heap and heap[0][0] <= now:
            return heapq.heappop(heap)[2]
        queue = self.queue[lane]
        if not queue and now >= self.next_poll[lane]:
            rows = self.db.fetch(lane, self.cursor[lane], PAGE)
            if rows:
                self.cursor[lane] = rows[-1].id
                queue.extend(rows)
                if lane == Lane.ALERT:
                    self._update_alert_floor()
            else:
                self.next_poll[lane] = now + self.cfg.poll_s
        return queue.popleft() if queue else None

    def _usable(self, row: Row) -> bool:
        if row.id in self.retired:
            self.retired.discard(row.id)
            return False
        return row.id not in self.busy

    def _usable_row(self, lane: Lane, now: float) -> Row | None:
        row = self._next_row(lane, now)
        while row is not None and not self._usable(row):
            row = self._next_row(lane, now)
        return row

    def _envelope(self, row: Row) -> bytes | None:
        """The row's message, or None (row parked) when it can never fit the size limit."""
        payload = p.encode_envelope(self.station, row.kind, row.id, row.seq, row.record_id, row.payload, time.time())
        if len(payload) + p.BATCH_OVERHEAD > self.max_payload:
            self.counters["too_large"] += 1
            self._park(row, f"message of {len(payload)} bytes exceeds the limit of {self.max_payload - p.BATCH_OVERHEAD} bytes")
            return None
        return payload

    def _send_message(self, client: mqtt.Client, lane: Lane, now: float, sent_ids: list[int]) -> bool:
        """One row, or on the record lane a batch of rows in one publish (one PUBACK, one hub transaction)."""
        limit = 1 if lane == Lane.ALERT else max(1, min(self.cfg.batch_max_rows, self.cfg.max_unacked - len(self.busy)))
        rows, parts, size = [], [], p.BATCH_OVERHEAD
        while len(rows) < limit and (row := self._usable_row(lane, now)) is not None:
            payload = self._envelope(row)
            if payload is None:
                if not rows:
                    return True
                continue
            if rows and size + len(payload) + 1 > self.batch_bytes:
                heapq.heappush(self.retry[lane], (0.0, row.id, row))
                break
            rows.append(row)
            parts.append(payload)
            size += len(payload) + 1
        if not rows:
            return False
        if len(rows) == 1:
            self._publish(client, p.topic(self.station, rows[0].kind), parts[0], Sent(rows[0], now))
        else:
            self._publish(client, p.topic(self.station, p.Kind.BATCH), p.encode_batch(self.station, parts),
                          Sent(rows[0], now, batch=rows))
        sent_ids.extend(r.id for r in rows)
        return True

    def _send_image(self, client: mqtt.Client, now: float, sent_ids: list[int]) -> bool:
        image_inflight = sum(len(j.inflight) for j in self.blobs.values())
        if image_inflight >= max(1, self.window // 2):
            return False
        job = next((j for j in self.blobs.values() if j.todo), None) or self._start_blob(now, sent_ids)
        if job is None:
            return False
        index = job.todo.popleft()
        try:
            name, payload = job.chunk(self.station, index)
        except OSError as exc:
            self._park(job.row, f"scan file {job.path} became unreadable: {exc}")
            return True
        job.inflight.add(index)
        job.last_sent = now
        self._publish(client, name, payload, Sent(job.row, now, index=index))
        self.counters["chunks_sent"] += 1
        return True

    def _start_blob(self, now: float, sent_ids: list[int]) -> BlobJob | None:
        if len(self.busy) >= self.cfg.max_unacked:
            return None
        row = self._next_row(Lane.IMAGE, now)
        while row is not None and not self._usable(row):
            row = self._next_row(Lane.IMAGE, now)
        if row is None:
            return None
        try:
            job = BlobJob.open(row, self.scans_dir, self.chunk_bytes, self.db.blob_progress(row.id, self.chunk_bytes))
        except ProtocolError as exc:
            self._park(row, str(exc))
            return None
        self.blobs[row.id] = job
        self.busy.add(row.id)
        sent_ids.append(row.id)
        return job

    def _publish(self, client: mqtt.Client, name: str, payload: bytes, sent: Sent) -> None:
        if not self.inflight:
            self.last_progress = sent.at
        info = client.publish(name, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise SessionLost(f"publish to {name} failed: {mqtt.error_string(info.rc)}")
        self.inflight[info.mid] = sent
        ids = [r.id for r in sent.rows]
        self.busy.update(ids)
        if sent.index is None:
            self.inflight_ids.update(ids)
            self.counters["published"] += len(ids)

    # ---- timers --------------------------------------------------------------------------
    def _tick(self, client: mqtt.Client, now: float) -> None:
        if self.inflight and now - self.last_progress > self.cfg.progress_timeout_s:
            self.counters["watchdog_restarts"] += 1
            raise SessionLost(f"{len(self.inflight)} publishes have had no PUBACK for {now - self.last_progress:.1f} s")
        for sent in [s for s in self.awaiting.values() if now - s.at > self.cfg.ack_timeout_s]:
            self._requeue(sent.row, "resend_timeout")
        for job in self.blobs.values():
            if not job.todo and not job.inflight and now - job.last_sent > self.cfg.ack_timeout_s:
                self.counters["resend_timeout"] += 1
                job.plan()
                job.last_sent = now
        self._update_alert_floor()
        if self.sent_ids:
            self.db.mark_sent(self.sent_ids, time.time())
            self.sent_ids = []
        if now - self.last_status >= self.cfg.status_period_s:
            self.last_status = now
            self.backlog = self.db.backlog()
            self._publish(client, p.topic(self.station, "status"), self._status("online"), Sent(None, now))
        self._publish_snapshot(connected=True)

    def _flush_blob_progress(self) -> None:
        for job in self.blobs.values():
            if job.dirty:
                self.db.save_blob_progress(job.row.id, job.chunk_bytes, job.done)
                job.dirty = False

    # ---- figures -------------------------------------------------------------------------
    def _status(self, state: str) -> bytes:
        backlog = {k: p.LaneBacklog(**{f: v for f, v in b.items() if f != "parked"}) for k, b in self.backlog.items()}
        return p.StatusMsg(station=self.station, state=state, session=self.session, at=time.time(), backlog=backlog,
                           last_ack_at=self.last_ack_at, last_error=self.last_error, counters=dict(self.counters)).model_dump_json().encode()

    def _error(self, event: str, text: str) -> None:
        self.last_error = text
        self.counters["errors"] += 1
        log.error(event, station=self.station, error=text)

    def _publish_snapshot(self, connected: bool) -> None:
        snap = {
            "connected": connected, "session": self.session, "window": self.window, "max_payload": self.max_payload,
            "inflight": len(self.inflight), "awaiting_ack": len(self.awaiting) + len(self.blobs),
            "backlog": self.backlog, "last_ack_at": self.last_ack_at, "last_error": self.last_error,
            "counters": dict(self.counters),
        }
        with self.lock:
            self.snapshot = snap
