"""Every message the search report shows (screen script, printed report, refusals, diagram areas, vehicle types,
methods, outcomes) is in each of the station's catalogues, and the control room's search panel in each of its."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from central_sync.control_room.i18n import catalogue as room_catalogue
from central_sync.schema import SearchOutcome, SearchReport
from edge.auth import PERMISSIONS
from edge.search_report import DIAGRAMS, METHODS
from edge.web.i18n import LANGS, catalogue

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "edge" / f for f in ("search_report.py", "search_print.py", "web/routes_search.py",
                                       "web/static/search.js", "templates/search_report.html")]


def station_keys() -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)
    actions = set(re.findall(r'"(search\.[a-z_]+)", (?:record_id|sha)', text))
    keys = set(re.findall(r'"((?:search|search_outcome)\.[a-z_]+)"', text)) - actions - set(PERMISSIONS)
    keys |= {f"audit.action.{a}" for a in actions}
    keys |= {f"error.{code}" for code in re.findall(r'SearchReportRefused\(\d+, "([a-z_]+)"', text)}
    keys |= {f"error.{code}" for code in re.findall(r'HTTPException\(\d+, "([a-z_]+)"', text)}
    keys |= {f"area.{a.name}" for areas in DIAGRAMS.values() for a in areas}
    keys |= {f"vehicle.{v}" for v in get_args(SearchReport.model_fields["vehicle_type"].annotation)}
    keys |= {f"method.{m}" for m in METHODS} | {f"search_outcome.{o}" for o in get_args(SearchOutcome)}
    return keys


def test_the_scan_finds_what_the_report_uses() -> None:
    keys = station_keys()
    assert {"search.sign", "error.signature_refused", "error.pdf_unavailable", "area.container_doors",
            "vehicle.tractor_container", "method.dog", "search_outcome.pending",
            "audit.action.search.report_signed", "audit.action.search.photo_added"} <= keys


@pytest.mark.parametrize("lang", LANGS)
def test_every_station_catalogue_has_the_report_s_messages(lang: str) -> None:
    missing = sorted(k for k in station_keys() if not catalogue(lang).get(k))
    assert missing == [], f"{lang} lacks {missing}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_control_room_catalogue_has_the_search_panel_s_messages(lang: str) -> None:
    page = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "central_sync" / "control_room" / "static").iterdir())
    keys = set(re.findall(r'data-i18n(?:-ph)?="((?:search|search_outcome|nav)\.[a-z_]+)"', page))
    keys |= set(re.findall(r'"(search\.[a-z_]+)"', page)) | {f"search_outcome.{o}" for o in get_args(SearchOutcome)}
    assert "nav.search_reports" in keys and "search.findings" in keys
    missing = sorted(k for k in keys if not room_catalogue(lang).get(k))
    assert missing == [], f"{lang} lacks {missing}"
