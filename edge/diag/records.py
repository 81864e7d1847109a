"""Diagnostic records: one JSON file per run, hash-chained to the previous run in the same folder.

    hash = sha256( canonical_json(record without "hash") )      and the record holds "prev_hash"

`canonical_json` is JSON with sorted keys, no whitespace, UTF-8. Changing, removing or reordering
any record breaks the chain at that record; `verify_chain` names the first broken one.
Layout of the output folder:

    OUT/records/000001-<stamp>.json     the chained records
    OUT/runs/000001-<stamp>/            report.html, junit.xml, attachments of that run
    OUT/report.html                     the latest run's report (with trends over all records)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.diag.core import PhaseResult

SCHEMA = "cpe-diag/1"
GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def load_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every record in the folder, oldest first."""
    folder = out_dir / "records"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def phase_dict(p: PhaseResult, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": p.name, "title": p.title, "outcome": str(p.outcome), "started": p.started,
            "duration_s": p.duration_s, "reason": p.reason, "notes": p.notes, "prompts": p.prompts,
            "measurements": [m.as_dict() for m in p.measurements], "diagnoses": p.diagnoses(),
            "attachments": attachments}


def next_name(out_dir: Path, stamp: str) -> tuple[int, str]:
    """Sequence number and folder/file name of the next record."""
    previous = load_records(out_dir)
    seq = previous[-1]["seq"] + 1 if previous else 1
    return seq, f"{seq:06d}-{stamp}"


def write_record(out_dir: Path, body: dict[str, Any], seq: int, name: str) -> dict[str, Any]:
    """Chain `body` to the last record and write it atomically; returns the record."""
    previous = load_records(out_dir)
    if previous and previous[-1]["seq"] != seq - 1:
        raise ValueError(f"record {seq} does not follow {previous[-1]['seq']}: another run wrote meanwhile")
    record = {"schema": SCHEMA, "seq": seq, **body, "prev_hash": previous[-1]["hash"] if previous else GENESIS}
    record["hash"] = record_hash(record)
    (out_dir / "records").mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "records" / f".{name}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out_dir / "records" / f"{name}.json")
    return record


@dataclass(frozen=True)
class ChainReport:
    """Result of an audit: how many records, and the first one that breaks the chain."""

    ok: bool
    records: int
    broken_at: str = ""
    reason: str = ""


def verify_chain(out_dir: Path) -> ChainReport:
    """Check every record's hash and its link to the previous record (and attachment hashes)."""
    folder = out_dir / "records"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    prev, prev_seq = GENESIS, 0
    for path in files:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            return ChainReport(False, len(files), path.name, f"unreadable: {exc}")
        problem = _check(rec, prev, prev_seq, out_dir)
        if problem:
            return ChainReport(False, len(files), path.name, problem)
        prev, prev_seq = rec["hash"], rec["seq"]
    return ChainReport(True, len(files))


def _check(rec: dict[str, Any], prev: str, prev_seq: int, out_dir: Path) -> str:
    if rec.get("prev_hash") != prev:
        return f"prev_hash {str(rec.get('prev_hash'))[:12]} does not match the previous record's {prev[:12]}"
    if rec.get("seq") != prev_seq + 1:
        return f"seq {rec.get('seq')} does not follow {prev_seq}"
    if record_hash(rec) != rec.get("hash"):
        return "its content does not match its hash (it was changed)"
    for phase in rec.get("phases", []):
        for att in phase.get("attachments", []):
            path = out_dir / att["path"]
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != att["sha256"]:
                return f"attachment {att['path']} is missing or changed"
    return ""
