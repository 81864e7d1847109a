"""Message catalogues: every key the code and pages use exists in every language, with the same placeholders."""

import asyncio
import json
import re
import string
from pathlib import Path
from typing import get_args

import pytest

from central_sync.schema import HistoryCode, Identity, ItemKind, Review, RiskOut, SealStatus, Verdict
from edge.auth import PERMISSIONS, ROLES
from edge.history import SCANNER
from edge.identity import ISO6346_RESULTS, JURISDICTIONS
from edge.stations.gantry import EXIT_TAILGATE, LANE_UNKNOWN
from edge.stations.lane import WAYS
from edge.verdict import Reason
from edge.web import i18n
from edge.web.cases import OUTSIDE_BUDGET
from edge.web.render import VIEW_MODES
from risk.engine import DECLARED_EMPTY_NOT_EMPTY

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "edge" / "web"
JS = "\n".join((WEB / "static" / f).read_text(encoding="utf-8") for f in ("app.js", "imagetools.js", "officer.js"))
HTML = (WEB / "static" / "index.html").read_text(encoding="utf-8")
PY = "\n".join(p.read_text(encoding="utf-8") for p in [*WEB.glob("*.py"), *(ROOT / "edge" / f for f in (
    "tip.py", "auth.py", "audit.py"))])
GANTRY = (ROOT / "edge" / "stations" / "gantry.py").read_text(encoding="utf-8")


def _js_list(name: str) -> list[str]:
    body = re.search(rf"const {name} = \[(.*?)\];", JS, re.S).group(1)
    return re.findall(r'"([^"]+)"', body)


def used_keys() -> set[str]:
    keys = set(re.findall(r'data-i18n(?:-ph)?="([^"]+)"', HTML))
    dotted = set(re.findall(r'"([a-z_]+(?:\.[A-Za-z_-]+)+)"', JS))  # dotted literals are keys or permissions
    keys |= dotted - set(PERMISSIONS)
    keys |= {f"verdict.{v.value}" for v in Verdict} | {f"reason.{r.value}" for r in Reason}
    keys |= {f"class.{c}" for name in ("CLASSES", "PORTAL_CLASSES") for c in _js_list(name)}
    keys |= {f"view.{m}" for m in VIEW_MODES}
    keys |= {f"view.{m}" for m in _js_list("MODES")} | {f"role.{r}" for r in ROLES}
    keys |= {f"lang.{lang}" for lang in i18n.LANGS} | {f"kind.{k.value}" for k in ItemKind}
    keys |= {f"review.{o}" for o in get_args(Review.model_fields["outcome"].annotation)}
    keys |= {f"identity.{k}" for k in get_args(Identity.model_fields["kind"].annotation)}
    keys |= {f"seal.{s}" for s in get_args(SealStatus.model_fields["state"].annotation)}
    keys |= {f"ident_status.{s}" for s in get_args(get_args(Identity.model_fields["status"].annotation)[0])}
    keys |= {f"check.iso6346.{r}" for r in ISO6346_RESULTS} | {f"check.jurisdiction.{j}" for j in JURISDICTIONS}
    keys |= {f"state.{s}" for s in ("ok", "degraded", "lost")}
    keys |= {f"risk.lane.{lane}" for lane in get_args(RiskOut.model_fields["lane"].annotation)}
    keys |= {f"risk.reason.{k}" for k in ("no_bundle", "stale", DECLARED_EMPTY_NOT_EMPTY)}  # the engine's own reasons
    keys |= {f"station_kind.{k}" for k in ("gantry", "conveyor", "xray")}
    keys |= {f"history.why.{c}" for c in get_args(HistoryCode)} | {f"history.scanner.{k}" for k in SCANNER}
    keys |= {f"stage.{s}" for s in OUTSIDE_BUDGET | {"detect", "decide"}}  # the daemon's timed stages
    actions = re.findall(r'audit\.append\([^,]+,\s*[^,]+,\s*"([^"]+)"', PY)
    actions += re.findall(r'\.audit\([^,]+,\s*"([^"]+)"', PY)
    keys |= {f"audit.action.{a}" for a in actions}
    errors = re.findall(r'(?:CaseError|HTTPException)\(\d+,\s*"([^"]+)"\)', PY)
    keys |= {f"error.{e}" for e in errors} | {"error.signin_refused", "error.signin_locked"}
    # the lane's refusals and failures, which the screen shows as errors (409 / 502 with the decision's code)
    lane = re.findall(r'LaneDecision\("(?:refused|failed)",\s*"([^"]+)"', GANTRY)
    keys |= {f"error.{c}" for c in [*lane, LANE_UNKNOWN, EXIT_TAILGATE, *(f"{way}_unconfirmed" for way in WAYS)]}
    return keys


def test_the_scan_finds_what_the_code_uses():
    keys = used_keys()
    assert {"audit.action.case.image_view", "audit.action.case.decision", "error.already_decided",
            "signin.badge_hint", "tip.hit", "class.firearm", "reason.budget_missed", "error.vehicle_leaving",
            "error.exit_tailgate", "error.lane_file_not_replaced", "error.search_bay_unconfirmed"} <= keys


def test_english_has_every_key_the_code_uses():
    missing = used_keys() - set(i18n.catalogue("en"))
    assert not missing, f"keys missing from en.json: {sorted(missing)}"


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGS if lang != "en"])
def test_every_catalogue_is_complete_with_the_same_placeholders(lang):
    en, other = i18n.catalogue("en"), json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    missing, extra = sorted(set(en) - set(other)), sorted(set(other) - set(en))
    assert not missing and not extra, f"{lang}: missing {missing}, extra {extra}"
    fields = lambda s: sorted(f for _, f, _, _ in string.Formatter().parse(s) if f)  # noqa: E731
    wrong = [k for k in en if fields(en[k]) != fields(other[k])]
    assert not wrong, f"{lang}: placeholders differ in {wrong}"


def test_t_fills_values_and_falls_back_to_english():
    assert i18n.t("audit.broken", "en", seq=7) == "Chain broken at entry 7"
    assert i18n.t("verdict.suspect", "zh-Hant") == "可疑"
    assert i18n.t("verdict.suspect", "xx") == "SUSPECT"
    assert i18n.t("verdict.suspect", "zh-HK") == "可疑"
    assert i18n.t("no.such.key", "en") == "no.such.key"  # shown as is, and logged once


@pytest.fixture
def zh_station(tmp_path):
    """A station screen whose default language is Traditional Chinese."""
    from test_web_api import Station

    from edge.web.config import TipConfig, WebConfig

    st = Station(tmp_path, WebConfig(default_lang="zh-Hant", tip=TipConfig(enabled=False)))
    yield st
    for client in st.clients:
        client.__exit__(None, None, None)
    asyncio.run(st.writer.__aexit__(None, None, None))


@pytest.mark.parametrize("asked,lang", [("default", "zh-Hant"), ("xx", "zh-Hant"), ("zh-HK", "zh-Hant"),
                                        ("zh-CN", "zh-Hans"), ("en-GB", "en"), ("zh-Hans", "zh-Hans")])
def test_the_page_catalogue_is_the_language_it_names(zh_station, asked, lang):
    got = zh_station.client().get(f"/api/i18n/{asked}").json()
    assert got["lang"] == lang and got["default"] == "zh-Hant"
    assert got["messages"]["verdict.suspect"] == i18n.catalogue(lang)["verdict.suspect"]
    assert set(got["messages"]) == set(i18n.catalogue("en"))
