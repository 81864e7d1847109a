"""Generator B: a second portal scene generator, written apart from the training one, for evaluation only."""

from models.evalgen.portal import LABELS, VEHICLES, alt_portal_scan

__all__ = ["LABELS", "VEHICLES", "alt_portal_scan"]
