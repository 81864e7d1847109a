"""Vehicle search reports at the hub: one row per report version, and the pass's `search_outcome` on its record.

A report arrives inside its record (a record-lane update, like a review: central_sync/schema.py
`SearchReport`). The hub keeps each version in `search_reports` (written in the record's transaction,
confined to the station's own record) and sets `records.search_outcome` from the latest version:
`nothing_found`, `seizure` (countersigned), `pending` (a seizure awaiting its countersignature) or NULL
(no search), the same rule as `central_sync.schema.search_outcome` on the station. The vehicle history and the risk feedback read that column; `pending` is never a clean pass.

A version is replaced only by the same version countersigned (never by its unsigned form arriving late), and the
outcome is computed from the stored versions, so both stay right when a late copy of the record replaces its body.
`text` holds the report's searchable fields in lower case: goods, HS-like classes, areas, methods, notes,
the signers' badges.
"""

from __future__ import annotations

from collections import Counter

import structlog

from central_sync.schema import InspectionRecord, SearchReport

log = structlog.get_logger()
COUNTERSIGNING_ROLES = ("supervisor",)
"""Who may countersign a seizure (edge/auth.py PERMISSIONS["search.countersign"])."""
refused_countersignatures: Counter[str] = Counter()
"""Versions the hub did not take as final, by reason (`final`, `_as_signed`): each (record, version) once per reason,
however often its record arrives (sent again after a lost ack, or carrying a later version or a review)."""
REFUSED_REMEMBERED = 100_000
"""How many refused (station, record, version, reason) the hub remembers as counted; past it the oldest is forgotten."""
_counted: dict[tuple[str, str, int, str], None] = {}

DDL = """
CREATE TABLE IF NOT EXISTS search_reports (
    record_id TEXT NOT NULL, station TEXT NOT NULL, version INTEGER NOT NULL, outcome TEXT NOT NULL,
    final INTEGER NOT NULL, officer TEXT NOT NULL, supervisor TEXT, signed_ts DOUBLE PRECISION NOT NULL,
    minutes INTEGER NOT NULL, text TEXT NOT NULL, body TEXT NOT NULL, committed_at DOUBLE PRECISION NOT NULL,
    digest TEXT, PRIMARY KEY (record_id, version));
CREATE INDEX IF NOT EXISTS search_reports_signed ON search_reports (signed_ts);
"""
ADD_OUTCOME_COLUMN = "ALTER TABLE records ADD COLUMN search_outcome TEXT"
ADD_DIGEST_COLUMN = "ALTER TABLE search_reports ADD COLUMN digest TEXT"
"""The officer's signed digest of each version (NULL in rows a hub stored before it kept it)."""
INDEX_OUTCOME = "CREATE INDEX IF NOT EXISTS records_search_outcome ON records (search_outcome)"

COLS = ("record_id", "station", "version", "outcome", "final", "officer", "supervisor", "signed_ts", "minutes", "text",
        "body", "committed_at", "digest")
UPSERT_SEARCH_REPORT = (f"INSERT INTO search_reports ({','.join(COLS)}) SELECT {','.join('?' * len(COLS))}"
                        " WHERE EXISTS (SELECT 1 FROM records WHERE id = ? AND station = ? AND seq = ? AND decided_ts = ?)"
                        " ON CONFLICT (record_id, version) DO UPDATE SET final = excluded.final,"
                        " supervisor = excluded.supervisor, text = excluded.text, body = excluded.body, committed_at = excluded.committed_at"
                        ", digest = excluded.digest"
                        " WHERE search_reports.station = excluded.station AND excluded.final > search_reports.final"
                        " AND search_reports.officer = excluded.officer AND search_reports.signed_ts = excluded.signed_ts"
                        " AND (search_reports.digest IS NULL OR search_reports.digest = excluded.digest)")
"""Args: the version's row, then record id, station, seq and decision time (only under the station's own record,
that very one). A stored version changes once, to its countersigned form (same signer, same signing time, same
signed digest: a countersigned copy whose content was changed is not taken either): another
copy of a version (notes, findings, a countersignature changed after it was stored; a station restored from a backup
signing its version 1 again) left the signed version rewritten in place before; the record's body holds the copy."""

SET_OUTCOME = ("UPDATE records SET search_outcome = (SELECT CASE WHEN s.final = 1 THEN s.outcome ELSE 'pending' END"
               " FROM search_reports s WHERE s.record_id = records.id ORDER BY s.version DESC LIMIT 1)"
               " WHERE id = ? AND station = ?")
"""Args: record id, station. From the versions as stored (after this message's rows), so that a copy arriving
late cannot take the outcome back."""


def search_text(report: SearchReport) -> str:
    """The report's searchable words, lower case, one space apart."""
    words = [report.outcome, report.vehicle_type, *report.areas, *report.methods, report.notes, report.officer.badge,
             report.countersigned.badge if report.countersigned else ""]
    for f in report.findings:
        words += [f.goods, f.hs_class, f.area]
    return " ".join(w for w in words if w).lower()


def final(record: InspectionRecord, report: SearchReport) -> bool:
    """Whether the version is final at the hub: `nothing_found`, or a seizure countersigned by a supervisor other
    than its signer, the rule the station checks (edge/search_report.py `countersign`). A countersignature by the
    signer's own badge or by another role (an altered or faulty station) is kept with the version but leaves the
    seizure `pending`: before, any countersignature made it final and the pass a seizure in the history and the
    risk feedback. Each such version is counted and logged as `hub.search_countersign_refused`."""
    signer = report.countersigned
    if report.outcome == "nothing_found" or signer is None:
        return report.final
    reason = ("by_signer" if signer.badge == report.officer.badge else
              "not_supervisor" if signer.role not in COUNTERSIGNING_ROLES else None)
    if reason is None:
        return True
    if _first_refusal(record, report, reason):
        log.warning("hub.search_countersign_refused", reason=reason, record=record.id, station=record.station,
                    version=report.version, detail=f"version {report.version} of the search report on {record.id} "
                    f"signed by {report.officer.badge} is countersigned by {signer.role} {signer.badge}: it stays pending")
    return False


def _first_refusal(record: InspectionRecord, report: SearchReport, reason: str) -> bool:
    """Count the version's refusal for `reason` unless it was counted already (its record arrived before); whether
    it was counted now (and is to be logged). The same refused version, sent again after a lost ack or inside each
    later update of its record, was counted (and logged) every time."""
    key = (record.station, record.id, report.version, reason)
    if key in _counted:
        return False
    _counted[key] = None
    if len(_counted) > REFUSED_REMEMBERED:
        del _counted[next(iter(_counted))]
    refused_countersignatures[reason] += 1
    return True


def report_rows(record: InspectionRecord, now: float) -> list[tuple]:
    """UPSERT_SEARCH_REPORT arguments, one per version of the record's report. The digest column is the hub's own
    digest of the version's content, so that a copy whose content changed (its claimed digest kept) never replaces
    the stored one; a version whose content is not what its officer signed is never final here."""
    return [(record.id, record.station, r.version, r.outcome, int(final(record, r) and _as_signed(record, r)),
             r.officer.badge, r.countersigned.badge if r.countersigned else None, r.officer.signed_at.timestamp(),
             r.minutes, search_text(r), r.model_dump_json(), now, r.content_digest(), record.id, record.station,
             record.seq, record.decided_at.timestamp())
            for r in record.search_reports]


def _as_signed(record: InspectionRecord, report: SearchReport) -> bool:
    """Whether the version's content is what its officer signed (and its countersigner, when there is one)."""
    digest = report.content_digest()
    signed = [report.officer.digest, *([report.countersigned.digest] if report.countersigned else [])]
    if all(d == digest for d in signed):
        return True
    if _first_refusal(record, report, "content_changed"):
        log.warning("hub.search_report_altered", record=record.id, station=record.station, version=report.version,
                    detail=f"version {report.version} of the search report on {record.id} is not what was signed "
                           f"(content digest {digest[:12]}, signed {', '.join(d[:12] for d in signed)}): never final here")
    return False


def outcome_row(record: InspectionRecord) -> tuple:
    """SET_OUTCOME arguments."""
    return (record.id, record.station)


def like_pattern(q: str) -> str:
    """A LIKE pattern (ESCAPE '\\') finding `q` anywhere in `text`, its wildcards taken literally."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
