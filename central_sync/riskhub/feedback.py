"""Feedback KPIs: how often an inspection selected by a rule, a watchlist or the random draw found something.

The feedback is first the signed vehicle search report (docs/search-report.md): the hub keeps its
versions in `search_reports` and the pass's outcome in `records.search_outcome` (nothing_found, or
seizure once countersigned; `pending` is not an outcome yet and counts nowhere). Only a record without
a report falls back to the officer's review with a `search` result (schema.SearchResult: nothing_found
or seized, with class and quantity), synced like every review (ReviewMsg) and stored in `reviews`. The record it reviews carries the risk assessment the station made
(`risk`, schema.RiskOut: lane, score, `rules` [{id, kind, reason, ...}] where a watchlist hit's id
is "<list kind>:<list id>", `random` {seed, draw, rate, selected}, `bundle`). Per selector: inspections it selected, seizures among them, the hit rate
and its Wilson 95 % interval (models/stats.py). The random row is the baseline that tells whether
the rules do better than chance. An item inspected twice counts once, with its latest result.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

from central_sync.hub.store import HubStore
from models.stats import wilson

Selector = tuple[str, str]  # (kind: rule | watchlist | random, id)
SEIZED = ("seized", "seizure")  # the review's SearchResult and the search report's outcome (docs/search-report.md)


def feedback_rows(store: HubStore, since: float, until: float) -> list[dict]:
    """One row per inspected record of the period: record id, station, officer, outcome, class, quantity,
    and the selectors that chose it. The signed search report decides where the record has one; the
    review's search result only where it has none."""
    latest = _reported(store, since, until)
    rows = store.query("SELECT v.record_id, v.station, v.officer, v.decided_ts, v.body, r.body FROM reviews v"
                       " LEFT JOIN records r ON r.id = v.record_id WHERE v.decided_ts >= ? AND v.decided_ts < ?"
                       " AND r.search_outcome IS NULL ORDER BY v.decided_ts", (since, until))
    for record_id, station, officer, ts, review_body, record_body in rows:
        search = json.loads(review_body).get("search")
        if not search:
            continue
        risk = (json.loads(record_body).get("risk") or {}) if record_body else {}
        latest[record_id] = {"record_id": record_id, "station": station, "officer": officer, "decided_ts": ts,
                             "outcome": search["outcome"], "goods_class": search.get("goods_class"),
                             "quantity": search.get("quantity"), "unit": search.get("unit"),
                             "selectors": sorted(selectors(risk)), "source": "review"}
    return sorted(latest.values(), key=lambda r: r["decided_ts"])


def _reported(store: HubStore, since: float, until: float) -> dict[str, dict]:
    """The records whose search report is final (records.search_outcome nothing_found or seizure), by the
    latest version signed in the period: the officer who signed it, its first seized finding's class."""
    rows = store.query("SELECT x.id, x.station, x.search_outcome, x.body, s.officer, s.signed_ts, s.body"
                       " FROM records x JOIN search_reports s ON s.record_id = x.id"
                       " WHERE x.search_outcome IN ('nothing_found', 'seizure') AND s.signed_ts >= ? AND s.signed_ts < ?"
                       " AND s.version = (SELECT max(version) FROM search_reports t WHERE t.record_id = x.id)",
                       (since, until))
    out: dict[str, dict] = {}
    for record_id, station, outcome, record_body, officer, ts, report_body in rows:
        seized = [f for f in json.loads(report_body).get("findings") or [] if f.get("seized", True)]
        first = seized[0] if seized and outcome == "seizure" else {}
        out[record_id] = {"record_id": record_id, "station": station, "officer": officer, "decided_ts": ts,
                          "outcome": outcome, "goods_class": first.get("hs_class") or first.get("goods"),
                          "quantity": first.get("quantity"), "unit": first.get("unit"),
                          "selectors": sorted(selectors(json.loads(record_body).get("risk") or {})),
                          "source": "search_report"}
    return out


def selectors(risk: dict) -> set[Selector]:
    """Which rules, watchlists and random draw selected the item, from the record's `risk`."""
    found: set[Selector] = set()
    for hit in risk.get("fired") or risk.get("rules") or []:
        kind = hit.get("kind", "rule")
        if kind == "rule":
            found.add((kind, str(hit["id"])))
        elif kind == "watchlist":  # the engine names a list hit "<list kind>:<list id>"
            found.add((kind, str(hit["id"]).split(":", 1)[-1]))
    draw = risk.get("random") or risk.get("random_draw") or {}
    if draw.get("selected") or (draw.get("selected") is None and _below(draw)):
        found.add(("random", "random"))
    return found


def _below(draw: dict) -> bool:
    value, rate = draw.get("value", draw.get("draw")), draw.get("rate")
    return isinstance(value, (int, float)) and isinstance(rate, (int, float)) and value < rate


def hit_rates(rows: Iterable[dict]) -> list[dict]:
    """Per selector: inspected, seized, rate, Wilson 95 % low/high; rules, then watchlists, then random."""
    counts: dict[Selector, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for kind, ident in row["selectors"]:
            counts[(kind, ident)][0] += 1
            counts[(kind, ident)][1] += row["outcome"] in SEIZED
    order = {"rule": 0, "watchlist": 1, "random": 2}
    out = []
    for (kind, ident), (n, k) in sorted(counts.items(), key=lambda kv: (order.get(kv[0][0], 3), kv[0][1])):
        low, high = wilson(k, n)
        out.append({"kind": kind, "id": ident, "inspected": n, "seized": k, "rate": round(k / n, 4),
                    "ci_low": round(low, 4), "ci_high": round(high, 4)})
    return out
