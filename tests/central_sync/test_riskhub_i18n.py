"""Every code the risk pages translate (risk.js builds these keys from codes) is in every catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from central_sync.control_room.i18n import LANGS, catalogue
from central_sync.riskhub import authoring
from risk.rules import FACTS, LIST_KINDS, OPS

SCRIPT = Path(__file__).resolve().parents[2] / "central_sync" / "control_room" / "static" / "risk.js"


def risk_keys() -> set[str]:
    keys = set(re.findall(r'\bt\(\s*"([a-z_.]+[a-z_])"', SCRIPT.read_text(encoding="utf-8")))
    families = (("lane", authoring.LANES), ("cmp", OPS), ("fact", FACTS), ("draftop", authoring.OPS),
                ("decision", ("approved", "rejected")), ("bundlekind", ("snapshot", "delta")),
                ("stale", ("no_bundle", "expired", "behind")), ("selector", ("rule", "watchlist", "random")),
                ("ident", LIST_KINDS), ("approvals", ("approved", "rejected")))
    return keys | {f"{prefix}.{code}" for prefix, codes in families for code in codes}


@pytest.mark.parametrize("lang", LANGS)
def test_every_risk_key_is_translated(lang: str) -> None:
    missing = sorted(k for k in risk_keys() if not catalogue(lang).get(k))
    assert missing == [], f"{lang} lacks {missing}"


def test_the_chinese_catalogues_translate_the_risk_pages() -> None:
    for lang in ("zh-Hans", "zh-Hant"):
        same = [k for k in risk_keys() if catalogue(lang)[k] == catalogue("en")[k] and re.search("[a-z]{3}", re.sub(r"{\w+}", "", catalogue("en")[k]))]
        assert same == [], f"{lang} left in English: {same}"
