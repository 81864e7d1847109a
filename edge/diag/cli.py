"""`edge diag`: run the diagnostic plan against a station (its hardware, or its twin) and write records.

    edge diag --config STATION.toml [--technician BADGE] [--out DIR] [--phases a,b]
              [--drill NAME] [--prompt-timeout S] [--lang en|zh-Hant|zh-Hans] [--reference-tag HEX]
    edge diag --verify DIR

Exit status: 0 PASS or MARGINAL, 1 FAIL or ERROR, 2 ABORTED, 64 usage, 65 broken record chain,
78 bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from edge.config import CONFIG_ERROR_EXIT, load_config
from edge.diag.core import Outcome
from edge.diag.drills import DRILLS
from edge.diag.messages import languages
from edge.diag.plan import PHASE_NAMES
from edge.diag.records import verify_chain
from edge.diag.report import write_run
from edge.diag.runner import DiagOptions, DrillRefused, run_diag
from edge.errors import ConfigError

EXIT = {Outcome.PASS: 0, Outcome.MARGINAL: 0, Outcome.SKIPPED: 0, Outcome.FAIL: 1, Outcome.ERROR: 1,
        Outcome.ABORTED: 2}
USAGE_EXIT, CHAIN_EXIT = 64, 65


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edge diag", description="Hardware-in-the-loop diagnostics of a station.")
    ap.add_argument("--config", type=Path, help="station config (devices of kind 'sim' = run against the twin)")
    ap.add_argument("--technician", default="", help="badge of the technician running the plan")
    ap.add_argument("--out", type=Path, help="records and reports folder (default: <data_dir>/diag)")
    ap.add_argument("--phases", default="", help=f"comma-separated subset of: {','.join(PHASE_NAMES)}")
    ap.add_argument("--drill", choices=sorted(DRILLS), help="fault drill against the twin")
    ap.add_argument("--prompt-timeout", type=float, default=120.0, help="seconds before a prompt aborts its phase")
    ap.add_argument("--lang", default="en", choices=languages(), help="language of guidance and report")
    ap.add_argument("--reference-tag", help="hex id (10 digits) of the station's reference badge")
    ap.add_argument("--verify", type=Path, metavar="DIR", help="only verify the record chain in DIR")
    return ap


def main_diag(argv: list[str] | None = None) -> int:
    """Entry of `edge diag`; returns the exit status."""
    args = parser().parse_args(argv)
    if args.verify is not None:
        return _verify(args.verify)
    if args.config is None:
        print("edge diag: --config is required (or --verify DIR)", file=sys.stderr)
        return USAGE_EXIT
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip()) or None
    unknown = sorted(set(phases or ()) - set(PHASE_NAMES))
    if unknown:
        print(f"edge diag: unknown phases {unknown}; known: {', '.join(PHASE_NAMES)}", file=sys.stderr)
        return USAGE_EXIT
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return CONFIG_ERROR_EXIT
    out = args.out or Path(cfg.station.data_dir) / "diag"
    opts = DiagOptions(out_dir=out, technician=args.technician, phases=phases, prompt_timeout_s=args.prompt_timeout,
                       lang=args.lang, drill=args.drill, reference_tag=args.reference_tag, config_path=args.config)
    try:
        result = asyncio.run(run_diag(cfg, opts))
    except DrillRefused as exc:
        print(f"edge diag: {exc}", file=sys.stderr)
        return USAGE_EXIT
    written = write_run(result, out, args.lang)
    _summary(written.record, written)
    return EXIT[result.outcome]


def _summary(record: dict, written: object) -> None:
    print(f"\n{record['station']}: {record['outcome']}  (record #{record['seq']}, hash {record['hash'][:16]})")
    for p in record["phases"]:
        print(f"  {p['outcome']:<9} {p['name']:<14} {p['duration_s']:6.1f} s  {p['reason']}")
        for d in p["diagnoses"]:
            if d != p["reason"]:
                print(f"            - {d}")
    print(f"report: {written.latest_report}  (this run: {written.report})")  # type: ignore[attr-defined]
    print(f"record: {written.record_path}  junit: {written.junit}")  # type: ignore[attr-defined]


def _verify(folder: Path) -> int:
    rep = verify_chain(folder)
    if rep.ok:
        print(f"{folder}: {rep.records} records, chain intact")
        return 0
    print(f"{folder}: chain broken at {rep.broken_at}: {rep.reason}", file=sys.stderr)
    return CHAIN_EXIT


def main() -> None:
    """`python -m edge.diag`: quiet console logging (the technician reads prompts and the summary)."""
    from edge.logging import configure_logging

    configure_logging("console", quiet=True)
    sys.exit(main_diag())


if __name__ == "__main__":
    main()
