"""Risk assessment at the hub (issue 18): watchlists and rules authored with four eyes, pre-arrival
declarations, signed bundles published to the stations, and the inspection feedback's hit rates.

`tables` (schema), `authoring` (drafts, approvals, the approved state), `declarations` (import and
the simulated feed), `publish` (snapshot + delta, signed), `feedback` (KPIs). docs/risk-authoring.md.
"""
