"""`edge demo`'s risk assessment: a small watchlist and a few rules, drafted by the demo supervisor,
approved by the demo administrator (four eyes as everywhere) and published once, before the hub starts
(the hub then offers the newest version to the stations). Some demo vehicles hit them: the gantry's
simulated UHF reader sends the windscreen tags `tids`, and every third of those is on the list.
"""

from __future__ import annotations

from central_sync.hub.store import HubStore
from central_sync.riskhub import authoring, declarations, declgen, publish
from central_sync.riskhub.publish import Published, RiskKey

AUTHOR, APPROVER = "supervisor", "admin"  # edge/demo.py's control-room users
RULES = (
    {"id": "demo-empty-but-heavy", "name": "Declared empty but heavy", "reason": "Declared empty, weighs over 4.5 t",
     "when": {"all": [{"fact": "declaration.declared_empty", "op": "eq", "value": True},
                      {"fact": "declaration.weight_kg", "op": "gte", "value": 4500}]},
     "score": 60, "lane": "red", "enabled": True},
    {"id": "demo-cigarettes", "name": "Tobacco declared", "reason": "Tobacco (HS 2402) is a seizure hot spot",
     "when": {"fact": "declaration.hs", "op": "prefix", "value": "2402"}, "score": 30, "lane": "amber", "enabled": True},
    {"id": "demo-night", "name": "Night crossing", "reason": "Crossing between 01:00 and 04:59",
     "when": {"fact": "time.hour", "op": "between", "value": [1, 4]}, "score": 10, "lane": "amber", "enabled": True},
)


def seed(store: HubStore, key: RiskKey, tids: list[str]) -> Published | None:
    """Author and publish the demo's risk state once; None when a bundle was already published."""
    if publish.latest(store) is not None:
        return None

    def approved(op: str, payload: dict) -> None:
        authoring.approve(store, authoring.propose(store, AUTHOR, op, payload, note="demo").id, APPROVER)

    approved("watchlist.put", {"id": "demo-tags", "kind": "rfid_tid", "name": "Tags of interest", "lane": "red",
                               "owner": AUTHOR})
    for tid in tids[::3]:
        approved("entry.put", {"list_id": "demo-tags", "value": tid, "reason": "Tip-off: vehicle of interest",
                               "owner": AUTHOR, "level": 1})
    approved("watchlist.put", {"id": "demo-traders", "kind": "trader", "name": "Traders with seizures", "lane": "amber",
                               "owner": AUTHOR})
    approved("entry.put", {"list_id": "demo-traders", "value": "Golden Bay Imports", "reason": "Two seizures in 2026",
                           "owner": AUTHOR})
    for rule in RULES:
        approved("rule.put", dict(rule))
    approved("random.set", {"rate": 0.05, "stale_rate": 0.2, "per_lane": {}})
    declarations.store_declarations(store, declgen.generate(30, seed=1), "demo")
    return publish.publish(store, key, APPROVER)
