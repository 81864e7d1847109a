"""Writing a finished run: attachments, the chained JSON record, JUnit XML and the HTML report."""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from edge.diag.core import Outcome, PhaseResult
from edge.diag.messages import Catalogue
from edge.diag.records import load_records, next_name, phase_dict, write_record
from edge.diag.runner import RunResult
from edge.diag.signing import StationKey, key_id

TEMPLATES = Path(__file__).parent / "templates"
TREND_RUNS = 30


@dataclass(frozen=True)
class Written:
    """Where a run's outputs are."""

    record: dict[str, Any]
    record_path: Path
    run_dir: Path
    report: Path
    latest_report: Path
    junit: Path


def write_run(result: RunResult, out_dir: Path, lang: str = "en", key: StationKey | None = None) -> Written:
    """Write attachments, the record (chained, signed with `key`), junit.xml and report.html of one run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    seq, name = next_name(out_dir, stamp)
    run_dir = out_dir / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    phases = [phase_dict(p, _attachments(p, run_dir, out_dir)) for p in result.phases]
    body = {**result.facts, "started": result.started, "ended": result.ended, "outcome": str(result.outcome),
            "teardown_unconfirmed": result.teardown, "phases": phases}
    record = write_record(out_dir, body, seq, name, key)
    junit = run_dir / "junit.xml"
    junit.write_bytes(junit_xml(record))
    records, cat = load_records(out_dir), Catalogue(lang)
    report = run_dir / "report.html"
    report.write_text(render_html(record, records, cat, base="../../"), encoding="utf-8")
    latest = out_dir / "report.html"
    latest.write_text(render_html(record, records, cat, base=""), encoding="utf-8")
    return Written(record, out_dir / "records" / f"{name}.json", run_dir, report, latest, junit)


def _attachments(p: PhaseResult, run_dir: Path, out_dir: Path) -> list[dict[str, Any]]:
    out = []
    for att in p.attachments:
        path = run_dir / f"{p.name}-{att.name}"
        path.write_bytes(att.data)
        out.append({"name": att.name, "mime": att.mime, "path": str(path.relative_to(out_dir)),
                    "sha256": hashlib.sha256(att.data).hexdigest(), "bytes": len(att.data)})
    return out


def junit_xml(record: dict[str, Any]) -> bytes:
    """One testsuite per run, one testcase per phase; FAIL -> failure, ERROR/ABORTED -> error.

    A failure a fault drill must cause ("expected") is a passing testcase that says so."""
    phases = record["phases"]
    count = {o: sum(1 for p in phases if p["outcome"] == o and not p.get("expected")) for o in Outcome}
    suite = ET.Element("testsuite", name=f"diag.{record['station']}", tests=str(len(phases)),
                       failures=str(count[Outcome.FAIL]), errors=str(count[Outcome.ERROR] + count[Outcome.ABORTED]),
                       skipped=str(count[Outcome.SKIPPED]), timestamp=record["started"],
                       time=f"{sum(p['duration_s'] for p in phases):.3f}")
    props = ET.SubElement(suite, "properties")
    for key in ("technician", "software_version", "firmware_version", "config_sha256", "hash", "prev_hash",
                "signature"):
        ET.SubElement(props, "property", name=key, value=str(record.get(key)))
    who = record.get("technician")
    technician = props.find("property[@name='technician']")
    if isinstance(who, dict) and technician is not None:
        technician.set("value", f"{who['name']} ({who['role']}, badge {who['badge']})")
    signer = record.get("signer")
    ET.SubElement(props, "property", name="signer", value=key_id(signer["public_key"]) if signer else "unsigned")
    for p in phases:
        case = ET.SubElement(suite, "testcase", classname=f"diag.{record['station']}", name=p["name"],
                             time=f"{p['duration_s']:.3f}")
        text = "\n".join(p["diagnoses"]) or p["reason"]
        tag = {"FAIL": "failure", "ERROR": "error", "ABORTED": "error", "SKIPPED": "skipped"}.get(p["outcome"])
        if p.get("expected"):
            tag = None
            ET.SubElement(ET.SubElement(case, "properties"), "property", name="expected", value=p["expected"])
        if tag:
            ET.SubElement(case, tag, message=(text.splitlines() or [p["outcome"]])[0], type=p["outcome"]).text = text
        marginal = [m for m in p["measurements"] if m["outcome"] == "MARGINAL"]
        if marginal:
            found = case.find("properties")
            props = found if found is not None else ET.SubElement(case, "properties")
            for m in marginal:
                ET.SubElement(props, "property", name="marginal", value=_in_band(m))
        lines = [f"{m['key']} = {_value(m)} {m['outcome']} (limits {_limits(m)})" for m in p["measurements"]]
        ET.SubElement(case, "system-out").text = "\n".join(lines)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def trends(records: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Numeric values of each measurement key over the last runs (None where it was not measured)."""
    recent = records[-TREND_RUNS:]
    keys: dict[str, list[float | None]] = {}
    for i, rec in enumerate(recent):
        for p in rec.get("phases", []):
            for m in p["measurements"]:
                v = m["value"]
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    keys.setdefault(m["key"], [None] * len(recent))[i] = float(v)
    return keys


def sparkline(values: list[float | None], width: int = 160, height: int = 28) -> str:
    """An inline SVG polyline of the values (static, no scripts)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if not pts:
        return ""
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span, n = (hi - lo) or 1.0, max(len(values) - 1, 1)
    xy = " ".join(f"{i / n * (width - 4) + 2:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in pts)
    last_x, last_y = xy.split(" ")[-1].split(",")
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" points="{xy}"/>'
            f'<circle cx="{last_x}" cy="{last_y}" r="2.5" fill="#2b6cb0"/></svg>')


def _limits(m: dict[str, Any]) -> str:
    """The limits and the marginal band: `≤ 400 (marginal above 250)`."""
    if m.get("expect") is not None:
        return "= yes" if m["expect"] else "= no"
    parts = []
    for limit, sign, band, side in (("low", "≥", "marginal_low", "below"), ("high", "≤", "marginal_high", "above")):
        if m.get(limit) is not None:
            near = f" (marginal {side} {m[band]:g})" if m.get(band) is not None else ""
            parts.append(f"{sign} {m[limit]:g}{near}")
    return " and ".join(parts) or "informative"


def _in_band(m: dict[str, Any]) -> str:
    """A marginal value with its band: `io.divert_ms[to pass] = 300 ms in the marginal band 250 to 400 ms`."""
    v, unit = m["value"], m["unit"]
    hi_side = m.get("marginal_high") is not None and isinstance(v, (int, float)) and v > m["marginal_high"]
    lo, hi = (m["marginal_high"], m.get("high")) if hi_side else (m.get("low"), m.get("marginal_low"))
    band = f"{_num(lo)} to {_num(hi)} {unit}".strip()
    return f"{m['key']} = {_num(v)} {unit} in the marginal band {band}".replace(" " * 2, " ")


def _num(v: object) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, (int, float)) else str(v)


def _value(m: dict[str, Any]) -> str:
    v = m["value"]
    if v is None:
        return "not measurable" if m.get("message") == "measure.not_measurable" else "not measured"
    if m.get("interval"):
        lo, hi = m["interval"]
        return f"≤ {hi:.4g} {m['unit']} ({lo:.4g} to {hi:.4g})".replace("  ", " ")
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.4g} {m['unit']}".strip() if isinstance(v, float) else f"{v} {m['unit']}".strip()


def render_html(record: dict[str, Any], records: list[dict[str, Any]], cat: Catalogue, base: str = "") -> str:
    """The static report (no scripts, no external resources); `base` leads from it to OUT."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters.update(limits=_limits, value=_value, key_id=key_id)
    series = trends(records)
    return env.get_template("report.html").render(
        r=record, t=lambda key, **kw: cat.text(key, **kw), lang=cat.lang,
        spark={k: sparkline(v) for k, v in series.items()}, runs=len(records[-TREND_RUNS:]), base=base)
