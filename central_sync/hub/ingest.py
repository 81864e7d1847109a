"""Turns a batch of MQTT messages into one database transaction and the acks that follow it.

Every malformed or mismatched message is counted and logged in one sentence; none stops ingest.
A message whose envelope can be identified but is unacceptable (bad body, station differing from
its topic, a row of another station, data the database cannot store, beyond the hub's limits) is
answered `rejected` so the station parks it and raises an alarm; the rest of the batch is committed.
A chunk that would start an upload past the station's limit of incomplete ones is not answered (counted
`uploads_deferred`): the station sends it again after its ack timeout, once an upload has finished.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from central_sync import protocol as p
from central_sync.errors import WireFormatError
from central_sync.hub.search import INSERT_IDENTITY, identity_rows
from central_sync.hub import search_reports
from central_sync.hub.store import (INSERT_CHUNK, INSERT_REVIEW, INSERT_TIP, UPSERT_RECORD, UPSERT_STATION,
                                    UPSERT_UPDATED_RECORD, UPSERT_UPLOAD, HubStore, Step, Write, unstorable)
from central_sync.schema import InspectionRecord, Verdict

log = structlog.get_logger("central_sync.hub")
MIN_CHUNK_BYTES = 512  # the smallest chunk a station sends (SyncConfig.chunk_bytes)
MAX_ID_CHARS = 128  # a record id (stations send 36-character UUIDs); an index key must stay small


@dataclass(frozen=True)
class Limits:
    """What one message may make the hub store: a record's JSON, an image and its parts, an upload's age."""

    record_bytes: int = 256 * 1024
    image_bytes: int = 256 * 1024 * 1024
    image_chunks: int = 65536
    upload_age_s: float = 7 * 24 * 3600.0
    uploads_per_station: int = 64  # incomplete image uploads one station may hold at once


@dataclass(eq=False)
class _Pending:
    """A message's write waiting for the transaction; `ack` becomes its answer once settled."""

    station: str
    write: Write
    ack: p.AckItem | None  # None: a status, answered to nobody
    refusal: str  # the reason sent when the row is another station's
    counter: str
    blob: p.BlobChunkHeader | None = None


@dataclass
class _Work:
    writes: list[_Pending] = field(default_factory=list)
    acks: dict[str, list[p.AckItem | _Pending]] = field(default_factory=lambda: defaultdict(list))
    blobs: dict[str, tuple[str, p.BlobChunkHeader]] = field(default_factory=dict)


CLOCK_AHEAD_S = 300.0  # a status dated further ahead of the hub's clock is kept as received now


class Ingestor:
    """Decode, commit, then acknowledge; `send(topic, payload)` hands acks to the MQTT thread."""

    def __init__(self, store: HubStore, hub_id: str, send: Callable[[str, bytes], None],
                 max_bytes: Callable[[], int] = lambda: 256 * 1024, limits: Limits = Limits()) -> None:
        self.store, self.hub_id, self.send, self.max_bytes, self.limits = store, hub_id, send, max_bytes, limits
        self.counters: Counter[str] = Counter()
        self.stations: set[str] = set()  # stations this worker has seen (for the gap check)
        self._ahead: Counter[str] = Counter()  # statuses dated ahead of the hub's clock, per station

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        work = _Work()
        now = time.time()
        for name, payload in messages:
            try:
                self._decode(work, name, payload, now)
            except WireFormatError as exc:
                self.counters["malformed"] += 1
                log.warning("hub.malformed", topic=name, error=str(exc))
        results = self.store.commit([pending.write for pending in work.writes])
        for pending, result in zip(work.writes, results):
            self._settle(work, pending, result)
        for station, header in work.blobs.values():
            self._finish_blob(work, station, header)
        for station, entries in work.acks.items():
            items = [e.ack if isinstance(e, _Pending) else e for e in entries]
            for payload in p.encode_acks(self.hub_id, [i for i in items if i is not None], self.max_bytes()):
                self.send(p.topic(station, "ack"), payload)

    def housekeep(self, now: float | None = None) -> int:
        """Drop the chunks of uploads left incomplete longer than the limit; the number of uploads pruned."""
        pruned = self.store.prune_uploads((time.time() if now is None else now) - self.limits.upload_age_s)
        if pruned:
            self.counters["uploads_pruned"] += pruned
            log.warning("hub.uploads_pruned", count=pruned, older_than_s=self.limits.upload_age_s)
        return pruned

    def _add(self, work: _Work, station: str, steps: list[Step], ack: p.AckItem | None, refusal: str, counter: str,
             blob: p.BlobChunkHeader | None = None) -> None:
        """Queue one message's write, or reject it now when the database could not store it."""
        write = Write(tuple(steps))
        why = self._unstorable(write)
        if why is None:
            pending = _Pending(station, write, ack, refusal, counter, blob)
            work.writes.append(pending)
            work.acks[station].append(pending)
        elif ack is None:
            self.counters["malformed"] += 1
            log.warning("hub.malformed", station=station, error=why)
        else:
            self._reject(work, station, ack, why)

    def _unstorable(self, write: Write) -> str | None:
        """Why the write is over the record limit or cannot be stored at all, or None."""
        longest = max((len(v) for step in write.steps for v in step.args if isinstance(v, str)), default=0)
        if longest > self.limits.record_bytes:
            return f"its text of {longest} characters exceeds the hub's limit of {self.limits.record_bytes}"
        return unstorable(write)

    def _settle(self, work: _Work, pending: _Pending, result: str) -> None:
        """After the transaction: count what was written; turn a refused write's ack into a rejection."""
        if result == "":
            self.counters[pending.counter] += 1
            if pending.blob is not None:
                work.blobs[pending.blob.sha256] = (pending.station, pending.blob)
            return
        if result == "foreign" and pending.blob is not None and self._deferred(pending.station, pending.blob):
            pending.ack = None
            return
        reason = pending.refusal if result == "foreign" else result
        self.counters["refused_foreign" if result == "foreign" else "refused_by_database"] += 1
        log.warning("hub.refused", station=pending.station, msg=pending.ack and pending.ack.msg, reason=reason)
        if pending.ack is not None:
            pending.ack = pending.ack.model_copy(update={"status": "rejected", "index": None, "reason": reason[:500]})

    def _decode(self, work: _Work, name: str, payload: bytes, now: float) -> None:
        station, leaf = p.parse_topic(name)
        self.stations.add(station)
        kind = leaf[0]
        if leaf == ["status"]:
            self._status(work, station, payload, now)
        elif kind in (p.Kind.INSPECTION, p.Kind.ALERT, p.Kind.REVIEW, p.Kind.TIP) and len(leaf) == 1:
            self._message(work, station, kind, payload, now)
        elif kind == p.Kind.BATCH and len(leaf) == 1:
            self._batch(work, station, payload, now)
        elif kind == p.Kind.BLOB and len(leaf) == 3:
            self._chunk(work, station, leaf, payload)
        else:
            raise WireFormatError(f"topic {name!r} names no known message")

    def _reject(self, work: _Work, station: str,
                head: p.EnvelopeHead | p.Message | p.BlobChunkHeader | p.AckItem | None, reason: str) -> None:
        """Answer `rejected` when the message names its row; otherwise it is only malformed."""
        if head is None:
            self.counters["malformed"] += 1
            log.warning("hub.malformed", station=station, error=reason)
            return
        self.counters["rejected"] += 1
        log.warning("hub.rejected", station=station, msg=head.msg, reason=reason)
        work.acks[station].append(p.AckItem(msg=head.msg, record_id=head.record_id, status="rejected", reason=reason[:500]))

    def _batch(self, work: _Work, station: str, payload: bytes, now: float) -> None:
        claimed, items = p.decode_batch(payload)
        for msg, head, error in items:
            if msg is None:
                self._reject(work, station, head, error)
            elif claimed != station:
                self._reject(work, station, msg, f"batch from topic station {station!r} claims station {claimed!r}")
            else:
                self._accept(work, station, msg.kind, msg, now)

    def _message(self, work: _Work, station: str, kind: str, payload: bytes, now: float) -> None:
        try:
            msg = p.decode_message(kind, payload)
        except WireFormatError as exc:
            self._reject(work, station, p.decode_head(payload), str(exc))
            return
        if msg.kind != kind:
            self._reject(work, station, msg, f"{msg.kind} message on the {kind} topic")
            return
        self._accept(work, station, kind, msg, now)

    def _accept(self, work: _Work, station: str, kind: str, msg: p.Message, now: float) -> None:
        body_station = msg.body.station if isinstance(msg.body, (InspectionRecord, p.TipOutcome)) else msg.station
        if station != msg.station or msg.station != body_station:
            self._reject(work, station, msg, f"{kind} from topic station {station!r} claims station "
                         f"{msg.station!r} (body {body_station!r})")
            return
        if (when := p.time_problem(msg.body)) is not None:
            self._reject(work, station, msg, f"{kind} {msg.record_id[:MAX_ID_CHARS]!r}: {when}")
            return
        body_id = msg.body.id if isinstance(msg.body, InspectionRecord) else msg.record_id
        if len(msg.record_id) > MAX_ID_CHARS or body_id != msg.record_id:
            self._reject(work, station, msg, f"{kind} names record {msg.record_id[:MAX_ID_CHARS]!r} of "
                         f"{len(msg.record_id)} characters (at most {MAX_ID_CHARS}) with a body for {body_id[:MAX_ID_CHARS]!r}")
            return
        ack = p.AckItem(msg=msg.msg, record_id=msg.record_id, status="committed")
        refusal = (f"{kind} message {msg.msg} from station {station!r} names record {msg.record_id!r}, "
                   "which the hub holds for another station, or as another record (another seq or decision time)")
        if isinstance(msg, p.RecordMsg):
            steps, counter = [Step(UPSERT_RECORD, _record_row(msg.body, kind == p.Kind.ALERT, now, self.hub_id, msg.msg)),
                              *_identity_steps(msg.body), *_search_steps(msg.body, now)], "records"
        elif isinstance(msg, p.TipMsg):
            if msg.body.record_id != msg.record_id:
                self._reject(work, station, msg, f"TIP outcome for item {msg.body.record_id!r} sent as item {msg.record_id!r}")
                return
            steps, counter = [Step(INSERT_TIP, _tip_row(msg.body, now, self.hub_id) + (msg.record_id, station))], "tip_outcomes"
        elif (r := msg.review()) is None and isinstance(msg.body, InspectionRecord) and (
                msg.body.route is not None or msg.body.search_reports or msg.body.history is not None):
            steps = [Step(UPSERT_UPDATED_RECORD, _record_row(msg.body, False, now, self.hub_id, msg.msg)),
                     *_identity_steps(msg.body), *_search_steps(msg.body, now)]
            counter = ("search_reports" if msg.body.search_reports else
                       "histories" if msg.body.history is not None else "routes")
        elif r is None:
            self._reject(work, station, msg, f"review of record {msg.record_id} carries no review, route, search report "
                         "or history")
            return
        else:
            steps, counter = [Step(INSERT_REVIEW, (msg.record_id, station, r.officer, r.decided_at.timestamp(), r.outcome,
                                                   r.model_dump_json(), now, msg.record_id, station))], "reviews"
            if isinstance(msg.body, InspectionRecord):
                steps[:0] = [Step(UPSERT_UPDATED_RECORD, _record_row(msg.body, False, now, self.hub_id, msg.msg)),
                             *_identity_steps(msg.body), *_search_steps(msg.body, now)]
        self._add(work, station, steps, ack, refusal, counter)

    def _chunk(self, work: _Work, station: str, leaf: list[str], payload: bytes) -> None:
        header, data = p.split_chunk(payload)
        if (problem := p.chunk_hash_problem(header, data)) is not None:
            self._reject(work, station, header, problem)  # it names its row: the station parks it, not resends it
            return
        if header.station != station or header.sha256 != leaf[1] or str(header.index) != leaf[2] or header.index >= header.count:
            self._reject(work, station, None, f"blob chunk on {'/'.join(leaf)} from {station!r} has header "
                         f"station {header.station!r} sha {header.sha256[:12]} index {header.index}/{header.count}")
            return
        if (why := self._over_limits(header, len(data))) is not None:
            self._reject(work, station, header, why)
            return
        upload = (header.sha256, station, header.count, header.size, time.time(),
                  station, self.limits.uploads_per_station, header.sha256)
        steps = [Step(UPSERT_UPLOAD, upload),
                 Step(INSERT_CHUNK, (header.sha256, header.index, header.count, header.size, data, header.sha256, station),
                      owned=False)]
        refusal = (f"image {header.sha256[:12]} chunk {header.index} of {header.count} from station {station!r} belongs to "
                   "an upload of another station, of another count or size, or one pruned incomplete")
        ack = p.AckItem(msg=header.msg, record_id=header.record_id, status="chunk", index=header.index)
        self._add(work, station, steps, ack, refusal, "chunks", blob=header)

    def _deferred(self, station: str, header: p.BlobChunkHeader) -> bool:
        """Whether a refused chunk was refused only because its upload would pass the station's limit of incomplete
        ones (no upload of it that another station holds, of another shape, or pruned): counted, not answered."""
        if self.store.query("SELECT count(*) FROM blob_uploads WHERE sha256 = ? AND (station <> ? OR count <> ?"
                            " OR size <> ? OR pruned <> 0)", (header.sha256, station, header.count, header.size))[0][0]:
            return False
        self.counters["uploads_deferred"] += 1
        log.warning("hub.upload_deferred", station=station, msg=header.msg,
                    reason=f"image {header.sha256[:12]} chunk {header.index} from station {station!r} would start an"
                           f" upload past its limit of {self.limits.uploads_per_station} incomplete ones: not answered,"
                           " the station sends it again later")
        return True

    def _over_limits(self, header: p.BlobChunkHeader, length: int) -> str | None:
        """Why an announced image or chunk is beyond what the hub keeps, or None."""
        lim, sha = self.limits, header.sha256[:12]
        if header.size > lim.image_bytes:
            return f"image {sha} announces {header.size} bytes, over the hub's limit of {lim.image_bytes}"
        if header.count > lim.image_chunks:
            return f"image {sha} announces {header.count} chunks, over the hub's limit of {lim.image_chunks}"
        # count = ceil(size / chunk_bytes), so every chunk is under size / (count - 1) and the chunks of one
        # upload stay under twice its size
        if header.count > max(1, -(-header.size // MIN_CHUNK_BYTES)) or length > header.size or \
                (header.count > 1 and length * (header.count - 1) >= header.size):
            return (f"image {sha} of {header.size} bytes cannot have {header.count} chunks with one of {length} bytes"
                    f" (chunks are at least {MIN_CHUNK_BYTES} bytes)")
        return None

    def _status(self, work: _Work, station: str, payload: bytes, now: float) -> None:
        status = p.decode_model(p.StatusMsg, payload)
        if status.station != station:
            raise WireFormatError(f"status on topic of station {station!r} claims station {status.station!r}")
        at = status.at
        if at > now + CLOCK_AHEAD_S:  # the board would keep it online and ignore its later statuses of the session
            self.counters["status_clock_ahead"] += 1
            self._ahead[station] += 1
            if self._ahead[station] in (1, 2, 4) or self._ahead[station] % 100 == 0:
                log.warning("hub.status_clock_ahead", station=station, times=self._ahead[station],
                            error=f"station {station} dates its status {at - now:.0f} s ahead of the hub's clock "
                                  f"({at:.0f} against {now:.0f}): kept as received now; its records' times are suspect")
            at = now
        row = (station, status.state, status.session, payload.decode(), at, now)
        self._add(work, station, [Step(UPSERT_STATION, row, owned=False)], None, "", "statuses")

    def _finish_blob(self, work: _Work, station: str, header: p.BlobChunkHeader) -> None:
        """After the chunks are committed: store the image once all are there (any hub may finish it)."""
        stored, held = self.store.blob_state(header.sha256)
        if not stored and held >= header.count:
            stored = self.store.assemble(header.sha256, station)
            self.counters["images" if stored else "image_hash_mismatch"] += 1
            if not stored:
                self._reject(work, station, header, f"image {header.sha256} reassembled from {held} chunks has another hash")
                return
        elif stored and held:
            self.store.drop_chunks(header.sha256)  # a late re-send of a chunk of a finished image
        if stored:
            work.acks[station].append(p.AckItem(msg=header.msg, record_id=header.record_id, status="committed"))


def _identity_steps(r: InspectionRecord) -> list[Step]:
    """The record's identities for the search index, written with it (an update that overtook its record too)."""
    return [Step(INSERT_IDENTITY, row, owned=False) for row in identity_rows(r)]


def _search_steps(r: InspectionRecord, now: float) -> list[Step]:
    """The record's search report versions and the pass's search outcome, written with it (none without a report)."""
    if not r.search_reports:
        return []
    rows = [Step(search_reports.UPSERT_SEARCH_REPORT, row, owned=False) for row in search_reports.report_rows(r, now)]
    return [*rows, Step(search_reports.SET_OUTCOME, search_reports.outcome_row(r), owned=False)]


def _record_row(r: InspectionRecord, on_alert_topic: bool, now: float, hub: str, msg: int) -> tuple:
    """RECORD_COLS of `r` as message `msg` (its station's outbox row) carried it."""
    alert = int(on_alert_topic or r.verdict == Verdict.SUSPECT)
    idents = " ".join(i.value for i in r.identities)
    return (r.id, r.station, r.seq, r.verdict.value, alert, r.kind.value, r.lane, r.decided_at.timestamp(), idents,
            r.scan.sha256 if r.scan else None, r.to_json(), now, hub, msg, r.risk.bundle if r.risk else None)


def _tip_row(t: p.TipOutcome, now: float, hub: str) -> tuple:
    return (t.station, t.record_id, t.projection, t.officer, t.threat, t.label, t.outcome, t.decision_ms,
            t.shown_at.timestamp(), t.responded_at.timestamp(), t.model_dump_json(), now, hub)
