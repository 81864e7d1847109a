"""Search report benchmark: printing a report and finding reports in the control room.

Run:  .venv/bin/python bench/bench_search_report.py [--reports 2000] [--renders 20]

Times (median and p95):
    pdf_ms[lang]     render one countersigned seizure report as PDF (reportlab, embedded CJK font subset), per language
    html_ms[lang]    render it as HTML
    search_ms[what]  the control room's search over `--reports` reports ingested into a fresh SQLite hub by the real
                     ingest: a plate prefix (identity index), a word of the report (LIKE over the reports' text, a scan),
                     an outcome filter; newest 100

Prints figures and writes bench/results/search_report.json. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from central_sync import protocol as p  # noqa: E402
from central_sync.control_room import queries  # noqa: E402
from central_sync.hub.ingest import Ingestor  # noqa: E402
from central_sync.hub.store import open_store  # noqa: E402
from central_sync.schema import SearchFinding  # noqa: E402
from edge.search_print import render_html, render_pdf  # noqa: E402
from edge.search_report import Countersignature, countersign, sign  # noqa: E402
from edge.web.i18n import LANGS  # noqa: E402
from search_report_kit import SUPERVISOR, form, open_station, vehicle_record  # noqa: E402
from timing import timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=2000)
    ap.add_argument("--renders", type=int, default=20)
    args = ap.parse_args()
    results: dict[str, object] = {"reports": args.reports, "machine": platform.machine(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        st = open_station(Path(tmp) / "station")
        rec = st.vehicle()
        sign(st.store, rec.id, form(seizure=True))
        countersign(st.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
        record = st.store.get(rec.id)
        assert record is not None
        report = record.search_reports[0]
        results["pdf_ms"] = {lang: timed(lambda: render_pdf(record, report, lang, st.store.photo_path), args.renders)
                             for lang in LANGS}
        results["pdf_bytes"] = {lang: len(render_pdf(record, report, lang, st.store.photo_path)) for lang in LANGS}
        results["html_ms"] = {lang: timed(lambda: render_html(record, report, lang, str), args.renders) for lang in LANGS}
        results["search_ms"] = search(Path(tmp) / "hub.db", record, args.reports)
        st.store.close()
    print(json.dumps(results, indent=2))
    (ROOT / "bench" / "results" / "search_report.json").write_text(json.dumps(results, indent=2) + "\n")


def search(db: Path, signed: object, n: int) -> dict[str, object]:
    """Ingest n vehicles with a report each (every 10th a seizure of other goods), then time three searches."""
    store = open_store(str(db))
    store.migrate()
    template = signed.search_reports[0]  # type: ignore[attr-defined]
    messages = []
    for i in range(n):
        base = vehicle_record("gantry-1", f"HK {i:05d}").model_copy(update={"id": f"rec-{i:06d}", "seq": i + 1})
        goods = [SearchFinding(goods=f"goods-{i}", hs_class="2402.20", quantity=1, weight_kg=1, area="spare_wheel")]
        report = template.model_copy(update={"findings": goods if i % 10 == 0 else [],
                                             "outcome": "seizure" if i % 10 == 0 else "nothing_found"})
        body = base.model_copy(update={"search_reports": [report]}).to_json().encode()
        messages.append((p.topic("gantry-1", "review"), p.encode_envelope("gantry-1", "review", i + 1, i + 1, base.id, body, 0.0)))
    ingest = Ingestor(store, "hub-b", lambda *a: None)
    t0 = time.perf_counter()
    for start in range(0, n, 200):
        ingest.handle(messages[start:start + 200])
    out: dict[str, object] = {"ingest_per_report_ms": round((time.perf_counter() - t0) * 1000 / n, 3)}
    for what, q, outcome in (("plate_prefix", "HK 0123", None), ("report_word", "goods-1230", None),
                             ("outcome_seizure", None, "seizure")):
        out[what] = timed(lambda: queries.search_reports(store, q, outcome, None, 100), 20)
    store.close()
    return out


if __name__ == "__main__":
    main()
