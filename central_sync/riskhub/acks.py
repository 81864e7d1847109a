"""Which bundle each station runs, from its acknowledgements and its status, and which are stale.

A station is stale when it has applied no bundle, runs a version older than the newest published
one, says so in its status (`risk_stale`), or runs a bundle whose expiry has passed. Acks arrive on
`cpe/v1/{station}/risk/ack` (the delivery layer, central_sync/risk_delivery.py) and are kept in
risk_bundle_acks by `record_ack`.
"""

from __future__ import annotations

import json
import time

from central_sync.control_room.db import execute
from central_sync.hub.store import HubStore


def record_ack(store: HubStore, station: str, version: int, sha256: str, outcome: str, code: str | None,
               at: float | None = None) -> None:
    """Keep one acknowledgement (the same one twice is one row)."""
    execute(store, "INSERT INTO risk_bundle_acks (station, version, sha256, outcome, code, at) VALUES (?,?,?,?,?,?)"
                   " ON CONFLICT (station, version, outcome) DO NOTHING",
            (station, version, sha256, outcome, code, time.time() if at is None else at))


def station_versions(store: HubStore, now: float) -> list[dict]:
    """Per known station (from the stations table or an ack): applied version, last refusal, stale and why."""
    newest = store.query("SELECT max(version) FROM risk_bundles")[0][0]
    expiry = {v: e for v, e in store.query("SELECT version, max(expires_at) FROM risk_bundles GROUP BY version")}
    status = {s: json.loads(body or "{}") for s, body in store.query("SELECT station, status FROM stations")}
    applied = dict(store.query("SELECT station, max(version) FROM risk_bundle_acks WHERE outcome='applied' GROUP BY station"))
    refused = {s: (v, c) for s, v, c in store.query(
        "SELECT a.station, a.version, a.code FROM risk_bundle_acks a WHERE a.outcome='refused' AND a.at ="
        " (SELECT max(b.at) FROM risk_bundle_acks b WHERE b.station = a.station AND b.outcome='refused')")}
    out = []
    for station in sorted(set(status) | set(applied)):
        st = status.get(station, {})
        version = applied.get(station) if applied.get(station) is not None else st.get("risk_version")
        why = _stale_reason(version, newest, st, expiry.get(version), now)
        out.append({"station": station, "version": version, "newest": newest, "stale": why is not None,
                    "stale_reason": why, "expires_at": expiry.get(version) or st.get("risk_expires_at"),
                    "refused_version": refused.get(station, (None, None))[0],
                    "refused_code": refused.get(station, (None, None))[1]})
    return out


def _stale_reason(version: int | None, newest: int | None, status: dict, expires_at: float | None,
                  now: float) -> str | None:
    if version is None:
        return "no_bundle"
    if status.get("risk_stale") or (expires_at is not None and expires_at <= now):
        return "expired"
    if newest is not None and version < newest:
        return "behind"
    return None
