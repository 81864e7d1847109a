"""Which bundle each station runs, from its acknowledgements and its status, and which are stale.

A station is stale when it has applied no bundle, runs a version older than the newest published
one, says so in its status (`risk_stale`), or runs a bundle whose expiry has passed. The acks
(`cpe/v1/{station}/risk/ack`) are kept by the delivery layer in the hub's bundle_acks
(central_sync/risk_delivery.py, HubStore.record_bundle_ack).
"""

from __future__ import annotations

import json

from central_sync.hub.store import HubStore


def station_versions(store: HubStore, now: float) -> list[dict]:
    """Per known station (from the stations table or an ack): version run, last refusal, stale and why."""
    newest = store.query("SELECT max(version) FROM risk_bundles")[0][0]
    expiry = {v: e for v, e in store.query("SELECT version, max(expires_at) FROM risk_bundles GROUP BY version")}
    status = {s: json.loads(body or "{}") for s, body in store.query("SELECT station, status FROM stations")}
    applied = store.applied_bundle_versions()
    last = {row[0]: row for row in store.bundle_acks()}  # (station, version, sha256, outcome, code, at)
    out = []
    for station in sorted(set(status) | set(applied)):
        st = status.get(station, {})
        version = st.get("risk_version") if st.get("risk_version") is not None else applied.get(station)
        why = _stale_reason(version, newest, st, expiry.get(version), now)
        ack = last.get(station)
        refused = ack if ack is not None and ack[3] == "refused" else None
        out.append({"station": station, "version": version, "newest": newest, "stale": why is not None,
                    "stale_reason": why, "expires_at": expiry.get(version) or st.get("risk_expires_at"),
                    "refused_version": refused[1] if refused else None, "refused_code": refused[4] if refused else None})
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
