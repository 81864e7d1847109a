"""Every message key the control room uses exists in every catalogue, placeholders included."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from central_sync import commands
from central_sync.control_room import auth, kpi, queries
from central_sync.control_room.i18n import LANGS, catalogue
from central_sync.schema import ItemKind, Review, Verdict

PKG = Path(__file__).resolve().parents[2] / "central_sync" / "control_room"
REASONS = ("clear", "detection", "budget_missed", "scan_incomplete", "device_fault", "model_unavailable", "overload")


def used_keys() -> set[str]:
    """Literal keys in the page, the script and the Python code, plus the code families shown."""
    text = "".join(p.read_text(encoding="utf-8") for p in (PKG / "static").iterdir()) + \
        "".join(p.read_text(encoding="utf-8") for p in PKG.glob("*.py"))
    keys = set(re.findall(r'data-i18n(?:-ph)?="([^"]+)"', text))
    keys |= set(re.findall(r'\bt\(\s*"([a-z_.]+[a-z_])"', text))
    keys |= {f"{prefix}.{c}" for prefix, codes in (
        ("verdict", [v.value for v in Verdict]), ("reason", REASONS), ("kind", [k.value for k in ItemKind]),
        ("role", auth.ROLES), ("state", (*queries.STATES, "online", "offline", "degraded")),
        ("ident", queries.IDENTITY_KINDS), ("op", commands.OPS), ("cmdreason", commands.REASONS),
        ("outcome", (*Review.model_fields["outcome"].annotation.__args__, "applied", "rejected", "failed", "no_report")),
        ("lang", LANGS)) for c in codes}
    keys |= {f"action.{k}" for k in ("ack", "assign", "escalate", "comment")}
    keys |= {f"kpi.col.{c}" for c in ("station", "items", "suspect_rate", "manual_rate", "budget_missed", "device_fault",
                                      "verdict_ms_p50", "verdict_ms_p95", "decision_s_p50", "reviewed", "agreement",
                                      "officer", "agree", "disagree", *kpi.TIP_OFFICER_COLS)}
    return keys


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_has_every_key(lang):
    missing = sorted(k for k in used_keys() if not catalogue(lang).get(k))
    assert missing == [], f"{lang} catalogue lacks {missing}"


@pytest.mark.parametrize("lang", LANGS[1:])
def test_placeholders_match_english(lang):
    fields = lambda s: {f for _, f, _, _ in string.Formatter().parse(s) if f}
    wrong = [k for k, v in catalogue("en").items() if fields(v) != fields(catalogue(lang).get(k, v))]
    assert wrong == []
