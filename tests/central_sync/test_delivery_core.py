"""Targeted cases of the sans-IO delivery core: one event at a time, the actions checked exactly."""

from __future__ import annotations

import random
from dataclasses import replace

from central_sync import delivery_events as ev
from central_sync.delivery import PAGE, Delivery
from central_sync.delivery_events import ChunkState, RowState
from central_sync.outbox import Lane
from central_sync.protocol import AckItem
from central_sync.station_db import Row

LIMITS = ev.Limits(window=4, max_unacked=10, max_uploads=10, batch_max_rows=3, max_payload=8192, chunk_bytes=1024,
                   ack_timeout_s=5.0, progress_timeout_s=10.0, poll_s=0.02, status_period_s=1000.0,
                   backoff_min_s=0.1, backoff_max_s=1.0)


def row(i: int, lane: Lane = Lane.RECORD, kind: str | None = None) -> Row:
    kind = kind or {Lane.ALERT: "alert", Lane.RECORD: "inspection", Lane.IMAGE: "blob"}[lane]
    return Row(i, lane, kind, f"rec-{i}", i, b'{"x":1}', 7, 0)


class Station:
    """The core with an in-memory outbox answering its reads, as the driver does with SQLite."""

    def __init__(self, rows: list[Row], limits: ev.Limits = LIMITS, newest_alert: int = 0, chunks: int = 1,
                 ack_status: bool = True) -> None:
        self.outbox = {r.id: r for r in rows}
        self.core = Delivery("gate-1", limits, random.Random(1))
        self.chunks, self.ack_status = chunks, ack_status
        self.log: list = []
        self.send(ev.SessionUp(0.0, limits, newest_alert))

    def send(self, event) -> list:
        out, todo = [], [event]
        while todo:
            for action in self.core.handle(todo.pop(0)):
                out.append(action)
                if isinstance(action, ev.Fetch):
                    rows = [r for i, r in sorted(self.outbox.items()) if r.lane == action.lane and i > action.after_id]
                    todo.append(ev.RowsFetched(action.lane, tuple(rows[:action.limit])))
                elif isinstance(action, ev.PublishStatus) and self.ack_status:
                    todo.append(ev.PubAck(action.ref, 0, 0.0))
                elif isinstance(action, ev.OpenBlob):
                    todo.append(ev.BlobOpened(action.row.id, self.chunks, frozenset()))
        self.log += out
        return out

    def published(self, kind=ev.Publish) -> list:
        return [a for a in self.log if isinstance(a, kind)]

    def fill(self, now: float = 0.0) -> list:
        return [a for a in self.send(ev.Fill(now, 1.7e9 + now)) if isinstance(a, (ev.Publish, ev.PublishChunk))]


def committed(*ids: int) -> ev.HubAck:
    return ev.HubAck(tuple(AckItem(msg=i, record_id=f"rec-{i}", status="committed") for i in ids))


def test_a_puback_proves_nothing_only_the_hubs_ack_retires():
    st = Station([row(1)])
    (pub,) = st.fill()
    assert not [a for a in st.send(ev.PubAck(pub.ref, 0, 0.1)) if isinstance(a, ev.Retire)]
    assert st.core.state(1) is RowState.BROKER_ACKED
    assert ev.Retire(((1, "rec-1"),)) in st.send(committed(1))
    assert st.core.state(1) is None


def test_records_are_batched_and_alerts_go_alone_and_first():
    st = Station([row(1, Lane.ALERT), row(2, Lane.ALERT), row(3), row(4), row(5), row(6)], newest_alert=2)
    first = st.fill()
    assert [p.rows for p in first] == [(1,), (2,)]  # the backlog's alerts hold records back
    st.send(ev.PubAck(first[0].ref, 0, 0.1))
    st.send(ev.PubAck(first[1].ref, 0, 0.1))
    assert st.fill() == []
    st.send(committed(1, 2))
    assert [(p.topic.rsplit("/", 1)[1], p.rows) for p in st.fill()] == [("batch", (3, 4, 5)), ("inspection", (6,))]


def test_gate_opens_when_the_backlogs_alerts_were_committed_before_they_were_read():
    st = Station([row(3), row(4)], newest_alert=2)  # alerts 1 and 2 left the outbox meanwhile
    assert [p.rows for p in st.fill()] == [(3, 4)]


def test_status_waits_for_a_free_slot_in_the_window():
    st = Station([row(1), row(2)], replace(LIMITS, window=1, batch_max_rows=1, status_period_s=1.0), ack_status=False)
    assert isinstance(st.send(ev.Fill(0.0, 1.7e9))[0], ev.PublishStatus)  # a session opens with its status
    st.send(ev.PubAck(st.published(ev.PublishStatus)[0].ref, 0, 0.0))
    (pub,) = st.fill()
    st.send(ev.Tick(2.0))
    assert st.fill(2.0) == [] and not [a for a in st.log[-3:] if isinstance(a, ev.PublishStatus)]
    st.send(ev.PubAck(pub.ref, 0, 2.1))
    st.send(ev.Fill(2.1, 1.7e9))
    assert isinstance(st.log[-1], ev.PublishStatus) and st.core.figures()["inflight"] == 1


def test_a_row_the_hub_committed_before_its_puback_is_not_sent_again():
    st = Station([row(1)])
    (pub,) = st.fill()
    st.send(committed(1))
    st.send(ev.PubAck(pub.ref, 0x97, 0.1))  # refused after all: no retry for a committed row
    st.send(ev.Tick(20.0))
    assert st.fill(20.0) == []


def test_ack_timeout_and_resend_request_send_again():
    st = Station([row(1), row(2, kind="review")])
    (pub,) = st.fill()
    st.send(ev.PubAck(pub.ref, 0, 1.0))
    st.send(ev.ResendRequest((1, 2)))  # reviews are not what the gap check asks for
    assert [p.rows for p in st.fill(1.0)] == [(1,)]
    assert st.core.counters["resend_requested"] == 1
    st.send(ev.PubAck(st.published()[-1].ref, 0, 1.1))
    st.send(ev.Tick(6.05))  # row 2 was broker-acked at 1.0, row 1 again at 1.1
    assert [p.rows for p in st.fill(6.05)] == [(2,)] and st.core.counters["resend_timeout"] == 1


def test_a_row_the_hub_never_acknowledges_is_resent_ever_more_slowly_up_to_a_cap():
    """The broker takes it, the hub stays silent (down, its session queued at the broker): resent after
    5 s, then after 10, 20, 40, 80 and 160 s (2**5 × the ack timeout), and every 160 s after that."""
    st = Station([row(1)])
    (pub,) = st.fill()
    now = 0.0
    st.send(ev.PubAck(pub.ref, 0, now))
    gaps = []
    for _ in range(8):
        t = now
        while True:
            t += 0.5
            st.send(ev.Tick(t))
            again = st.fill(t)
            if again:
                break
        assert [p.rows for p in again] == [(1,)]
        gaps.append(t - now)
        now = t
        st.send(ev.PubAck(again[0].ref, 0, now))
    assert gaps == [5.5, 10.5, 20.5, 40.5, 80.5, 160.5, 160.5, 160.5]
    assert st.core.counters["resend_timeout"] == 8
    st.send(committed(1))
    st.send(ev.Tick(now + 1000))
    assert st.fill(now + 1000) == []


def test_too_large_single_row_is_parked_and_a_refused_batch_shrinks():
    st = Station([row(1), row(2), row(3)])
    (pub,) = st.fill()
    st.send(ev.PubAck(pub.ref, 0x95, 0.1))
    assert st.core.counters["batch_shrunk"] == 1 and st.core.batch_bytes == 4096
    single = Station([row(1)])
    (pub,) = single.fill()
    assert ev.Park(1, "rec-1", "broker refused it: 0x95 packet too large") in single.send(ev.PubAck(pub.ref, 0x95, 0.1))
    assert single.core.state(1) is None and single.fill() == []


def test_blame_parks_the_oldest_row_at_the_second_strike_across_sessions():
    limits = replace(LIMITS, batch_max_rows=1)
    st = Station([row(1), row(2)], limits)
    st.fill()
    st.send(ev.BrokerDisconnected(0x95))
    st.send(ev.SessionUp(1.0, limits, 0))
    st.fill(1.0)
    parks = [a for a in st.send(ev.BrokerDisconnected(0x95)) if isinstance(a, ev.Park)]
    assert [p.row_id for p in parks] == [1] and st.core.counters["puback_unreadable"] == 2


def test_watchdog_restarts_a_session_whose_pubacks_stopped():
    st = Station([row(1)])
    st.fill()
    assert not [a for a in st.send(ev.Tick(9.0)) if isinstance(a, ev.Restart)]
    assert [a for a in st.send(ev.Tick(10.5)) if isinstance(a, ev.Restart)]


def test_at_most_max_uploads_images_are_under_way_and_a_finished_one_frees_its_place():
    """The hub holds only so many incomplete uploads per station and refused the rest: without a cap the station
    started an upload for every image row up to max_unacked (1000)."""
    st = Station([row(i, Lane.IMAGE) for i in range(1, 6)], limits=replace(LIMITS, max_uploads=2))
    for now in (0.0, 0.1, 0.2):
        for chunk in st.fill(now):
            st.send(ev.PubAck(chunk.ref, 0, now))
    assert sorted(st.core.s.uploads) == [1, 2]
    st.send(committed(1))
    (chunk,) = st.fill(0.3)
    assert chunk.row_id == 3 and sorted(st.core.s.uploads) == [2, 3]


def test_image_chunks_never_exceed_half_the_window_and_resume_after_a_lost_chunk():
    st = Station([row(1, Lane.IMAGE)], chunks=3)
    first = st.fill()
    assert [(c.row_id, c.index) for c in first] == [(1, 0), (1, 1)]  # window 4: at most 2 chunks
    for c in first:
        st.send(ev.PubAck(c.ref, 0, 0.1))
    (third,) = st.fill(0.1)
    st.send(ev.PubAck(third.ref, 0, 0.2))
    saved = st.send(ev.HubAck((AckItem(msg=1, record_id="rec-1", status="chunk", index=0),
                               AckItem(msg=1, record_id="rec-1", status="chunk", index=2))))
    assert ev.SaveProgress(1, 1024, (0, 2)) in saved
    st.send(ev.Tick(6.0))  # chunk 1 was lost at the broker: the hub never stored it
    (again,) = st.fill(6.0)
    assert (again.row_id, again.index) == (1, 1)
    assert st.core.s.uploads[1].chunks == [ChunkState.STORED, ChunkState.IN_FLIGHT, ChunkState.STORED]
    st.send(ev.PubAck(again.ref, 0, 6.0))   # lost again: the next resend waits twice as long (10 s)
    st.send(ev.Tick(15.0))
    assert st.fill(15.0) == []
    st.send(ev.Tick(16.5))
    (third,) = st.fill(16.5)
    st.send(ev.PubAck(third.ref, 0, 16.5))
    st.send(ev.HubAck((AckItem(msg=1, record_id="rec-1", status="chunk", index=1),)))
    assert st.core.s.uploads[1].resent == 0   # the hub stores again: its next silence is waited for afresh


def test_a_full_page_of_alerts_is_read_before_the_gate_opens():
    alerts = [row(i, Lane.ALERT) for i in range(1, PAGE + 3)]
    st = Station(alerts + [row(PAGE + 10)], replace(LIMITS, window=PAGE + 10), newest_alert=PAGE + 2)
    sent = st.fill()
    assert len(sent) == PAGE + 2 and all(p.topic.endswith("/alert") for p in sent)


def test_an_ack_naming_rows_not_yet_read_by_another_record_holds_nothing_back():
    """Acks for rows the station had not read (or not yet written) were kept by id alone: when the rows came, they
    were skipped for the rest of the session (alerts among them), and a rejection parked them for good."""
    st = Station([row(1, Lane.ALERT), row(2)], newest_alert=1)
    forged = ev.HubAck((AckItem(msg=1, record_id="other", status="rejected", reason="forged"),
                        AckItem(msg=2, record_id="other", status="committed")))
    out = st.send(forged)
    assert ev.Park(1, "other", "hub rejected it: forged") in out  # the row store parks only rec-1's row 1: nothing
    (alert,) = st.fill()
    assert alert.rows == (1,)  # published, not skipped
    st.send(ev.PubAck(alert.ref, 0, 0.1))
    st.send(committed(1))
    assert [p.rows for p in st.fill()] == [(2,)]  # the record too, once the alert went
    for i in range(3, 3 + 10_005):  # ids the station never wrote: kept up to a bound
        st.send(committed(i))
    assert len(st.core.s.early) == 10_000 and st.core.counters["early_dropped"] == 5


def test_an_ack_for_a_row_id_beyond_the_stations_integers_is_malformed_not_a_crash():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        AckItem(msg=2**63, record_id="rec-1", status="committed")


def test_the_row_store_parks_a_row_only_for_its_own_record(tmp_path):
    """A rejected ack parked the row by its id alone: a row of another record under that id was parked for good."""
    from central_sync.outbox import enqueue
    from central_sync.station_db import StationDb

    db = StationDb(tmp_path / "station.db")
    row_id = enqueue(db.conn, Lane.ALERT, "alert", "rec-1", 1, b"{}")
    db.park(row_id, "rec-2", "hub rejected it: forged")
    assert [r.id for r in db.fetch(Lane.ALERT, 0, 10)] == [row_id]
    db.park(row_id, "rec-1", "hub rejected it: too large")
    assert db.fetch(Lane.ALERT, 0, 10) == []
    db.close()


def test_a_session_number_is_committed_with_full_sync(tmp_path):
    """Under synchronous=NORMAL (the publisher's connection: a lost retire only means a resend) a power cut may
    roll the session counter back: the station then reused a number whose Last Will the hub held, and the hub
    showed it offline while its records synced. Its commit runs under FULL; the rest stays NORMAL."""
    from central_sync.station_db import StationDb

    db = StationDb(tmp_path / "station.db")
    said: list[str] = []
    db.conn.set_trace_callback(said.append)
    assert (db.next_session(), db.next_session()) == (1, 2)
    pragmas = [s for s in said if s.startswith("PRAGMA") or s in ("BEGIN IMMEDIATE", "COMMIT")]
    assert pragmas == ["PRAGMA synchronous=FULL", "BEGIN IMMEDIATE", "COMMIT", "PRAGMA synchronous=NORMAL"] * 2
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    db.close()
