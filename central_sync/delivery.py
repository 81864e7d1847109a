"""The sans-IO delivery core of the station's sync: events in, actions out, no I/O, no clock.

Rules (the driver in `sender.py` owns paho and SQLite and applies the actions):
- every outbox row known this session has one explicit RowState; every image chunk a ChunkState;
- at most `window` QoS 1 publishes lack a PUBACK (status messages included);
- at most `max_unacked` rows are in flight or broker-acked; the record lane and new images wait
  at that figure, alerts never do; at most `max_uploads` images are under way (the hub refuses to
  start more than its limit of incomplete uploads per station);
- lanes in priority order: alerts (one per publish), records (batched), images (chunks, at most
  half the window, so they never hold alerts back);
- a row is retired only on the hub's `committed` ack; a PUBACK only starts its ack timeout;
- alerts that were in the outbox when the session began are committed before any record is sent;
- after a session ends the driver sends SessionUp again: every unretired row is sent again (the
  hub writes idempotently). Batch shrinks and strikes against a row survive sessions.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from central_sync import protocol as p
from central_sync.config import SyncConfig
from central_sync.delivery_events import (
    BUSY, RESOLVED, Action, BlobOpened, BlobUnavailable, BrokerDisconnected, ChunkState, ChunkUnreadable, Event,
    Fetch, Fill, HubAck, Limits, MarkSent, Note, OpenBlob, Park, PubAck, Publish, PublishChunk, PublishStatus,
    Report, ResendRequest, Restart, Retire, RowsFetched, RowState, SaveProgress, SessionUp, Tick, Wake,
)
from central_sync.mqtt import backoff_delay, reason_text
from central_sync.outbox import Lane
from central_sync.station_db import Row

PAGE = 256
EARLY_MAX = 10_000  # rows acknowledged before they were read, kept for when they are
HEADER_ROOM = 1024
PARK_CODES = {0x95}  # retrying a packet the broker finds too large can never succeed
# Session ends that point at the oldest unacknowledged publish: paho cannot parse a PUBACK with
# 0x95 (Mosquitto's answer to a payload over message_size_limit) and drops the link as a protocol
# error; PUBACKs come in order, so the oldest publish still in flight is the one refused.
BLAME_CODES = {0x81, 0x82, 0x95}
BLAME_STRIKES = 2
RESEND_KINDS = ("inspection", "alert")  # what the hub's gap check asks for by seq
RESEND_DOUBLINGS = 5  # a row the hub does not acknowledge is resent after ack_timeout_s, then twice as long
                      # each time, up to 2**5 × ack_timeout_s (640 s at 20 s): a hub that is down while the
                      # broker queues for it does not get its queue filled with copies every 20 s


class _Blocked(enum.Enum):
    """The one value BLOCKED, as a type the checker can tell apart from a Track, a bool or None."""

    BLOCKED = enum.auto()


BLOCKED: Final = _Blocked.BLOCKED  # a Fetch or OpenBlob is out: stop filling until its answer arrives
Blocked: TypeAlias = Literal[_Blocked.BLOCKED]
Outgoing: TypeAlias = Publish | PublishChunk | PublishStatus  # the actions that take a publish ref


def limits_for(cfg: SyncConfig, receive_max: int = 65535, max_packet: int | None = None) -> Limits:
    """Our limits lowered by the Receive Maximum and Maximum Packet Size from CONNACK."""
    payload = cfg.max_payload_bytes if max_packet is None else min(cfg.max_payload_bytes, max_packet - HEADER_ROOM)
    return Limits(window=max(1, min(cfg.max_inflight, receive_max)), max_unacked=cfg.max_unacked,
                  max_uploads=cfg.max_uploads,
                  batch_max_rows=cfg.batch_max_rows, max_payload=payload,
                  chunk_bytes=max(512, min(cfg.chunk_bytes, payload - HEADER_ROOM)),
                  ack_timeout_s=cfg.ack_timeout_s, progress_timeout_s=cfg.progress_timeout_s, poll_s=cfg.poll_s,
                  status_period_s=cfg.status_period_s, backoff_min_s=cfg.reconnect_min_s,
                  backoff_max_s=cfg.reconnect_max_s)


@dataclass(slots=True)
class Track:
    """One outbox row read this session (rows acknowledged before they were read are in `Session.early`)."""

    row: Row
    state: RowState
    acked_at: float = 0.0
    resent: int = 0  # resends for want of the hub's acknowledgement (RESEND_DOUBLINGS)


@dataclass(slots=True)
class Pub:
    """One publish awaiting its PUBACK."""

    rows: tuple[int, ...]  # empty for a status message
    chunk: int | None = None  # image chunk index


@dataclass(slots=True)
class Upload:
    """The chunks of one image row."""

    row: Row
    chunks: list[ChunkState]
    last_sent: float = 0.0
    dirty: bool = False
    resent: int = 0  # resends of its unacknowledged chunks (RESEND_DOUBLINGS)

    def next_pending(self) -> int | None:
        return next((i for i, s in enumerate(self.chunks) if s is ChunkState.PENDING), None)

    def idle(self) -> bool:
        return all(s in (ChunkState.BROKER_ACKED, ChunkState.STORED) for s in self.chunks)

    def replan(self) -> None:
        """Send again every chunk the hub does not hold; if it holds all, the last (so it finishes)."""
        missing = [i for i, s in enumerate(self.chunks) if s is ChunkState.BROKER_ACKED]
        for i in missing or [len(self.chunks) - 1]:
            self.chunks[i] = ChunkState.PENDING

    def stored(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.chunks) if s is ChunkState.STORED)


@dataclass(slots=True)
class Session:
    """Everything that is forgotten when a session ends."""

    limits: Limits
    gate: int  # newest alert of the backlog at session start; 0 once no record waits for alerts
    last_progress: float
    tracks: dict[int, Track] = field(default_factory=dict)
    early: dict[int, tuple[RowState, str]] = field(default_factory=dict)  # resolved before read: (state, record id)
    pubs: dict[int, Pub] = field(default_factory=dict)  # in publish order
    uploads: dict[int, Upload] = field(default_factory=dict)
    queue: dict[Lane, deque[int]] = field(default_factory=lambda: {lane: deque() for lane in Lane})
    retry: dict[Lane, list[tuple[float, int]]] = field(default_factory=lambda: {lane: [] for lane in Lane})
    cursor: dict[Lane, int] = field(default_factory=lambda: {lane: 0 for lane in Lane})
    next_poll: dict[Lane, float] = field(default_factory=lambda: {lane: 0.0 for lane in Lane})
    busy: Counter = field(default_factory=Counter)  # rows per BUSY state
    gate_alerts: set[int] = field(default_factory=set)  # alerts at or below the gate, unresolved
    gate_listed: bool = False  # every alert at or below the gate has been read
    waiting_on: Fetch | OpenBlob | None = None  # the action whose answer is due
    sent_ids: list[int] = field(default_factory=list)
    image_inflight: int = 0
    status_due: bool = True
    last_status: float = 0.0


class Delivery:
    """The station's delivery rules; `handle(event)` returns the actions the driver must apply."""

    def __init__(self, station: str, limits: Limits, rng: random.Random | None = None) -> None:
        self.station = station
        self.rng = rng or random.Random()
        self.counters: Counter[str] = Counter()
        self.batch_bytes = limits.max_payload
        self.strikes: dict[int, int] = {}
        self.next_ref = 1
        self.now, self.wall = 0.0, 0.0
        self.s = Session(limits, gate=0, last_progress=0.0)
        self.out: list[Action] = []

    # ---- entry point ----------------------------------------------------------------------
    def handle(self, event: Event) -> list[Action]:
        self.out = []
        getattr(self, f"_on_{type(event).__name__}")(event)
        return self.out

    @property
    def limits(self) -> Limits:
        return self.s.limits

    def figures(self) -> dict:
        return {"window": self.limits.window, "max_payload": self.limits.max_payload, "inflight": len(self.s.pubs),
                "awaiting_ack": self.s.busy[RowState.BROKER_ACKED] + len(self.s.uploads)}

    def state(self, row_id: int) -> RowState | None:
        track = self.s.tracks.get(row_id)
        early = self.s.early.get(row_id)
        return (early[0] if early else None) if track is None else track.state

    # ---- session -------------------------------------------------------------------------
    def _on_SessionUp(self, ev: SessionUp) -> None:
        self.now = ev.now
        self.s = Session(ev.limits, gate=ev.newest_alert, last_progress=ev.now, last_status=ev.now)
        self.batch_bytes = min(self.batch_bytes, ev.limits.max_payload)

    def _on_BrokerDisconnected(self, ev: BrokerDisconnected) -> None:
        if ev.code not in BLAME_CODES:
            return
        first = next((pub for pub in self.s.pubs.values() if pub.rows), None)
        if first is None:
            return
        if len(first.rows) > 1:
            self._shrink_batches(f"the broker ended the session ({reason_text(ev.code)})")
            return
        track = self.s.tracks.get(first.rows[0])
        if track is None or track.state in RESOLVED:
            return
        self.strikes[track.row.id] = strikes = self.strikes.get(track.row.id, 0) + 1
        self.counters["puback_unreadable"] += 1
        if strikes >= BLAME_STRIKES:
            self.strikes.pop(track.row.id, None)
            self._park(track, f"the broker ended the session {strikes} times when it was the oldest unacknowledged "
                              f"publish ({reason_text(ev.code)}), most likely over its size limit")

    def _on_Wake(self, ev: Wake) -> None:
        self.s.next_poll = {lane: 0.0 for lane in Lane}

    # ---- reading the outbox ---------------------------------------------------------------
    def _on_RowsFetched(self, ev: RowsFetched) -> None:
        s = self.s
        s.waiting_on = None
        if ev.lane == Lane.ALERT and (len(ev.rows) < PAGE or (ev.rows and ev.rows[-1].id >= s.gate)):
            s.gate_listed = True
        if len(ev.rows) < PAGE:  # the lane is read to its end: look again after poll_s or a Wake
            s.next_poll[ev.lane] = self.now + s.limits.poll_s
        for row in ev.rows:
            s.cursor[ev.lane] = max(s.cursor[ev.lane], row.id)
            early = s.early.pop(row.id, None)
            if (early is not None and early[1] == row.record_id) or s.tracks.pop(row.id, None) is not None:
                continue  # acknowledged before it was read
            s.tracks[row.id] = Track(row, RowState.PENDING)
            s.queue[ev.lane].append(row.id)
            if ev.lane == Lane.ALERT and row.id <= s.gate:
                s.gate_alerts.add(row.id)
        self._fill()

    def _take(self, lane: Lane) -> Track | Blocked | None:
        """The next PENDING row of `lane` (retries first), None, or BLOCKED after asking to fetch."""
        s = self.s
        heap, queue = s.retry[lane], s.queue[lane]
        while True:
            if heap and heap[0][0] <= self.now:
                row_id = heapq.heappop(heap)[1]
            elif queue:
                row_id = queue.popleft()
            elif self.now >= s.next_poll[lane]:
                return self._fetch(lane)
            else:
                return None
            track = s.tracks.get(row_id)
            if track is not None and track.state is RowState.PENDING:
                return track
            if track is not None and track.state in RESOLVED:
                del s.tracks[row_id]

    def _fetch(self, lane: Lane) -> Blocked:
        fetch = Fetch(lane, self.s.cursor[lane], PAGE)
        self.s.waiting_on = fetch
        self.out.append(fetch)
        return BLOCKED

    # ---- sending --------------------------------------------------------------------------
    def _on_Fill(self, ev: Fill) -> None:
        self.now, self.wall = ev.now, ev.wall
        self._fill()

    def _fill(self) -> None:
        s = self.s
        while s.waiting_on is None and len(s.pubs) < s.limits.window:
            if s.status_due:
                s.status_due = False
                self._publish(PublishStatus(self._ref()), Pub(()))
                continue
            if not self._send_next():
                return

    def _send_next(self) -> bool:
        for lane in Lane:
            if lane == Lane.RECORD and (self._unacked() >= self.limits.max_unacked or self._behind_alerts()):
                continue
            sent = self._send_image() if lane == Lane.IMAGE else self._send_message(lane)
            if sent is BLOCKED:
                return False
            if sent:
                return True
        return False

    def _unacked(self) -> int:
        return self.s.busy[RowState.IN_FLIGHT] + self.s.busy[RowState.BROKER_ACKED]

    def _behind_alerts(self) -> bool:
        """True while an alert that was in the outbox when this session began is unresolved:
        after a backlog every alert arrives before routine records (the hub reads alerts on its own
        connection, so sending order alone cannot promise it). Later alerts overtake by lane only,
        so a steady trickle of alerts never stalls a draining backlog."""
        s = self.s
        if s.gate and s.gate_listed and not s.gate_alerts:
            s.gate = 0
        return bool(s.gate)

    def _send_message(self, lane: Lane) -> bool | Blocked:
        """One row, or on the record lane a batch of rows in one publish (one PUBACK, one hub transaction)."""
        lim = self.limits
        limit = 1 if lane == Lane.ALERT else max(1, min(lim.batch_max_rows, lim.max_unacked - self._unacked()))
        if len(self.s.queue[lane]) < limit and self.now >= self.s.next_poll[lane]:
            return self._fetch(lane)  # read ahead, so a batch is not cut at the end of a page
        picked: list[tuple[Track, bytes]] = []
        size = p.BATCH_OVERHEAD
        while len(picked) < limit:
            track = self._take(lane)
            if track is BLOCKED:
                self.s.queue[lane].extendleft(t.row.id for t, _ in reversed(picked))
                return BLOCKED
            if track is None:
                break
            payload = self._envelope(track)
            if payload is None:
                if not picked:
                    return True
                continue
            if picked and size + len(payload) + 1 > self.batch_bytes:
                heapq.heappush(self.s.retry[lane], (0.0, track.row.id))
                break
            picked.append((track, payload))
            size += len(payload) + 1
        if not picked:
            return False
        rows = tuple(t.row.id for t, _ in picked)
        if len(picked) == 1:
            name, payload = p.topic(self.station, picked[0][0].row.kind), picked[0][1]
        else:
            name, payload = p.topic(self.station, p.Kind.BATCH), p.encode_batch(self.station, [b for _, b in picked])
        self._publish(Publish(self._ref(), name, payload, rows), Pub(rows))
        self.counters["published"] += len(rows)
        return True

    def _envelope(self, track: Track) -> bytes | None:
        """The row's message, or None (row parked) when it can never fit the size limit."""
        row = track.row
        payload = p.encode_envelope(self.station, row.kind, row.id, row.seq, row.record_id, row.payload, self.wall)
        limit = self.limits.max_payload - p.BATCH_OVERHEAD
        if len(payload) > limit:
            self.counters["too_large"] += 1
            self._park(track, f"message of {len(payload)} bytes exceeds the limit of {limit} bytes")
            return None
        return payload

    def _send_image(self) -> bool | Blocked:
        s = self.s
        if s.image_inflight >= max(1, s.limits.window // 2):
            return False
        pending = ((u, u.next_pending()) for u in s.uploads.values())
        upload, index = next(((u, i) for u, i in pending if i is not None), (None, None))
        if upload is None or index is None:
            return self._start_upload()
        upload.chunks[index] = ChunkState.IN_FLIGHT
        upload.last_sent = self.now
        s.image_inflight += 1
        self.counters["chunks_sent"] += 1
        self._publish(PublishChunk(self._ref(), upload.row.id, index), Pub((upload.row.id,), chunk=index))
        return True

    def _start_upload(self) -> bool | Blocked:
        if self._unacked() >= self.limits.max_unacked or len(self.s.uploads) >= self.limits.max_uploads:
            return False
        track = self._take(Lane.IMAGE)
        if track is None:
            return False
        if track is BLOCKED:
            return BLOCKED
        blob = OpenBlob(track.row, self.limits.chunk_bytes)
        self.s.waiting_on = blob
        self.out.append(blob)
        return BLOCKED

    def _on_BlobOpened(self, ev: BlobOpened) -> None:
        s = self.s
        s.waiting_on = None
        track = s.tracks[ev.row_id]
        upload = Upload(track.row, [ChunkState.STORED if i in ev.stored else ChunkState.PENDING for i in range(ev.count)],
                        last_sent=self.now)
        if upload.next_pending() is None:
            upload.replan()
        s.uploads[ev.row_id] = upload
        self._move(track, RowState.IN_FLIGHT)
        s.sent_ids.append(ev.row_id)
        self._fill()

    def _on_BlobUnavailable(self, ev: BlobUnavailable) -> None:
        self.s.waiting_on = None
        self._park(self.s.tracks[ev.row_id], ev.reason)
        self._fill()

    def _on_ChunkUnreadable(self, ev: ChunkUnreadable) -> None:
        pub = self.s.pubs.pop(ev.ref, None)
        if pub is None:
            return
        self.s.image_inflight -= 1
        track = self.s.tracks.get(pub.rows[0])
        if track is not None and track.state not in RESOLVED:
            self._park(track, ev.reason)

    def _publish(self, action: Outgoing, pub: Pub) -> None:
        s = self.s
        if not s.pubs:
            s.last_progress = self.now
        s.pubs[action.ref] = pub
        if pub.chunk is None:
            for row_id in pub.rows:
                self._move(s.tracks[row_id], RowState.IN_FLIGHT)
            s.sent_ids.extend(pub.rows)
        self.out.append(action)

    def _ref(self) -> int:
        self.next_ref += 1
        return self.next_ref - 1

    # ---- broker acknowledgements -----------------------------------------------------------
    def _on_PubAck(self, ev: PubAck) -> None:
        s = self.s
        self.now = max(self.now, ev.now)
        s.last_progress = ev.now
        pub = s.pubs.pop(ev.ref, None)
        if pub is None or not pub.rows:
            return
        if pub.chunk is not None:
            s.image_inflight -= 1
        if ev.code >= 0x80:
            self._puback_failed(pub, ev.code)
        elif pub.chunk is not None:
            self._chunk_acked(pub.rows[0], pub.chunk, ev.now)
        else:
            self.counters["puback_ok"] += 1
            for track in (s.tracks.get(row_id) for row_id in pub.rows):
                if track is not None and track.state is RowState.IN_FLIGHT:
                    self._move(track, RowState.BROKER_ACKED)
                    track.acked_at = ev.now
        if pub.chunk is None:
            for row_id in pub.rows:  # resolved while on the wire: nothing refers to them any more
                if (track := s.tracks.get(row_id)) is not None and track.state in RESOLVED:
                    del s.tracks[row_id]

    def _chunk_acked(self, row_id: int, chunk: int, now: float) -> None:
        self.counters["puback_ok"] += 1
        upload = self.s.uploads.get(row_id)
        if upload is not None and upload.chunks[chunk] is ChunkState.IN_FLIGHT:
            upload.chunks[chunk] = ChunkState.BROKER_ACKED
            upload.last_sent = now

    def _puback_failed(self, pub: Pub, code: int) -> None:
        self.counters[f"puback_0x{code:02x}"] += 1
        if len(pub.rows) > 1:
            self._batch_refused(pub, code)
            return
        track = self.s.tracks.get(pub.rows[0])
        if track is None or track.state in RESOLVED:
            return
        row = track.row
        self._report("sync.publish_refused", f"broker refused {row.kind} row {row.id} (seq {row.seq}): {reason_text(code)}")
        if code in PARK_CODES:
            self._park(track, f"broker refused it: {reason_text(code)}")
            return
        delay = self._backoff(row.attempts)
        row.attempts += 1
        if pub.chunk is not None:
            upload = self.s.uploads.get(row.id)
            if upload is not None and upload.chunks[pub.chunk] is ChunkState.IN_FLIGHT:
                upload.chunks[pub.chunk] = ChunkState.PENDING
            return
        self._retry_later(track, self.now + delay)

    def _batch_refused(self, pub: Pub, code: int) -> None:
        self._report("sync.publish_refused", f"broker refused a batch of {len(pub.rows)} rows: {reason_text(code)}")
        shrink = code in PARK_CODES
        if shrink:
            self._shrink_batches(reason_text(code))
        for row_id in pub.rows:
            track = self.s.tracks.get(row_id)
            if track is None or track.state is not RowState.IN_FLIGHT:
                continue
            track.row.attempts += 1
            self._retry_later(track, self.now + (0.0 if shrink else self._backoff(track.row.attempts)))

    def _shrink_batches(self, why: str) -> None:
        """A batch was refused or blamed: halve the batch size limit (single rows are judged alone)."""
        self.batch_bytes = max(1024, self.batch_bytes // 2)
        self.counters["batch_shrunk"] += 1
        self.out.append(Note("sync.batch_shrunk", (("batch_bytes", self.batch_bytes), ("reason", why)), warning=True))

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.limits.backoff_min_s, self.limits.backoff_max_s, self.rng)

    # ---- hub acknowledgements and requests -------------------------------------------------
    def _on_HubAck(self, ev: HubAck) -> None:
        commits: list[tuple[int, str]] = []
        for item in ev.items:
            if item.status == "chunk":
                self._chunk_stored(item.msg, item.index or 0)
            elif item.status == "committed" and self._matches(item):
                commits.append((item.msg, item.record_id))
                self._resolve(item.msg, RowState.COMMITTED, item.record_id)
            elif item.status == "rejected" and self._matches(item):
                self.counters["rejected"] += 1
                self._report("sync.hub_rejected", f"hub rejected row {item.msg} (record {item.record_id}): {item.reason}")
                self.out.append(Park(item.msg, item.record_id, f"hub rejected it: {item.reason}"))
                self._resolve(item.msg, RowState.REJECTED, item.record_id)
        if commits:
            self.out.append(Retire(tuple(commits)))
        for upload in self.s.uploads.values():
            if upload.dirty:
                upload.dirty = False
                self.out.append(SaveProgress(upload.row.id, self.limits.chunk_bytes, upload.stored()))

    def _matches(self, item: p.AckItem) -> bool:
        """An ack naming a known row with another record id is not about that row."""
        track = self.s.tracks.get(item.msg)
        if track is None or track.row.record_id == item.record_id:
            return True
        self.counters["ack_mismatch"] += 1
        return False

    def _chunk_stored(self, row_id: int, index: int) -> None:
        upload = self.s.uploads.get(row_id)
        if upload is None or not 0 <= index < len(upload.chunks) or upload.chunks[index] is ChunkState.STORED:
            return
        upload.chunks[index] = ChunkState.STORED
        upload.dirty = True
        upload.resent = 0  # the hub is storing it: its next silence is waited for afresh

    def _resolve(self, row_id: int, state: RowState, record_id: str = "") -> None:
        """The row is committed, rejected or parked: it is never sent again this session."""
        s = self.s
        track = s.tracks.get(row_id)
        if track is None:
            # acknowledged before it was read: skipped when read only if it is that record's row, and only so many
            # kept (an ack naming rows the station never wrote must not hold back the rows it writes later)
            if len(s.early) < EARLY_MAX:
                s.early.setdefault(row_id, (state, record_id))
            else:
                self.counters["early_dropped"] += 1
            return
        if track.state in RESOLVED:
            return
        before = track.state
        s.gate_alerts.discard(row_id)
        upload = s.uploads.pop(row_id, None)
        self._move(track, state)
        if before is RowState.BROKER_ACKED or upload is not None:
            del s.tracks[row_id]  # nothing refers to it any more; a queue or a publish drops it later

    def _on_ResendRequest(self, ev: ResendRequest) -> None:
        wanted = set(ev.seqs)
        again = [t for t in self.s.tracks.values() if t.state is RowState.BROKER_ACKED and t.row.seq in wanted
                 and t.row.kind in RESEND_KINDS]
        for track in again:
            self._requeue(track, "resend_requested")
        self.out.append(Note("sync.resend_requested", (("asked", len(wanted)), ("resent", len(again)))))

    def _requeue(self, track: Track, why: str) -> None:
        self.counters[why] += 1
        self._retry_later(track, 0.0)

    def _retry_later(self, track: Track, due: float) -> None:
        self._move(track, RowState.PENDING)
        heapq.heappush(self.s.retry[Lane(track.row.lane)], (due, track.row.id))

    def _park(self, track: Track, reason: str) -> None:
        row = track.row
        self.counters["parked"] += 1
        self.out.append(Park(row.id, row.record_id, reason))
        self._report("sync.row_parked", f"{row.kind} row {row.id} (seq {row.seq}) parked: {reason}")
        self._resolve(row.id, RowState.PARKED)

    # ---- timers --------------------------------------------------------------------------
    def _on_Tick(self, ev: Tick) -> None:
        s, lim = self.s, self.limits
        self.now = ev.now
        if s.pubs and ev.now - s.last_progress > lim.progress_timeout_s:
            self.counters["watchdog_restarts"] += 1
            self.out.append(Restart(f"{len(s.pubs)} publishes have had no PUBACK for {ev.now - s.last_progress:.1f} s"))
            return
        late = [t for t in s.tracks.values() if t.state is RowState.BROKER_ACKED and ev.now - t.acked_at > self._patience(t.resent)]
        for track in late:
            track.resent += 1
            self._requeue(track, "resend_timeout")
        for upload in s.uploads.values():
            if upload.idle() and ev.now - upload.last_sent > self._patience(upload.resent):
                self.counters["resend_timeout"] += 1
                upload.resent += 1
                upload.replan()
                upload.last_sent = ev.now
        if s.sent_ids:
            self.out.append(MarkSent(tuple(s.sent_ids)))
            s.sent_ids = []
        if ev.now - s.last_status >= lim.status_period_s:
            s.last_status = ev.now
            s.status_due = True

    def _patience(self, resent: int) -> float:
        """How long a row (or an upload's chunks) waits for the hub after the broker took it, having been
        resent `resent` times for want of an acknowledgement."""
        return self.limits.ack_timeout_s * 2 ** min(resent, RESEND_DOUBLINGS)

    # ---- state changes ---------------------------------------------------------------------
    def _move(self, track: Track, state: RowState) -> None:
        if track.state in BUSY:
            self.s.busy[track.state] -= 1
        if state in BUSY:
            self.s.busy[state] += 1
        track.state = state

    def _report(self, event: str, text: str) -> None:
        self.counters["errors"] += 1
        self.out.append(Report(event, text))
