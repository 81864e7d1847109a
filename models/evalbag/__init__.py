"""Evaluation bag generator: baggage scans written apart from the training simulator, for scoring only.

    from models.evalbag import bag_scan
    scan = bag_scan(7)                      # drawn scanner, bag, goods and threats
    scan = bag_scan(7, contents=["phone"])  # force the threats ([] for a clean bag)

Nothing here imports models.training (a test checks); see docs/evaluation-generators.md.
"""

from models.evalbag.bag import LABELS, bag_scan

__all__ = ["LABELS", "bag_scan"]
