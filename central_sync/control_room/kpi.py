"""Checkpoint KPIs from the hub's records and reviews: throughput, times, rates, agreement.

Agreement of detector and officer, per reviewed record: a `suspect` the officer confirmed, or a
`clear` the officer cleared, agrees; a `suspect` called a false alarm, a `clear` the officer found
a threat in, and any override disagree; `manual` records (no detector decision) do not count.
TIP projections stay on the station (no TIP data reaches the hub), so TIP hit rates are reported
only where a review carries `label == "tip"`.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

AGREE = {("suspect", "threat_confirmed"): True, ("suspect", "false_alarm"): False,
         ("clear", "cleared"): True, ("clear", "false_alarm"): True, ("clear", "threat_confirmed"): False}
TIP_COLS = ("tip_shown", "tip_hits", "tip_misses", "tip_hit_rate", "tip_miss_rate", "tip_false_alarms",
            "tip_decision_s_p50")
SUMMARY_COLS = ("station", "items", "suspect", "manual", "suspect_rate", "manual_rate", "budget_missed",
                "device_fault", "verdict_ms_p50", "verdict_ms_p95", "decision_s_p50", "reviewed", "agreement",
                "tip_shown", "tip_hits", "tip_hit_rate", "tip_miss_rate")
TIP_STATION_COLS = ("station", *TIP_COLS)
TIP_OFFICER_COLS = ("station", "officer", *TIP_COLS)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def compute(records: list[dict], reviews: dict[str, list[dict]], tips: Sequence[dict] = ()) -> dict:
    """{"summary": [row per station], "hourly": {station: {hour_ts: count}}, "officers": [...]};
    `tips` are TIP outcomes (queries.tip_inputs) of the same period."""
    per: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    hourly: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    officers: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        s = per[r["station"]]
        decided = _ts(r["decided_at"])
        hourly[r["station"]][int(decided // 3600 * 3600)] += 1
        s["verdicts"].append(r["verdict"])
        s["reasons"].append(r["reason"])
        s["verdict_ms"].append((decided - _ts(r["started_at"])) * 1000.0)
        for rv in reviews.get(r["id"], []) or ([r["review"]] if r.get("review") else []):
            _review(s, officers[rv["officer"]], r, rv, decided)
    tip_by_station = {row["station"]: row for row in tip_rows(tips)}
    summary = [{**_summary(station, per[station]), **_tip_summary(tip_by_station.get(station))}
               for station in sorted(set(per) | set(tip_by_station))]  # TIP answers alone also give a station a row
    return {"summary": summary, "hourly": {k: dict(v) for k, v in hourly.items()},
            "officers": [{"officer": o, **v} for o, v in sorted(officers.items())]}


def _review(s: dict, officer: dict, record: dict, rv: dict, decided: float) -> None:
    s["decision_s"].append(_ts(rv["decided_at"]) - decided)
    officer["reviewed"] += 1
    agree = False if rv["outcome"] == "override" else AGREE.get((record["verdict"], rv["outcome"]))
    if agree is not None:
        s["agree"].append(agree)
        officer["agree" if agree else "disagree"] += 1


def _summary(station: str, s: dict) -> dict:
    n = len(s["verdicts"])
    suspect, manual = s["verdicts"].count("suspect"), s["verdicts"].count("manual")
    agree = s["agree"]
    return {"station": station, "items": n, "suspect": suspect, "manual": manual,
            "suspect_rate": round(suspect / n, 4) if n else None, "manual_rate": round(manual / n, 4) if n else None,
            "budget_missed": s["reasons"].count("budget_missed"), "device_fault": s["reasons"].count("device_fault"),
            "verdict_ms_p50": _pct(s["verdict_ms"], 0.5), "verdict_ms_p95": _pct(s["verdict_ms"], 0.95),
            "decision_s_p50": round(statistics.median(s["decision_s"]), 1) if s["decision_s"] else None,
            "reviewed": len(s["decision_s"]), "agreement": round(sum(agree) / len(agree), 4) if agree else None}


def _tip_summary(row: dict | None) -> dict:
    row = row or _tip_figures({}, [])
    return {c: row[c] for c in ("tip_shown", "tip_hits", "tip_hit_rate", "tip_miss_rate")}


def tip_rows(tips: Sequence[dict], per_officer: bool = False) -> list[dict]:
    """TIP figures per station, or per (station, officer): TIP_STATION_COLS / TIP_OFFICER_COLS."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for tip in tips:
        groups[(tip["station"], tip["officer"]) if per_officer else (tip["station"],)].append(tip)
    keys = ("station", "officer") if per_officer else ("station",)
    return [_tip_figures(dict(zip(keys, key)), rows) for key, rows in sorted(groups.items())]


def _tip_figures(head: dict, rows: list[dict]) -> dict:
    outcomes = [r["outcome"] for r in rows]
    hits, misses = outcomes.count("hit"), outcomes.count("miss")
    shown = hits + misses
    decisions = [r["decision_ms"] / 1000.0 for r in rows if r["outcome"] != "false_alarm" and r["decision_ms"] is not None]
    return {**head, "tip_shown": shown, "tip_hits": hits, "tip_misses": misses,
            "tip_hit_rate": round(hits / shown, 4) if shown else None,
            "tip_miss_rate": round(misses / shown, 4) if shown else None,
            "tip_false_alarms": outcomes.count("false_alarm"),
            "tip_decision_s_p50": round(statistics.median(decisions), 1) if decisions else None}


def rows_csv(rows: list[dict], cols: tuple[str, ...]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(cols)
    for row in rows:
        w.writerow(["" if row[c] is None else row[c] for c in cols])
    return out.getvalue()


def to_csv(kpis: dict) -> str:
    """Summary rows, then the hourly throughput (station, hour in UTC, items)."""
    out = io.StringIO()
    out.write(rows_csv(kpis["summary"], SUMMARY_COLS))
    w = csv.writer(out)
    w.writerow([])
    w.writerow(("station", "hour_utc", "items"))
    for station, hours in sorted(kpis["hourly"].items()):
        for hour, count in sorted(hours.items()):
            w.writerow((station, datetime.fromtimestamp(hour, UTC).isoformat(), count))
    return out.getvalue()
