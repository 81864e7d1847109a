"""The printable search report: the PDF in each language carries the plates, the goods and the signers as text (parsed
back), with its CJK font embedded; the HTML prints with its own style sheet; no font means a clear refusal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pypdf import PdfReader

from central_sync.schema import InspectionRecord
from edge.search_print import CJK_FONTS, cjk_font, find_version, render_html, render_pdf
from edge.search_report import Countersignature, SearchReportRefused, add_photo, countersign, sign
from edge.web.i18n import LANGS, t

from search_report_kit import HK_PLATE, PLATE, SUPERVISOR, SearchStation, decompression_bomb, form, on_disk, open_station

NEEDS_FONT = pytest.mark.skipif(cjk_font() is None, reason=f"no CJK font at {CJK_FONTS[0]} (scripts/bootstrap installs it)")


@pytest.fixture
def seized(tmp_path: Path) -> Iterator[tuple[SearchStation, InspectionRecord]]:
    st = open_station(tmp_path / "data")
    rec = st.vehicle()
    sign(st.store, rec.id, form(seizure=True, notes="後備輪胎後方面板重新焊接"))
    countersign(st.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    record = st.store.get(rec.id)
    assert record is not None
    yield st, record
    st.store.close()


def pdf_text(data: bytes) -> tuple[str, set[str]]:
    """The PDF's text and the names of the fonts whose files it embeds."""
    reader = PdfReader(io.BytesIO(data))
    embedded = set()
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            font = ref.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is not None and "/FontFile2" in descriptor.get_object():
                embedded.add(str(font["/BaseFont"]))
    return "".join(p.extract_text() for p in reader.pages), embedded


@NEEDS_FONT
@pytest.mark.parametrize("lang", LANGS)
def test_the_pdf_names_the_vehicle_and_the_signers_in_each_language(seized: tuple[SearchStation, InspectionRecord],
                                                                    lang: str) -> None:
    st, record = seized
    data = render_pdf(record, find_version(record, 1), lang, st.store.photo_path)
    assert data.startswith(b"%PDF-")
    text, fonts = pdf_text(data)
    for expected in (HK_PLATE, PLATE, "CSQU3054383", "cigarettes", "2402.20", "Officer Chan", "Supervisor Lee",
                     t("search.title", lang), t("area.spare_wheel", lang), "後備輪胎後方面板重新焊接"):
        assert expected in text, (lang, expected)
    assert any(f.endswith("+DroidSansFallback") for f in fonts), fonts  # embedded (a subset), not left to the reader


def test_the_html_prints_with_its_style_sheet_and_escapes_what_was_typed(
        seized: tuple[SearchStation, InspectionRecord]) -> None:
    st, record = seized
    report = find_version(record, 1).model_copy(update={"notes": "<script>alert(1)</script>"})
    html = render_html(record, report, "zh-Hant", lambda sha: f"/api/search-photos/{sha}")
    assert '<link rel="stylesheet" href="/static/search_print.css">' in html and PLATE in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert t("search.countersigned_by", "zh-Hant") in html and "class=\"searched found\"" in html


def test_without_an_embeddable_font_the_pdf_is_refused_in_one_sentence(
        seized: tuple[SearchStation, InspectionRecord], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    st, record = seized
    monkeypatch.setenv("CPE_CJK_FONT", str(tmp_path / "missing.ttf"))
    with pytest.raises(SearchReportRefused) as info:
        render_pdf(record, find_version(record, 1), "en", st.store.photo_path)
    assert info.value.code == "pdf_unavailable" and "print the HTML report" in str(info.value)
    with pytest.raises(SearchReportRefused):
        find_version(record, 2)


@NEEDS_FONT
def test_a_damaged_photo_is_named_in_the_pdf_and_the_rest_still_prints(tmp_path: Path) -> None:
    """A photo whose first bytes are a PNG's but whose data is not an image (damaged on disk since its upload, or kept
    by a station older than the upload's decoding): reportlab failed on it inside doc.build and the signed report had
    no PDF at all (a 500)."""
    st = open_station(tmp_path / "data")
    ok, jpeg = cv2.imencode(".jpg", np.full((40, 60, 3), 128, np.uint8))
    good = add_photo(st.store, jpeg.tobytes(), "image/jpeg")
    damaged = on_disk(st.store, b"\x89PNG\r\n\x1a\n" + bytes(64))
    bomb = on_disk(st.store, decompression_bomb())  # PIL refuses it as a decompression bomb (not an OSError)
    rec = st.vehicle()
    sign(st.store, rec.id, form(photos=[good, damaged, bomb]))
    record = st.store.get(rec.id)
    assert record is not None
    for lang in LANGS:
        text, _ = pdf_text(render_pdf(record, find_version(record, 1), lang, st.store.photo_path))
        assert HK_PLATE in text and "Officer Chan" in text, lang
        named = "".join(text.split())  # the hash wraps over lines
        assert damaged in named and bomb in named and good not in named, lang  # the drawn one not named
    st.store.close()
