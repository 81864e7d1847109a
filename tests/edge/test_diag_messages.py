"""Message catalogues: every key the code uses exists in English; translations keep the placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edge.diag.messages import HERE, Catalogue, languages, placeholders
from edge.diag.specs import SPECS

ROOT = Path(__file__).resolve().parents[2] / "edge" / "diag"
EN = json.loads((HERE / "en.json").read_text(encoding="utf-8"))


def _keys_in_code() -> set[str]:
    pattern = re.compile(r'"((?:prompt|skip|phase|measure)\.[a-z_]+)"')
    keys = set()
    for path in ROOT.rglob("*.py"):
        keys |= set(pattern.findall(path.read_text(encoding="utf-8")))
    for path in (ROOT / "templates").glob("*.html"):
        keys |= set(re.findall(r't\("([a-z_.]+)"', path.read_text(encoding="utf-8")))
    from edge.diag.plan import PHASE_NAMES

    titles = {f"title.{n}" for n in (*PHASE_NAMES, "drill-inject", "drill-recover")}
    return keys | titles | {s.message for s in SPECS.values()}


def test_every_key_used_by_code_is_in_the_english_catalogue():
    missing = sorted(k for k in _keys_in_code() if k not in EN)
    assert not missing


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_translations_are_complete_and_keep_the_placeholders(lang):
    other = json.loads((HERE / f"{lang}.json").read_text(encoding="utf-8"))
    assert set(other) == set(EN)
    for key, text in other.items():
        assert placeholders(text) == placeholders(EN[key]), key


def test_missing_placeholders_stay_visible_and_unknown_keys_fall_back():
    cat = Catalogue("en")
    assert cat.text("eye.slow", target="3") .startswith("Photo-eye 3 responds in {value} ms")
    assert Catalogue("xx").text("skip.no_sync") == EN["skip.no_sync"]
    assert cat.text("no.such.key") == "no.such.key"


def test_the_catalogue_goes_through_the_one_rule():
    hant = json.loads((HERE / "zh-Hant.json").read_text(encoding="utf-8"))
    for asked in ("zh-HK", "zh-TW", "zh-Hant"):
        cat = Catalogue(asked)
        assert cat.lang == "zh-Hant" and cat.text("skip.no_sync") == hant["skip.no_sync"]
    assert Catalogue("zh-CN").lang == "zh-Hans" and Catalogue("fr").lang == "en"


def test_a_missing_key_is_logged_once():
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        for _ in range(3):
            assert Catalogue("zh-Hant").text("no.such.diag_key") == "no.such.diag_key"
    assert [(e["event"], e["key"]) for e in logs] == [("i18n.missing_key", "no.such.diag_key")]
