"""Hub ingest against a hostile or broken station, on SQLite and PostgreSQL (issue 22 items 1, 6, 8, 14):
a station touches only its own rows, one unstorable message is rejected alone, uploads are bounded."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.hub.ingest import Ingestor, Limits
from central_sync.hub.store import open_store
from central_sync.schema import Review, RouteTaken, Verdict


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    return str(tmp_path / "hub.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")


def make_hub(url: str, limits: Limits | None = None):
    store = open_store(url)
    store.migrate()
    sent: list[tuple[str, dict]] = []
    ing = Ingestor(store, "hub-u", lambda t, b: sent.append((t, json.loads(b))), limits=limits or Limits())
    return ing, store, sent


@pytest.fixture
def hub(backend):
    ing, store, sent = make_hub(backend)
    yield ing, store, sent
    store.close()


def env(kind: str, rec, msg_id: int, body: bytes | None = None, record_id: str | None = None) -> bytes:
    return p.encode_envelope(rec.station, kind, msg_id, rec.seq, record_id or rec.id,
                             body if body is not None else rec.to_json().encode(), 0.0)


def msg(kind: str, rec, msg_id: int, body: bytes | None = None, record_id: str | None = None) -> tuple[str, bytes]:
    return p.topic(rec.station, kind), env(kind, rec, msg_id, body, record_id)


def acks(sent, station):
    return {a["msg"]: (a["status"], a["reason"]) for t, m in sent if t == p.topic(station, "ack") for a in m["acks"]}


def tip(station: str, record_id: str, projection: int = 1, label: str = "knife") -> p.TipOutcome:
    at = datetime(2026, 1, 3, tzinfo=UTC)
    return p.TipOutcome(station=station, officer="B-9", record_id=record_id, projection=projection, threat="t1",
                        label=label, outcome="hit", shown_at=at, responded_at=at, decision_ms=900.0)


def test_a_station_cannot_change_another_stations_record(hub):
    """Station g2 names g1's suspect record in every kind of message: each is rejected with a reason (never
    acknowledged as committed), g1's record, reviews and TIP outcomes are untouched, g2's own record is kept."""
    ing, store, sent = hub
    victim = make_record("g1", 5, Verdict.SUSPECT)
    ing.handle([msg("alert", victim, 1)])
    forged = victim.model_copy(update={"station": "g2", "verdict": Verdict.CLEAR, "reason": "clear"})
    review = Review(officer="FAKE", decided_at=datetime(2026, 1, 3, tzinfo=UTC), outcome="cleared")
    route = RouteTaken(to="pass", reason="clear", at=datetime(2026, 1, 3, tzinfo=UTC))
    own = make_record("g2", 1)
    ing.handle([msg("inspection", forged, 11), msg("alert", forged, 12),
                msg("review", forged.model_copy(update={"review": review}), 13),
                msg("review", forged, 14, body=review.model_dump_json().encode()),
                msg("review", forged.model_copy(update={"route": route}), 15),
                msg("tip", forged, 16, body=tip("g2", victim.id).model_dump_json().encode()),
                msg("inspection", own, 17)])
    ing.handle([(p.topic("g2", "batch"), p.encode_batch("g2", [env("inspection", forged, 18),
                                                              env("review", forged.model_copy(update={"review": review}), 19)]))])
    got = acks(sent, "g2")
    assert {m: s for m, (s, _) in got.items()} == {11: "rejected", 12: "rejected", 13: "rejected", 14: "rejected",
                                                   15: "rejected", 16: "rejected", 17: "committed", 18: "rejected",
                                                   19: "rejected"}
    assert all(victim.id in reason and "another station" in reason for m, (_, reason) in got.items() if m != 17)
    rows = store.query("SELECT station, verdict, is_alert, body FROM records WHERE id = ?", (victim.id,))
    assert rows == [("g1", "suspect", 1, victim.to_json())]
    assert store.query("SELECT count(*) FROM reviews") == [(0,)]
    assert store.query("SELECT count(*) FROM tip_outcomes") == [(0,)]
    assert store.query("SELECT station FROM records WHERE id = ?", (own.id,)) == [("g2",)]
    assert ing.counters["refused_foreign"] == 8


def test_the_owner_still_updates_its_record_and_a_foreign_overtaking_update_cannot_claim_it(hub):
    """g1's own review and route update still replace the body; once g2 wrote a row under an id first,
    g1's record under that id is refused (and so never acknowledged as committed) rather than merged."""
    ing, store, sent = hub
    rec = make_record("g1", 6)
    review = Review(officer="B-1", decided_at=datetime(2026, 1, 3, tzinfo=UTC), outcome="false_alarm")
    ing.handle([msg("inspection", rec, 1), msg("review", rec.model_copy(update={"review": review}), 2),
                msg("review", rec, 3, body=review.model_dump_json().encode())])
    assert {m: s for m, (s, _) in acks(sent, "g1").items()} == {1: "committed", 2: "committed", 3: "committed"}
    assert json.loads(store.query("SELECT body FROM records")[0][0])["review"]["officer"] == "B-1"
    assert store.query("SELECT count(*) FROM reviews") == [(1,)]
    squatted = make_record("g1", 7)
    ing.handle([msg("review", squatted.model_copy(update={"station": "g2", "review": review}), 4)])
    ing.handle([msg("inspection", squatted, 5)])
    assert acks(sent, "g2")[4][0] == "committed" and acks(sent, "g1")[5][0] == "rejected"
    assert store.query("SELECT station FROM records WHERE id = ?", (squatted.id,)) == [("g2",)]


def rec_json(rec, **changes) -> bytes:
    body = json.loads(rec.to_json())
    body.update(changes)
    return json.dumps(body).encode()


def test_one_unstorable_message_is_rejected_alone_and_the_rest_committed(hub):
    """A NUL byte (PostgreSQL text cannot hold it), a seq of 2**63 (past BIGINT) and a deeply nested batch are
    each rejected with a reason; every other message of the same ingest batch is committed."""
    ing, store, sent = hub
    good = [make_record("g1", s) for s in (1, 2, 3)]
    nul, huge = make_record("g1", 4), make_record("g1", 5)
    nul_review = Review(officer="B\x001", decided_at=datetime(2026, 1, 3, tzinfo=UTC), outcome="cleared")
    deep = p.encode_batch("g1", [b'{"kind":"inspection","x":' + b"[" * 5000 + b"]" * 5000 + b"}"])
    ing.handle([msg("inspection", good[0], 1), msg("inspection", nul, 2, body=rec_json(nul, lane="L\x001")),
                msg("inspection", huge, 3, body=rec_json(huge, seq=2**63)),
                (p.topic("g1", "batch"), p.encode_batch("g1", [
                    env("inspection", good[1], 4), env("review", good[1], 5, body=nul_review.model_dump_json().encode()),
                    env("tip", good[1], 6, body=tip("g1", good[1].id, label="k\x00").model_dump_json().encode())])),
                (p.topic("g1", "batch"), deep), msg("inspection", good[2], 7)])
    got = acks(sent, "g1")
    assert {m: s for m, (s, _) in got.items()} == {1: "committed", 2: "rejected", 3: "rejected", 4: "committed",
                                                   5: "rejected", 6: "rejected", 7: "committed"}
    assert "NUL" in got[2][1] and str(2**63) in got[3][1]
    assert sorted(r[0] for r in store.query("SELECT id FROM records")) == sorted(r.id for r in good)
    assert ing.counters["malformed"] == 1  # the nested batch


def test_a_message_the_database_refuses_is_rejected_alone(backend):
    """When the database itself refuses one message (here a constraint added by the operator), the batch is
    retried message by message: that one is rejected with the database's reason, the others committed."""
    ing, store, sent = make_hub(backend)
    if backend.startswith("postgresql"):
        store.run_in_transaction(lambda cur: cur.execute("ALTER TABLE records ADD CONSTRAINT no_poison CHECK (lane <> 'poison')"))
    else:
        store.run_in_transaction(lambda cur: cur.execute(
            "CREATE TRIGGER no_poison BEFORE INSERT ON records WHEN NEW.lane = 'poison'"
            " BEGIN SELECT RAISE(ABORT, 'poison lane'); END"))
    a, bad, b = make_record("g1", 1), make_record("g1", 2), make_record("g1", 3)
    ing.handle([msg("inspection", a, 1), msg("inspection", bad, 2, body=rec_json(bad, lane="poison")),
                msg("inspection", b, 3)])
    got = acks(sent, "g1")
    assert {m: s for m, (s, _) in got.items()} == {1: "committed", 2: "rejected", 3: "committed"}
    assert "database" in got[2][1]
    assert sorted(r[0] for r in store.query("SELECT id FROM records")) == sorted([a.id, b.id])
    store.close()


def chunk(data: bytes, index: int, count: int, size: int, station="g1", sha=None, msg_id=77):
    sha = sha or hashlib.sha256(data).hexdigest()
    h = p.BlobChunkHeader(station=station, msg=msg_id, seq=1, record_id="r1", sha256=sha, index=index, count=count,
                          size=size, chunk_sha256=hashlib.sha256(data).hexdigest())
    return p.blob_topic(station, sha, index), p.encode_chunk(h, data)


def test_uploads_and_records_past_the_limits_are_rejected(backend):
    limits = Limits(record_bytes=4096, image_bytes=10_000, image_chunks=8, upload_age_s=3600.0)
    ing, store, sent = make_hub(backend, limits)
    sha = "ab" * 32
    big = make_record("g1", 2)
    ing.handle([chunk(b"x" * 10, 5, 10**9, 10**9, sha=sha, msg_id=1),  # 10**9 parts
                chunk(b"x" * 10, 0, 8, 20_000, sha=sha, msg_id=2),  # bigger than image_bytes
                chunk(b"x" * 10, 0, 8, 8, sha=sha, msg_id=3),  # more parts than bytes
                msg("inspection", big, 4, body=rec_json(big, reason="r" * 5000)),
                msg("inspection", make_record("g1", 3), 5)])
    got = acks(sent, "g1")
    assert {m: s for m, (s, _) in got.items()} == {1: "rejected", 2: "rejected", 3: "rejected", 4: "rejected",
                                                   5: "committed"}
    assert str(10**9) in got[1][1] and "20000" in got[2][1] and "4096" in got[4][1]
    assert store.query("SELECT count(*) FROM blob_chunks") == [(0,)]
    store.close()


def test_a_chunk_disagreeing_with_its_upload_or_from_another_station_is_rejected(backend):
    ing, store, sent = make_hub(backend)
    data = bytes(range(256)) * 8
    sha = hashlib.sha256(data).hexdigest()
    ing.handle([chunk(data[:1024], 0, 2, len(data), sha=sha, msg_id=1)])
    ing.handle([chunk(data[1024:], 1, 3, len(data), sha=sha, msg_id=2),  # another count
                chunk(b"junk" * 256, 1, 2, len(data), station="g2", sha=sha, msg_id=3)])  # another station
    assert acks(sent, "g1")[2][0] == "rejected" and acks(sent, "g2")[3][0] == "rejected"
    ing.handle([chunk(data[1024:], 1, 2, len(data), sha=sha, msg_id=4)])
    assert store.image(sha) == data and acks(sent, "g1")[4][0] == "committed"
    store.close()


def test_incomplete_uploads_are_pruned_after_their_age_and_a_late_chunk_is_rejected(backend):
    ing, store, sent = make_hub(backend, Limits(upload_age_s=60.0))
    data = b"y" * 2048
    sha = hashlib.sha256(data).hexdigest()
    ing.handle([chunk(data[:1024], 0, 2, len(data), sha=sha, msg_id=1)])
    started = store.query("SELECT started_at FROM blob_uploads")[0][0]
    assert ing.housekeep(now=started + 30.0) == 0
    assert ing.housekeep(now=started + 61.0) == 1
    assert store.query("SELECT count(*) FROM blob_chunks") == [(0,)] and ing.counters["uploads_pruned"] == 1
    ing.handle([chunk(data[1024:], 1, 2, len(data), sha=sha, msg_id=2)])
    status, reason = acks(sent, "g1")[2]
    assert status == "rejected" and "pruned" in reason
    assert store.query("SELECT count(*) FROM blob_chunks") == [(0,)]
    store.close()


def test_ownership_holds_when_two_hub_workers_race_on_the_same_ids(backend):
    """Two ingest workers (own connections, as several hub processes sharing the subscription) write g1's
    records and g2's forgeries of the same ids at once: every id has one owner, whose message alone is
    committed; the other station's is rejected, whatever the interleaving."""
    import threading

    ing_a, store, sent = make_hub(backend)
    ing_b = Ingestor(store, "hub-v", ing_a.send)
    records = [make_record("g1", s, Verdict.SUSPECT) for s in range(1, 41)]
    forged = [r.model_copy(update={"station": "g2", "verdict": Verdict.CLEAR}) for r in records]
    mine = [msg("alert", r, r.seq) for r in records]
    theirs = [msg("review", f, f.seq, body=f.model_copy(update={"review": Review(
        officer="FAKE", decided_at=datetime(2026, 1, 3, tzinfo=UTC), outcome="cleared")}).to_json().encode()) for f in forged]
    go = threading.Barrier(2)

    def run(ing, items):
        go.wait()
        for i in range(0, len(items), 4):
            ing.handle(items[i:i + 4])
        store.close()

    threads = [threading.Thread(target=run, args=(ing_a, mine)), threading.Thread(target=run, args=(ing_b, theirs[::-1]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    owners = dict(store.query("SELECT id, station FROM records"))
    assert len(owners) == 40
    a, b = acks(sent, "g1"), acks(sent, "g2")
    for r in records:
        winner, loser = (a, b) if owners[r.id] == "g1" else (b, a)
        assert winner[r.seq][0] == "committed" and loser[r.seq][0] == "rejected"
    reviewed = {rid for (rid,) in store.query("SELECT record_id FROM reviews")}
    assert all(owners[rid] == "g2" for rid in reviewed)
    assert all(json.loads(body)["station"] == station for body, station in store.query("SELECT body, station FROM records"))
    store.close()


def test_a_station_holds_few_incomplete_uploads_and_chunks_cannot_outgrow_their_image(backend):
    """Each upload is bounded by its announced size (a chunk may not exceed what its count allows) and a station
    may keep only so many incomplete uploads at once: a chunk starting one more is not answered (it was rejected,
    and the station parked the image for good), the station sends it again, and a finished upload frees its place."""
    ing, store, sent = make_hub(backend, Limits(uploads_per_station=2))
    images = [bytes([i]) * 2048 for i in range(3)]
    shas = [hashlib.sha256(d).hexdigest() for d in images]
    ing.handle([chunk(images[0], 0, 2, 2048, sha=shas[0], msg_id=1)])  # one 2048-byte chunk of a 2-chunk image
    ing.handle([chunk(d[:1024], 0, 2, 2048, sha=s, msg_id=10 + i) for i, (d, s) in enumerate(zip(images, shas))])
    ing.handle([chunk(images[2][:1024], 0, 2, 2048, station="g2", sha="cd" * 32, msg_id=20)])
    got = acks(sent, "g1")
    assert got[1][0] == "rejected" and "2048" in got[1][1]
    answered = sorted(i for i in range(3) if 10 + i in got)
    assert len(answered) == 2 and all(got[10 + i][0] == "chunk" for i in answered)
    (late,), done = set(range(3)) - set(answered), answered[0]
    assert ing.counters["uploads_deferred"] == 1 and ing.counters["rejected"] == 1
    assert acks(sent, "g2")[20][0] == "chunk"
    ing.handle([chunk(images[late][:1024], 0, 2, 2048, sha=shas[late], msg_id=31)])  # sent again: still full
    assert 31 not in acks(sent, "g1") and ing.counters["uploads_deferred"] == 2
    ing.handle([chunk(images[done][1024:], 1, 2, 2048, sha=shas[done], msg_id=30)])
    ing.handle([chunk(images[late][:1024], 0, 2, 2048, sha=shas[late], msg_id=31)])
    assert acks(sent, "g1")[30][0] == "committed" and acks(sent, "g1")[31][0] == "chunk"
    store.close()


def test_a_record_id_too_long_for_an_index_is_rejected_alone(hub):
    """PostgreSQL cannot index a key of thousands of bytes (a limit error, not a dead database): the message
    is rejected with a reason on both backends and the rest of the batch is committed."""
    ing, store, sent = hub
    good, long_id = make_record("g1", 1), make_record("g1", 2).model_copy(update={"id": "x" * 3000})
    ing.handle([msg("inspection", long_id, 1), msg("inspection", good, 2)])
    got = acks(sent, "g1")
    assert got[1][0] == "rejected" and "3000" in got[1][1] and got[2][0] == "committed"
    assert store.query("SELECT id FROM records") == [(good.id,)]


def test_a_huge_seq_jump_does_not_stall_the_gap_check(hub):
    """A station's seq jumping from 2 to 10**15 leaves a gap the checker must not enumerate: it asks for the
    first seqs of the gap, a bounded number of them, and keeps going."""
    from central_sync.hub.gaps import MAX_ASK, GapChecker

    ing, store, sent = hub
    far = make_record("g1", 3).model_copy(update={"seq": 10**15})
    ing.handle([msg("inspection", make_record("g1", s), s) for s in (1, 2)] + [msg("inspection", far, 3)])
    cmds = []
    gaps = GapChecker(store, "hub-u", lambda t, b: cmds.append(json.loads(b)))
    gaps.check({"g1"})
    gaps.check({"g1"})
    assert len(cmds) == 1 and cmds[0]["seqs"][:3] == [3, 4, 5] and len(cmds[0]["seqs"]) <= MAX_ASK
