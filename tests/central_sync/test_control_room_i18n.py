"""Every message key the control room uses exists in every catalogue, placeholders included."""

from __future__ import annotations

import re
import string
import typing
from pathlib import Path

import pytest

from central_sync import commands, pki
from central_sync import protocol as p
from central_sync.hub import stations
from central_sync.control_room import auth, kpi, queries
from central_sync.control_room.i18n import LANGS, catalogue
from central_sync.schema import ItemKind, Review, Verdict
from edge.stations.conveyor import LATCH_REASONS
from edge.verdict import Reason

PKG = Path(__file__).resolve().parents[2] / "central_sync" / "control_room"
REASONS = tuple(r.value for r in Reason)  # every reason a record can carry (store_full and restarted were missing)


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
        ("lang", LANGS), ("seal", ("intact", "opened", "tampered")),
        ("pki.kind", typing.get_args(pki.Kind)), ("condition", stations.CONDITIONS),
        ("lanestate", typing.get_args(p.LaneState.model_fields["state"].annotation)),
        ("latch", (*LATCH_REASONS, "waiting_for_officer")), ("device", ("plc", "scanner", "camera", "reader", "seals")),
        ("devstate", ("ok", "degraded", "lost"))) for c in codes}
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


@pytest.fixture
async def http(tmp_path):
    """The control room of a hub whose default language is Traditional Chinese."""
    import httpx

    from central_sync.control_room import ControlRoom, ControlRoomConfig
    from central_sync.hub.api import create_app
    from central_sync.hub.store import open_store

    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(default_lang="zh-Hant")) as room:
        app = room.install(create_app(store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as client:
            yield client


@pytest.mark.parametrize("asked,lang", [("zh-HK", "zh-Hant"), ("zh-CN", "zh-Hans"), ("en-GB", "en"),
                                        ("fr", "zh-Hant"), ("zh-Hans", "zh-Hans"), ("fr-CA,zh-MO;q=0.8,en;q=0.5", "zh-Hant")])
async def test_the_page_catalogue_follows_the_one_rule_and_names_its_language(http, asked, lang):
    r = await http.get(f"/cr/api/i18n/{asked}")
    got = r.json()
    assert got["verdict.suspect"] == catalogue(lang)["verdict.suspect"] and set(got) == set(catalogue("en"))
    assert r.headers["content-language"] == lang


async def test_an_error_carries_the_code_the_page_translates_in_the_language_it_shows(http):
    r = await http.get("/cr/api/stations", headers={"x-lang": "zh-TW"})
    assert (r.status_code, r.json()["code"]) == (401, "signin_required") and catalogue("zh-Hant")["error.signin_required"]
