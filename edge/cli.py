"""`edge`: the station command line (run, check-config, detect, twin, demo, user, export-dicos, case, audit, sync,
pki, diag)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.version import version
from edge.config import CONFIG_ERROR_EXIT, StationConfig, load_config, unreadable_files
from edge.errors import ConfigError, EdgeError, StationUnusable, StoreCorrupt, StoreError
from edge.logging import configure_logging

if TYPE_CHECKING:
    from edge.store import Store


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diag"]:  # the diagnostics CLI parses its own options
        return _diag(argparse.Namespace(args=argv[1:]))
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:  # a config that does not load (run, and the admin commands): one line, not a traceback
        print(exc, file=sys.stderr)
        return CONFIG_ERROR_EXIT
    except StoreCorrupt as exc:
        from edge.store import STORE_CORRUPT_EXIT

        print(f"edge: {exc}; it is left as it is for a technician", file=sys.stderr)
        return STORE_CORRUPT_EXIT
    except StationUnusable as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    except EdgeError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Checkpoint Edge station daemon")
    parser.add_argument("--version", action="version", version=f"edge (checkpoint-edge) {version()}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the station daemon (several --config share one inference pool)")
    run.add_argument("--config", required=True, type=Path, action="append")
    run.set_defaults(handler=_run)

    migrate = sub.add_parser("migrate", help="bring each config's station database to this release's schema")
    migrate.add_argument("--config", required=True, type=Path, action="append")
    migrate.set_defaults(handler=_migrate)

    check = sub.add_parser("check-config", help="validate station configs without starting")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument("--skip-files", action="store_true",
                       help="do not check that the files the config names can be read (e.g. on a build machine)")
    check.set_defaults(handler=_check_config)

    detect = sub.add_parser("detect", help="print the detections of one scan file as JSON")
    detect.add_argument("scan", type=Path)
    detect.add_argument("--model", type=Path, default=None,
                        help="model package directory (default: the shipped model made for the scan)")
    detect.add_argument("--force", action="store_true",
                        help="judge a scan the model is not made for (pitch, item kind, energy, content)")
    detect.set_defaults(handler=_detect)

    twin = sub.add_parser("twin", help="serve simulators at the endpoints a station config names")
    twin.add_argument("--config", required=True, type=Path)
    twin.add_argument("--scans", type=Path, default=Path("examples/scans"), help="scans the twin streams")
    twin.set_defaults(handler=_twin)

    demo = sub.add_parser("demo", help="simulated checkpoint: broker, hub and three stations")
    demo.add_argument("--base-port", type=int, default=8080)
    demo.add_argument("--data-dir", type=Path, default=Path("var/demo"))
    demo.add_argument("--no-demo-officer", dest="demo_officer", action="store_false",
                      help="leave the gantry's waiting vehicles to a person at its screen")
    demo.set_defaults(handler=_demo)

    diag = sub.add_parser("diag", add_help=False, help="technician diagnostics (edge diag --help)")
    diag.add_argument("args", nargs=argparse.REMAINDER)
    diag.set_defaults(handler=_diag)

    _add_admin_commands(sub)
    return parser


def _add_admin_commands(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="manage station screen users").add_subparsers(required=True, metavar="ACTION")
    add = user.add_parser("add", help="add a user; the PIN is asked for without echo (or read from stdin's first line)")
    add.add_argument("--config", required=True, type=Path)
    add.add_argument("--badge", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=("officer", "supervisor", "technician"))
    add.add_argument("--pin", help=argparse.SUPPRESS)  # refused: see _user_add
    add.add_argument("--replace", action="store_true", help="replace the user this badge has already (name, role, PIN)")
    add.set_defaults(handler=_user_add)

    dicos = sub.add_parser("export-dicos", help="write a record as DICOS files (DX images, threat detection reports)")
    dicos.add_argument("record_id")
    dicos.add_argument("--config", required=True, type=Path)
    dicos.add_argument("--out", required=True, type=Path, help="folder for the .dcm files (created)")
    dicos.set_defaults(handler=_export_dicos)

    _add_case_commands(sub)

    audit = sub.add_parser("audit", help="audit log").add_subparsers(required=True, metavar="ACTION")
    verify = audit.add_parser("verify", help="check the audit hash chain; names the first broken link")
    verify.add_argument("--config", required=True, type=Path)
    verify.set_defaults(handler=_audit_verify)

    sync = sub.add_parser("sync", help="rows the hub refused (parked)").add_subparsers(required=True, metavar="ACTION")
    parked = sync.add_parser("parked", help="list the outbox rows parked (not sent to the hub again) and why")
    parked.add_argument("--config", required=True, type=Path)
    parked.set_defaults(handler=_sync_parked)
    resend = sync.add_parser("resend", help="queue parked rows again, e.g. once the hub is upgraded (audited)")
    resend.add_argument("--config", required=True, type=Path)
    which = resend.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", type=int, action="append", dest="rows", metavar="ID", help="a parked row (repeat)")
    which.add_argument("--all", action="store_true", help="every parked row")
    resend.set_defaults(handler=_sync_resend)

    pki = sub.add_parser("pki", help="this station's broker certificate").add_subparsers(required=True, metavar="ACTION")
    csr = pki.add_parser("csr", help="make this station's key (0600) and a request for the hub to sign")
    csr.add_argument("station", help="the station id (the certificate's CN, the broker's user name)")
    csr.add_argument("--key", required=True, type=Path, help="where the new private key goes; it never leaves here")
    csr.add_argument("--out", required=True, type=Path, help="the request to hand to `edge-hub pki issue --csr`")
    csr.set_defaults(handler=_pki_csr)


def _add_case_commands(sub: argparse._SubParsersAction) -> None:
    from central_sync.case_bundle import add_export_arguments, add_verify_parser

    case = sub.add_parser("case", help="signed case bundles (docs/case-bundles.md)").add_subparsers(
        required=True, metavar="ACTION")
    export = case.add_parser("export", help="export a case's records and evidence as a signed bundle (audited)")
    export.add_argument("--config", required=True, type=Path)
    add_export_arguments(export, "station")
    export.set_defaults(handler=_case_export)
    add_verify_parser(case)


def _case_export(args: argparse.Namespace) -> int:
    from central_sync.case_bundle import zip_bytes
    from edge.case_export import CaseExportRefused, Selection, export, parse_identity

    if args.out.exists():
        print(f"edge case export: {args.out} exists already; name a new file", file=sys.stderr)
        return 2
    with _open_store(args.config) as store:
        try:
            selection = parse_identity(args.identity) if args.identity else Selection(tuple(args.records))
            bundle = export(store, selection, args.by, args.reason)
        except CaseExportRefused as exc:
            print(f"edge case export: {exc}", file=sys.stderr)
            return 2
    args.out.write_bytes(zip_bytes(bundle))
    m = bundle.manifest
    print(f"{args.out}: case {m.case_id}, {len(m.records)} records, {len(m.files)} files, manifest sha256 "
          f"{bundle.manifest_sha256}, signed by station key id {m.key.key_id} (public key {m.key.public})")
    return 0


def _pki_csr(args: argparse.Namespace) -> int:
    from central_sync.pki import PkiError, write_key_and_csr

    if args.key.exists():
        print(f"edge: {args.key} exists; remove it first (a new request needs a new key)", file=sys.stderr)
        return 1
    try:
        write_key_and_csr(args.station, args.key, args.out)
    except PkiError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 1
    print(f"key {args.key}, request {args.out} for CN={args.station}")
    return 0


def _diag(args: argparse.Namespace) -> int:
    from edge.diag.cli import main_diag

    configure_logging("console", quiet=True)
    return main_diag(args.args)


def _check_config(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            config = load_config(path)
            problems = [] if args.skip_files else unreadable_files(config)
            if problems:
                raise ConfigError(path, problems)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            status = CONFIG_ERROR_EXIT
        else:
            print(f"{path}: ok")
            _warn_model(path, config)
    return status


def _migrate(args: argparse.Namespace) -> int:
    """The package's upgrade step (also done by the daemon at start): numbered migrations, in transactions."""
    from edge.store import STORE_CORRUPT_EXIT, Store

    for path in args.config:
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return CONFIG_ERROR_EXIT
        store = Store(config.station.data_dir, station=config.station.id)
        if not store.db_path.exists():
            print(f"{config.station.id}: no database yet at {store.db_path}; it is made at the first start")
            continue
        try:
            with store:
                print(f"{config.station.id}: {store.db_path} at schema version {store.schema_version()}")
        except StoreCorrupt as exc:
            print(f"edge migrate: {exc}; it is left as it is for a technician", file=sys.stderr)
            return STORE_CORRUPT_EXIT
        except StoreError as exc:    # held by the running daemon past the wait: try again
            print(f"edge migrate: {exc}", file=sys.stderr)
            return 1
    return 0


def _warn_model(path: Path, config: StationConfig) -> None:
    """Say (on stderr, without failing: the station runs, every item goes to manual) when its model will not judge."""
    from edge.detector import model_problem, station_facts

    problem = model_problem(config.model, station_facts(config))
    if problem is not None:
        print(f"{path}: warning: model: {problem}; every item will go to manual", file=sys.stderr)


def _distinct(paths: list[Path], configs: list[StationConfig]) -> None:
    """ConfigError when two stations run by one process share an id, a data_dir or a screen's address. A data_dir is
    compared as the folder it is (`data` and `/srv/edge/data`, or a link to it, were two: the second station was
    refused by the first's lock later, as if another process held it, and the process ran on with one station)."""
    seen: dict[tuple[str, str], Path] = {}
    for path, config in zip(paths, configs):
        for key, value in (("station.id", config.station.id),
                           ("station.data_dir", str(config.station.data_dir.resolve())),
                           ("http.port", f"{config.http.host}:{config.http.port}")):
            if (key, value) in seen:
                raise ConfigError(path, [(key, f"{value} is also {seen[key, value]}'s; two stations cannot share it")])
            seen[key, value] = path


def _run(args: argparse.Namespace) -> int:
    from edge.daemon import run_stations

    configs = [load_config(path) for path in args.config]  # ConfigError, StoreCorrupt, ...: answered by main
    _distinct(args.config, configs)
    configure_logging(configs[0].log_format)
    try:
        asyncio.run(run_stations(configs))
    except KeyboardInterrupt:
        return 0
    return 0


def _detect(args: argparse.Namespace) -> int:
    from models.cli import detect_file
    from models.errors import ModelError

    configure_logging("console", quiet=True)
    try:
        detections = detect_file(args.scan, args.model, force=args.force)
    except ModelError as exc:
        print(f"edge detect: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(detections, indent=2))
    return 0


def _twin(args: argparse.Namespace) -> int:
    from edge.twin import TwinError, run_twin

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return CONFIG_ERROR_EXIT
    configure_logging("console")
    try:
        asyncio.run(run_twin(config, args.scans))
    except TwinError as exc:
        print(f"edge twin: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _demo(args: argparse.Namespace) -> int:
    from edge.demo import base_port_problem, run_demo

    if (problem := base_port_problem(args.base_port)) is not None:
        print(f"edge demo: {problem}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    configure_logging("console")
    try:
        asyncio.run(run_demo(args.base_port, args.data_dir, args.demo_officer))
    except KeyboardInterrupt:
        pass
    return 0


def _open_store(config_path: Path, create: bool = False) -> Store:
    """The station's store for an admin command; StoreError when it has no database yet, unless `create` (`edge user
    add` before the first start). `edge audit verify` made an empty database where there was none (a data_dir
    relative to another folder than the daemon's, a typo) and answered `audit chain intact`."""
    from edge.store import Store

    config = load_config(config_path)
    store = Store(config.station.data_dir, station=config.station.id)
    if not create and not store.db_path.exists():
        raise StoreError(f"station {config.station.id} has no database at {store.db_path.absolute()} (station.data_dir"
                         f" {config.station.data_dir} of {config_path}); nothing was read or made")
    return store


def _user_add(args: argparse.Namespace) -> int:
    from edge.auth import AuthError, add_user

    if args.pin is not None:
        print("edge user add: a PIN on the command line is seen by every user of this machine (ps, /proc) and kept in"
              " the shell's history; leave --pin out and type it when asked, or give it on stdin", file=sys.stderr)
        return 2
    store = _open_store(args.config, create=True)  # a config that does not load is said before the PIN is asked for
    pin = getpass.getpass("PIN: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    with store:
        try:
            if (held := _badge_holder(store, args.badge)) is not None and not args.replace:
                print(f"edge user add: badge {held[0]} is {held[1]}'s ({held[2]}); give --replace to replace that user's"
                      " name, role and PIN", file=sys.stderr)
                return 2
            user = add_user(store, args.badge, args.name, args.role, pin)
        except AuthError as exc:
            print(f"edge user add: {exc}", file=sys.stderr)
            return 2
    print(f"user {user.name} ({user.role}) added for badge {user.badge}")
    return 0


def _badge_holder(store: Store, badge: str) -> tuple[str, str, str] | None:
    """(badge, name, role) of the user a badge has already, or None: `edge user add` replaced a supervisor's account
    with a new officer's, name, role and PIN, and said `added`."""
    from edge.auth import ensure_schema, normalise_badge

    ensure_schema(store.conn)
    value = normalise_badge(badge)
    row = store.conn.execute("SELECT name, role FROM web_users WHERE badge = ?", (value,)).fetchone()
    return None if row is None else (value, row[0], row[1])


def _export_dicos(args: argparse.Namespace) -> int:
    from edge import audit
    from edge.dicos import DicosExportError, stored_dicos_files, write_files

    with _open_store(args.config) as store:
        try:
            files = stored_dicos_files(store, args.record_id)
        except DicosExportError as exc:
            print(f"edge export-dicos: {exc}", file=sys.stderr)
            return 2
        for path in write_files(files, args.out):
            print(path)
        audit.ensure_schema(store.conn)
        audit.append(store.conn, "cli", "export.dicos", args.record_id, {"files": sorted(files), "out": str(args.out)})
    return 0


def _sync_parked(args: argparse.Namespace) -> int:
    from central_sync.station_db import StationDb

    with _open_store(args.config) as store:
        db = StationDb(store.db_path)
        try:
            rows = db.parked()
        finally:
            db.close()
    for row in rows:
        print(f"row {row.id} ({row.lane} lane, {row.kind}) of record {row.record_id}, seq {row.seq}, sent {row.attempts}"
              f" times: {row.reason}")
    print(f"{len(rows)} rows parked" if len(rows) != 1 else "1 row parked")
    return 0


def _sync_resend(args: argparse.Namespace) -> int:
    from edge import audit
    from central_sync.station_db import StationDb

    with _open_store(args.config) as store:
        db = StationDb(store.db_path)
        try:
            parked = {row.id for row in db.parked()}
            wanted = parked if args.all else set(args.rows)
            if wanted - parked:
                print(f"edge sync resend: row {', '.join(map(str, sorted(wanted - parked)))} is not parked here"
                      f" (parked: {', '.join(map(str, sorted(parked))) or 'none'}); nothing was queued again",
                      file=sys.stderr)
                return 2
            moved = db.resend_parked(wanted)
        finally:
            db.close()
        if moved:
            audit.ensure_schema(store.conn)
            audit.append(store.conn, "cli", "sync.resend", "outbox", {"rows": [{"parked": old, "queued": new}
                                                                               for old, new in moved]})
    if not moved:
        print("no row is parked")
        return 0
    rows = "1 parked row" if len(moved) == 1 else f"{len(moved)} parked rows"
    print(f"{rows} queued again ({', '.join(f'{old} as {new}' for old, new in moved)}): the station sends them at its"
          " next look at the outbox; `edge sync parked` lists any the hub refuses again")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from edge.audit import ensure_schema, first_break

    with _open_store(args.config) as store:
        ensure_schema(store.conn)
        broken = first_break(store.conn)
    print("audit chain intact" if broken is None else f"audit chain broken: {broken}")
    return 0 if broken is None else 1


if __name__ == "__main__":
    sys.exit(main())
