"""Diagnostic records: one JSON file per run, hash-chained to the previous run and signed by the station.

    hash = appliance.hashchain over (record without "hash" and "signature")   the record holds "prev_hash"
    signature = Ed25519(station key, hash)        "signer": {"alg": "ed25519", "public_key": hex}

Records written before issue 15 are in the chain's canonical form v1 (sorted-keys JSON, UTF-8),
new ones in v2 (its hash value says so, and the signature covers that value). Changing, removing
or reordering any record breaks the chain at that record; recomputing the hashes after a change
breaks the signatures; `verify_chain` names the first broken one. Records written before signing (no
"signature") are counted as unsigned, and an unsigned record after a signed one breaks the chain.
Layout of the output folder:

    OUT/records/000001-<stamp>.json     the chained records
    OUT/runs/000001-<stamp>/            report.html, junit.xml, attachments of that run
    OUT/report.html                     the latest run's report (with trends over all records)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import hashchain
from edge.diag import signing
from edge.diag.core import PhaseResult

SCHEMA = "cpe-diag/1"
GENESIS = hashchain.GENESIS
UNHASHED = frozenset({"hash", "signature"})
FORM = hashchain.ChainForm("diagnostic records", None, UNHASHED)


def record_hash(record: dict[str, Any], version: int = hashchain.CURRENT) -> str:
    """The hash value of a record in canonical form `version`."""
    return FORM.digest(record, version)


def load_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every record in the folder, oldest first."""
    folder = out_dir / "records"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def phase_dict(p: PhaseResult, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": p.name, "title": p.title, "outcome": str(p.outcome), "started": p.started,
            "duration_s": p.duration_s, "reason": p.reason, "notes": p.notes, "prompts": p.prompts,
            "measurements": [m.as_dict() for m in p.measurements], "diagnoses": p.diagnoses(),
            "attachments": attachments, "expected": p.expected}


def next_name(out_dir: Path, stamp: str) -> tuple[int, str]:
    """Sequence number and folder/file name of the next record."""
    previous = load_records(out_dir)
    seq = previous[-1]["seq"] + 1 if previous else 1
    return seq, f"{seq:06d}-{stamp}"


def write_record(out_dir: Path, body: dict[str, Any], seq: int, name: str,
                 key: signing.StationKey | None = None) -> dict[str, Any]:
    """Chain `body` to the last record, sign it with the station key and write it atomically; returns it."""
    previous = load_records(out_dir)
    if previous and previous[-1]["seq"] != seq - 1:
        raise ValueError(f"record {seq} does not follow {previous[-1]['seq']}: another run wrote meanwhile")
    signer = {"signer": {"alg": signing.ALG, "public_key": key.public_hex}} if key is not None else {}
    record = hashchain.seal(FORM, previous[-1] if previous else None, {"schema": SCHEMA, "seq": seq, **body, **signer})
    if key is not None:
        record["signature"] = key.sign(record["hash"])
    (out_dir / "records").mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "records" / f".{name}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out_dir / "records" / f"{name}.json")
    return record


@dataclass(frozen=True)
class ChainReport:
    """Result of an audit: how many records (signed, unsigned), the signing key, the first broken one."""

    ok: bool
    records: int
    broken_at: str = ""
    reason: str = ""
    signed: int = 0
    unsigned: int = 0
    public_key: str = ""
    pinned: bool = False


@dataclass
class _Walk:
    """What the audit has seen so far: the chain's walk and the signatures."""

    public: str | None
    pinned: bool
    chain: hashchain.Walk = field(default_factory=hashchain.Walk)
    signed: int = 0
    unsigned: int = 0


def verify_chain(out_dir: Path, public_key: str | None = None) -> ChainReport:
    """Check every record's hash, link and signature (against `public_key` when pinned) and attachments."""
    folder = out_dir / "records"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    walk = _Walk(public_key, public_key is not None)
    for path in files:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            return _report(walk, files, path.name, f"unreadable: {exc}")
        broken = walk.chain.step(FORM, rec)
        problem = str(broken) if broken else _attachments(rec, out_dir) or _signature(rec, walk)
        if problem:
            return _report(walk, files, path.name, problem)
    return _report(walk, files)


def _report(walk: _Walk, files: list[Path], broken_at: str = "", reason: str = "") -> ChainReport:
    return ChainReport(not reason, len(files), broken_at, reason, walk.signed, walk.unsigned, walk.public or "",
                       walk.pinned)


def _signature(rec: dict[str, Any], walk: _Walk) -> str:
    if "signature" not in rec:
        if walk.signed:
            return "it is unsigned although earlier records are signed (its signature was removed)"
        walk.unsigned += 1
        return ""
    public = str(rec.get("signer", {}).get("public_key", ""))
    if walk.public is None:
        walk.public = public
    if public != walk.public:
        whose = "the station's pinned key" if walk.pinned else "the key of the earlier records"
        return f"it names signing key {signing.key_id(public)}, not {whose} {signing.key_id(walk.public)}"
    if not signing.verifies(walk.public, rec["hash"], str(rec["signature"])):
        return f"its signature does not verify with station key {signing.key_id(walk.public)} (it was rewritten)"
    walk.signed += 1
    return ""


def _attachments(rec: dict[str, Any], out_dir: Path) -> str:
    for phase in rec.get("phases", []):
        for att in phase.get("attachments", []):
            path = out_dir / att["path"]
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != att["sha256"]:
                return f"attachment {att['path']} is missing or changed"
    return ""
