"""Risk assessment: signed bundles of watchlists, rules and declarations from the hub, evaluated on the station.

`bundle` (wire format, signatures, parsing), `rules` (the rule language), `engine` (the index and the
evaluation), `verdict` (risk only ever makes a verdict stricter). Imported by the station (`edge`) and the
hub (`central_sync`); imports neither `edge` nor the hub's store. See docs/risk.md.
"""
