"""The hub's risk bundle rules (central_sync.risk_delivery.Dispatch) without a broker, and the chunk
wire format; the delivery over a real Mosquitto is in tests/edge/test_risk_delivery.py."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st

from central_sync.errors import WireFormatError
from central_sync.protocol import StatusMsg
from central_sync.risk_delivery import Dispatch, Offer, RiskAck, chunks, decode_chunk

SNAP, DELTA = b"snapshot-7" * 100, b"delta-6-7"


def status(station: str = "gate-1", runs: int | None = None, session: int = 1, state: str = "online",
           enabled: bool = True) -> StatusMsg:
    return StatusMsg.model_validate({"station": station, "state": state, "session": session, "at": 0.0,
                                     "risk_enabled": enabled, "risk_version": runs})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_online_station_gets_the_offer_once_until_it_acks() -> None:
    d = Dispatch(resend_s=60)
    assert d.status(status(runs=None), now=0) == []  # nothing offered yet
    sends = d.offered(Offer(7, SNAP), now=1)
    assert [(s.station, s.version, s.envelope) for s in sends] == [("gate-1", 7, SNAP)]
    assert d.status(status(runs=None), now=2) == []  # in flight: the periodic status does not resend
    assert d.acked("gate-1", RiskAck(version=7, sha256=sha(SNAP), outcome="applied"))
    assert d.status(status(runs=7), now=3) == [] and d.stale() == []


def test_a_station_on_the_deltas_base_gets_the_delta_others_the_snapshot() -> None:
    d = Dispatch()
    d.status(status("gate-1", runs=6), now=0)
    d.status(status("gate-2", runs=3), now=0)
    sends = {s.station: s.envelope for s in d.offered(Offer(7, SNAP, DELTA, base_version=6), now=1)}
    assert sends == {"gate-1": DELTA, "gate-2": SNAP}


def test_a_status_sent_before_the_apply_does_not_take_the_station_back() -> None:
    """The station applies 6 and acks; its periodic status, sent just before, still says 5 (or none): the next
    version goes as the delta on 6. After a restart (a new session) the status is believed."""
    d = Dispatch()
    d.status(status(runs=5), now=0)
    d.offered(Offer(6, SNAP), now=1)
    assert d.acked("gate-1", RiskAck(version=6, sha256=sha(SNAP), outcome="applied"))
    d.status(status(runs=5), now=2)
    d.status(status(runs=None), now=2)
    assert [s.envelope for s in d.offered(Offer(7, SNAP, DELTA, base_version=6), now=3)] == [DELTA]
    d2 = Dispatch()
    d2.status(status(runs=6), now=0)
    d2.status(status(runs=None, session=2), now=1)  # restarted without its bundle files
    assert [s.envelope for s in d2.offered(Offer(7, SNAP, DELTA, base_version=6), now=2)] == [SNAP]


def test_no_ack_within_resend_s_sends_again() -> None:
    d = Dispatch(resend_s=10)
    d.status(status(), now=0)
    d.offered(Offer(7, SNAP), now=0)
    assert d.tick(now=9.9) == []
    again = d.tick(now=10)
    assert [s.attempt for s in again] == [2] and d.counters["resent"] == 1


def test_a_refused_bundle_is_not_sent_again_in_that_session_but_is_after_a_reconnect() -> None:
    d = Dispatch(resend_s=10)
    d.status(status(session=1), now=0)
    d.offered(Offer(7, SNAP), now=0)
    assert d.acked("gate-1", RiskAck(version=7, sha256=sha(SNAP), outcome="refused", code="unknown_key"))
    assert d.tick(now=100) == [] and d.status(status(session=1), now=101) == []
    assert d.stale() == ["gate-1"]
    assert [s.envelope for s in d.status(status(session=2), now=102)] == [SNAP]  # e.g. the key pinned since


def test_an_offline_station_waits_and_gets_the_bundle_when_back() -> None:
    d = Dispatch()
    d.status(status(state="offline"), now=0)
    assert d.offered(Offer(7, SNAP), now=1) == []
    assert [s.version for s in d.status(status(session=2), now=2)] == [7]


def test_a_station_that_does_not_assess_risk_is_sent_nothing() -> None:
    d = Dispatch(resend_s=10)
    d.status(status("gate-1", enabled=False), now=0)
    assert d.offered(Offer(7, SNAP), now=0) == [] and d.tick(now=100) == [] and d.stale() == []


def test_a_late_status_of_an_older_session_is_ignored() -> None:
    d = Dispatch()
    d.status(status(session=5), now=0)
    assert d.status(status(session=4, state="offline"), now=1) == []
    assert d.stations["gate-1"].online


def test_a_stale_ack_does_not_end_the_delivery_in_flight() -> None:
    d = Dispatch()
    d.status(status(), now=0)
    d.offered(Offer(7, SNAP), now=0)
    assert not d.acked("gate-1", RiskAck(version=6, sha256=sha(b"older"), outcome="applied"))
    assert d.stations["gate-1"].sent_sha == sha(SNAP)


@given(st.binary(min_size=1, max_size=5000), st.integers(1, 700))
def test_chunks_join_back_to_the_envelope(envelope: bytes, size: int) -> None:
    parts = [decode_chunk(p) for p in chunks(3, envelope, size)]
    assert b"".join(data for _, data in parts) == envelope
    assert {h.count for h, _ in parts} == {len(parts)} and all(h.sha256 == sha(envelope) for h, _ in parts)


@pytest.mark.parametrize("payload", [b"no header line", b'{"v":1}\nxx', b"\xff\xfe\n"])
def test_a_bad_chunk_is_a_wire_format_error(payload: bytes) -> None:
    with pytest.raises(WireFormatError):
        decode_chunk(payload)
