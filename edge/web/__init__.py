"""The officer's station screen: live scans, decisions, threat image projection, roles and audit.

Entry points: `edge.web.app.create_app(ctx)`, settings `edge.web.config.WebConfig`.
"""
