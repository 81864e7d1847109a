"""Read-side queries of the control room: alerts with their actions and reviews, KPI inputs."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime

from central_sync.control_room.db import execute
from central_sync.control_room.feed import action_view, alert_view
from central_sync.hub.search import Match, identity_clause, search_clause
from central_sync.hub.search_reports import like_pattern
from central_sync.hub.store import HubStore

IDENTITY_KINDS = ("container", "plate", "rfid_tid", "rfid_epc", "em4100", "seal", "rfid", "badge", "eseal")
"""The kinds the search field offers and the screens name; rfid and eseal are older records' names of em4100 and
seal (central_sync.hub.search.KIND_ALIASES finds either)."""
STATES = ("open", "unacknowledged", "acknowledged", "assigned", "escalated", "reviewed")


def search_alerts(store: HubStore, station: str | None = None, q: str | None = None, ident_kind: str | None = None,
                  since: datetime | None = None, until: datetime | None = None, verdict: str | None = None,
                  state: str | None = None, limit: int = 100, match: Match = "prefix",
                  alerts_only: bool = True) -> list[dict]:
    """Alerts (or, not `alerts_only`, every inspection) newest first; `q` matches an identity value (of
    `ident_kind` when given) exactly or as a prefix, through the hub's identity index (central_sync.hub.search)."""
    return search_page(store, station, q, ident_kind, since, until, verdict, state, limit, match, alerts_only)[0]


def search_page(store: HubStore, station: str | None = None, q: str | None = None, ident_kind: str | None = None,
                since: datetime | None = None, until: datetime | None = None, verdict: str | None = None,
                state: str | None = None, limit: int = 100, match: Match = "prefix",
                alerts_only: bool = True, before: str | None = None) -> tuple[list[dict], bool, str | None]:
    """`search_alerts`' page, whether more may match than it holds (a broad search is never collected whole), and
    the `before` that asks for the next older page (None when there is none). `station` matches any part of the
    name, in any case. With `state` the page is what matches among the next `4 x limit` records read: it may hold
    none while older ones match, so the next page starts after the last record read, not the last one shown."""
    clauses: list[str] = ["is_alert = 1"] if alerts_only else ["1 = 1"]
    args: list[object] = []
    if before and (after := execute(store, "SELECT decided_ts FROM records WHERE id = ?", (before,))):
        clauses.append("(decided_ts < ? OR (decided_ts = ? AND id < ?))")
        args += [after[0][0], after[0][0], before]
    for value, clause, arg in ((station, "lower(station) LIKE ? ESCAPE '\\'", station and like_pattern(station)),
                               (verdict, "verdict = ?", verdict),
                               (since, "decided_ts >= ?", since and since.timestamp()),
                               (until, "decided_ts < ?", until and until.timestamp())):
        if value:
            clauses.append(clause)
            args.append(arg)
    if q:
        clause, more = search_clause(store, q, ident_kind, match)
        clauses.append(clause)
        args.extend(more)
    fetch = limit * 4 if state else limit
    rows = execute(store, f"SELECT id, body, committed_at, hub FROM records WHERE {' AND '.join(clauses)}"
                          " ORDER BY decided_ts DESC, id DESC LIMIT ?", (*args, fetch + 1))
    records = [(json.loads(b), at, hub) for _, b, at, hub in rows[:fetch]]
    views = _with_history(store, records)
    if state:
        views = [v for v in views if state in alert_states(v)]
    if len(views) > limit:
        return views[:limit], True, views[limit - 1]["id"]
    if len(rows) > fetch:
        return views, True, rows[fetch - 1][0]
    return views, False, None


def one_alert(store: HubStore, record_id: str) -> dict | None:
    rows = execute(store, "SELECT body, committed_at, hub FROM records WHERE id = ?", (record_id,))
    return _with_history(store, [(json.loads(b), at, hub) for b, at, hub in rows])[0] if rows else None


def _with_history(store: HubStore, records: list[tuple]) -> list[dict]:
    ids = [r[0]["id"] for r in records]
    actions: dict[str, list] = defaultdict(list)
    reviews: dict[str, list] = defaultdict(list)
    for chunk in (ids[i:i + 200] for i in range(0, len(ids), 200)):
        marks = ",".join("?" * len(chunk))
        for row in execute(store, f"SELECT record_id, kind, actor, assignee, text, at FROM cr_actions"
                                  f" WHERE record_id IN ({marks}) ORDER BY at", tuple(chunk)):
            actions[row[0]].append(action_view(row))
        for rid, body in execute(store, f"SELECT record_id, body FROM reviews WHERE record_id IN ({marks})"
                                        " ORDER BY decided_ts", tuple(chunk)):
            reviews[rid].append(json.loads(body))
    return [alert_view(rec, at, hub, actions[rec["id"]], reviews[rec["id"]]) for rec, at, hub in records]


def alert_states(view: dict) -> set[str]:
    kinds = {a["kind"] for a in view["actions"]}
    states = {"acknowledged" if "ack" in kinds else "unacknowledged"}
    states |= {"assigned"} if "assign" in kinds else set()
    states |= {"escalated"} if "escalate" in kinds else set()
    states |= {"reviewed"} if view["reviews"] else {"open"}
    return states


def kpi_inputs(store: HubStore, since: float, until: float, limit: int = 200_000) -> tuple[list[dict], dict[str, list]]:
    """Records decided in [since, until) and their reviews."""
    rows = execute(store, "SELECT body FROM records WHERE decided_ts >= ? AND decided_ts < ? LIMIT ?", (since, until, limit))
    records = [json.loads(b) for (b,) in rows]
    reviews: dict[str, list] = defaultdict(list)
    for rid, body in execute(store, "SELECT r.record_id, r.body FROM reviews r JOIN records x ON x.id = r.record_id"
                                    " WHERE x.decided_ts >= ? AND x.decided_ts < ?", (since, until)):
        reviews[rid].append(json.loads(body))
    return records, reviews


TIP_FIELDS = ("station", "officer", "record_id", "projection", "label", "outcome", "decision_ms", "responded_ts")


def tip_inputs(store: HubStore, since: float, until: float, limit: int = 500_000) -> list[dict]:
    """TIP outcomes answered in [since, until)."""
    rows = execute(store, f"SELECT {', '.join(TIP_FIELDS)} FROM tip_outcomes WHERE responded_ts >= ? AND responded_ts < ?"
                          " LIMIT ?", (since, until, limit))
    return [dict(zip(TIP_FIELDS, row)) for row in rows]


SEARCH_OUTCOMES = ("nothing_found", "seizure", "pending")


def search_reports(store: HubStore, q: str | None = None, outcome: str | None = None, station: str | None = None,
                   limit: int = 100) -> list[dict]:
    """The latest version of each vehicle search report, newest signature first; `q` finds a plate or container
    (prefix, through the identity index) or any word of the report (goods, HS class, area, method, notes, badge);
    `outcome` filters on the pass's `search_outcome` (central_sync/hub/search_reports.py)."""
    clauses = ["r.version = (SELECT max(v.version) FROM search_reports v WHERE v.record_id = r.record_id)"]
    args: list[object] = []
    if q:
        ident, more = identity_clause(q)
        clauses.append(f"(r.text LIKE ? ESCAPE '\\' OR x.{ident})")
        args += [like_pattern(q), *more]
    for value, clause in ((outcome, "x.search_outcome = ?"), (station, "r.station = ?")):
        if value:
            clauses.append(clause)
            args.append(value)
    rows = execute(store, "SELECT r.body, r.station, x.search_outcome, x.body FROM search_reports r JOIN records x"
                          f" ON x.id = r.record_id WHERE {' AND '.join(clauses)}"
                          " ORDER BY r.signed_ts DESC, r.record_id DESC LIMIT ?", (*args, limit))
    found = [(json.loads(report), station_, outcome_, json.loads(record)) for report, station_, outcome_, record in rows]
    held = held_blobs(store, [ph for report, *_ in found for ph in report.get("photos") or ()])
    return [_report_view(report, station_, outcome_, record, held) for report, station_, outcome_, record in found]


def held_blobs(store: HubStore, shas: list[str]) -> set[str]:
    """Which of these images (scans, search photos) the hub holds."""
    wanted = sorted(set(shas))
    held: set[str] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        held.update(r[0] for r in execute(store, f"SELECT sha256 FROM blobs WHERE sha256 IN ({','.join('?' * len(part))})",
                                          tuple(part)))
    return held


def _report_view(report: dict, station: str, outcome: str | None, record: dict, held: set[str]) -> dict:
    idents = [{"kind": i["kind"], "value": i["value"]} for i in record.get("identities", [])
              if i["kind"] in ("plate", "container") and i["value"]]
    photos = [{"sha256": ph, "held": ph in held} for ph in report.get("photos") or ()]
    return {"record_id": record["id"], "station": station, "kind": record["kind"], "decided_at": record["decided_at"],
            "identities": idents, "search_outcome": outcome, "report": report, "photos": photos}


def report_photo(store: HubStore, record_id: str, sha256: str) -> bytes | None:
    """A search photo a report version of the record names, as the hub holds it; None when no version names it
    or the hub does not hold it (yet)."""
    rows = execute(store, "SELECT body FROM search_reports WHERE record_id = ?", (record_id,))
    if not any(sha256 in (json.loads(body).get("photos") or ()) for (body,) in rows):
        return None
    return store.image(sha256)


def people(store: HubStore, limit: int = 5000) -> dict[str, str]:
    """Officers' names by badge, as they signed vehicle search reports (the only place the hub learns names;
    stations send badges only), the latest signature first; a badge never seen signing has no name."""
    names: dict[str, str] = {}
    for (body,) in execute(store, "SELECT body FROM search_reports ORDER BY signed_ts DESC LIMIT ?", (limit,)):
        report = json.loads(body)
        for signer in (report.get("officer"), report.get("countersigned")):
            if signer and signer.get("name") and signer["badge"] not in names:
                names[signer["badge"]] = signer["name"]
    return names
