"""The officer's station screen: live scans, decisions, threat image projection, roles and audit."""

from edge.web.app import create_app
from edge.web.config import TipConfig, WebConfig

__all__ = ["create_app", "WebConfig", "TipConfig"]
