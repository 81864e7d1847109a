"""Errors of the `risk` package (bundles, rules, evaluation).

    RiskError
    ├── BundleError     a bundle that is refused; `code` says why (bundle.py: CODES)
    └── RuleError       a rule that does not parse or check: one sentence naming the rule id (rules.py)
"""

from __future__ import annotations

BUNDLE_CODES = ("bad_format", "bad_signature", "unknown_key", "replayed", "older", "expired", "not_yet_valid",
                "base_mismatch")
"""The stable reasons a bundle is refused (acknowledged to the hub, counted on the station)."""


class RiskError(Exception):
    """Root of the risk package's errors."""


class BundleError(RiskError):
    """A refused bundle; `code` is one of BUNDLE_CODES, the message one sentence with the values."""

    def __init__(self, code: str, message: str) -> None:
        if code not in BUNDLE_CODES:
            raise ValueError(f"unknown bundle refusal code {code!r}")
        super().__init__(message)
        self.code = code


class RuleError(RiskError):
    """A rule that does not parse or check; `rule_id` names it."""

    def __init__(self, rule_id: str, message: str) -> None:
        super().__init__(f"rule {rule_id!r}: {message}")
        self.rule_id = rule_id
