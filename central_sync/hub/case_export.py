"""A case bundle from the hub's database, signed with the hub's command key (docs/case-bundles.md).

The hub holds what stations synced: records (with their search reports), reviews, scans, search photos, TIP
outcomes, and its own control-room audit. Evidence only a station keeps (identity crops, DICOS files made from
the scan, a search photo not synced yet) is named in the manifest's notes: export the case at the station for
those. Every
export is appended to the control-room audit with the manifest's sha256.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import blobs, case_bundle
from central_sync.case_bundle import Bundle, CaseBundleError, Selection
from central_sync.control_room import audit
from central_sync.control_room.db import execute
from central_sync.hub.search import normalise, search_clause
from central_sync.hub.store import HubStore

MAX_RECORDS = 500
ACTION = "case.export"


def select(store: HubStore, selection: Selection) -> list[dict[str, Any]]:
    """The selected record bodies, oldest first; CaseBundleError names an unknown id or an empty match."""
    # no stored id or identity holds a NUL character, and PostgreSQL refuses one in a text argument (500)
    if selection.record_ids:
        ids = tuple(rid for rid in selection.record_ids if "\x00" not in rid)
        marks = ",".join("?" * len(ids))
        rows = store.records(f"WHERE id IN ({marks})", ids, MAX_RECORDS + 1, 0) if ids else []
        found = {b["id"]: b for b in (json.loads(r[0]) for r in rows)}
        missing = [rid for rid in selection.record_ids if rid not in found]
        if missing:
            raise CaseBundleError(f"record {missing[0]} is not in the hub database", "unknown_record",
                                  record=missing[0])
    elif "\x00" in selection.identity_value + selection.identity_kind:
        found = {}
    else:
        if not normalise(selection.identity_value):  # `-`: compared normalised it is the value of every unread plate
            raise CaseBundleError(f"identity {selection.identity_kind}={selection.identity_value!r} has no letter or "
                                  "digit in its value, so it names no vehicle", "no_vehicle",
                                  value=selection.identity_value)
        clause, args = search_clause(store, selection.identity_value, selection.identity_kind, "exact")
        found = {b["id"]: b for b in (json.loads(r[0]) for r in store.records(f"WHERE {clause}", args,
                                                                                 MAX_RECORDS + 1, 0))}
    if not found:
        raise CaseBundleError(f"no record in the hub database matches the case selection {selection.describe()}",
                              "no_match",
                              selection=" ".join(selection.record_ids) or f"{selection.identity_kind} {selection.identity_value}")
    if len(found) > MAX_RECORDS:
        raise CaseBundleError(f"the case selects more than {MAX_RECORDS} records", "too_many", max=str(MAX_RECORDS))
    return sorted(found.values(), key=lambda b: (b["decided_at"], b["id"]))


def _dump(value: Any) -> bytes:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str).encode()


def evidence(store: HubStore, bodies: list[dict[str, Any]]) -> tuple[dict[str, bytes], list[str]]:
    """Every file the hub holds about the records, and one note per piece it does not."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for body in bodies:
        rid = body["id"]
        files[f"records/{rid}.json"] = _dump(body)
        reviews = [json.loads(r) for r in store.reviews(rid)]
        if reviews:
            files[f"reviews/{rid}.json"] = _dump(reviews)
        _scan(store, body, files, notes)
        _search_reports(store, body, files, notes)
        _photos(store, body, files, notes)
        notes += [f"identity crop {i['crop']} of record {rid} is kept at station {body['station']} only"
                  for i in body.get("identities", []) if i.get("crop")]
        tips = execute(store, "SELECT body FROM tip_outcomes WHERE record_id = ? ORDER BY projection", (rid,))
        if tips:
            files[f"tip/{rid}.json"] = _dump([json.loads(t[0]) for t in tips])
        files[f"audit/{rid}.json"] = _dump(_audit_rows(store, rid))
    return files, notes


def _search_reports(store: HubStore, body: dict[str, Any], files: dict[str, bytes], notes: list[str]) -> None:
    """Each version as the hub keeps it (its `search_reports` row: a version changes there only to its
    countersigned form), not as the record's latest body carries it; a body whose copy differs is named."""
    rid = body["id"]
    kept = {int(v): json.loads(b) for v, b in execute(store, "SELECT version, body FROM search_reports"
                                                            " WHERE record_id = ? ORDER BY version", (rid,))}
    for report in body.get("search_reports", []):
        version = int(report["version"])
        if version in kept and kept[version] != report:
            notes.append(f"search report version {version} of record {rid}: the record's body carries another copy "
                         "than the one the hub kept when it was signed; the bundle holds the kept one")
        kept.setdefault(version, report)
    for version, report in sorted(kept.items()):
        files[f"search-reports/{rid}-v{version}.json"] = _dump(report)


def _photos(store: HubStore, body: dict[str, Any], files: dict[str, bytes], notes: list[str]) -> None:
    """The search photos the record's report versions name, each once, as the station synced them
    (`search-photos/<sha256>.jpg|.png`); a note for each the hub does not hold (yet) or refuses."""
    rid = body["id"]
    named = dict.fromkeys(sha for report in body.get("search_reports", []) for sha in report.get("photos", []))
    for sha in named:
        data = store.image(sha)
        if data is None:
            notes.append(f"search photo {sha} of record {rid} is not held by the hub (still at station "
                         f"{body['station']}, or not synced yet)")
            continue
        problem = blobs.photo_problem(len(data), data[:16])
        if problem is not None:
            notes.append(f"search photo {sha} of record {rid} is left out: {problem}")
            continue
        files[f"search-photos/{sha}.{'png' if blobs.photo_type(data) == 'image/png' else 'jpg'}"] = data


def _scan(store: HubStore, body: dict[str, Any], files: dict[str, bytes], notes: list[str]) -> None:
    scan = body.get("scan")
    if not scan:
        return
    data = store.image(scan["sha256"])
    if data is None:
        notes.append(f"record {body['id']}'s scan {scan['sha256']} is not held by the hub")
        return
    files[f"scans/{scan['sha256']}.npz"] = data
    notes.append(f"record {body['id']}'s DICOS files are made at station {body['station']} (edge case export)")


def _audit_rows(store: HubStore, record_id: str) -> list[dict[str, Any]]:
    rows = execute(store, f"{audit.SELECT} WHERE object = ? ORDER BY seq", (record_id,))
    return [dict(zip((*audit.COLS, "hash"), r)) for r in rows]


def export(store: HubStore, selection: Selection, actor: str, reason: str, key: Ed25519PrivateKey,
           origin: str = "hub", now: datetime | None = None) -> Bundle:
    """Build, sign with the hub's key and audit the case bundle; CaseBundleError says why it cannot."""
    if not reason.strip():
        raise CaseBundleError("a case export needs a reason (why the evidence leaves the hub)")
    bodies = select(store, selection)
    files, notes = evidence(store, bodies)
    bundle = case_bundle.build(
        files, key, case_id=str(uuid4()), side="hub", origin=origin, exported_by=actor,
        exported_at=now or datetime.now(timezone.utc), reason=reason.strip(), records=[b["id"] for b in bodies],
        selection=selection.describe(), notes=notes)
    audit.append(store, actor, ACTION, f"case:{bundle.manifest.case_id}",
                 {"reason": bundle.manifest.reason, "records": bundle.manifest.records,
                  "manifest_sha256": bundle.manifest_sha256, "key_id": bundle.manifest.key.key_id,
                  "files": len(bundle.manifest.files)})
    return bundle
