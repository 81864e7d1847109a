"""Errors of the `risk` package (bundles, rules, evaluation).

    RiskError
    ├── BundleError     a bundle that is refused; `code` says why (bundle.py: CODES)
    └── RuleError       a rule that does not parse or check: one sentence naming the rule id, `code` says which
                        mistake (RULE_CODES) and `vals` holds its values (rules.py)
"""

from __future__ import annotations

BUNDLE_CODES = ("bad_format", "bad_signature", "unknown_key", "replayed", "older", "expired", "not_yet_valid",
                "base_mismatch")
"""The stable reasons a bundle is refused (acknowledged to the hub, counted on the station)."""
RULE_CODES = ("no_id", "unknown_fields", "field_not_text", "field_not_object", "field_not_bool", "score_not_int",
              "bad_lane", "no_when", "duplicate_id", "too_deep", "not_a_condition", "condition_keys", "empty_group",
              "bad_list_kind", "unknown_condition", "fact_fields", "unknown_fact", "unknown_op", "no_value",
              "present_value", "between_value", "in_not_texts", "in_not_numbers", "in_not_bools", "value_not_text",
              "value_not_number", "value_not_bool", "not_numeric_fact", "not_text_fact")
"""The stable kinds of rule mistakes: the control room shows `error.rule.<code>` with the error's `vals`."""


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
    """A rule that does not parse or check; `rule_id` names it, `code` (one of RULE_CODES) says which mistake and
    `vals` holds the values of the sentence as text, the rule's id as `rule` among them."""

    def __init__(self, rule_id: str, code: str, message: str, **vals: object) -> None:
        if code not in RULE_CODES:
            raise ValueError(f"unknown rule error code {code!r}")
        super().__init__(f"rule {rule_id!r}: {message}")
        self.rule_id, self.code = rule_id, code
        self.vals = {"rule": rule_id, **{k: str(v) for k, v in vals.items()}}
