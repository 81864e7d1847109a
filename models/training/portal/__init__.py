"""Generator A of issue 16: simulated drive-through portal scans of vehicles and containers (training).

    from models.training.portal import PortalSpec, portal_scan
    scan = portal_scan(7, PortalSpec(suspect_share=0.1))
"""

from models.training.portal.generator import CLASSES, PortalSpec, portal_scan

__all__ = ["CLASSES", "PortalSpec", "portal_scan"]
