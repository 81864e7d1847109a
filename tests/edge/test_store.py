"""The station store: durable commits, outbox in the same transaction, disk bounds, retention."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from central_sync.schema import Identity, InspectionRecord, Review, Verdict
import edge.store as store_module
from edge.cli import main as edge_main
from edge.errors import DiskFull, StoreCorrupt, StoreError
from edge.store import MIGRATIONS, Store, StoreLimits

from edge_factories import make_record


def test_commit_allocates_seq_and_outbox_rows(store):
    a = store.commit(make_record(), scan_stored=False)
    b = store.commit(make_record(Verdict.SUSPECT, "detection", scan_sha="ab" * 32), scan_stored=True)
    assert (a.seq, b.seq) == (1, 2)
    rows = store.conn.execute("SELECT lane, kind, seq FROM outbox ORDER BY id").fetchall()
    assert rows == [(1, "inspection", 1), (0, "alert", 2), (2, "blob", 2)]
    assert store.get(b.id).verdict is Verdict.SUSPECT


def test_failed_transaction_leaves_nothing(store):
    rec = store.commit(make_record(), scan_stored=False)
    with pytest.raises(Exception):
        store.commit(rec, scan_stored=False)  # same id twice violates UNIQUE
    assert store.count() == 1
    assert store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1


def test_review_is_stored_and_queued(store):
    from datetime import datetime, timezone
    rec = store.commit(make_record(Verdict.SUSPECT, "detection"), scan_stored=False)
    review = Review(officer="B-17", decided_at=datetime.now(timezone.utc), outcome="false_alarm")
    store.add_review(rec.id, review)
    assert store.get(rec.id).review.outcome == "false_alarm"
    assert store.conn.execute("SELECT kind FROM outbox ORDER BY id DESC").fetchone()[0] == "review"


def test_migrations_are_recorded_once(tmp_path):
    with Store(tmp_path) as s:
        assert s.schema_version() >= 1
    with Store(tmp_path) as s:
        assert s.conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == s.schema_version()


def test_processes_opening_one_new_database_at_once_all_open_it_and_migrate_it_once(tmp_path):
    """The daemon and `edge migrate` (or two daemons on one data directory by mistake) may open a new
    station database at the same moment: each waits for the other, none calls it corrupt."""
    for trial in range(5):
        where = tmp_path / str(trial)
        start, errors = threading.Barrier(6), []

        def open_once():
            start.wait()
            try:
                Store(where).open().close()
            except Exception as exc:  # collected: the assertion below names it
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_once) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with Store(where) as s:
            versions = [v for (v,) in s.conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
            assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_a_database_another_process_holds_is_busy_not_corrupt(tmp_path, monkeypatch, capsys):
    """Held past the wait, opening fails as a StoreError that says so (the station is restarted later),
    never as StoreCorrupt (which stops the station for good and sends a technician to move the file)."""
    with Store(tmp_path) as s:
        s.commit(make_record(), scan_stored=False)
    monkeypatch.setattr(store_module, "BUSY_S", 0.2)
    holder = sqlite3.connect(tmp_path / "station.db", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nid = "lane-1"\nkind = "xray"\nitem_kind = "baggage"\nbudget_ms = 500\n'
                      f'data_dir = "{tmp_path}"\n\n[devices.source]\nkind = "filedrop"\nfolder = "{tmp_path / "drop"}"\n')
    try:
        with pytest.raises(StoreError, match=r"held by another process for over 0.2 s") as caught:
            Store(tmp_path).open()
        assert not isinstance(caught.value, StoreCorrupt)
        assert edge_main(["migrate", "--config", str(config)]) == 1      # say so and fail; not "corrupt" (65)
        assert "held by another process" in capsys.readouterr().err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Store(tmp_path) as s:
        assert s.count() == 1


def test_wal_and_full_sync(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_corrupt_database_is_refused_with_its_path(tmp_path):
    (tmp_path / "station.db").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    with pytest.raises(StoreCorrupt, match="station.db"):
        Store(tmp_path).open()


def test_scans_are_dropped_first_when_disk_is_low(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=10**15)) as s:
        assert not s.put_scan("cd" * 32, b"x" * 100)
        rec = s.commit(make_record(scan_sha="cd" * 32), scan_stored=False)
        assert s.get(rec.id) is not None
        assert s.counters.scans_dropped == {"disk_low": 1}
        assert s.standing_alarms()[0][0] == "disk_low"
        assert s.conn.execute("SELECT count(*) FROM outbox WHERE kind='blob'").fetchone()[0] == 0


def test_scan_cap_refuses_new_scans_but_never_evicts_unsynced(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=0, scan_cap_bytes=250)) as s:
        for i in range(2):
            sha = f"{i:02x}" * 32
            assert s.put_scan(sha, b"y" * 100)
            s.commit(make_record(scan_sha=sha), scan_stored=True)
        assert not s.put_scan("ee" * 32, b"z" * 100)  # both stored scans are unsynced: kept
        assert s.counters.scans_dropped == {"scan_cap": 1}
        s.conn.execute("DELETE FROM outbox")  # the hub acknowledged everything
        assert s.put_scan("ee" * 32, b"z" * 100)


def test_retention_prunes_only_synced(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=0, retention_days=1)) as s:
        synced = s.commit(make_record(), scan_stored=False)
        unsynced = s.commit(make_record(), scan_stored=False)
        s.conn.execute("DELETE FROM outbox WHERE record_id = ?", (synced.id,))
        s.prune(now=time.time() + 3 * 86400)
        assert s.get(synced.id) is None
        assert s.get(unsynced.id) is not None


def _with_crop(sha: str) -> InspectionRecord:
    return make_record().model_copy(update={"identities": [Identity(kind="plate", value="AB1234", source="front",
                                                                     status="read", crop=sha)]})


def test_evidence_crops_are_counted_at_open_and_evicted_with_their_synced_record(tmp_path):
    """Crops count against the cap as scans do, after a restart too; over the cap the oldest synced record's
    crops go, an unsynced record's never."""
    limits = StoreLimits(reserve_bytes=0, scan_cap_bytes=2500)
    with Store(tmp_path, limits) as s:
        assert s.put_crop("a1" * 32, b"a" * 1000) and s.put_crop("b2" * 32, b"b" * 1000)
        synced, unsynced = s.commit(_with_crop("a1" * 32), False), s.commit(_with_crop("b2" * 32), False)
        s.conn.execute("DELETE FROM outbox WHERE record_id = ?", (synced.id,))
    with Store(tmp_path, limits) as s:  # the crops on disk are counted again at open
        assert s.put_crop("c3" * 32, b"c" * 1000)
        assert not s.crop_path("a1" * 32).exists() and s.counters.pruned_crops == 1
        assert s.crop_path("b2" * 32).exists() and s.crop_path("c3" * 32).exists()
        crops = dict(s.conn.execute("SELECT id, crops FROM inspections").fetchall())
        assert crops == {synced.id: "", unsynced.id: "b2" * 32}
        assert s.get(synced.id) is not None  # the record stays; only its files went
        assert not s.put_crop("d4" * 32, b"d" * 1000)  # what is left is unsynced or not yet a record's: kept
        assert s.counters.scans_dropped == {"scan_cap": 1}


def test_retention_prunes_a_synced_records_crops_with_it(tmp_path):
    with Store(tmp_path, StoreLimits(reserve_bytes=0, retention_days=1)) as s:
        for sha in ("e5" * 32, "f6" * 32):
            assert s.put_crop(sha, b"p" * 100)
        synced, unsynced = s.commit(_with_crop("e5" * 32), False), s.commit(_with_crop("f6" * 32), False)
        s.conn.execute("DELETE FROM outbox WHERE record_id = ?", (synced.id,))
        s.prune(now=time.time() + 3 * 86400)
        assert s.get(synced.id) is None and not s.crop_path("e5" * 32).exists()
        assert s.get(unsynced.id) is not None and s.crop_path("f6" * 32).exists()


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from edge_factories import make_record
    from edge.store import Store
    with Store(sys.argv[1]) as s:
        while True:
            rec = s.commit(make_record(), scan_stored=False)
            print("REC", rec.seq, rec.id, flush=True)
""")


def test_kill_9_loses_no_committed_record(tmp_path):
    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), here])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), here], stdout=subprocess.PIPE,
                            text=True, env=env)
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.split())
        acknowledged = [a for a in acknowledged if a[0] == "REC"]
        if len(acknowledged) >= 200:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    complete_lines = proc.stdout.read().split("\n")[:-1]  # the last piece may be cut by the kill
    acknowledged += [line.split() for line in complete_lines if line.startswith("REC")]
    with Store(tmp_path) as s:  # reopens clean: integrity check passes
        stored = dict(s.conn.execute("SELECT id, seq FROM inspections"))
        seqs = sorted(stored.values())
        assert seqs == list(range(1, len(seqs) + 1))  # no gap
    for _, seq, rid in acknowledged:
        assert stored[rid] == int(seq)


def _fill(s: Store) -> int:
    """Commit records until the database refuses one; the number written."""
    s.conn.execute(f"PRAGMA max_page_count = {s.conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
    with pytest.raises(DiskFull, match="could not be written"):
        for n in range(10_000):
            s.commit(make_record(), scan_stored=False)
    return n


def test_a_full_database_alarms_through_the_reserve_and_recovers_by_itself(tmp_path):
    with Store(tmp_path) as s:
        written = _fill(s)
        assert s.full is not None
        alarms = dict(s.standing_alarms())
        assert alarms["disk_full"].startswith(f"station database {tmp_path / 'station.db'} is full: records are not"
                                              " written and every item goes to manual")
        with pytest.raises(DiskFull):  # still full: refused at once, never a crash
            s.commit(make_record(), scan_stored=False)
        assert s.count() == written
        s.check_space()
        assert s.full is not None  # no room yet
        s.conn.execute("PRAGMA max_page_count = 1073741823")  # room again
        s.check_space()
        assert s.full is None and "disk_full" not in dict(s.standing_alarms())
        assert s.commit(make_record(), scan_stored=False).seq == written + 1
        history = s.conn.execute("SELECT code, cleared_at IS NOT NULL FROM alarms WHERE code = 'disk_full'").fetchall()
        assert history == [("disk_full", 1)]  # the episode is in the database once there is room for it


def test_the_disk_full_alarm_survives_a_restart(tmp_path):
    with Store(tmp_path) as s:
        _fill(s)
    with Store(tmp_path) as s:  # reopened: the alarm stands until the store sees room
        assert "disk_full" in dict(s.standing_alarms())
        s.check_space()
        assert "disk_full" not in dict(s.standing_alarms())


def test_a_review_on_a_full_database_is_refused_as_disk_full(tmp_path):
    from datetime import datetime, timezone
    with Store(tmp_path) as s:
        rec = s.commit(make_record(Verdict.SUSPECT, "detection"), scan_stored=False)
        s.conn.execute(f"PRAGMA max_page_count = {s.conn.execute('PRAGMA page_count').fetchone()[0]}")
        big = Review(officer="B-17", decided_at=datetime.now(timezone.utc), outcome="false_alarm", note="x" * 50_000)
        with pytest.raises(DiskFull, match=f"review of {rec.id} could not be written"):
            s.add_review(rec.id, big)
        assert s.full is not None and s.get(rec.id).review is None


def test_cleared_alarms_are_pruned_after_a_month_and_standing_ones_never(store, monkeypatch):
    """A flapping alarm or a rejected retrofit file adds a row each time; nothing reads a cleared one, so it
    goes ALARM_KEEP_S after it cleared. A standing alarm stays however old; the lookups use the index."""
    t0 = time.time()
    now = [t0]
    monkeypatch.setattr(store_module.time, "time", lambda: now[0])
    for _ in range(2):
        store.raise_alarm("plc_link", "PLC at 10.0.0.5:502 did not answer")
        store.clear_alarm("plc_link")
    store.raise_alarm("disk_low", "disk nearly full")      # stands
    now[0] = t0 + 101
    store.raise_alarm("plc_link", "PLC at 10.0.0.5:502 did not answer")
    store.clear_alarm("plc_link")                           # cleared at t0 + 101
    monkeypatch.undo()
    store.prune(now=t0 + store_module.ALARM_KEEP_S + 50)
    left = store.conn.execute("SELECT code, cleared_at FROM alarms ORDER BY id").fetchall()
    assert left == [("disk_low", None), ("plc_link", t0 + 101)]
    assert store.counters.pruned_alarms == 2
    store.prune(now=t0 + store_module.ALARM_KEEP_S * 100)
    assert store.standing_alarms() == [("disk_low", "disk nearly full")] and store.counters.pruned_alarms == 3
    for sql, args in (("SELECT 1 FROM alarms WHERE code = ? AND cleared_at IS NULL", ("x",)),
                      ("DELETE FROM alarms WHERE cleared_at < ?", (0.0,))):
        plan = " ".join(row[-1] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "alarms_cleared" in plan, plan


def test_a_seq_is_never_given_again_after_retention_deleted_the_newest_records(tmp_path):
    """The hub holds seqs 1..3 for three records; once retention deleted all three, the next record is seq 4
    (it was given seq 1 again: the hub held two records under one station seq), after a restart too."""
    limits = StoreLimits(reserve_bytes=0, retention_days=1)
    with Store(tmp_path, limits) as s:
        first = [s.commit(make_record(), scan_stored=False) for _ in range(3)]
        s.conn.execute("DELETE FROM outbox")  # the hub acknowledged them
        s.prune(now=time.time() + 3 * 86400)
        assert s.count() == 0 and [r.seq for r in first] == [1, 2, 3]
        assert s.commit(make_record(), scan_stored=False).seq == 4
        s.conn.execute("DELETE FROM outbox")
        s.prune(now=time.time() + 3 * 86400)
    with Store(tmp_path, limits) as s:
        assert s.count() == 0
        assert s.commit(make_record(), scan_stored=False).seq == 5


def test_an_older_store_counts_on_from_the_newest_seq_its_records_name(tmp_path, monkeypatch):
    """A store made before the seq was kept apart (migration 4) goes on after the newest seq it holds."""
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:3])
    with Store(tmp_path) as s:
        for seq in (1, 2, 7):
            rec = make_record().model_copy(update={"seq": seq})
            s.conn.execute("INSERT INTO inspections (seq, id, station, kind, decided_at, verdict, reason, record)"
                           " VALUES (?,?,?,?,?,?,?,?)", (seq, rec.id, rec.station, rec.kind.value,
                                                         rec.decided_at.isoformat(), "clear", "clear", rec.to_json()))
    monkeypatch.undo()
    with Store(tmp_path) as s:
        assert s.commit(make_record(), scan_stored=False).seq == 8


def test_files_no_record_names_leave_the_cap_at_start_and_named_ones_stay(tmp_path):
    """The process ended between writing a scan (or a crop) and committing its record: the file counted against
    the scan cap for ever (eviction and retention walk records). At the daemon's start it goes to orphans/, an
    unfinished .part file is deleted, and every file a record names stays, an evicted record's twin included."""
    limits = StoreLimits(reserve_bytes=0, scan_cap_bytes=3500)
    with Store(tmp_path, limits) as s:
        assert s.put_scan("a1" * 32, b"a" * 1000) and s.put_crop("c3" * 32, b"c" * 300)
        s.commit(_with_crop("c3" * 32).model_copy(update={"scan": make_record(scan_sha="a1" * 32).scan}), True)
        s.commit(make_record(scan_sha="b2" * 32), scan_stored=False)  # named, though not stored by this record
        assert s.put_scan("b2" * 32, b"b" * 600)
        assert s.put_scan("0f" * 32, b"o" * 1000) and s.put_crop("d4" * 32, b"d" * 300)  # then the process ended
        s.scan_path("ee" * 32).parent.mkdir(parents=True)
        s.scan_path("ee" * 32).with_suffix(".part").write_bytes(b"half")
    with Store(tmp_path, limits) as s:
        s.sweep_orphans()
        assert s._scan_bytes == 1000 + 300 + 600
        assert (tmp_path / "orphans" / "scans" / f"{'0f' * 32}.npz").read_bytes() == b"o" * 1000
        assert (tmp_path / "orphans" / "crops" / f"{'d4' * 32}.png").read_bytes() == b"d" * 300
        assert not s.scan_path("0f" * 32).exists() and not s.scan_path("ee" * 32).with_suffix(".part").exists()
        assert all(p.is_file() for p in (s.scan_path("a1" * 32), s.scan_path("b2" * 32), s.crop_path("c3" * 32)))
        assert s.put_scan("f0" * 32, b"n" * 500)  # refused while the orphans counted (3200 of 3500 bytes)


def test_a_scan_alarm_standing_at_a_restart_clears_once_a_scan_is_stored_again(tmp_path):
    """The scan_cap alarm raised before a restart stood for ever: only the run that raised it cleared it."""
    with Store(tmp_path, StoreLimits(reserve_bytes=0, scan_cap_bytes=100)) as s:
        assert not s.put_scan("a1" * 32, b"a" * 150)
        assert [code for code, _ in s.standing_alarms()] == ["scan_cap"]
    with Store(tmp_path, StoreLimits(reserve_bytes=0, scan_cap_bytes=10_000)) as s:  # restarted, cap raised
        assert [code for code, _ in s.standing_alarms()] == ["scan_cap"]
        assert s.put_scan("b2" * 32, b"b" * 150)
        assert s.standing_alarms() == []


def test_scan_storage_warns_before_the_cap_and_the_dropped_count_stays_current(tmp_path):
    """With the hub away, the first alarm came with the first scan lost, and its count stayed at 1. Now
    scan_cap_near stands from 80 % of the cap while images wait for the hub, scan_cap counts every scan dropped,
    and the warning clears once the hub holds them."""
    def scan(i: int) -> str:
        sha = f"{i:02x}" * 32
        stored = s.put_scan(sha, bytes([i]) * 1000)
        s.commit(make_record(scan_sha=sha), scan_stored=stored)
        return stored

    with Store(tmp_path, StoreLimits(reserve_bytes=0, scan_cap_bytes=10_000)) as s:
        assert all(scan(i) for i in range(1, 8)) and s.standing_alarms() == []  # 7000 bytes: 70 %
        assert scan(8)
        ((code, message),) = s.standing_alarms()
        assert code == "scan_cap_near" and message == (f"scan storage under {tmp_path} is 80% full (8000 of 10000"
                                                       " bytes) with 7 images the hub does not hold yet: new scans are"
                                                       " dropped at the cap")
        assert scan(9) and scan(10) and not scan(11) and not scan(12)
        alarms = dict(s.standing_alarms())
        assert alarms["scan_cap"] == f"scan storage under {tmp_path} reached its cap with scans the hub does not hold yet (2 dropped)"
        s.conn.execute("DELETE FROM outbox")  # the hub acknowledged everything
        s.prune()
        assert "scan_cap_near" not in dict(s.standing_alarms())
