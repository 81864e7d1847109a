"""A case bundle from the station store: the records a case concerns and all the evidence about them,
signed with the station key (docs/case-bundles.md; the format is central_sync/case_bundle.py).

A case is chosen by record ids or by a vehicle's identity (every record that read that plate, container
number or tag). Evidence the station no longer holds (a scan pruned after the hub took it) is named in
the manifest's notes rather than left out silently. Every export is audited: who, why, which records and
the manifest's sha256, so the audit chain vouches for the bundle as well as its signature does.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from central_sync import case_bundle
from central_sync.case_bundle import Bundle, Selection
from central_sync.hub.search import normalise
from central_sync.schema import Identity, InspectionRecord
from edge import audit, dicos, tip
from edge.diag import signing
from edge.errors import EdgeError
from edge.ids import new_id
from edge.store import Store

log = structlog.get_logger()

VEHICLE_KINDS = ("plate", "container", "rfid_tid", "rfid_epc", "em4100", "rfid", "seal", "eseal")
MAX_RECORDS = 500
ACTION = "case.export"


class CaseExportRefused(EdgeError):
    """A case bundle that cannot be exported as asked; `code` is the stable reason the screen shows."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_identity(text: str) -> Selection:
    """`plate=粤Z·A123港` (kind=value) as a selection; CaseExportRefused names a kind it does not know, or a value
    of separators only (`-`, `.`): compared as the history compares it, that is empty, the value of every pass
    whose plate or container was not read, and the case would take other vehicles' records."""
    kind, sep, value = text.partition("=")
    if not sep or kind not in VEHICLE_KINDS or not value.strip():
        raise CaseExportRefused("bad_identity", f"identity {text!r} is not KIND=VALUE with KIND one of "
                                                f"{', '.join(VEHICLE_KINDS)}")
    if not normalise(value):
        raise CaseExportRefused("bad_identity", f"identity {text!r} has no letter or digit in its value, so it "
                                                "names no vehicle")
    return Selection(identity_kind=kind, identity_value=value.strip())


def select(store: Store, selection: Selection) -> list[InspectionRecord]:
    """The selected records, oldest first; CaseExportRefused when an id is unknown or nothing matches."""
    if selection.record_ids:
        records = [store.get(rid) for rid in selection.record_ids]
        missing = [rid for rid, r in zip(selection.record_ids, records) if r is None]
        if missing:
            raise CaseExportRefused("unknown_record", f"record {missing[0]} is not in the station store at "
                                                      f"{store.data_dir}")
        found = [r for r in records if r is not None]
    else:
        found = _by_identity(store.conn, selection.identity_kind, selection.identity_value)
    if not found:
        raise CaseExportRefused("no_records", f"no record matches the case selection {selection.describe()}")
    if len(found) > MAX_RECORDS:
        raise CaseExportRefused("too_many", f"the case selects {len(found)} records, more than {MAX_RECORDS}")
    return sorted({r.id: r for r in found}.values(), key=lambda r: r.seq)


def _by_identity(conn: sqlite3.Connection, kind: str, value: str) -> list[InspectionRecord]:
    """Records that read the identity, matched as the hub's history matches it (case, spaces and dots aside)."""
    rows = conn.execute(
        "SELECT record FROM inspections WHERE EXISTS (SELECT 1 FROM json_each(record, '$.identities') AS i"
        " WHERE json_extract(i.value, '$.kind') = ?) ORDER BY seq", (kind,))
    wanted = normalise(value)
    if not wanted:  # an unread plate's value is empty too: an empty value names no vehicle (see parse_identity)
        return []
    records = (InspectionRecord.model_validate_json(row[0]) for row in rows)
    return [r for r in records if any(i.kind == kind and normalise(i.value) == wanted for i in r.identities)]


def _dump(value: Any) -> bytes:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str).encode()


def evidence(store: Store, records: list[InspectionRecord]) -> tuple[dict[str, bytes], list[str]]:
    """Every file of the case by its path in the bundle, and one note per piece of evidence no longer held."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for record in records:
        files[f"records/{record.id}.json"] = record.model_dump_json(by_alias=True, indent=1).encode()
        if record.review is not None:
            files[f"reviews/{record.id}.json"] = record.review.model_dump_json(indent=1).encode()
        _scan_files(store, record, files, notes)
        _search_files(store, record, files, notes)
        _crop_files(store, record.identities, files, notes)
        files[f"audit/{record.id}.json"] = _dump([e.as_dict() for e in _audit_entries(store, record)])
        tips = _tip_rows(store.conn, record.id)
        if tips:
            files[f"tip/{record.id}.json"] = _dump(tips)
    return files, notes


def _audit_entries(store: Store, record: InspectionRecord) -> list[audit.AuditEntry]:
    """The audit entries about the record and about each search photo its reports name, oldest first: a photo is
    audited when it is taken or uploaded (`search.photo_added`, object its sha256), before a report names it, and
    who added it, when and from which camera is the photo's chain of custody."""
    objects = dict.fromkeys([record.id, *(sha for report in record.search_reports for sha in report.photos)])
    entries = {e.seq: e for obj in objects for e in audit.entries(store.conn, obj, limit=10_000)}
    return [entries[seq] for seq in sorted(entries)]


def _scan_files(store: Store, record: InspectionRecord, files: dict[str, bytes], notes: list[str]) -> None:
    if record.scan is None:
        return
    sha = record.scan.sha256
    data = _checked(store.scan_path(sha), sha, f"record {record.id}'s scan {sha}", notes)
    if data is None:
        return
    files[f"scans/{sha}.npz"] = data
    try:
        for name, dx in dicos.scan_bytes_dicos(record, data).items():
            files[f"dicos/{name}"] = dx
    except dicos.DicosExportError as exc:
        notes.append(f"record {record.id} has no DICOS files: {exc}")


def _search_files(store: Store, record: InspectionRecord, files: dict[str, bytes], notes: list[str]) -> None:
    for report in record.search_reports:
        files[f"search-reports/{record.id}-v{report.version}.json"] = report.model_dump_json(indent=1).encode()
        for sha in report.photos:
            _copy(store.photo_path(sha), sha, f"photos/{sha}", f"search photo {sha} of record {record.id}", files, notes)


def _crop_files(store: Store, identities: list[Identity], files: dict[str, bytes], notes: list[str]) -> None:
    for ident in identities:
        if ident.crop:
            _copy(store.crop_path(ident.crop), ident.crop, f"crops/{ident.crop}.png",
                  f"identity crop {ident.crop} ({ident.kind} {ident.value or ident.raw})", files, notes)


def _copy(path: Path, sha: str, name: str, what: str, files: dict[str, bytes], notes: list[str]) -> None:
    data = _checked(path, sha, what, notes)
    if data is not None:
        files[name] = data


def _checked(path: Path, sha: str, what: str, notes: list[str]) -> bytes | None:
    """The file's bytes when they are what its name (their sha256) says; else None with a note: the bundle
    signs what it holds, and a file damaged or replaced on disk must not be signed as the record's."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        notes.append(f"{what} is no longer kept at the station")
        return None
    except OSError as exc:  # a failing disk (EIO), a directory in its place: noted, not an export ended in a traceback
        notes.append(f"{what} could not be read at the station ({exc.strerror or exc}): left out of the bundle")
        return None
    if (actual := hashlib.sha256(data).hexdigest()) != sha:
        notes.append(f"{what} on disk is not that file (it hashes to {actual}): left out of the bundle")
        return None
    return data


def _tip_rows(conn: sqlite3.Connection, record_id: str) -> list[dict[str, Any]]:
    tip.ensure_schema(conn)
    cur = conn.execute("SELECT * FROM tip_events WHERE record_id = ? ORDER BY id", (record_id,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur]


def export(store: Store, selection: Selection, actor: str, reason: str,
           now: datetime | None = None) -> Bundle:
    """Build, sign and audit the case bundle; CaseExportRefused when the reason is empty or nothing matches."""
    if not reason.strip():
        raise CaseExportRefused("reason_required", "a case export needs a reason (why the evidence leaves the station)")
    records = select(store, selection)
    files, notes = evidence(store, records)
    key, created = signing.load_or_create(store.data_dir)
    if created:
        log.info("case.key_created", key_id=signing.key_id(key.public_hex), path=str(key.path))
    bundle = case_bundle.build(
        files, key.private, case_id=new_id(), side="station", origin=store.station or "station", exported_by=actor,
        exported_at=now or datetime.now(timezone.utc), reason=reason.strip(), records=[r.id for r in records],
        selection=selection.describe(), notes=notes)
    audit.ensure_schema(store.conn)
    audit.append(store.conn, actor, ACTION, f"case:{bundle.manifest.case_id}",
                 {"reason": bundle.manifest.reason, "records": bundle.manifest.records,
                  "manifest_sha256": bundle.manifest_sha256, "key_id": bundle.manifest.key.key_id,
                  "files": len(bundle.manifest.files)})
    log.info("case.exported", case=bundle.manifest.case_id, records=len(records), actor=actor)
    return bundle
