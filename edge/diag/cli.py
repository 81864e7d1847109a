"""`edge diag`: run the diagnostic plan against a station (its hardware, or its twin) and write records.

    edge diag --config STATION.toml [--technician BADGE [--pin-stdin]] [--out DIR] [--phases a,b]
              [--drill NAME] [--prompt-timeout S] [--lang en|zh-Hant|zh-Hans] [--reference-tag HEX]
    edge diag --verify DIR [--config STATION.toml | --public-key HEX]

The technician signs in with badge (--technician) and PIN (hidden prompt, or one line of stdin with
--pin-stdin), checked against the station's users like the station screen; role technician or
supervisor. A run on hardware needs it; a run against the twin without it records no technician.
Records are signed with the station's key (`<data_dir>/diag-signing.key`, created on first use);
`--verify` pins the station's public key from its key file (--config) or as given (--public-key).

Ctrl-C ends the run: the station's safe state is requested, the phase it stopped is ABORTED and the run is
recorded like any other (a safe-state step not confirmed is printed and recorded).

Exit status: 0 PASS or MARGINAL, 1 FAIL or ERROR, 2 ABORTED (Ctrl-C included), 64 usage, 65 broken record chain,
66 chain intact but some records unsigned, 74 station key unusable, 75 the station daemon (or another
edge diag) holds the data_dir, 77 sign-in refused, 78 bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import IO

from edge.auth import User
from edge.config import CONFIG_ERROR_EXIT, StationConfig, load_config
from edge.diag.core import Outcome
from edge.diag.drills import DRILLS
from edge.diag.messages import languages
from edge.diag.plan import PHASE_NAMES
from edge.diag.records import verify_chain
from edge.diag.report import Written, write_run
from edge.diag.runner import DiagOptions, DrillRefused, RunInterrupted, check_drill, run_diag
from edge.diag.signin import SignInRefused, read_pin, sign_in
from edge.diag.station import is_twin
from edge.diag.signing import StationKey, StationKeyError, key_id, load_or_create, pinned_public
from edge.datadir import data_dir_lock
from edge.errors import ConfigError, StationUnusable

EXIT = {Outcome.PASS: 0, Outcome.MARGINAL: 0, Outcome.SKIPPED: 0, Outcome.FAIL: 1, Outcome.ERROR: 1,
        Outcome.ABORTED: 2}
USAGE_EXIT, CHAIN_EXIT, UNSIGNED_EXIT, KEY_EXIT, BUSY_EXIT, AUTH_EXIT = 64, 65, 66, 74, 75, 77


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edge diag", description="Hardware-in-the-loop diagnostics of a station.")
    ap.add_argument("--config", type=Path, help="station config (devices of kind 'sim' = run against the twin)")
    ap.add_argument("--technician", default="", metavar="BADGE", help="badge of the technician running the plan")
    ap.add_argument("--pin-stdin", action="store_true", help="read the PIN as one line of stdin, not from a prompt")
    ap.add_argument("--out", type=Path, help="records and reports folder (default: <data_dir>/diag)")
    ap.add_argument("--phases", default="", help=f"comma-separated subset of: {','.join(PHASE_NAMES)}")
    ap.add_argument("--drill", choices=sorted(DRILLS), help="fault drill against the twin")
    ap.add_argument("--prompt-timeout", type=float, default=120.0, help="seconds before a prompt aborts its phase")
    ap.add_argument("--lang", default="en", choices=languages(), help="language of guidance and report")
    ap.add_argument("--reference-tag", help="hex id (10 digits) of the station's reference badge")
    ap.add_argument("--verify", type=Path, metavar="DIR", help="only verify the record chain in DIR")
    ap.add_argument("--public-key", metavar="HEX", help="with --verify: the station's public key to pin")
    return ap


def main_diag(argv: list[str] | None = None, stdin: IO[str] | None = None) -> int:
    """Entry of `edge diag`; returns the exit status (`stdin` stands for sys.stdin)."""
    args = parser().parse_args(argv)
    if args.verify is not None:
        return _verify(args.verify, args.config, args.public_key)
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
    try:
        check_drill(args.drill, cfg, is_twin(cfg))
    except DrillRefused as exc:
        print(f"edge diag: {exc}", file=sys.stderr)
        return USAGE_EXIT
    data_dir = Path(cfg.station.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # first: a run refused while the daemon drives the devices leaves no sign-in, key or record behind
        with data_dir_lock(cfg.station.id, data_dir):
            return _signed_in_run(cfg, args, phases, stdin)
    except StationUnusable as exc:
        print(f"edge diag: {exc}; stop the station first (systemctl stop), or run the diagnostics from the control "
              f"room, which runs them inside the daemon", file=sys.stderr)
        return BUSY_EXIT


def _signed_in_run(cfg: StationConfig, args: argparse.Namespace, phases: tuple[str, ...] | None,
                   stdin: IO[str] | None) -> int:
    """Sign the technician in, run the plan and write its record (under the data_dir's lock); the exit status."""
    out = args.out or Path(cfg.station.data_dir) / "diag"
    try:
        user = _technician(cfg, args, stdin)
        key = _station_key(Path(cfg.station.data_dir))
    except SignInRefused as exc:
        print(f"edge diag: {exc}", file=sys.stderr)
        return USAGE_EXIT if not args.technician else AUTH_EXIT
    except (StationKeyError, OSError) as exc:
        print(f"edge diag: {exc}", file=sys.stderr)
        return KEY_EXIT
    opts = DiagOptions(out_dir=out, technician=user, phases=phases, prompt_timeout_s=args.prompt_timeout,
                       lang=args.lang, drill=args.drill, reference_tag=args.reference_tag, config_path=args.config)
    try:
        result = asyncio.run(run_diag(cfg, opts))
    except RunInterrupted as exc:  # Ctrl-C in a phase: recorded like any run, the phase ABORTED
        result = exc.result
    except KeyboardInterrupt:  # Ctrl-C while the devices opened or closed: no phase ran to record
        print("edge diag: interrupted while the devices were being opened or closed; no record written",
              file=sys.stderr)
        return EXIT[Outcome.ABORTED]
    written = write_run(result, out, args.lang, key)
    _summary(written.record, written)
    return EXIT[result.outcome]


def _summary(record: dict, written: Written) -> None:
    who = record.get("technician") or {}
    print(f"\n{record['station']}: {record['outcome']}  (record #{record['seq']}, hash {record['hash'][:16]}, "
          f"technician {who.get('name', '-')} {who.get('badge', '')})")
    for p in record["phases"]:
        expected = f"  (expected: {p['expected']})" if p.get("expected") else ""
        print(f"  {p['outcome']:<9} {p['name']:<14} {p['duration_s']:6.1f} s  {p['reason']}{expected}")
        for d in p["diagnoses"]:
            if d != p["reason"]:
                print(f"            - {d}")
    for step in record.get("teardown_unconfirmed") or ():
        print(f"  safe state not confirmed: {step}")
    print(f"report: {written.latest_report}  (this run: {written.report})")
    print(f"record: {written.record_path}  junit: {written.junit}")


def _technician(cfg: StationConfig, args: argparse.Namespace, stdin: IO[str] | None) -> User | None:
    """The signed-in technician; none only for a run against the twin without --technician."""
    if not args.technician:
        if is_twin(cfg):
            return None
        raise SignInRefused(f"station {cfg.station.id} runs on hardware: sign in with --technician BADGE")
    return sign_in(cfg, args.technician, read_pin(args.technician, stdin, args.pin_stdin))


def _station_key(data_dir: Path) -> StationKey:
    key, created = load_or_create(data_dir)
    if created:
        print(f"edge diag: created the station's record signing key {key.path}; public key {key.public_hex} "
              f"(id {key_id(key.public_hex)}): keep it to verify the records", file=sys.stderr)
    return key


def _pinned(config: Path | None, public_key: str | None) -> str | None:
    if public_key:
        return public_key.strip().lower()
    if config is None:
        return None
    cfg = load_config(config)
    pinned = pinned_public(Path(cfg.station.data_dir))
    if pinned is None:
        raise StationKeyError(f"station {cfg.station.id} has no record signing key in {cfg.station.data_dir}")
    return pinned


def _verify(folder: Path, config: Path | None, public_key: str | None) -> int:
    try:
        rep = verify_chain(folder, _pinned(config, public_key))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return CONFIG_ERROR_EXIT
    except StationKeyError as exc:
        print(f"edge diag: {exc}", file=sys.stderr)
        return KEY_EXIT
    if not rep.ok:
        print(f"{folder}: chain broken at {rep.broken_at}: {rep.reason}", file=sys.stderr)
        return CHAIN_EXIT
    how = "pinned" if rep.pinned else "named by the records (not pinned: pass --config or --public-key)"
    signed = f"{rep.signed} signed with key {key_id(rep.public_key)} {how}" if rep.signed else "none signed"
    print(f"{folder}: {rep.records} records, chain intact; {signed}; {rep.unsigned} unsigned")
    if rep.unsigned:
        print(f"{folder}: {rep.unsigned} records are unsigned (written before signing): only their hash chain "
              f"protects them, and it can be recomputed", file=sys.stderr)
        return UNSIGNED_EXIT
    return 0


def main() -> None:
    """`python -m edge.diag`: quiet console logging (the technician reads prompts and the summary)."""
    from edge.logging import configure_logging

    configure_logging("console", quiet=True)
    sys.exit(main_diag())


if __name__ == "__main__":
    main()
