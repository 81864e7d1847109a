"""The hub's side of retention and legal holds (docs/retention-and-holds.md): the tables, the audited changes,
the signed state the stations prune by, and the hub's own pruning, the same SQL on SQLite and PostgreSQL.

Every change (a policy set, a hold placed or released, a seizure released) is appended to the control-room
audit (who, when, why) and makes a new version of the retention state (central_sync/retention.py), stored
signed in `retention_states` for the control room to publish. The hub prunes a record only when
`keep_reason` finds nothing, and an alert only once the control room acknowledged it or an officer reviewed
it; the DELETE itself checks the holds again, so a hold placed meanwhile still wins. With a record go its
reviews, identity index rows, search reports, TIP outcomes, control-room actions and its scan (when no record
left names it); the audit log stays whole. A published risk bundle goes once no record left names it
(`records.risk_bundle`), it was superseded longer ago than the policy's longest period, it is not one of the newest
`KEEP_NEWEST` versions and no station reports running it (`prune_bundles`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import retention as r
from central_sync.control_room import audit, db
from central_sync.hub.search import normalise
from central_sync.hub.store import Cursor, HubStore, SqliteStore
from central_sync.riskhub import tables as risk_tables

DDL = """
CREATE TABLE IF NOT EXISTS retention_policies (
    version BIGINT PRIMARY KEY, policy TEXT NOT NULL, set_by TEXT NOT NULL, set_at DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS legal_holds (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, norm TEXT NOT NULL, reason TEXT NOT NULL,
    placed_by TEXT NOT NULL, placed_at DOUBLE PRECISION NOT NULL, released_by TEXT, released_at DOUBLE PRECISION,
    release_reason TEXT);
CREATE INDEX IF NOT EXISTS legal_holds_norm ON legal_holds (kind, norm);
CREATE TABLE IF NOT EXISTS seizure_releases (
    record_id TEXT PRIMARY KEY, released_by TEXT NOT NULL, released_at DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_scan ON records (scan_sha256);
CREATE INDEX IF NOT EXISTS tip_outcomes_record ON tip_outcomes (record_id);
CREATE INDEX IF NOT EXISTS records_verdict_decided ON records (verdict, decided_ts);
CREATE TABLE IF NOT EXISTS pruned_blobs (
    sha256 TEXT PRIMARY KEY, pruned_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS pruned_blobs_at ON pruned_blobs (pruned_at);
CREATE TABLE IF NOT EXISTS retention_states (
    version BIGINT PRIMARY KEY, issued_at DOUBLE PRECISION NOT NULL, signed TEXT NOT NULL);
"""
log = structlog.get_logger("central_sync.hub.retention")
PAGE = 500
# A record is under a hold (args: none): its id, or one of its plates or containers, normalised.
HELD = ("(EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL AND h.kind = 'record' AND h.norm = records.id)"
        " OR EXISTS (SELECT 1 FROM record_identities i JOIN legal_holds h ON h.kind = i.kind AND h.norm = i.norm"
        " WHERE i.record_id = records.id AND h.released_at IS NULL))")
# The hub may let it go: no alert, or one the control room acknowledged or an officer reviewed.
SETTLED = ("(records.is_alert = 0 OR EXISTS (SELECT 1 FROM cr_actions a WHERE a.record_id = records.id AND a.kind = 'ack')"
           " OR EXISTS (SELECT 1 FROM reviews v WHERE v.record_id = records.id))")
# No seizure the hub knows of by its search reports, or one a supervisor released.
UNSEIZED = ("(records.search_outcome IS NULL OR records.search_outcome = 'nothing_found'"
            " OR EXISTS (SELECT 1 FROM seizure_releases s WHERE s.record_id = records.id))")
NO_HOLDS = r.Holds.of([])  # the DELETE's own SQL checks the holds
DEPENDENTS = ("reviews", "record_identities", "search_reports", "tip_outcomes", "cr_actions")
PRUNED_BLOBS_KEEP_DAYS = 90.0
"""How long the prune remembers an image it could not delete (its record went before it arrived, `pruned_blobs`):
one that arrives within these days of the prune is deleted on arrival, one later stays in `blobs`, named by
nothing. Before, a row stayed for good for every image that never came (a scan the station dropped at its cap)."""
KEEP_NEWEST = 3
"""The newest published risk bundle versions stay whatever else holds: a station may run one whose status or ack
the hub has not stored yet (the newest is also the next delta's base and what a restarted hub offers)."""


class Replan(r.RetentionError):
    """A record a prune planned became one that must stay before the deletion: roll the page back."""

    def __init__(self, message: str) -> None:
        super().__init__("replan", message)


class HoldError(r.RetentionError):
    """A hold that cannot be placed or released (nothing to hold, no reason, unknown or released hold); `vals`: the
    values its sentence names, for a translation of `code` (the control room's error.hold.<code>)."""

    def __init__(self, code: str, message: str, **vals: str) -> None:
        super().__init__(code, message)
        self.vals = vals


def migrate(store: HubStore) -> None:
    with store.schema_lock():
        db.migrate(store)
        risk_tables.migrate(store)  # risk_bundles: pruned here too
        db.transact(store, lambda cur: [cur.execute(s) for s in DDL.split(";") if s.strip()])


# ---- audited changes --------------------------------------------------------------------------
def set_policy(store: HubStore, policy: r.RetentionPolicy, actor: str, reason: str) -> int:
    """Store a new policy (its version) and audit it; a reason is required."""
    _need(reason, "a retention policy change")
    now = time.time()

    def put(cur: Cursor) -> int:
        cur.execute("SELECT coalesce(max(version), 0) + 1 FROM retention_policies")
        version = int(cur.fetchall()[0][0])
        cur.execute(store.sql("INSERT INTO retention_policies (version, policy, set_by, set_at, reason)"
                              " VALUES (?,?,?,?,?)"), (version, policy.model_dump_json(), actor, now, reason.strip()))
        return version
    version = store.run_in_transaction(put)
    audit.append(store, actor, "retention.policy", f"retention-policy:{version}",
                 {"policy": policy.model_dump(), "reason": reason.strip()})
    return version


def policy(store: HubStore) -> r.RetentionPolicy | None:
    rows = store.query("SELECT policy FROM retention_policies ORDER BY version DESC LIMIT 1")
    return r.RetentionPolicy.model_validate_json(rows[0][0]) if rows else None


def place_hold(store: HubStore, kind: str, value: str, actor: str, reason: str) -> dict[str, Any]:
    """Place a hold on a record (its id, which the hub must hold) or a vehicle (plate, container); audited."""
    _need(reason, "a legal hold")
    hold = r.Hold.model_validate({"kind": kind, "value": value.strip()})
    if hold.kind == "record" and not store.query("SELECT 1 FROM records WHERE id = ?", (hold.value,)):
        raise HoldError("unknown_record", f"record {hold.value} is not in the hub database: nothing to hold",
                        record=hold.value)
    if hold.kind != "record" and not normalise(hold.value):  # compared normalised it is every unread plate's ""
        raise HoldError("no_vehicle", f"{hold.kind} {hold.value!r} has no letter or digit, so it names no vehicle"
                                      f" (it would hold every pass whose {hold.kind} went unread)", value=hold.value)
    row = {"id": uuid.uuid4().hex, "kind": hold.kind, "value": hold.value,
           "norm": hold.value if hold.kind == "record" else normalise(hold.value), "reason": reason.strip(),
           "placed_by": actor, "placed_at": time.time()}
    db.execute(store, f"INSERT INTO legal_holds ({','.join(row)}) VALUES ({','.join('?' * len(row))})",
               tuple(row.values()))
    audit.append(store, actor, "hold.place", _object(hold), {"hold": row["id"], "reason": row["reason"]})
    return row


def release_hold(store: HubStore, hold_id: str, actor: str, reason: str) -> dict[str, Any]:
    """Release a standing hold; audited. HoldError when it is unknown or already released."""
    _need(reason, "releasing a legal hold")
    rows = db.execute(store, "UPDATE legal_holds SET released_by = ?, released_at = ?, release_reason = ?"
                             " WHERE id = ? AND released_at IS NULL RETURNING kind, value",
                      (actor, time.time(), reason.strip(), hold_id))
    if not rows:
        raise HoldError("unknown_hold", f"hold {hold_id} is not standing: unknown or already released", id=hold_id)
    hold = r.Hold(kind=rows[0][0], value=rows[0][1])
    audit.append(store, actor, "hold.release", _object(hold), {"hold": hold_id, "reason": reason.strip()})
    return {"id": hold_id, "kind": hold.kind, "value": hold.value}


def release_seizure(store: HubStore, record_id: str, actor: str, reason: str, now: float | None = None) -> None:
    """Let a seizure record follow the suspect rule from now on (the case is closed); audited."""
    _need(reason, "releasing a seizure")
    rows = store.query("SELECT body FROM records WHERE id = ?", (record_id,))
    if not rows or r.record_class(json.loads(rows[0][0])) != "seizure":
        raise HoldError("not_a_seizure", f"record {record_id} is no seizure the hub holds: nothing to release",
                        record=record_id)
    db.execute(store, "INSERT INTO seizure_releases (record_id, released_by, released_at, reason) VALUES (?,?,?,?)"
                      " ON CONFLICT (record_id) DO NOTHING",
               (record_id, actor, time.time() if now is None else now, reason.strip()))
    audit.append(store, actor, "seizure.release", record_id, {"reason": reason.strip()})


def holds(store: HubStore, standing_only: bool = True) -> list[dict[str, Any]]:
    cols = ("id", "kind", "value", "reason", "placed_by", "placed_at", "released_by", "released_at", "release_reason")
    where = " WHERE released_at IS NULL" if standing_only else ""
    return [dict(zip(cols, row)) for row in
            store.query(f"SELECT {','.join(cols)} FROM legal_holds{where} ORDER BY placed_at DESC")]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _object(hold: r.Hold) -> str:
    """The audit object: the record's id (so the case bundle's audit names it), or `plate:VALUE`."""
    return hold.value if hold.kind == "record" else f"{hold.kind}:{hold.value}"


def _need(reason: str, what: str) -> None:
    if not reason.strip():
        raise HoldError("reason_required", f"{what} needs a reason")


# ---- the state the stations prune by ----------------------------------------------------------
RELEASE_GRACE_DAYS = 30.0
"""A released seizure's id stays in the state until the hub has pruned its record and the release is older than
the days a released seizure is kept (the policy's `suspect_days`) plus these days: the record was decided before
its release, so a station that received the release has pruned it by then. One that did not (offline the whole
time) keeps the seizure for good: evidence kept, never lost. With `suspect_days` empty (kept for good), or no
policy, every release stays listed. Before, every release stayed: past about 92,000 the state passed its
MAX_STATE_BYTES, and at 100,001 it failed its own validation, so no state was published again."""


def release_period_s(current: r.RetentionPolicy | None) -> float | None:
    """How long after its release a seizure the hub pruned stays listed; None: for good."""
    days = current.days("seizure") if current is not None else None
    return None if days is None else (days + RELEASE_GRACE_DAYS) * r.DAY_S


def released(store: HubStore, current: r.RetentionPolicy | None, now: float) -> list[str]:
    """The released seizures a station may still hold (RELEASE_GRACE_DAYS), by id."""
    if (period := release_period_s(current)) is None:
        return [row[0] for row in store.query("SELECT record_id FROM seizure_releases ORDER BY record_id")]
    return [row[0] for row in store.query(
        "SELECT record_id FROM seizure_releases s WHERE s.released_at >= ? OR EXISTS (SELECT 1 FROM records"
        " WHERE records.id = s.record_id) ORDER BY record_id", (now - period,))]


def _content(store: HubStore, now: float) -> tuple[r.RetentionPolicy | None, list[r.Hold], list[str]]:
    current = policy(store)
    return current, [r.Hold(kind=h["kind"], value=h["value"]) for h in holds(store)], released(store, current, now)


def state(store: HubStore, version: int, now: float | None = None) -> r.RetentionState:
    """The current policy, standing holds and released seizures as state `version`; RetentionError `too_large`
    when stations would refuse it (r.new_state)."""
    now = time.time() if now is None else now
    return r.new_state(version, *_content(store, now), now)


def rules(store: HubStore, now: float) -> r.RetentionState:
    """The state the hub prunes by itself: `state`'s content, whatever its size (it is never published)."""
    current, standing, ids = _content(store, now)
    return r.RetentionState.model_construct(version=1, issued_at=now, policy=current, holds=standing, released=ids)


def publish(store: HubStore, key: Ed25519PrivateKey, now: float | None = None) -> tuple[r.RetentionState, bytes]:
    """Make, sign and store the next version of the state; (state, the retained message's bytes). RetentionError
    `too_large` when the state is over its limits: nothing stored, the newest published state stays in force."""
    for _ in range(10):
        version = int(store.query("SELECT coalesce(max(version), 0) + 1 FROM retention_states")[0][0])
        current = state(store, version, now)
        signed = r.sign(key, current)
        if len(signed) > r.MAX_PUBLISH_BYTES:
            raise r.RetentionError("too_large", f"signed retention state {version} is {len(signed)} bytes"
                                                f" ({len(current.holds)} holds, {len(current.released)} released"
                                                f" seizures), over the {r.MAX_PUBLISH_BYTES} bytes one broker packet"
                                                f" may carry")
        rows = db.execute(store, "INSERT INTO retention_states (version, issued_at, signed) VALUES (?,?,?)"
                                 " ON CONFLICT (version) DO NOTHING RETURNING version",
                          (version, current.issued_at, signed.decode()))
        if rows:
            return current, signed
    raise r.RetentionError("version_race", "the retention state's next version was taken ten times in a row")


def unpublished(store: HubStore, now: float | None = None) -> bool:
    """Whether the tables hold a policy, holds or releases the newest published state does not (a change made
    while the hub had no signing key or no broker link, or by a hub process without them, or a release that
    aged out of the list: RELEASE_GRACE_DAYS)."""
    current = _content(store, time.time() if now is None else now)
    latest = latest_signed(store)
    if latest is None:
        return current[0] is not None or bool(current[1] or current[2])
    was = r.RetentionState.model_validate_json(r.SignedState.model_validate_json(latest[1]).payload)
    return (was.policy, was.holds, was.released) != current


def latest_signed(store: HubStore) -> tuple[int, bytes] | None:
    rows = store.query("SELECT version, signed FROM retention_states ORDER BY version DESC LIMIT 1")
    return (int(rows[0][0]), rows[0][1].encode()) if rows else None


# ---- pruning ----------------------------------------------------------------------------------
def candidates(store: HubStore, now: float, limit: int = PAGE,
               after: tuple[float, str] = (float("-inf"), "")) -> list[tuple[float, str, str | None, dict[str, Any]]]:
    """Records old enough for their verdict, settled, under no hold and no unreleased seizure by their search
    column, oldest first after `after` (decided_ts, id): (decided_ts, id, scan sha256, body) each."""
    current = policy(store)
    cuts = r.verdict_cutoffs(current, now) if current is not None else {}
    if not cuts:
        return []
    age = " OR ".join("(verdict = ? AND decided_ts < ?)" for _ in cuts)
    rows = store.query(f"SELECT decided_ts, id, scan_sha256, body FROM records WHERE ({age}) AND NOT {HELD}"
                       f" AND {SETTLED} AND {UNSEIZED} AND (decided_ts > ? OR (decided_ts = ? AND id > ?))"
                       " ORDER BY decided_ts, id LIMIT ?",
                       (*[a for kv in cuts.items() for a in kv], after[0], after[0], after[1], limit))
    return [(ts, rid, sha, json.loads(body)) for ts, rid, sha, body in rows]


START = (float("-inf"), "")
_RESUME: dict[str, tuple[float, str]] = {}
"""Per database, where this process's last prune round stopped reading before the newest candidate: the next
round reads on from there, and from the oldest again once a round read to the end. Without it a round read
at most `max_pages` pages from the oldest, and once that many old records all had to stay (unreleased seizures
by review, threats confirmed within their days) nothing behind them was ever pruned again."""


def plan(store: HubStore, now: float | None = None, limit: int = PAGE, max_pages: int = 20,
         resume: bool = False) -> tuple[list[tuple[str, str | None]], Counter[str]]:
    """What the next prune deletes, at most `limit` records as (id, scan sha256), and why the candidates it
    read past stay (a record an officer made stricter than its verdict, a seizure its review names); `resume`
    (the prune's): read on from where the last round stopped (`_RESUME`), and remember where this one stops."""
    start = _RESUME.pop(store.url, START) if resume else START
    go, kept, stopped = _scan(store, time.time() if now is None else now, limit, max_pages, start)
    if resume and stopped is not None:
        _RESUME[store.url] = stopped
    return go, kept


def _scan(store: HubStore, now: float, limit: int, max_pages: int,
          after: tuple[float, str]) -> tuple[list[tuple[str, str | None]], Counter[str], tuple[float, str] | None]:
    """`plan` reading from `after`; also where it stopped (the last candidate read), None when it read to the end."""
    current = rules(store, now)
    index = r.Holds.of(current.holds)
    go: list[tuple[str, str | None]] = []
    kept: Counter[str] = Counter()
    for _ in range(max_pages):
        page = candidates(store, now, limit, after)
        for ts, rid, sha, body in page:
            why = r.keep_reason(body, current, now, holds=index)
            if why is None:
                go.append((rid, sha))
            else:
                kept[why] += 1
            if len(go) == limit:
                return go, kept, (ts, rid)
        if len(page) < limit:
            return go, kept, None
        after = (page[-1][0], page[-1][1])
    return go, kept, after


def prune(store: HubStore, now: float | None = None, limit: int = PAGE, actor: str = "retention") -> dict[str, Any]:
    """Delete one page of what the policy lets go; the counts, audited when anything went."""
    now = time.time() if now is None else now
    start = _RESUME.get(store.url, START)
    go, kept = plan(store, now, limit, resume=True)
    again = rules(store, now)  # what the rows deleted are judged by again, with the bodies they have then
    deleted: list[str] = []
    photos: list[str] = []
    scans = 0

    def delete(cur: Cursor) -> int:
        # a record (or report) naming a scan (or photo) that an ingest is committing now is seen, and keeps it
        store.wait_for_writers(cur, "records", "search_reports", writes=True)
        ids = [rid for rid, _ in go]
        # held or seized since the plan (a hold placed, a station's seizure report ingested meanwhile): stays
        cur.execute(store.sql(f"DELETE FROM records WHERE id IN ({_marks(ids)}) AND NOT {HELD} AND {UNSEIZED}"
                              " RETURNING id, scan_sha256, body"), ids)
        gone = cur.fetchall()
        # a station's review or report ingested since the plan may make a record stricter: a seizure by its review
        # (not a search column), or a suspect record kept longer (an officer confirmed a threat); holds are the SQL's
        stricter = sorted(row[0] for row in gone if r.keep_reason(json.loads(row[2]), again, now, holds=NO_HOLDS))
        if stricter:
            raise Replan(f"records {', '.join(stricter)} must stay by their class since the prune planned them")
        deleted.extend(sorted(row[0] for row in gone))
        if not gone:
            return 0
        for table in DEPENDENTS:
            cur.execute(store.sql(f"DELETE FROM {table} WHERE record_id IN ({_marks(deleted)})"), deleted)
        # the search photos the records' reports named (central_sync/blobs.py), unless a report kept names one too
        named = sorted({ph for row in gone for rep in json.loads(row[2]).get("search_reports") or ()
                        for ph in rep.get("photos") or ()})
        for sha in named:
            cur.execute(store.sql("DELETE FROM blobs WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM search_reports"
                                  " WHERE body LIKE ?) RETURNING sha256"), (sha, f"%{sha}%"))
            photos.extend(row[0] for row in cur.fetchall())
            # not synced yet (the image lane is the station's last): deleted when it arrives (_late_images)
            cur.execute(store.sql("INSERT INTO pruned_blobs (sha256, pruned_at) SELECT ?, ? WHERE NOT EXISTS (SELECT 1"
                                  " FROM blobs WHERE sha256 = ?) AND NOT EXISTS (SELECT 1 FROM search_reports WHERE"
                                  " body LIKE ?) ON CONFLICT (sha256) DO NOTHING"), (sha, now, sha, f"%{sha}%"))
        shas = sorted({row[1] for row in gone if row[1]})
        if not shas:
            return 0
        cur.execute(store.sql(f"DELETE FROM blobs WHERE sha256 IN ({_marks(shas)}) AND NOT EXISTS"
                              " (SELECT 1 FROM records WHERE scan_sha256 = blobs.sha256) RETURNING sha256"), shas)
        went = len(cur.fetchall())
        cur.executemany(store.sql("INSERT INTO pruned_blobs (sha256, pruned_at) SELECT ?, ? WHERE NOT EXISTS (SELECT 1"
                                  " FROM blobs WHERE sha256 = ?) AND NOT EXISTS (SELECT 1 FROM records WHERE"
                                  " scan_sha256 = ?) ON CONFLICT (sha256) DO NOTHING"),
                        [(sha, now, sha, sha) for sha in shas])
        return went
    if go:
        try:
            scans = store.run_in_transaction(delete)
        except Replan as exc:  # rolled back: the next round plans again
            log.warning("retention.replanned", detail=str(exc))
            _RESUME[store.url] = start  # the records it planned are read again
            deleted.clear()
            photos.clear()
    late = store.run_in_transaction(_late_images, store)
    expired = len(db.execute(store, "DELETE FROM pruned_blobs WHERE pruned_at < ? RETURNING sha256",
                             (now - PRUNED_BLOBS_KEEP_DAYS * r.DAY_S,)))
    versions, rows, size = prune_bundles(store, now)  # after the records: a bundle only they named goes with them
    out = {"records": len(deleted), "scans": scans, "photos": len(photos), "late_images": len(late), "kept": dict(kept),
           "bundles": len(versions), "bundle_bytes": size, "pruned_blobs_expired": expired}
    if late:
        log.info("retention.late_images_pruned", images=len(late), bytes=sum(n for _, n in late),
                 detail=f"{len(late)} images ({sum(n for _, n in late)} bytes) that arrived after the records naming them"
                        " were pruned, deleted")
    if expired:
        log.info("retention.pruned_blobs_expired", images=expired,
                 detail=f"{expired} images pruned more than {PRUNED_BLOBS_KEEP_DAYS:g} days ago never arrived: no"
                        " longer awaited (one arriving now stays)")
    if deleted or versions or late:
        audit.append(store, actor, "retention.prune", "hub", {"records": len(deleted), "scans": scans,
                                                               "photos": len(photos), "late_images": len(late),
                                                               "first": deleted[0] if deleted else None,
                                                               "last": deleted[-1] if deleted else None,
                                                               "bundles": versions, "bundle_bytes": size})
    if versions:
        log.info("retention.bundles_pruned", versions=versions, rows=rows, bytes=size,
                 detail=f"{len(versions)} risk bundle versions ({versions[0]} to {versions[-1]}, {rows} rows, {size} bytes)"
                        " pruned: no record names them, superseded past the retention period, no station runs them")
    return out


def _late_images(cur: Cursor, store: HubStore) -> list[tuple[str, int]]:
    """Delete the scans and search photos that arrived after the prune deleted every record naming them (a
    station back from a long time offline sends its records first, its images last), unless a record or a
    report the hub keeps names them (again); (sha256, bytes) of each."""
    store.wait_for_writers(cur, "records", "search_reports")  # one an ingest is committing now is seen
    cur.execute(store.sql("DELETE FROM blobs WHERE sha256 IN (SELECT sha256 FROM pruned_blobs) AND NOT EXISTS"
                          " (SELECT 1 FROM records WHERE scan_sha256 = blobs.sha256) AND NOT EXISTS (SELECT 1 FROM"
                          " search_reports WHERE body LIKE ? || blobs.sha256 || ?) RETURNING sha256, size"), ("%", "%"))
    gone = [(row[0], int(row[1])) for row in cur.fetchall()]
    if gone:
        shas = [sha for sha, _ in gone]
        cur.execute(store.sql(f"DELETE FROM pruned_blobs WHERE sha256 IN ({_marks(shas)})"), shas)
    return gone


# ---- published risk bundles -------------------------------------------------------------------
def bundle_period_s(current: r.RetentionPolicy | None) -> float | None:
    """How long a superseded risk bundle stays at least: the policy's longest class (a record decided with it may
    still arrive from a station and be kept that long); None keeps them all (no policy, or a class kept for good)."""
    if current is None:
        return None
    days = [current.days(c) for c in ("clear", "manual", "suspect")]
    return None if any(d is None for d in days) else max(d for d in days if d is not None) * r.DAY_S


def running_versions(store: HubStore) -> set[int]:
    """The risk bundle versions stations run: each one's last status (`risk_version`), and the newest it
    acknowledged as applied."""
    running = set(store.applied_bundle_versions().values())
    for (status,) in store.query("SELECT status FROM stations"):
        try:
            version = json.loads(status or "{}").get("risk_version")
        except (ValueError, AttributeError):
            continue
        if isinstance(version, int):
            running.add(version)
    return running


def bundle_plan(store: HubStore, now: float, keep_newest: int = KEEP_NEWEST) -> tuple[list[int], Counter[str]]:
    """The risk bundle versions the next prune deletes, and why the others stay (`newest`, `running`, `young`:
    superseded within the retention period, `named`: a record the hub keeps was assessed with it)."""
    period = bundle_period_s(policy(store))
    versions = store.query("SELECT version, min(issued_at) FROM risk_bundles GROUP BY version ORDER BY version")
    kept: Counter[str] = Counter()
    if period is None:
        return [], Counter({"no_period": len(versions)}) if versions else kept
    running = running_versions(store)
    old: list[int] = []
    newest = max(1, keep_newest)  # the newest version is never pruned
    for i, (version, _) in enumerate(versions):
        if i >= len(versions) - newest:
            kept["newest"] += 1
        elif version in running:
            kept["running"] += 1
        elif versions[i + 1][1] > now - period:  # superseded when the next version was issued
            kept["young"] += 1
        else:
            old.append(int(version))
    named: set[int] = set()
    for start in range(0, len(old), PAGE):
        part = old[start:start + PAGE]
        named |= {int(v) for (v,) in store.query(f"SELECT DISTINCT risk_bundle FROM records WHERE risk_bundle IN"
                                                 f" ({_marks(part)})", tuple(part))}
    kept["named"] += len(named)
    return [v for v in old if v not in named], +kept


def prune_bundles(store: HubStore, now: float | None = None,
                  keep_newest: int = KEEP_NEWEST) -> tuple[list[int], int, int]:
    """Delete the risk bundles `bundle_plan` lets go (snapshot and delta of each version); the DELETE checks
    again that no record names them (one ingested meanwhile keeps its bundle). (versions, rows, bytes) deleted."""
    now = time.time() if now is None else now
    go, _ = bundle_plan(store, now, keep_newest)
    if not go:
        return [], 0, 0

    def delete(cur: Cursor) -> list[tuple[int, int]]:
        store.wait_for_writers(cur, "records")  # a record an ingest is committing now is seen, and keeps its bundle
        out: list[tuple[int, int]] = []
        for start in range(0, len(go), PAGE):
            part = go[start:start + PAGE]
            cur.execute(store.sql(f"DELETE FROM risk_bundles WHERE version IN ({_marks(part)}) AND NOT EXISTS"
                                  " (SELECT 1 FROM records WHERE records.risk_bundle = risk_bundles.version)"
                                  " RETURNING version, length(data)"), part)
            out.extend((int(v), int(n)) for v, n in cur.fetchall())
        return out
    gone = store.run_in_transaction(delete)
    return sorted({v for v, _ in gone}), len(gone), sum(n for _, n in gone)


# ---- figures ----------------------------------------------------------------------------------
def figures(store: HubStore, now: float | None = None) -> dict[str, Any]:
    """The hub's storage: records per verdict, the oldest, scans and their bytes, the database's size, and what
    the next prune would delete."""
    now = time.time() if now is None else now
    per = {v: int(n) for v, n in store.query("SELECT verdict, count(*) FROM records GROUP BY verdict")}
    oldest = store.query("SELECT min(decided_ts) FROM records")[0][0]
    scans, scan_bytes = store.query("SELECT count(*), coalesce(sum(size), 0) FROM blobs")[0]
    go, kept = plan(store, now, limit=10_000)
    bundle_go, bundle_kept = bundle_plan(store, now)
    versions, bundle_bytes = store.query("SELECT count(DISTINCT version), coalesce(sum(length(data)), 0)"
                                         " FROM risk_bundles")[0]
    return {"records": per, "oldest": oldest, "scans": int(scans), "scan_bytes": int(scan_bytes),
            "db_bytes": _db_bytes(store), "next_prune": {"records": len(go), "kept": dict(kept)},
            "policy": (p.model_dump() if (p := policy(store)) else None), "holds": len(holds(store)),
            "risk_bundles": {"versions": int(versions), "bytes": int(bundle_bytes),
                             "next_prune": {"versions": len(bundle_go), "kept": dict(bundle_kept)}}}


def _db_bytes(store: HubStore) -> int | None:
    if isinstance(store, SqliteStore):
        return sum(f.stat().st_size for f in store.path.parent.glob(store.path.name + "*") if f.is_file())
    rows = store.query("SELECT pg_database_size(current_database())")
    return int(rows[0][0]) if rows else None
