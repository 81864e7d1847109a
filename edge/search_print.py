"""The printable vehicle search report: HTML (print CSS) and PDF, in the screen's three languages.

The PDF is drawn with reportlab (BSD) and embeds a subset of a CJK TrueType font so that Chinese prints
without fonts on the reader's side: Droid Sans Fallback (Apache-2.0; Debian `fonts-droid-fallback`,
installed by scripts/bootstrap), or the TrueType file named by CPE_CJK_FONT. Fonts with CFF outlines
(Noto Sans CJK .otf/.ttc) cannot be embedded by reportlab and are not looked for; WenQuanYi (GPL) is not
used. Without such a font the PDF is refused in one sentence and the HTML report prints from the browser.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from xml.sax.saxutils import escape

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Table, TableStyle

from central_sync.schema import InspectionRecord, SearchReport, SearchSignature
from edge.search_report import DIAGRAMS, SearchReportRefused
from edge.web.i18n import t

TEMPLATES = Path(__file__).parent / "templates"
CJK_FONTS = (Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
             Path("/usr/share/fonts/truetype/droid/DroidSansFallback.ttf"))
LATIN_FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)  # Bitstream Vera licence (permissive)
FONT_NAME, LATIN_NAME = "CpeCJK", "CpeLatin"
log = structlog.get_logger()


def find_version(record: InspectionRecord, version: int) -> SearchReport:
    for report in record.search_reports:
        if report.version == version:
            return report
    raise SearchReportRefused(404, "search_report_not_found", f"record {record.id} has no report version {version}")


def plates(record: InspectionRecord) -> str:
    """The vehicle's plates and container numbers as read, in the order read."""
    values = [i.value for i in record.identities if i.kind in ("plate", "container") and i.value]
    return " / ".join(dict.fromkeys(values)) or record.id


def _signatures(report: SearchReport) -> list[tuple[str, SearchSignature]]:
    signed = [("search.signed_by", report.officer)]
    return signed + ([("search.countersigned_by", report.countersigned)] if report.countersigned else [])


def _outcome(report: SearchReport) -> str:
    return report.outcome if report.final else "pending"


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def render_html(record: InspectionRecord, report: SearchReport, lang: str,
                photo_url: Callable[[str], str]) -> str:
    """The report as an HTML page for the browser's print dialogue (styles in /static/search_print.css)."""
    return _environment().get_template("search_report.html").render(
        lang=lang, record=record, r=report, plates=plates(record), outcome=_outcome(report),
        methods=", ".join(t(f"method.{m}", lang) for m in report.methods),
        searched=", ".join(t(f"area.{a}", lang) for a in report.areas),
        areas=DIAGRAMS[report.vehicle_type], found_at={f.area for f in report.findings},
        signatures=_signatures(report), photo_url=photo_url, printed_at=_now(),
        t=lambda key, **values: t(key, lang, **values))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def cjk_font() -> Path | None:
    """The embeddable CJK TrueType font this station has, or None."""
    named = os.environ.get("CPE_CJK_FONT")
    candidates = (Path(named),) if named else CJK_FONTS
    return next((p for p in candidates if p.is_file()), None)


@dataclass(frozen=True)
class Fonts:
    """The CJK font and the one for everything it has no glyph for (Latin digits and letters: Droid Sans
    Fallback has none), embedded DejaVu Sans when present, else the PDF's built-in Helvetica."""

    cjk: str
    latin: str
    cjk_chars: frozenset[int]

    def markup(self, text: str) -> str:
        """`text` escaped for a Paragraph, each run in the font that has its glyphs."""
        runs: list[tuple[str, str]] = []
        for ch in text:
            face = self.cjk if ord(ch) in self.cjk_chars and not ch.isascii() else self.latin
            if runs and runs[-1][0] == face:
                runs[-1] = (face, runs[-1][1] + ch)
            else:
                runs.append((face, ch))
        return "".join(f'<font face="{face}">{escape(run)}</font>' for face, run in runs).replace("\n", "<br/>")


@cache
def _register_fonts(path: Path) -> Fonts:
    cjk = TTFont(FONT_NAME, str(path))
    pdfmetrics.registerFont(cjk)
    latin = next((p for p in LATIN_FONTS if p.is_file()), None)
    if latin is not None:
        pdfmetrics.registerFont(TTFont(LATIN_NAME, str(latin)))
    return Fonts(FONT_NAME, LATIN_NAME if latin else "Helvetica", frozenset(cjk.face.charToGlyph))


def render_pdf(record: InspectionRecord, report: SearchReport, lang: str,
               photo_path: Callable[[str], Path]) -> bytes:
    """The report as an A4 PDF with the CJK font embedded (subset); SearchReportRefused without such a font."""
    font = cjk_font()
    if font is None:
        raise SearchReportRefused(503, "pdf_unavailable", "no embeddable CJK TrueType font on this station "
                                  f"(looked for {', '.join(str(p) for p in CJK_FONTS)} and CPE_CJK_FONT): print the HTML report")
    return _Pdf(_register_fonts(font), lang).build(record, report, photo_path)


class _Pdf:
    """One report laid out with reportlab's platypus: facts, diagram, findings, photos, notes, signatures."""

    def __init__(self, fonts: Fonts, lang: str) -> None:
        self.lang, self.fonts = lang, fonts
        wrap = "CJK" if lang.startswith("zh") else None
        self.body = ParagraphStyle("body", fontName=fonts.latin, fontSize=10, leading=14, wordWrap=wrap)
        self.h1 = ParagraphStyle("h1", parent=self.body, fontSize=16, leading=22, spaceAfter=4)
        self.h2 = ParagraphStyle("h2", parent=self.body, fontSize=12, leading=17, spaceBefore=8, spaceAfter=3)

    def t(self, key: str, **values: Any) -> str:
        return t(key, self.lang, **values)

    def p(self, text: str, style: Any = None) -> Any:
        return Paragraph(self.fonts.markup(text), style or self.body)

    def build(self, record: InspectionRecord, r: SearchReport, photo_path: Callable[[str], Path]) -> bytes:
        out = io.BytesIO()
        doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=12 * mm,
                                bottomMargin=12 * mm, title=f"{self.t('search.title')} {plates(record)} v{r.version}",
                                author=r.officer.badge, lang=self.lang)
        status = self.t("search.final") if r.final else self.t("search.awaiting_countersign")
        story = [self.p(self.t("search.title"), self.h1),
                 self.p(f"{self.t('search_outcome.' + _outcome(r))} · {status}"),
                 self._table(self._facts(record, r), (55 * mm, 125 * mm)),
                 self.p(self.t("search.areas"), self.h2), self._diagram(r),
                 self.p(", ".join(self.t(f"area.{a}") for a in r.areas)),
                 self.p(self.t("search.findings"), self.h2), *self._findings(r),
                 *self._photos(r, photo_path),
                 *([self.p(self.t("search.notes"), self.h2), self.p(r.notes)] if r.notes else []),
                 self.p(self.t("search.signature_line"), self.h2),
                 self._table(self._signed(r), (55 * mm, 125 * mm)),
                 self.p(f"{self.t('search.printed_at')} {_now()}")]
        doc.build(story)
        return out.getvalue()

    def _facts(self, record: InspectionRecord, r: SearchReport) -> list[list[str]]:
        return [[self.t("search.identities"), plates(record)],
                [self.t("search.station"), f"{record.station} / {record.lane}"],
                [self.t("search.record"), f"{record.id} · {record.decided_at.isoformat()}"],
                [self.t("search.version", n=r.version), self.t("search.supersedes", n=r.supersedes) if r.supersedes else ""],
                [self.t("search.vehicle_type"), self.t(f"vehicle.{r.vehicle_type}")],
                [self.t("search.methods"), ", ".join(self.t(f"method.{m}") for m in r.methods)],
                [self.t("search.minutes"), str(r.minutes)]]

    def _signed(self, r: SearchReport) -> list[list[str]]:
        rows = [[self.t(label), f"{s.name} ({s.badge}, {self.t('role.' + s.role)}) · {s.signed_at.isoformat()}\n"
                 f"{self.t('search.digest')} {s.digest}"] for label, s in _signatures(r)]
        if r.outcome == "seizure" and r.countersigned is None:
            rows.append([self.t("search.countersigned_by"), self.t("search.awaiting_countersign")])
        return rows

    def _findings(self, r: SearchReport) -> list[Any]:
        if not r.findings:
            return [self.p(self.t("search.no_findings"))]
        head = [self.t(k) for k in ("search.goods", "search.hs_class", "search.quantity", "search.weight_kg",
                                    "search.where_found")]
        rows = [[f.goods, f.hs_class, f"{f.quantity:g} {f.unit}", f"{f.weight_kg:g}", self.t(f"area.{f.area}")]
                for f in r.findings]
        return [self._table([head, *rows], (50 * mm, 28 * mm, 32 * mm, 25 * mm, 45 * mm), header=True)]

    def _table(self, rows: list[list[str]], widths: tuple[float, ...], header: bool = False) -> Any:
        cells = [[self.p(c) for c in row] for row in rows]
        style: list[Any] = [("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        style.append(("BACKGROUND", (0, 0), (-1, 0) if header else (0, -1), colors.HexColor("#eeeeee")))
        return Table(cells, colWidths=widths, style=TableStyle(style), hAlign="LEFT")

    def _diagram(self, r: SearchReport) -> Any:
        """The vehicle's diagram: searched areas blue, areas with findings red (as on the screen)."""
        scale = 1.8 * mm
        found = {f.area for f in r.findings}
        drawing = Drawing(100 * scale, 40 * scale)
        for area in DIAGRAMS[r.vehicle_type]:
            x, y, w, h = area.rect
            fill = colors.HexColor("#f1aeb5") if area.name in found else \
                colors.HexColor("#9ec5fe") if area.name in r.areas else colors.white
            rect = Rect(x * scale, (40 - y - h) * scale, w * scale, h * scale)
            rect.fillColor, rect.strokeColor, rect.strokeWidth = fill, colors.black, 0.5
            drawing.add(rect)
            label = self.t(f"area.{area.name}")
            drawing.add(String((x + 0.8) * scale, (40 - y - min(h - 0.8, 3)) * scale, label, fontSize=6,
                               fontName=self.fonts.latin if label.isascii() else self.fonts.cjk))
        return drawing

    def _photos(self, r: SearchReport, photo_path: Callable[[str], Path]) -> list[Any]:
        """The photos the version names, three a row; one that is not on this station or does not decode is
        named in a line instead (it stopped the whole PDF with a 500 before: reportlab reads it in doc.build)."""
        images: list[Any] = []
        left_out: list[str] = []
        for sha in r.photos:
            path = photo_path(sha)
            if path.is_file() and _drawable(path):
                images.append(Image(str(path), width=55 * mm, height=40 * mm, kind="proportional"))
            else:
                left_out.append(sha)
        if not r.photos:
            return []
        rows = [images[i:i + 3] + [""] * (3 - len(images[i:i + 3])) for i in range(0, len(images), 3)]
        return [self.p(self.t("search.photos"), self.h2),
                *([Table(rows, colWidths=(60 * mm,) * 3, hAlign="LEFT")] if rows else []),
                *(self.p(self.t("search.photo_left_out", photo=sha)) for sha in left_out)]


def _drawable(path: Path) -> bool:
    """Whether reportlab can draw the photo: a file cut short or damaged on disk (its first bytes still those of a
    JPEG or PNG) is logged and left out, so that the rest of the signed report still prints."""
    try:
        ImageReader(str(path)).getRGBData()
    except Exception as exc:  # any failure to draw it: PIL's UnidentifiedImageError (an OSError), its
        # DecompressionBombError (a 311-byte PNG announcing 20000 x 20000 pixels), a ValueError
        log.warning("search_print.photo_unreadable", path=str(path), error=type(exc).__name__)
        return False
    return True
