"""The hub's records prune on PostgreSQL against an ingest committing at that moment: a scan or a search photo that
a record being committed names stays (its DELETE ... NOT EXISTS sees the record), and two prunes at once do not
deadlock."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import psycopg
import pytest

from central_sync.control_room.db import execute
from central_sync.hub import retention as hub_retention
from central_sync.hub.store import PgStore, open_store
from central_sync.schema import SearchReport, Verdict
from tests.central_sync.test_hub_retention import POLICY, Hub, _signature, _signed

SCAN, PHOTO = "5c" * 32, hashlib.sha256(b"\xff\xd8\xff\xe0photo").hexdigest()
WAITING = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'records'::regclass"


class HeldIngest(PgStore):
    """A second hub process's store whose message writes stay uncommitted until `release` is set."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.written, self.release = threading.Event(), threading.Event()

    def run_in_transaction(self, fn: Callable, *args: object) -> object:  # type: ignore[override]
        if fn != self._write_all:
            return super().run_in_transaction(fn, *args)

        def held(cur: object, *a: object) -> object:
            out = fn(cur, *a)
            self.written.set()
            assert self.release.wait(30)
            return out
        return super().run_in_transaction(held, *args)


def _report(photos: list[str]) -> SearchReport:
    return _signed(SearchReport(version=1, vehicle_type="van", minutes=10, outcome="nothing_found",
                                officer=_signature("officer"), photos=photos))


def _image(store, sha: str) -> None:  # noqa: ANN001
    execute(store, "INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)",
            (sha, 4, "g1", b"\xff\xd8", 0.0))


def _old(hub: Hub, what: str) -> None:
    """The record the prune deletes, naming SCAN or PHOTO (held by the hub); `late`: pruned before SCAN arrived."""
    if what == "photo":
        hub.add(Verdict.CLEAR, 40, reports=[_report([PHOTO])])
    else:
        hub.add_with_scan(Verdict.CLEAR, 40, SCAN)
    if what == "late":
        assert hub.prune()["records"] == 1
    _image(hub.store, PHOTO if what == "photo" else SCAN)


def _naming(hub: Hub, what: str) -> None:
    """Another pass's record naming the same scan (or a report naming the same photo), as a station sends it."""
    if what == "photo":
        hub.add(Verdict.CLEAR, 5, reports=[_report([PHOTO])])
    else:
        hub.add_with_scan(Verdict.CLEAR, 5, SCAN)


@pytest.mark.parametrize("what", ["scan", "photo", "late"])
def test_an_image_a_record_being_committed_names_stays_on_postgresql(pg_url, what):
    """PostgreSQL reads by the snapshot each statement starts with: a record naming scan S (or a search report naming
    photo P) that another hub process's ingest was committing while the prune deleted the record before it naming S
    was not seen by the blobs' DELETE ... NOT EXISTS, and S went though the record (committed a moment later) names
    it; the same for an image arriving late (`late`). Now the prune's transactions first wait for the writers of
    `records` and `search_reports` in flight and then see the record."""
    store = open_store(pg_url)
    hub_retention.migrate(store)
    hub = Hub(store)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    _old(hub, what)
    ingest = HeldIngest(pg_url)
    other = Hub(ingest)
    other.seq = 100
    sending = threading.Thread(target=_naming, args=(other, what))
    sending.start()
    assert ingest.written.wait(30)
    done: list[dict] = []
    pruning = threading.Thread(target=lambda: done.append(hub.prune()))
    pruning.start()
    with psycopg.connect(pg_url, autocommit=True) as watch:
        for _ in range(3000):  # until the prune is done or waits for the ingest's lock
            if done or watch.execute(WAITING).fetchone()[0]:
                break
            pruning.join(0.01)
    ingest.release.set()
    sending.join(30)
    pruning.join(30)
    assert done and done[0]["records"] == (0 if what == "late" else 1)
    assert store.image(PHOTO if what == "photo" else SCAN) is not None  # the record committed names it
    assert len(hub.ids()) == 1
    ingest.close()
    store.close()


def test_two_prunes_at_once_do_not_deadlock_on_postgresql(pg_url):
    """Two hub processes' prunes of the same records, both waiting for an ingest's writes, then run their deletions
    one after the other: the second deletes nothing, neither fails. (Had they both taken SHARE, both would get it
    when the ingest commits and each would then wait for the other to write: a deadlock, one prune failed.)"""
    store = open_store(pg_url)
    hub_retention.migrate(store)
    hub = Hub(store)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    for i in range(20):
        hub.add(Verdict.CLEAR, 40, scan=f"{i:064x}")
    ingest = HeldIngest(pg_url)
    other = Hub(ingest)
    other.seq = 100
    sending = threading.Thread(target=other.add, args=(Verdict.CLEAR, 5))
    sending.start()
    assert ingest.written.wait(30)
    stores = [open_store(pg_url) for _ in range(2)]
    out: list[dict] = []
    threads = [threading.Thread(target=lambda s=s: out.append(hub_retention.prune(s, now=hub.now))) for s in stores]
    for t in threads:
        t.start()
    with psycopg.connect(pg_url, autocommit=True) as watch:
        for _ in range(3000):  # until both prunes wait for the ingest's lock (or are done)
            if len(out) == 2 or watch.execute(WAITING).fetchone()[0] == 2:
                break
            threads[0].join(0.01)
    ingest.release.set()
    for t in (sending, *threads):
        t.join(60)
    assert len(out) == 2 and sorted(o["records"] for o in out) == [0, 20]
    assert len(hub.ids()) == 1 and store.query("SELECT count(*) FROM blobs") == [(0,)]
    for s in (*stores, ingest, store):
        s.close()
