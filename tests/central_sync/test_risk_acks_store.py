"""The hub's record of stations' answers to risk bundles (bundle_acks), on both backends."""

from __future__ import annotations

from central_sync.hub.store import HubStore

SHA6, SHA7, SHA7B = "6" * 64, "7" * 64, "b" * 64


def test_the_latest_answer_per_station_and_the_version_applied(store: HubStore) -> None:
    store.record_bundle_ack("gate-1", 6, SHA6, "applied", None, 10.0)
    store.record_bundle_ack("gate-1", 7, SHA7, "refused", "unknown_key", 20.0)
    store.record_bundle_ack("gate-2", 7, SHA7, "applied", None, 15.0)
    assert store.bundle_acks() == [("gate-1", 7, SHA7, "refused", "unknown_key", 20.0),
                                   ("gate-2", 7, SHA7, "applied", None, 15.0)]
    assert store.applied_bundle_versions() == {"gate-1": 6, "gate-2": 7}


def test_an_envelope_answered_again_keeps_the_newest_answer(store: HubStore) -> None:
    store.record_bundle_ack("gate-1", 7, SHA7, "refused", "unknown_key", 20.0)
    store.record_bundle_ack("gate-1", 7, SHA7, "applied", None, 30.0)
    store.record_bundle_ack("gate-1", 7, SHA7, "refused", "replayed", 25.0)  # late duplicate: older than the answer kept
    store.record_bundle_ack("gate-1", 7, SHA7B, "applied", None, 31.0)  # the delta of the same version
    assert store.bundle_acks() == [("gate-1", 7, SHA7B, "applied", None, 31.0)]
    assert store.query("SELECT outcome FROM bundle_acks WHERE sha256 = ?", (SHA7,)) == [("applied",)]


def test_migrate_twice_keeps_the_answers(store: HubStore) -> None:
    store.record_bundle_ack("gate-1", 6, SHA6, "applied", None, 10.0)
    store.migrate()
    assert store.applied_bundle_versions() == {"gate-1": 6}


def test_the_latest_answer_is_the_newest_then_the_highest_version_among_many(store: HubStore) -> None:
    """One answer per station, its newest (then its highest version) over answers recorded in any order: what the
    correlated query the control room's bundles page ran before gave (quadratic in a station's answers)."""
    import random

    rng = random.Random(7)
    for _ in range(300):
        store.record_bundle_ack(f"gate-{rng.randrange(6)}", rng.randrange(1, 40), rng.choice((SHA6, SHA7, SHA7B)),
                                rng.choice(("applied", "refused")), None, float(rng.randrange(0, 60)))
    newest: dict[str, tuple[float, int]] = {}
    for station, version, at in store.query("SELECT station, version, at FROM bundle_acks"):
        newest[station] = max(newest.get(station, (-1.0, -1)), (at, version))
    got = store.bundle_acks()
    assert [row[0] for row in got] == sorted(newest)
    assert all((row[5], row[1]) == newest[row[0]] for row in got)
