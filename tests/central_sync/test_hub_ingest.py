"""Hub ingest on a real SQLite store: idempotence, rejections, malformed input, images, gaps."""

from __future__ import annotations

import hashlib
import json

import pytest

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.hub.gaps import GapChecker
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store
from central_sync.schema import Verdict


@pytest.fixture
def hub(tmp_path):
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    sent: list[tuple[str, dict]] = []
    ing = Ingestor(store, "hub-u", lambda t, b: sent.append((t, json.loads(b))))
    yield ing, store, sent
    store.close()


def msg(kind: str, rec, msg_id: int, station: str | None = None) -> tuple[str, bytes]:
    st = station or rec.station
    return p.topic(st, kind), p.encode_envelope(rec.station, kind, msg_id, rec.seq, rec.id, rec.to_json().encode(), 0.0)


def acks(sent, station="g1"):
    return [(a["msg"], a["status"]) for t, m in sent if t == p.topic(station, "ack") for a in m["acks"]]


def test_same_record_twice_is_one_row_and_acked_each_time(hub):
    ing, store, sent = hub
    rec = make_record("g1", 5, Verdict.SUSPECT)
    ing.handle([msg("alert", rec, 1), msg("inspection", rec, 2)])
    ing.handle([msg("inspection", rec, 2)])
    assert store.query("SELECT count(*), max(is_alert) FROM records") == [(1, 1)]
    assert acks(sent) == [(1, "committed"), (2, "committed"), (2, "committed")]


def test_station_mismatch_rejected_and_bad_input_counted_without_stopping(hub):
    ing, store, sent = hub
    good, forged = make_record("g1", 1), make_record("g2", 2)
    ing.handle([(b := msg("inspection", forged, 9, station="g1")), (p.topic("g1", "inspection"), b"{not json"),
                (p.topic("g1", "alert"), b'{"v":1,"station":"g1","msg":4,"seq":3,"record_id":"x","kind":"alert","body":{}}'),
                ("elsewhere/topic", b"x"), (p.topic("g1", "status"), b'{"v":1}'), msg("inspection", good, 10)])
    assert [r[0] for r in store.query("SELECT id FROM records")] == [good.id]
    assert acks(sent) == [(9, "rejected"), (4, "rejected"), (10, "committed")]
    assert ing.counters["rejected"] == 2 and ing.counters["malformed"] == 3


def chunk_msgs(data: bytes, size: int, station="g1", sha=None):
    sha = sha or hashlib.sha256(data).hexdigest()
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    out = []
    for i, part in enumerate(parts):
        h = p.BlobChunkHeader(station=station, msg=77, seq=1, record_id="r1", sha256=sha, index=i, count=len(parts),
                              size=len(data), chunk_sha256=hashlib.sha256(part).hexdigest())
        out.append((p.blob_topic(station, sha, i), p.encode_chunk(h, part)))
    return sha, out


def test_image_reassembled_from_chunks_in_any_order(hub):
    ing, store, sent = hub
    data = bytes(range(256)) * 40
    sha, chunks = chunk_msgs(data, 1000)
    ing.handle(chunks[5:] + chunks[:2])
    assert store.image(sha) is None
    ing.handle(chunks[2:5] + chunks[3:4])
    assert store.image(sha) == data
    ing.handle(chunks[:1])  # a late re-send: acknowledged as committed, stored once
    assert ("committed" in [s for _, s in acks(sent)]) and store.query("SELECT count(*) FROM blobs") == [(1,)]
    assert store.query("SELECT count(*) FROM blob_chunks") == [(0,)]


def test_image_with_wrong_whole_hash_rejected(hub):
    ing, store, sent = hub
    sha, chunks = chunk_msgs(b"abc" * 1000, 1000, sha="0" * 64)
    ing.handle(chunks)
    assert store.image("0" * 64) is None and acks(sent)[-1] == (77, "rejected")


def test_gap_checker_asks_for_seqs_missing_twice(hub):
    ing, store, sent = hub
    ing.handle([msg("inspection", make_record("g1", s), s) for s in (1, 2, 4, 5, 8)])
    cmds = []
    gaps = GapChecker(store, "hub-u", lambda t, b: cmds.append((t, json.loads(b))))
    gaps.check({"g1"})
    assert cmds == []
    ing.handle([msg("inspection", make_record("g1", 6), 6)])
    gaps.check({"g1"})
    assert cmds == [(p.topic("g1", "cmd"), {"v": 1, "hub": "hub-u", "op": "resend", "seqs": [3, 7]})]


def test_review_as_reviewed_record_or_bare_review(hub):
    from datetime import UTC, datetime

    from central_sync.schema import Review

    ing, store, sent = hub
    rec = make_record("g1", 3)
    review = Review(officer="B-1", decided_at=datetime(2026, 1, 3, tzinfo=UTC), outcome="false_alarm")
    reviewed = rec.model_copy(update={"review": review})
    bare = p.encode_envelope("g1", "review", 3, 3, rec.id, review.model_dump_json().encode(), 0.0)
    ing.handle([msg("inspection", rec, 1), msg("review", reviewed, 2), (p.topic("g1", "review"), bare),
                msg("review", rec, 4)])
    assert acks(sent) == [(1, "committed"), (2, "committed"), (3, "committed"), (4, "rejected")]
    assert store.query("SELECT count(*) FROM reviews") == [(1,)]
    assert json.loads(store.query("SELECT body FROM records")[0][0])["review"]["officer"] == "B-1"


def test_batch_items_committed_bad_item_rejected_foreign_station_rejected(hub):
    ing, store, sent = hub
    a, b = make_record("g1", 1), make_record("g1", 2)
    env = lambda r, i: p.encode_envelope("g1", "inspection", i, r.seq, r.id, r.to_json().encode(), 0.0)
    bad = b'{"v":1,"station":"g1","msg":7,"seq":3,"record_id":"x","kind":"inspection","body":{}}'
    ing.handle([(p.topic("g1", "batch"), p.encode_batch("g1", [env(a, 1), bad, env(b, 2)])),
                (p.topic("g2", "batch"), p.encode_batch("g1", [env(make_record("g1", 4), 8)]))])
    assert sorted(r[0] for r in store.query("SELECT id FROM records")) == sorted([a.id, b.id])
    assert acks(sent) == [(1, "committed"), (7, "rejected"), (2, "committed")]
    assert acks(sent, "g2") == [(8, "rejected")]


def test_routed_record_updates_the_hub_record(hub):
    """A conveyor's route update (the record with its `route` set, on the review topic) is committed and
    replaces the body: the hub shows verdict clear and route manual, as the station stored it."""
    from datetime import UTC, datetime

    from central_sync.schema import RouteTaken

    ing, store, sent = hub
    rec = make_record("g1", 5).model_copy(update={"verdict": Verdict.CLEAR, "reason": "clear"})
    routed = rec.model_copy(update={"route": RouteTaken(to="manual", reason="link_lost",
                                                        at=datetime(2026, 1, 3, tzinfo=UTC))})
    ing.handle([msg("inspection", rec, 1), msg("review", routed, 2)])
    assert acks(sent) == [(1, "committed"), (2, "committed")]
    body = json.loads(store.query("SELECT body FROM records")[0][0])
    assert body["verdict"] == "clear" and body["route"]["to"] == "manual" and body["route"]["reason"] == "link_lost"
    assert store.query("SELECT count(*) FROM reviews") == [(0,)]


@pytest.mark.parametrize("separate_batches", [False, True])
def test_an_update_that_overtakes_its_record_is_kept(hub, separate_batches):
    """A route or review update is acked as committed, so it must not be lost when it reaches the hub
    before the record itself (the record travels on the alert lane, the update on the record lane):
    the record arriving afterwards keeps the updated body."""
    from datetime import UTC, datetime

    from central_sync.schema import RouteTaken

    ing, store, sent = hub
    rec = make_record("g1", 6).model_copy(update={"verdict": Verdict.CLEAR, "reason": "clear"})
    routed = rec.model_copy(update={"route": RouteTaken(to="manual", reason="link_lost",
                                                        at=datetime(2026, 1, 3, tzinfo=UTC))})
    first, second = msg("review", routed, 2), msg("inspection", rec, 1)
    if separate_batches:
        ing.handle([first])
        ing.handle([second])
    else:
        ing.handle([first, second])
    assert sorted(acks(sent)) == [(1, "committed"), (2, "committed")]
    rows = store.query("SELECT body, verdict FROM records")
    assert len(rows) == 1 and rows[0][1] == "clear"
    assert json.loads(rows[0][0])["route"]["to"] == "manual"


def test_an_older_update_arriving_after_a_newer_one_does_not_take_the_body_back(hub):
    """Each update carries the whole record as it stood: the route (msg 2), then the officer's review (msg 3). The
    ack of msg 2 lost, it was sent again after msg 3 was committed and replaced the body: the hub's record lost
    its review. Now a body is replaced only by one from a later message of its station."""
    from datetime import UTC, datetime

    from central_sync.schema import Review, RouteTaken

    ing, store, sent = hub
    rec = make_record("g1", 7).model_copy(update={"verdict": Verdict.CLEAR, "reason": "clear"})
    routed = rec.model_copy(update={"route": RouteTaken(to="manual", reason="link_lost",
                                                        at=datetime(2026, 1, 3, tzinfo=UTC))})
    reviewed = routed.model_copy(update={"review": Review(officer="1001", outcome="cleared",
                                                          decided_at=datetime(2026, 1, 3, 0, 5, tzinfo=UTC))})
    ing.handle([msg("inspection", rec, 1), msg("review", reviewed, 3)])
    ing.handle([msg("review", routed, 2)])  # the resend of the older update
    assert acks(sent) == [(1, "committed"), (3, "committed"), (2, "committed")]
    body = json.loads(store.query("SELECT body FROM records")[0][0])
    assert body["review"] is not None and body["review"]["officer"] == "1001" and body["route"]["to"] == "manual"
    ing.handle([msg("inspection", rec, 1)])  # the record itself again: the body stays the newest
    assert json.loads(store.query("SELECT body FROM records")[0][0])["review"]["officer"] == "1001"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_hub_that_predates_body_msg_gains_it_and_keeps_the_newest_body(backend, tmp_path, request):
    """The column is added to a hub database made before it (its bodies count as the oldest), on both backends."""
    from datetime import UTC, datetime

    from central_sync.schema import RouteTaken

    store = open_store(request.getfixturevalue("pg_url") if backend == "postgresql" else str(tmp_path / "hub.db"))
    try:
        store.migrate()
        store.run_in_transaction(lambda cur: cur.execute("ALTER TABLE records DROP COLUMN body_msg"))
        store.migrate()
        sent: list[tuple[str, dict]] = []
        ing = Ingestor(store, "hub-u", lambda t, b: sent.append((t, json.loads(b))))
        rec = make_record("g1", 8)
        routed = rec.model_copy(update={"route": RouteTaken(to="manual", reason="link_lost",
                                                            at=datetime(2026, 1, 3, tzinfo=UTC))})
        older = routed.model_copy(update={"route": RouteTaken(to="manual", reason="link_lost",
                                                              at=datetime(2026, 1, 2, tzinfo=UTC))})
        ing.handle([msg("inspection", rec, 1), msg("review", routed, 3), msg("review", older, 2)])
        assert [(a["msg"], a["status"]) for _, m in sent for a in m["acks"]] == [(1, "committed"), (3, "committed"),
                                                                                (2, "committed")]
        assert store.query("SELECT body_msg FROM records") == [(3,)]
        assert json.loads(store.query("SELECT body FROM records")[0][0])["route"]["at"].startswith("2026-01-03")
    finally:
        store.close()


def test_a_chunk_whose_data_does_not_match_its_hash_is_rejected_with_the_reason(hub):
    """A chunk that parses but whose data hashes otherwise names its row: the station gets `rejected` with
    the reason (and parks the image) instead of no answer and resending the same bytes forever."""
    ing, store, sent = hub
    data = bytes(range(256)) * 8
    sha, chunks = chunk_msgs(data, 1000)
    topic, payload = chunks[0]
    ing.handle([(topic, payload[:-1] + bytes([payload[-1] ^ 0xFF]))])
    assert ing.counters["rejected"] == 1 and ing.counters["malformed"] == 0
    reasons = [a.get("reason", "") for t, m in sent if t == p.topic("g1", "ack") for a in m["acks"]]
    assert len(reasons) == 1 and f"blob {sha[:12]} chunk 0 hashes to" in reasons[0]
    assert store.image(sha) is None


def test_a_seq_that_never_comes_is_given_up_and_the_prefix_moves_past_it(hub):
    """A record the station parked (the hub refused it) leaves a gap no resend fills: asked for GIVE_UP_ASKS times,
    it is asked for no more, and the station's prefix moves past it (the check no longer reads every seq above it
    each period)."""
    from central_sync.hub.gaps import GIVE_UP_ASKS

    ing, store, sent = hub
    ing.handle([msg("inspection", make_record("g1", s), s) for s in (1, 2, 4, 5)])
    cmds = []
    gaps = GapChecker(store, "hub-u", lambda t, b: cmds.append(json.loads(b)["seqs"]))
    for _ in range(GIVE_UP_ASKS + 5):
        gaps.check({"g1"})
    assert cmds == [[3]] * GIVE_UP_ASKS and gaps.given_up == 1
    assert gaps.through["g1"] == 5 and gaps.lost["g1"] == set()
    ing.handle([msg("inspection", make_record("g1", 7), 7)])  # a new gap is asked for as before
    gaps.check({"g1"})
    gaps.check({"g1"})
    assert cmds[-1] == [6]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00", "2026-12-07T10:00:00"])
def test_a_time_without_a_zone_is_rejected_and_the_rest_of_the_batch_stored(hub, when):
    """It passed the schema and made `datetime.timestamp()` raise while the rows were built: the whole batch of up
    to 500 messages from every station was dropped unacknowledged, and the station sent it again for ever."""
    ing, store, sent = hub
    bad, good, other = make_record("g1", 1), make_record("g1", 2), make_record("g2", 1)
    body = json.loads(bad.to_json())
    body["decided_at"] = when
    poison = (p.topic("g1", "inspection"),
              p.encode_envelope("g1", "inspection", 1, 1, bad.id, json.dumps(body).encode(), 0.0))
    ing.handle([poison, msg("inspection", good, 2), msg("inspection", other, 3)])
    assert sorted(r[0] for r in store.query("SELECT id FROM records")) == sorted([good.id, other.id])
    assert acks(sent) == [(1, "rejected"), (2, "committed")] and acks(sent, "g2") == [(3, "committed")]
    [reason] = [a["reason"] for t, m in sent for a in m["acks"] if a["status"] == "rejected"]
    assert f"decided_at {when} names no time zone" in reason and bad.id in reason
    assert ing.counters["rejected"] == 1


def test_an_image_another_hub_process_finished_meanwhile_is_committed_not_rejected(tmp_path):
    """Two hub processes share the database: hub A finishes the image between hub B's look at it and B's
    assembly. B found no chunks left and answered `rejected` (the station parked a stored image and alarmed)."""
    url = str(tmp_path / "hub.db")
    store_a, store_b = open_store(url), open_store(url)
    store_a.migrate()
    sent: list[tuple[str, dict]] = []
    hub_a = Ingestor(store_a, "hub-a", lambda t, b: sent.append(("a", json.loads(b))))
    hub_b = Ingestor(store_b, "hub-b", lambda t, b: sent.append(("b", json.loads(b))))
    data = bytes(range(256)) * 8
    sha, chunks = chunk_msgs(data, 1024)
    hub_a.handle(chunks[:1])
    looked = store_b.blob_state

    def a_finishes_meanwhile(sha256: str) -> tuple[bool, int]:
        seen = looked(sha256)
        hub_a.handle(chunks[1:])  # a resent copy of the last chunk reached hub A at the same time
        return seen
    store_b.blob_state = a_finishes_meanwhile
    hub_b.handle(chunks[1:])
    assert store_a.image(sha) == data
    answers = [(who, a["status"]) for who, m in sent for a in m["acks"] if a["status"] != "chunk"]
    assert answers == [("a", "committed"), ("b", "committed")]
    assert hub_b.counters["image_hash_mismatch"] == 0 and hub_b.counters["rejected"] == 0
    store_a.close()
    store_b.close()


def test_a_status_dated_ahead_of_the_hubs_clock_is_kept_as_received_now(hub):
    """A station booting with its clock a year ahead: its status won within the session, so every later one
    (its clock mended) was ignored, and the board showed the station online long after it fell silent."""
    import time

    from central_sync.hub.stations import station_view

    ing, store, _ = hub
    now = time.time()

    def status(at: float, rows: int) -> tuple[str, bytes]:
        return p.topic("g1", "status"), json.dumps({"v": 1, "station": "g1", "state": "online", "session": 3, "at": at,
                                                    "backlog": {"record": {"rows": rows}}}).encode()
    ing.handle([status(now + 365 * 86400, 0)])
    ing.handle([status(time.time(), 5000)])  # its clock mended
    [row] = store.stations()
    later = station_view(row, now=time.time() + 3600)
    assert later["backlog"] == {"record": {"rows": 5000}} and later["state"] == "offline"
    assert ing.counters["status_clock_ahead"] == 1 and ing.counters["statuses"] == 2


def test_another_record_under_a_stored_id_is_rejected_not_dropped_as_committed(hub):
    """A record whose id the hub holds under another seq or decision time is another record: it was acked
    `committed` and dropped unseen (the stored body kept). Now it is rejected, the station parks it and alarms;
    its identities are not indexed under the stored record. The same record again still commits."""
    from datetime import timedelta

    from central_sync.schema import Identity

    ing, store, sent = hub
    rec = make_record("g1", 5)
    other = rec.model_copy(update={"seq": 6, "verdict": Verdict.MANUAL, "reason": "manual", "lane": "L9",
                                   "identities": [Identity(kind="plate", value="ZZ999", source="anpr")]})
    later = rec.model_copy(update={"decided_at": rec.decided_at + timedelta(seconds=30)})
    ing.handle([msg("inspection", rec, 1)])
    ing.handle([msg("inspection", other, 2)])
    ing.handle([msg("inspection", later, 3)])
    ing.handle([msg("alert", rec, 4)])
    assert store.query("SELECT seq, verdict FROM records") == [(5, "clear")]
    assert store.query("SELECT count(*) FROM record_identities WHERE value = 'ZZ999'") == [(0,)]
    assert acks(sent) == [(1, "committed"), (2, "rejected"), (3, "rejected"), (4, "committed")]
    [reason, _] = [a["reason"] for t, m in sent for a in m["acks"] if a["status"] == "rejected"]
    assert rec.id in reason and "another seq or decision time" in reason


def test_a_restarted_hub_checks_gaps_from_where_it_was_not_from_the_oldest_record(hub):
    """The prefix lived only in memory: a restarted hub started at each station's oldest kept record, above which
    retention had deleted most seqs (clear records go after 30 days, suspects stay a year), and asked for each of
    them GIVE_UP_ASKS times, a thousand at a time, before it reached a seq really missing (122 checks, ~10 minutes,
    for 3,000 records; days for a year's)."""
    ing, store, _ = hub
    ing.handle([msg("inspection", make_record("g1", s), s) for s in range(1, 501)])
    before = GapChecker(store, "hub-u", lambda t, b: None)
    before.check({"g1"})
    assert before.through["g1"] == 500
    store.query("DELETE FROM records WHERE seq % 10 <> 0 AND seq < 480 RETURNING id")  # what retention deletes
    ing.handle([msg("inspection", make_record("g1", s), s) for s in range(501, 511) if s != 505])
    cmds: list[list[int]] = []
    restarted = GapChecker(store, "hub-v", lambda t, b: cmds.append(json.loads(b)["seqs"]))
    restarted.check({"g1"})
    restarted.check({"g1"})
    assert cmds == [[505]] and restarted.through["g1"] == 504
    assert store.gap_prefixes() == {"g1": 504}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_gap_prefix_kept_only_grows(request, tmp_path, backend):
    url = str(tmp_path / "hub.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    store.migrate()
    store.save_gap_prefix("g1", 40)
    store.save_gap_prefix("g1", 30)  # another hub process, behind this one
    store.save_gap_prefix("g2", 7)
    assert store.gap_prefixes() == {"g1": 40, "g2": 7}
    store.close()
