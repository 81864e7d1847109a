"""Wire protocol: known-good vectors, round trips, and garbage that never crashes the decoders."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.errors import WireFormatError

stations = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)


def test_topics_and_subscriptions():
    assert p.topic("gate-1", "alert") == "cpe/v1/gate-1/alert"
    assert p.blob_topic("g", "ab" * 32, 3) == f"cpe/v1/g/blob/{'ab' * 32}/3"
    assert p.hub_subscriptions() == ["$share/hub/cpe/v1/+/alert", "$share/hub/cpe/v1/+/inspection",
                                     "$share/hub/cpe/v1/+/review", "$share/hub/cpe/v1/+/tip", "$share/hub/cpe/v1/+/batch",
                                     "$share/hub/cpe/v1/+/blob/+/+", "cpe/v1/+/status"]
    assert p.hub_subscriptions(lane="bulk") == ["$share/hub/cpe/v1/+/inspection", "$share/hub/cpe/v1/+/review", "$share/hub/cpe/v1/+/tip", "$share/hub/cpe/v1/+/batch", "$share/hub/cpe/v1/+/blob/+/+"]
    assert p.parse_topic("cpe/v1/gate-1/blob/abc/2") == ("gate-1", ["blob", "abc", "2"])
    for bad in ("cpe/v2/g/alert", "cpe/v1/g", "cpe/v1/a b/alert", "x"):
        with pytest.raises(WireFormatError):
            p.parse_topic(bad)
    with pytest.raises(WireFormatError, match="station id"):
        p.check_station("gate/1")


def test_envelope_known_vector():
    body = b'{"x":1}'
    raw = p.encode_envelope("g1", "review", 7, 42, "r-1", body, 1.5)
    assert raw == b'{"v": 1, "station": "g1", "msg": 7, "seq": 42, "record_id": "r-1", "kind": "review", "sent_at": 1.5,"body":{"x":1}}'
    assert p.decode_head(raw).msg == 7


@given(station=stations, seq=st.integers(0, 2**53), msg=st.integers(1, 2**53), alert=st.booleans())
@settings(max_examples=60, deadline=None)
def test_record_envelope_round_trip(station, seq, msg, alert):
    rec = make_record(station, seq % 10**9)
    kind = "alert" if alert else "inspection"
    out = p.decode_message(kind, p.encode_envelope(station, kind, msg, rec.seq, rec.id, rec.to_json().encode(), 0.0))
    assert (out.station, out.msg, out.seq, out.record_id, out.kind, out.body) == (station, msg, rec.seq, rec.id, kind, rec)


@given(data=st.binary(max_size=400))
@settings(max_examples=200, deadline=None)
def test_garbage_only_ever_raises_protocol_error(data):
    for fn in (lambda: p.decode_message("inspection", data), lambda: p.decode_message("review", data),
               lambda: p.decode_batch(data),
               lambda: p.decode_chunk(data), lambda: p.decode_model(p.AckMsg, data), lambda: p.decode_model(p.StatusMsg, data)):
        try:
            fn()
        except WireFormatError as exc:
            assert "\n" not in str(exc)
    p.decode_head(data)


def test_batch_round_trip_and_one_bad_item():
    recs = [make_record("g1", s) for s in (1, 2)]
    envs = [p.encode_envelope("g1", "inspection", i + 1, r.seq, r.id, r.to_json().encode(), 0.0) for i, r in enumerate(recs)]
    station, items = p.decode_batch(p.encode_batch("g1", envs))
    assert station == "g1" and [m.body for m, _, _ in items] == recs
    bad = b'{"v":1,"station":"g1","msg":9,"seq":3,"record_id":"x","kind":"inspection","body":{"id":1}}'
    station, items = p.decode_batch(p.encode_batch("g1", [envs[0], bad]))
    assert items[0][0].body == recs[0] and items[1][0] is None and items[1][1].msg == 9 and "body" in items[1][2]
    with pytest.raises(WireFormatError, match="batch payload"):
        p.decode_batch(b'{"station": 3}')


def test_chunk_round_trip_and_tamper():
    data = bytes(range(256)) * 10
    header = p.BlobChunkHeader(station="g", msg=3, seq=9, record_id="r", sha256="0" * 64, index=1, count=2,
                               size=5120, chunk_sha256=hashlib.sha256(data).hexdigest())
    raw = p.encode_chunk(header, data)
    assert p.decode_chunk(raw) == (header, data)
    with pytest.raises(WireFormatError, match="chunk 1 hashes to"):
        p.decode_chunk(raw[:-1] + b"\x00")


@given(n=st.integers(0, 300), limit=st.integers(300, 5000))
@settings(max_examples=50, deadline=None)
def test_acks_split_under_limit_and_complete(n, limit):
    items = [p.AckItem(msg=i, record_id=f"rec-{i}", status="committed") for i in range(n)]
    payloads = p.encode_acks("hub-1", items, limit)
    assert all(len(x) <= limit for x in payloads)
    got = [a for x in payloads for a in p.decode_model(p.AckMsg, x).acks]
    assert got == items
    assert all(json.loads(x)["hub"] == "hub-1" for x in payloads)


def test_a_newer_stations_status_and_command_result_are_read_not_refused():
    """Stations and hub upgrade apart: fields a newer station adds are ignored; what is wrong is still refused."""
    from central_sync import commands as c

    status = {"station": "gate-1", "state": "online", "session": 3, "at": 1.0, "lane": {"state": "running",
              "belt_speed_mps": 0.2}, "thermal": {"cpu_c": 61}, "device_faults": [{"device": "plc", "state": "down",
              "since": 2.0}]}
    got = p.decode_model(p.StatusMsg, json.dumps(status).encode())
    assert got.lane is not None and got.lane.state == "running" and got.device_faults[0].device == "plc"
    with pytest.raises(WireFormatError, match="state"):
        p.decode_model(p.StatusMsg, json.dumps({**status, "state": "sleeping"}).encode())
    result = c.CommandResult.model_validate({"id": "d1", "station": "gate-1", "op": "set_threshold", "outcome": "applied",
                                             "reason": "applied", "at": 2.0, "undo_of": "c0"})
    assert result.outcome == "applied"
    with pytest.raises(WireFormatError):  # a record is evidence: a field this hub cannot keep is refused, not dropped
        rec = make_record("gate-1", 1)
        body = rec.to_json().encode()[:-1] + b',"extra":1}'
        p.decode_message("inspection", p.encode_envelope("gate-1", "inspection", 1, rec.seq, rec.id, body, 0.0))
