"""The station's durable store: SQLite (WAL, synchronous=FULL) plus scan files named by sha256.

A record and its outbox rows are written in one transaction; the record's `seq` is allocated
inside that transaction, so a crash can never leave a gap in the station's sequence. The newest seq
given is kept in `store_meta` (`last_seq`), not read from the records: retention deletes records,
the newest too, and a seq the hub holds for one record is never given to another. Scan files
are written (and fsynced) before the transaction that names them. When the disk runs low,
scans are dropped first (counted); records keep being written into the reserved room.
Retention prunes only data the hub has acknowledged (no outbox row left for the record), by the hub's
retention state (edge/retention.py: age per verdict, seizures until released, legal holds); without one
it keeps everything. A held record's files are never evicted either.
Cameras' evidence crops (PNG files named by sha256, under `crops/`) are files of the record as its
scan is: counted against the same cap and free-space reserve (at open as when written), listed on
the record's row (`crops`) when it is committed, and deleted with the record's scan when the oldest
synced records are evicted over the cap or pruned by retention. From 80 % of the cap while images wait
for the hub, `scan_cap_near` warns before a scan is dropped (cleared under 70 %); `scan_cap` counts the drops.
A scan or crop file no record names (the process ended between writing it and committing its record) is
moved to `orphans/` when the daemon starts (`sweep_orphans`), and an unfinished `*.part` file deleted: such a
file counted against the cap for ever, since eviction and retention walk records.
When not even a record fits (SQLITE_FULL), the store is `full`: commits are refused at once with
DiskFull (the inspector sends every item to manual), the alarm goes to a small pre-allocated file
beside the database (`alarm.reserve`, overwritten in place, so it needs no free block), and
`check_space` (housekeeping) leaves that state by itself when there is room again.

One `Store` is used from one thread at a time; the daemon calls it through a single-thread
executor (`edge.store.StoreWriter`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TypeVar, TypeVarTuple, Unpack

import structlog

from central_sync.blobs import PHOTO_PREFIX, photo_path
from central_sync.outbox import OUTBOX_DDL, Lane, enqueue
from central_sync.schema import History, InspectionRecord, Review, RouteTaken, Verdict
from central_sync import retention
from edge.errors import DiskFull, StoreCorrupt, StoreError
from edge.retention import StationRetention

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

log = structlog.get_logger()

PRUNE_PAGE = 500  # records read per page of a retention round
PRUNE_MAX = 200  # records deleted per round at most: the store thread (commits wait on it) is never held long
PRUNE_PAGES = 20  # pages read per round at most (the rest waits for the next round)
STABLE_KEEPS = frozenset({"held", "not_released", "kept_class"})  # only a new retention state changes these
RESERVE_ALARM_BYTES = 4096
SPACE_PROBE_BYTES = 64 * 1024  # the room a probe must find before records are written again
STORE_CORRUPT_EXIT = 65  # EX_DATAERR; the systemd unit lists it in RestartPreventExitStatus
ALARM_KEEP_S = 30 * 86400  # a cleared alarm's row is deleted this long after it cleared
ORPHANS_DIR = "orphans"  # data_dir's folder for scan and crop files no record names (sweep_orphans)
BUSY_S = 5.0  # how long opening waits for another process holding the database (the daemon, `edge migrate`)

MIGRATIONS: tuple[str, ...] = (
    # 1: records, outbox, alarms
    """
    CREATE TABLE inspections (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        station     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        decided_at  TEXT NOT NULL,
        verdict     TEXT NOT NULL,
        reason      TEXT NOT NULL,
        scan_sha256 TEXT,
        scan_stored INTEGER NOT NULL DEFAULT 0,
        reviewed    INTEGER NOT NULL DEFAULT 0,
        record      TEXT NOT NULL
    );
    CREATE INDEX inspections_decided ON inspections (decided_at);
    CREATE INDEX inspections_verdict ON inspections (verdict, reviewed);
    CREATE TABLE alarms (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        REAL NOT NULL,
        code      TEXT NOT NULL,
        message   TEXT NOT NULL,
        cleared_at REAL
    );
    """
    + OUTBOX_DDL,
    # 2: the evidence crops each record names and the store still holds (space-separated sha256s)
    "ALTER TABLE inspections ADD COLUMN crops TEXT NOT NULL DEFAULT '';",
    # 3: alarms looked up by standing code and pruned by age once cleared, without reading the whole table;
    # records by scan (a pruned record's scan is deleted only when no other record names it)
    "CREATE INDEX alarms_cleared ON alarms (cleared_at, code);\n"
    "CREATE INDEX inspections_scan ON inspections (scan_sha256);",
    # 4: the newest seq ever given, kept apart from the records (retention deletes them, the newest too): a seq
    # is never given twice. An existing store starts from the newest its records and outbox rows still name.
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);\n"
    "INSERT INTO store_meta (key, value) SELECT 'last_seq', max(coalesce((SELECT max(seq) FROM inspections), 0),"
    " coalesce((SELECT max(seq) FROM outbox), 0));",
)


NEAR_CAP, NEAR_CAP_CLEAR = 0.8, 0.7  # scan_cap_near stands from 80 % of the cap until under 70 %
NEAR_CAP_MESSAGE = ("scan storage under {dir} is {pct:.0%} full ({used} of {cap} bytes) with {n} images the hub does"
                    " not hold yet: new scans are dropped at the cap")
SCAN_REFUSALS = {
    "disk_low": "disk under {dir} is nearly full: scans are no longer kept ({n} dropped), records still are",
    "scan_cap": "scan storage under {dir} reached its cap with scans the hub does not hold yet ({n} dropped)",
}


@dataclass(frozen=True)
class StoreLimits:
    """Disk bounds: scans stop being written below `reserve_bytes` free or above `scan_cap_bytes`."""

    reserve_bytes: int = 256 * 1024 * 1024
    scan_cap_bytes: int = 20 * 1024**3
    retention_days: float | None = None  # every verdict, until the hub's retention state arrives; None: keep


@dataclass
class StoreCounters:
    records: int = 0
    alerts: int = 0
    scans_stored: int = 0
    scans_dropped: dict[str, int] = field(default_factory=dict)  # scans and crops refused, by reason
    pruned_scans: int = 0
    pruned_records: int = 0
    crops_stored: int = 0
    pruned_crops: int = 0
    pruned_alarms: int = 0


class Store:
    """The station database and scan directory under `data_dir`."""

    def __init__(self, data_dir: Path, limits: StoreLimits = StoreLimits(), station: str = "") -> None:
        self.data_dir = Path(data_dir)
        self.scans_dir = self.data_dir / "scans"
        self.crops_dir = self.data_dir / "crops"
        self.db_path = self.data_dir / "station.db"
        self.limits = limits
        self.station = station
        self.counters = StoreCounters()
        self._conn: sqlite3.Connection | None = None
        self._scan_bytes = 0  # scans and crops on disk: what the cap bounds
        self._scan_alarms: set[str] = set()
        self._near_cap = False  # scan_cap_near stands
        self.reserve = ReserveAlarm(self.data_dir / "alarm.reserve")
        self.full: str | None = None  # the disk-full alarm while records cannot be written
        self.retention = StationRetention(self.data_dir, limits.retention_days)
        self._kept_for: object = None  # the retention state `_kept` was found under
        self._kept: dict[int, str] = {}  # seq -> why it stays, for reasons only a new state changes

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> "Store":
        self.scans_dir.mkdir(parents=True, exist_ok=True)
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_S * 1000)}")   # first: another process opening it waits
            _wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
            self._check_integrity()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn = None
            if conn is not None:
                conn.close()
            if _busy(exc):      # another process holds it (the daemon, `edge migrate`): not corrupt, try again
                raise StoreError(f"station database {self.db_path} is held by another process for over "
                                 f"{BUSY_S:g} s ({exc}): not opened") from exc
            raise StoreCorrupt(f"station database {self.db_path} cannot be opened: {exc}") from exc
        self._scan_bytes = _dir_size(self.scans_dir, "*.npz") + _dir_size(self.crops_dir, "*.png")
        self._scan_alarms = self._standing(SCAN_REFUSALS)  # cleared by the next scan stored, after a restart too
        self._near_cap = bool(self._standing(["scan_cap_near"]))
        self.full = self.reserve.open()
        self.retention.load()
        return self

    def sweep_orphans(self) -> None:
        """Move the scan and crop files no record names into `orphans/` (kept for a technician, not counted against
        the cap) and delete unfinished `*.part` files. Only for the data_dir's owner before it writes anything (the
        daemon at start, holding data_dir's lock): a file written for a record not committed yet is named by none."""
        scans = {sha for (sha,) in self.conn.execute("SELECT DISTINCT scan_sha256 FROM inspections")}
        crops = {sha for (names,) in self.conn.execute("SELECT crops FROM inspections WHERE crops != ''")
                 for sha in names.split()}
        for folder, pattern, named in ((self.scans_dir, "*.npz", scans), (self.crops_dir, "*.png", crops)):
            for path in folder.rglob(pattern):
                if path.name.split(".")[0] not in named:
                    self._orphan(path)
        for folder in (self.scans_dir, self.crops_dir, self.data_dir / "photos"):
            for part in folder.rglob("*.part"):
                part.unlink(missing_ok=True)
                log.warning("store.part_deleted", file=str(part), reason="a write the process did not finish")

    def _orphan(self, path: Path) -> None:
        dest = self.data_dir / ORPHANS_DIR / path.parent.parent.name / path.name
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size
            path.replace(dest)
        except OSError as exc:  # left where it is (and counted): the station starts all the same
            log.error("store.orphan_not_moved", file=str(path), error=f"{path} could not be moved to {dest}: {exc}")
            return
        self._scan_bytes -= size
        log.warning("store.orphan_moved", file=str(path), to=str(dest), bytes=size,
                    reason=f"no record names {path.name} (the process ended before its record was committed)")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Store":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"station database {self.db_path} is not open")
        return self._conn

    def _check_integrity(self) -> None:
        result = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise StoreCorrupt(f"integrity check of {self.db_path} failed: {result}")

    def _migrate(self) -> None:
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self._transaction():     # asked again under the write lock: another process opening the
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    continue              # same database (the daemon, `cpe migrate`) may have applied it
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
            log.info("store.migrated", version=version, db=str(self.db_path))

    def _transaction(self) -> "_Tx":
        return _Tx(self.conn)

    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])

    # -- writing ---------------------------------------------------------------------------
    def scan_path(self, sha256: str) -> Path:
        return self.scans_dir / sha256[:2] / f"{sha256}.npz"

    def crop_path(self, sha256: str) -> Path:
        return self.crops_dir / sha256[:2] / f"{sha256}.png"

    def put_crop(self, sha256: str, png: bytes) -> bool:
        """Write a camera's evidence crop (PNG) under the same disk bounds as scans; False (counted) when refused."""
        return self._put_file(self.crop_path(sha256), sha256, png, "crop")

    def put_scan(self, sha256: str, data: bytes) -> bool:
        """Write a scan file durably; False (counted) when the disk bounds refuse it."""
        return self._put_file(self.scan_path(sha256), sha256, data)

    def _put_file(self, path: Path, sha256: str, data: bytes, kind: str = "scan") -> bool:
        refusal = self._scan_refusal(len(data))
        if refusal:
            self.counters.scans_dropped[refusal] = self.counters.scans_dropped.get(refusal, 0) + 1
            log.warning(f"store.{kind}_dropped", reason=refusal, sha256=sha256, size=len(data))
            self._restate_alarm(refusal, SCAN_REFUSALS[refusal].format(dir=self.data_dir,
                                                                       n=self.counters.scans_dropped[refusal]))
            self._scan_alarms.add(refusal)
            self._watch_cap()
            return False
        while self._scan_alarms:
            self.clear_alarm(self._scan_alarms.pop())
        if path.exists():
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.counters.scans_dropped["write_error"] = self.counters.scans_dropped.get("write_error", 0) + 1
            log.error(f"store.{kind}_write_failed", sha256=sha256, error=str(exc))
            return False
        _fsync_dir(path.parent)
        self._scan_bytes += len(data)
        if kind == "crop":
            self.counters.crops_stored += 1
        else:
            self.counters.scans_stored += 1
        self._watch_cap()
        return True

    def _watch_cap(self) -> None:
        """Warn before scans are dropped: `scan_cap_near` stands from NEAR_CAP of the cap while images wait for the
        hub (synced ones are evicted to make room), until under NEAR_CAP_CLEAR or none waits."""
        cap = self.limits.scan_cap_bytes
        near = self._scan_bytes >= cap * (NEAR_CAP_CLEAR if self._near_cap else NEAR_CAP)
        waiting = self.conn.execute("SELECT count(*) FROM outbox WHERE lane = ?", (int(Lane.IMAGE),)).fetchone()[0] \
            if near else 0
        if waiting and not self._near_cap:
            self.raise_alarm("scan_cap_near", NEAR_CAP_MESSAGE.format(dir=self.data_dir, pct=self._scan_bytes / cap,
                                                                      used=self._scan_bytes, cap=cap, n=waiting))
        elif self._near_cap and not waiting:
            self.clear_alarm("scan_cap_near")
        self._near_cap = bool(waiting)

    def _scan_refusal(self, size: int) -> str | None:
        if self._scan_bytes + size > self.limits.scan_cap_bytes:
            self._evict_synced_scans(self.limits.scan_cap_bytes - size)
            if self._scan_bytes + size > self.limits.scan_cap_bytes:
                return "scan_cap"
        if shutil.disk_usage(self.data_dir).free - size < self.limits.reserve_bytes:
            return "disk_low"
        return None

    def commit(self, record: InspectionRecord, scan_stored: bool) -> InspectionRecord:
        """Allocate `seq`, write the record and its outbox rows in one durable transaction."""
        conn = self.conn
        if self.full is not None:
            raise DiskFull(f"record {record.id} could not be written: {self.full}")
        try:
            with self._transaction():
                seq = conn.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'last_seq'"
                                   " RETURNING value").fetchone()[0]
                record = record.model_copy(update={"seq": seq})
                payload = record.to_json()
                conn.execute(
                    "INSERT INTO inspections (seq, id, station, kind, decided_at, verdict, reason, scan_sha256,"
                    " scan_stored, record, crops) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (seq, record.id, record.station, record.kind.value, record.decided_at.isoformat(),
                     record.verdict.value, record.reason, record.scan.sha256 if record.scan else None,
                     int(scan_stored), payload, " ".join(self._stored_crops(record))),
                )
                is_alert = record.verdict is Verdict.SUSPECT
                enqueue(conn, Lane.ALERT if is_alert else Lane.RECORD, "alert" if is_alert else "inspection",
                        record.id, seq, payload)
                if scan_stored and record.scan:
                    enqueue(conn, Lane.IMAGE, "blob", record.id, seq, record.scan.sha256)
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                self._went_full(exc)
                raise DiskFull(f"record {record.id} could not be written: {self.full}") from exc
            raise StoreError(f"record {record.id} could not be written to {self.db_path}: {exc}") from exc
        self.counters.records += 1
        self.counters.alerts += int(is_alert)
        return record

    def _stored_crops(self, record: InspectionRecord) -> list[str]:
        """The evidence crops the record's identities name and this store holds, each once."""
        named = dict.fromkeys(i.crop for i in record.identities if i.crop)
        return [sha for sha in named if self.crop_path(sha).is_file()]

    def _went_full(self, exc: sqlite3.Error) -> None:
        self.full = (f"station database {self.db_path} is full: records are not written and every item goes to"
                     f" manual until there is room ({exc})")
        self.reserve.write(self.full)
        log.error("store.disk_full", db=str(self.db_path), error=str(exc))

    def check_space(self) -> None:
        """Leave the full state once the disk and the database have room again (the episode is then recorded)."""
        if self.full is None or shutil.disk_usage(self.data_dir).free < SPACE_PROBE_BYTES * 16:
            return
        now = time.time()
        try:
            with self._transaction() as conn:
                conn.execute("INSERT INTO alarms (at, code, message) VALUES (?, 'space_probe', zeroblob(?))",
                             (now, SPACE_PROBE_BYTES))
                conn.execute("DELETE FROM alarms WHERE code = 'space_probe'")
                conn.execute("INSERT INTO alarms (at, code, message, cleared_at) VALUES (?, 'disk_full', ?, ?)",
                             (now, self.full, now))
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                return
            raise StoreError(f"station database {self.db_path} could not be probed for room: {exc}") from exc
        self.full = None
        self.reserve.write(None)
        log.info("store.disk_space_back", db=str(self.db_path))

    def add_review(self, record_id: str, review: Review) -> InspectionRecord:
        """Store the officer's decision on a record and queue it for the hub."""
        return self._update(record_id, {"review": review}, reviewed=True)

    def add_route(self, record_id: str, route: RouteTaken) -> InspectionRecord:
        """Store where the divert gate sent the item and queue the updated record for the hub, as a review is."""
        return self._update(record_id, {"route": route}, reviewed=False)

    def update_record(self, record_id: str, change: Callable[[InspectionRecord], dict]) -> InspectionRecord:
        """Set the fields `change(record)` returns, computed from the record as read inside the transaction (a
        search report's next version), and queue the whole record for the hub as a review is; an exception
        from `change` rolls the transaction back and propagates."""
        return self._update(record_id, change, reviewed=False, what="search report")

    def photo_path(self, sha256: str) -> Path:
        return photo_path(self.data_dir, sha256)

    def _new_photos(self, before: InspectionRecord, after: InspectionRecord) -> list[str]:
        """The search photos a report version names for the first time on this record and this store holds: each
        is queued for the hub once, on the image lane (central_sync/blobs.py)."""
        sent = {ph for r in before.search_reports for ph in r.photos}
        named = dict.fromkeys(ph for r in after.search_reports for ph in r.photos if ph not in sent)
        return [sha for sha in named if self.photo_path(sha).is_file()]

    def put_photo(self, sha256: str, data: bytes) -> bool:
        """Write a search photo (JPEG/PNG) under the same disk bounds as scans."""
        return self._put_file(self.photo_path(sha256), sha256, data)

    def add_history(self, record_id: str, history: History) -> InspectionRecord:
        """Store the comparison with the vehicle's reference pass and queue the updated record, as a route is."""
        return self._update(record_id, {"history": history}, reviewed=False, what="history")

    def _update(self, record_id: str, fields: dict | Callable[[InspectionRecord], dict], reviewed: bool,
                what: str = "") -> InspectionRecord:
        """Set fields of a stored record and queue the whole record on the record lane (hub kind `review`)."""
        conn = self.conn
        what = what or ("review" if reviewed else "route")
        if self.full is not None:
            raise DiskFull(f"{what} of {record_id} could not be written: {self.full}")
        try:
            with self._transaction():
                row = conn.execute("SELECT record FROM inspections WHERE id = ?", (record_id,)).fetchone()
                if row is None:
                    raise StoreError(f"no inspection with id {record_id} in {self.db_path}")
                before = InspectionRecord.model_validate_json(row[0])
                record = before.model_copy(update=fields(before) if callable(fields) else fields)
                conn.execute("UPDATE inspections SET record = ?, reviewed = max(reviewed, ?) WHERE id = ?",
                             (record.to_json(), int(reviewed), record_id))
                enqueue(conn, Lane.RECORD, "review", record_id, record.seq, record.to_json())
                for sha in self._new_photos(before, record):  # after the record: the hub holds the report first
                    enqueue(conn, Lane.IMAGE, "blob", record_id, record.seq, PHOTO_PREFIX + sha)
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            self._went_full(exc)
            raise DiskFull(f"{what} of {record_id} could not be written: {self.full}") from exc
        return record

    def raise_alarm(self, code: str, message: str) -> None:
        """Record an alarm unless the same one is already standing (only logged while the database is full)."""
        standing = self.conn.execute("SELECT 1 FROM alarms WHERE code = ? AND cleared_at IS NULL", (code,)).fetchone()
        if standing is None:
            log.error("store.alarm", code=code, message=message)
            try:
                self.conn.execute("INSERT INTO alarms (at, code, message) VALUES (?,?,?)", (time.time(), code, message))
            except sqlite3.OperationalError as exc:
                if not _is_full(exc):
                    raise
                self._went_full(exc)

    def _restate_alarm(self, code: str, message: str) -> None:
        """Raise an alarm, or give the one standing under `code` this message (a count that grows) in place."""
        try:
            changed = self.conn.execute("UPDATE alarms SET message = ? WHERE code = ? AND cleared_at IS NULL",
                                        (message, code)).rowcount
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            self._went_full(exc)
            return
        if not changed:
            self.raise_alarm(code, message)

    def renew_alarm(self, code: str, message: str) -> None:
        """Raise an alarm with this latest message, replacing the one standing under the same code."""
        with self._transaction():
            self.clear_alarm(code)
            self.raise_alarm(code, message)

    def _standing(self, codes: Iterable[str]) -> set[str]:
        """Which of `codes` stand."""
        return {code for (code,) in self.conn.execute("SELECT code FROM alarms WHERE cleared_at IS NULL")} & set(codes)

    def clear_alarm(self, code: str) -> None:
        self.conn.execute("UPDATE alarms SET cleared_at = ? WHERE code = ? AND cleared_at IS NULL", (time.time(), code))

    # -- reading ---------------------------------------------------------------------------
    def get(self, record_id: str) -> InspectionRecord | None:
        row = self.conn.execute("SELECT record FROM inspections WHERE id = ?", (record_id,)).fetchone()
        return InspectionRecord.model_validate_json(row[0]) if row else None

    def recent(self, limit: int = 50) -> list[InspectionRecord]:
        rows = self.conn.execute("SELECT record FROM inspections ORDER BY seq DESC LIMIT ?", (limit,))
        return [InspectionRecord.model_validate_json(r[0]) for r in rows]

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM inspections").fetchone()[0])

    def standing_alarms(self) -> list[tuple[str, str]]:
        alarms = list(self.conn.execute("SELECT code, message FROM alarms WHERE cleared_at IS NULL ORDER BY at"))
        return alarms + [("disk_full", self.full)] if self.full is not None else alarms

    def outbox_backlog(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT lane, count(*) FROM outbox GROUP BY lane")
        return {Lane(lane).name.lower(): n for lane, n in rows}

    # -- retention -------------------------------------------------------------------------
    def prune(self, now: float | None = None) -> None:
        """Delete synced scans and records older than retention, and synced scans over the cap."""
        try:
            self._prune(now)
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            log.warning("store.prune_deferred", db=str(self.db_path), error=str(exc))  # tried again next round

    def _prune(self, now: float | None) -> None:
        now = now or time.time()
        chosen = self.prunable(now)
        with self.retention.lock:  # a state that arrived since the choice (a new hold) is seen before anything goes
            state = self.retention.effective()
            with self._transaction():  # BEGIN IMMEDIATE: no other connection writes between the check and the delete
                old = [c for c in chosen if self._lets_go(c[0], state, now)]
                self.conn.executemany("DELETE FROM inspections WHERE id = ?", [(rid,) for rid, _, _, _ in old])
        # the files after the rows, each only when no remaining record names it (files are kept by content: two
        # records may name one scan, crop or search photo, and the other may be held)
        for _, sha, crops, photos in old:
            if sha and not self._names("scan_sha256 = ?", sha):
                self._delete_scan(sha)
            self._delete_crops(" ".join(c for c in crops.split() if not self._names("instr(crops, ?) > 0", c)))
            for photo in photos:  # search photos are not counted against the cap (see open)
                if not self._names("instr(record, ?) > 0", photo):
                    self.photo_path(photo).unlink(missing_ok=True)
        self.counters.pruned_records += len(old)
        if old:
            log.info("store.pruned", records=len(old), station=self.station)
        if self._scan_bytes > self.limits.scan_cap_bytes * 0.9:
            self._evict_synced_scans(int(self.limits.scan_cap_bytes * 0.8))
        self._watch_cap()  # images the hub acknowledged since are no longer waiting
        self._prune_alarms(now)

    def _lets_go(self, record_id: str, state: retention.RetentionState | None, now: float) -> bool:
        """Whether the record may still go under `state` (read again under the retention lock and inside the
        deleting transaction): the screen's own connection may have queued a review or a search report for the
        hub since the round chose it, and data the hub has not acknowledged never goes."""
        row = self.conn.execute("SELECT record FROM inspections WHERE id = ? AND NOT EXISTS"
                                " (SELECT 1 FROM outbox o WHERE o.record_id = inspections.id)", (record_id,)).fetchone()
        return row is not None and retention.keep_reason(json.loads(row[0]), state, now,
                                                         holds=self.retention.holds) is None

    def _names(self, condition: str, sha: str, besides: int = 0) -> bool:
        """Whether a record (other than seq `besides`) names the file `sha` (`condition` on an inspections row,
        one argument)."""
        return self.conn.execute(f"SELECT 1 FROM inspections WHERE {condition} AND seq <> ? LIMIT 1",
                                 (sha, besides)).fetchone() is not None

    def _prune_alarms(self, now: float) -> None:
        """Delete alarms cleared more than ALARM_KEEP_S ago (nothing reads them: a standing alarm is never
        deleted; the journal keeps each raise). A flapping alarm or a rejected file a minute adds a row each."""
        with self._transaction():
            gone = self.conn.execute("DELETE FROM alarms WHERE cleared_at < ?", (now - ALARM_KEEP_S,)).rowcount
        self.counters.pruned_alarms += gone
        if gone:
            log.info("store.alarms_pruned", alarms=gone, station=self.station)

    def prunable(self, now: float, kept: dict[str, int] | None = None,
                 limit: int = PRUNE_MAX) -> list[tuple[str, str | None, str, list[str]]]:
        """At most `limit` synced records the retention state lets go now, (id, scan sha256, crops, search photos)
        each; `kept` counts why the other candidates stay. Candidates are read by verdict and age, a page at a
        time; one kept for a reason only a new state can change (held, not released) is not read again."""
        state = self.retention.effective()
        cuts = retention.verdict_cutoffs(state.policy, now) if state is not None and state.policy else {}
        if not cuts or state is None:
            return []
        if self._kept_for is not state:
            self._kept_for, self._kept = state, {}
        age = " OR ".join("(verdict = ? AND decided_at < ?)" for _ in cuts)
        args = [a for verdict, cut in cuts.items() for a in (verdict, _iso(cut))]
        go: list[tuple[str, str | None, str, list[str]]] = []
        after = 0
        for _ in range(PRUNE_PAGES):
            rows = self.conn.execute(
                f"SELECT seq, id, scan_sha256, crops FROM inspections WHERE ({age}) AND seq > ? AND NOT EXISTS"
                " (SELECT 1 FROM outbox o WHERE o.record_id = inspections.id) ORDER BY seq LIMIT ?",
                (*args, after, PRUNE_PAGE)).fetchall()
            for seq, rid, sha, crops in rows:
                why = self._kept.get(seq) or self._keep_reason(seq, rid, sha, crops, state, now, go)
                if why is not None and kept is not None:
                    kept[why] = kept.get(why, 0) + 1
                if len(go) == limit:
                    return go
            if len(rows) < PRUNE_PAGE:
                break
            after = rows[-1][0]
        return go

    def _keep_reason(self, seq: int, rid: str, sha: str | None, crops: str, state: retention.RetentionState,
                     now: float, go: list[tuple[str, str | None, str, list[str]]]) -> str | None:
        """Why the record stays (remembered while the state holds when only a new state can change it), or None
        with the record added to `go`."""
        record = json.loads(self.conn.execute("SELECT record FROM inspections WHERE seq = ?", (seq,)).fetchone()[0])
        why = retention.keep_reason(record, state, now, holds=self.retention.holds)
        if why in STABLE_KEEPS:
            self._kept[seq] = why
        elif why is None:
            photos = [ph for report in record.get("search_reports") or () for ph in report.get("photos") or ()]
            go.append((rid, sha, crops, photos))
        return why

    def hold_of(self, record: InspectionRecord) -> str | None:
        """What legal hold keeps this record (`record`, `plate`, `container`), or None."""
        return self.retention.hold_of(record.model_dump(mode="json"))

    def figures(self, now: float | None = None) -> dict[str, object]:
        """Disk use and retention figures for the station's health (the control room shows them)."""
        now = now or time.time()
        kept: dict[str, int] = {}
        per = dict(self.conn.execute("SELECT verdict, count(*) FROM inspections GROUP BY verdict").fetchall())
        oldest = self.conn.execute("SELECT min(decided_at) FROM inspections").fetchone()[0]
        db_bytes = sum(p.stat().st_size for p in self.data_dir.glob("station.db*") if p.is_file())
        return {"data_bytes": db_bytes + self._scan_bytes, "free_bytes": shutil.disk_usage(self.data_dir).free,
                "oldest": oldest, "records": per, "next_prune": len(self.prunable(now, kept)), "kept": kept,
                "holds": len(self.retention.state.holds) if self.retention.state else 0}

    def _evict_synced_scans(self, target_bytes: int) -> None:
        """Delete the scans and crops of the oldest records the hub already holds, and no legal hold keeps,
        until at most `target_bytes` remain."""
        rows = self.conn.execute(
            "SELECT seq, scan_sha256, scan_stored, crops, record FROM inspections WHERE (scan_stored = 1 OR crops != '')"
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.record_id = inspections.id) ORDER BY seq").fetchall()
        held, state = self.retention.holds, self.retention.state
        released = set(state.released) if state is not None else set()
        # the kept state did not parse: its legal holds are unknown until the hub's next state, so no crop goes (the
        # station holds their only copy); the scans go, the hub holds each of them
        keep_crops = self.retention.refused_file
        for seq, sha, scan_stored, crops, body in rows:
            if self._scan_bytes <= target_bytes:
                break
            record = json.loads(body)
            if (held.records or held.vehicles) and held.match(record) is not None:
                continue
            if retention.record_class(record) == "seizure" and record.get("id") not in released:
                continue  # an unreleased seizure's evidence: its crops exist nowhere else (they are not synced)
            if scan_stored and not self._names("scan_sha256 = ? AND scan_stored = 1", sha, besides=seq):
                self._delete_scan(sha)
            if keep_crops:
                self.conn.execute("UPDATE inspections SET scan_stored = 0 WHERE seq = ?", (seq,))
                continue
            self._delete_crops(" ".join(c for c in crops.split() if not self._names("instr(crops, ?) > 0", c, besides=seq)))
            self.conn.execute("UPDATE inspections SET scan_stored = 0, crops = '' WHERE seq = ?", (seq,))

    def _delete_scan(self, sha: str | None) -> None:
        if sha and self._delete_file(self.scan_path(sha)):
            self.counters.pruned_scans += 1

    def drop_crop(self, sha256: str) -> None:
        """Delete an evidence crop no record names (cameras: a better frame took its slot while the pass was open;
        kept, it would count towards the scan cap for ever)."""
        if not self.conn.execute("SELECT 1 FROM inspections WHERE instr(crops, ?) > 0 LIMIT 1", (sha256,)).fetchone():
            self._delete_crops(sha256)

    def _delete_crops(self, crops: str) -> None:
        """Delete a record's evidence crops (its row's space-separated sha256s)."""
        for sha in crops.split():
            if self._delete_file(self.crop_path(sha)):
                self.counters.pruned_crops += 1

    def _delete_file(self, path: Path) -> bool:
        """Delete a counted file; False when it was not there."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return False
        self._scan_bytes -= size
        return True


def _busy(exc: sqlite3.DatabaseError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the database (a state, not damage)."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or \
        "database is locked" in str(exc)


def _wal(conn: sqlite3.Connection) -> None:
    """Write-ahead logging. Switching a new database to it needs the database to itself and does not wait
    on the busy timeout, so two processes creating it at once retry for up to BUSY_S."""
    deadline = time.monotonic() + BUSY_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # SQLITE_FULL has already rolled the transaction back
            self.conn.execute("ROLLBACK")


class ReserveAlarm:
    """A pre-allocated file beside the database holding the one alarm that cannot go into it.

    Written in place at a fixed size (RESERVE_ALARM_BYTES, space-padded UTF-8), so it needs no new
    disk block: it works on a full disk. Blank means no alarm.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> str | None:
        """Create the file at its full size if missing; the standing message, if any."""
        if not self.path.exists():
            self._put(b"", os.O_WRONLY | os.O_CREAT)
        text = self.path.read_bytes().decode("utf-8", errors="replace").strip()
        return text or None

    def write(self, message: str | None) -> None:
        data = (message or "").encode()[:RESERVE_ALARM_BYTES]
        self._put(data.decode("utf-8", errors="ignore").encode(), os.O_WRONLY)

    def _put(self, data: bytes, flags: int) -> None:
        fd = os.open(self.path, flags, 0o640)
        try:
            os.pwrite(fd, data.ljust(RESERVE_ALARM_BYTES, b" "), 0)
            os.fsync(fd)
        finally:
            os.close(fd)


class StoreWriter:
    """Runs Store calls on one dedicated thread so that SQLite never blocks the event loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def __aenter__(self) -> "StoreWriter":
        try:
            await self.call(self.store.open)
        except StoreError:
            self._pool.shutdown(wait=False)  # a station that restarts must not leave a thread per attempt
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.call(self.store.close)
        self._pool.shutdown(wait=True)

    async def call(self, fn: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, the way the sqlite3 shell does (comments may hold ';')."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf)
            buf = ""
    return statements


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _dir_size(path: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in path.rglob(pattern))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _iso(ts: float, offset_s: float = 0.0) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts + offset_s, tz=timezone.utc).isoformat()
