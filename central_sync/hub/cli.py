"""`edge-hub`: run the central hub (ingest + HTTP API) or create its tables.

    edge-hub run [--db URL | --db-file FILE] [--broker-host H] [--broker-port P] [--http-port P] ...
    edge-hub migrate [--db URL | --db-file FILE]
    edge-hub api-token NAME      print a new service token for /api and the line for --api-tokens
    edge-hub pki init|issue|revoke|list|crl     the hub's certificate authority (docs/pki.md)
    edge-hub case export --signing-key KEY --record ID|--identity K=V --reason WHY --by WHO --out case.zip
    edge-hub case verify BUNDLE [--key PUBKEY]  check a signed case bundle offline (docs/case-bundles.md)

The database URL comes from `--db-file` (its first line: systemd's LoadCredential= hands it over
without putting a password on the command line), else `--db`, else `$EDGE_HUB_DB`, else
`hub.sqlite3`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import NoReturn

import structlog
import uvicorn
from pydantic import ValidationError

from appliance import sdnotify
from appliance.logs import queued_logger_factory
from appliance.https import plain_http_problem, uvicorn_tls, warn_plain_http
from appliance.version import version
from appliance.serving import stop_on_signals, until_listening
from appliance.watchdog import watchdog
from central_sync import case_bundle
from central_sync.commands import load_private_key
from central_sync.config import BrokerConfig, TlsConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig
from central_sync.errors import SyncError
from central_sync.hub.api import create_app
from central_sync.hub.api_auth import ServiceTokens, TokenFileError, new_token
from central_sync.hub import model_cli, pki_cli
from central_sync.hub.metrics import install_metrics
from central_sync.hub.ingest import Limits
from central_sync.hub.service import Hub
from central_sync.hub.store import HubStore, _without_password, open_store
from central_sync.pki import Authority, CrlWatch
from central_sync.pki import report as pki_report
from central_sync.model_delivery import ModelDelivery, ModelRepo
from central_sync.risk_delivery import RiskDelivery, store_acks
from central_sync.riskhub.feed import DeclarationFeed

EXIT_CONFIG = 78  # EX_CONFIG: systemd should not restart on a bad configuration
log = structlog.get_logger("central_sync.hub")


EMPTY_FILE = Path("")  # an empty file option: `--tls-ca ${HUB_TLS_CA}` with HUB_TLS_CA= in hub.env


def _file(value: str) -> Path:
    """A file option's path; an empty value is EMPTY_FILE, refused at start, where Path("") read as the current folder
    (`--tls-ca . cannot be read: Is a directory`)."""
    return Path(value) if value else EMPTY_FILE


class _Parser(argparse.ArgumentParser):
    """Options that do not parse are a configuration error (exit 78, which the unit does not restart): an empty
    `--broker-port ${HUB_BROKER_PORT}` (HUB_BROKER_PORT= in hub.env) exited 2, and systemd restarted the hub every
    5 s for ever with the same message."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="edge-hub", description="Checkpoint Edge central hub")
    ap.add_argument("--version", action="version", version=f"edge-hub (checkpoint-edge) {version()}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="ingest from the broker and serve the control-room API")
    for sp in (run, sub.add_parser("migrate", help="create the hub's tables")):
        db = sp.add_mutually_exclusive_group()
        db.add_argument("--db", help="sqlite path or postgresql://... (default $EDGE_HUB_DB, else hub.sqlite3)")
        db.add_argument("--db-file", type=Path, help="file whose first line is the database URL (a systemd credential)")
    run.add_argument("--broker-host", default="127.0.0.1")
    run.add_argument("--broker-port", type=int, default=1883)
    run.add_argument("--username", help="this hub process's broker name (one per process); its connections "
                                        "log in as NAME.priority, NAME.bulk and NAME.cr")
    run.add_argument("--password-file", type=_file)
    run.add_argument("--tls-ca", type=_file)
    run.add_argument("--tls-cert", type=_file)
    run.add_argument("--tls-key", type=_file)
    run.add_argument("--keepalive", type=int, default=30)
    run.add_argument("--hub-id", help="MQTT client id (default hub-<host>-<pid>); unique per hub process")
    run.add_argument("--http-host", default="127.0.0.1")
    run.add_argument("--http-port", type=int, default=8080, help="0 disables the HTTP API")
    run.add_argument("--batch-max", type=int, default=500, help="messages per database transaction")
    run.add_argument("--gap-period", type=float, default=5.0, help="seconds between seq gap checks")
    run.add_argument("--stall-after", type=float, help="seconds a link or ingest thread may stay silent before "
                     "the systemd watchdog is no longer fed (default: 60 or 3 x the broker back-off limit)")
    run.add_argument("--max-record-bytes", type=int, default=Limits.record_bytes, help="largest record, review or TIP text")
    run.add_argument("--max-image-bytes", type=int, default=Limits.image_bytes, help="largest image a station may upload")
    run.add_argument("--max-image-chunks", type=int, default=Limits.image_chunks, help="most chunks of one image")
    run.add_argument("--upload-age", type=float, default=Limits.upload_age_s,
                     help="seconds an incomplete image upload is kept before its chunks are dropped")
    run.add_argument("--max-uploads-per-station", type=int, default=Limits.uploads_per_station,
                     help="incomplete image uploads one station may hold at once")
    run.add_argument("--signing-key", type=_file, help="Ed25519 private key (PEM) that signs commands to stations")
    run.add_argument("--risk-key", type=_file, help="Ed25519 private key (PEM) that signs risk bundles; with it the hub "
                                                   "publishes and delivers them (docs/risk-authoring.md)")
    run.add_argument("--risk-key-id", help="the id stations pin the risk key under (default: from the key)")
    run.add_argument("--risk-expiry", type=float, default=24 * 3600.0, help="seconds a published risk bundle is valid")
    run.add_argument("--api-tokens", type=_file, help="service tokens allowed to read /api: `NAME SHA256` lines "
                     "(see `edge-hub api-token`); without it only signed-in control-room users read /api")
    run.add_argument("--pki-dir", type=Path, help="the CA's directory (edge-hub pki): /metrics and the control room "
                     "warn of a CRL about to lapse and of certificates expiring within 30 days")
    run.add_argument("--https-cert", type=_file, default=os.environ.get("HUB_HTTPS_CERT") or None,
                     help="PEM certificate the control room serves over HTTPS (default $HUB_HTTPS_CERT)")
    run.add_argument("--https-key", type=_file, default=os.environ.get("HUB_HTTPS_KEY") or None,
                     help="its private key (default $HUB_HTTPS_KEY)")
    run.add_argument("--allow-plain-http", action="store_true", help="serve plain HTTP on a non-loopback "
                     "--http-host (a lab only; logged as a warning); without it only loopback serves without TLS")
    run.add_argument("--plain-http-cookies", action="store_true", help="send the control-room session cookie "
                     "without the Secure flag (plain-HTTP labs only; behind TLS leave it off)")
    token = sub.add_parser("api-token", help="print a new /api service token, then its line for --api-tokens")
    token.add_argument("name", help="who holds the token (letters, digits, _.@-)")
    pki_cli.add_parser(sub)
    model_cli.add_parser(sub)
    run.add_argument("--models-dir", type=Path, help="deliver the model roll-outs staged in this folder "
                                                     "(edge-hub model, docs/model-rollout.md)")
    _add_case_parser(sub)
    return ap


def _add_case_parser(sub: argparse._SubParsersAction) -> None:
    case = sub.add_parser("case", help="signed case bundles (docs/case-bundles.md)").add_subparsers(
        required=True, metavar="ACTION")
    export = case.add_parser("export", help="export a case from the hub database as a bundle signed by the hub key")
    db = export.add_mutually_exclusive_group()
    db.add_argument("--db", help="sqlite path or postgresql://... (default $EDGE_HUB_DB, else hub.sqlite3)")
    db.add_argument("--db-file", type=Path, help="file whose first line is the database URL")
    export.add_argument("--signing-key", required=True, type=Path, help="the hub's Ed25519 command key (PEM)")
    case_bundle.add_export_arguments(export, "hub")
    export.set_defaults(handler=_case_export)
    case_bundle.add_verify_parser(case)


def _case_export(args: argparse.Namespace) -> int:
    from central_sync.control_room.db import migrate
    from central_sync.hub.case_export import Selection, export

    if args.out.exists():
        raise case_bundle.CaseBundleError(f"{args.out} exists already; name a new file")
    kind, _, value = (args.identity or "").partition("=")
    if args.identity and not value.strip():
        raise case_bundle.CaseBundleError(f"identity {args.identity!r} is not KIND=VALUE")
    selection = Selection(tuple(args.records or ()), kind, value.strip())
    store = open_store(_db_url(args))
    try:
        migrate(store)
        bundle = export(store, selection, args.by, args.reason, load_private_key(args.signing_key))
    finally:
        store.close()
    args.out.write_bytes(case_bundle.zip_bytes(bundle))
    m = bundle.manifest
    print(f"{args.out}: case {m.case_id}, {len(m.records)} records, {len(m.files)} files, manifest sha256 "
          f"{bundle.manifest_sha256}, signed by hub key id {m.key.key_id} (public key {m.key.public})")
    return 0


class DbUrlError(SyncError):
    """The database URL file cannot be read or is empty."""


def _db_url(args: argparse.Namespace) -> str:
    """The database URL: first line of --db-file, else --db, else $EDGE_HUB_DB, else hub.sqlite3."""
    if args.db_file is None:
        if args.db and _without_password(args.db) != args.db:
            print("edge-hub: warning: the password in --db is seen by every user of this machine (ps, /proc) and kept"
                  " in the shell's history; put the URL in a file and give --db-file (or $EDGE_HUB_DB)", file=sys.stderr)
        return args.db or os.environ.get("EDGE_HUB_DB") or "hub.sqlite3"
    try:
        lines = args.db_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DbUrlError(f"the database URL file {args.db_file} cannot be read: {exc.strerror}") from exc
    if not lines or not lines[0].strip():
        raise DbUrlError(f"the database URL file {args.db_file} is empty")
    return lines[0].strip()


def _broker(args: argparse.Namespace) -> BrokerConfig:
    tls = TlsConfig(ca_file=args.tls_ca, cert_file=args.tls_cert, key_file=args.tls_key) if args.tls_ca else None
    return BrokerConfig(host=args.broker_host, port=args.broker_port, tls=tls, username=args.username,
                        password_file=args.password_file, keepalive_s=args.keepalive)


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(record_bytes=args.max_record_bytes, image_bytes=args.max_image_bytes,
                  image_chunks=args.max_image_chunks, upload_age_s=args.upload_age,
                  uploads_per_station=args.max_uploads_per_station)


def _declaration_feed(args: argparse.Namespace, store: HubStore,
                      hub_id: str) -> contextlib.AbstractAsyncContextManager[object]:
    """The customs declarations topic (riskhub/feed.py) when the hub publishes risk bundles (--risk-key)."""
    if args.risk_key is None:
        return contextlib.nullcontext()
    return DeclarationFeed(_broker(args), store, f"{hub_id}-customs")


def _model_delivery(args: argparse.Namespace, hub_id: str) -> contextlib.AbstractAsyncContextManager[object]:
    """Model roll-outs (central_sync.model_delivery) when the hub has a package folder (--models-dir); their headers
    signed with the command key (--signing-key) when the hub has one."""
    if args.models_dir is None:
        return contextlib.nullcontext()
    key = load_private_key(args.signing_key) if args.signing_key is not None else None
    return ModelDelivery(_broker(args), hub_id, ModelRepo(args.models_dir), key=key)


def _listen(host: str, port: int) -> socket.socket:
    """The control room's listening socket, bound before anything else is opened (as the station's screen)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


async def _run(args: argparse.Namespace, db_url: str, listener: socket.socket | None = None) -> None:
    tokens = ServiceTokens.load(args.api_tokens) if args.api_tokens else None
    store = open_store(db_url)
    stop = stop_on_signals()
    async with Hub(_broker(args), store, args.hub_id, batch_max=args.batch_max, gap_period_s=args.gap_period,
                   stall_after_s=args.stall_after, limits=_limits(args)) as hub, \
            RiskDelivery(_broker(args), hub.hub_id, store_acks(store)) as risk, \
            ControlRoom(store, _broker(args), ControlRoomConfig(signing_key=args.signing_key,
                                                                client_id=f"{hub.hub_id}-cr",
                                                                secure_cookie=not args.plain_http_cookies,
                                                                risk_key=args.risk_key, risk_key_id=args.risk_key_id,
                                                                risk_expiry_s=args.risk_expiry,
                                                                pki_dir=args.pki_dir, models_dir=args.models_dir),
                        risk_deliver=risk.offer) as room, \
            _declaration_feed(args, store, hub.hub_id), \
            _model_delivery(args, hub.hub_id), \
            asyncio.TaskGroup() as tasks:
        hub.risk = risk  # publish() hands it the signed bundles: risk.offer(Offer(...))
        log.info("hub.started", hub=hub.hub_id, db=store.url, http_port=args.http_port, version=version(),
                 https=args.https_cert is not None)
        background = []
        if args.pki_dir is not None:
            background.append(tasks.create_task(_watch_crl(CrlWatch(Authority(args.pki_dir).crl_path)), name="crl-watch"))
        server = None
        if args.http_port:
            # a bounded graceful shutdown: open live feeds must not hold SIGTERM up
            ca = Authority(args.pki_dir) if args.pki_dir else None
            app = install_metrics(room.install(create_app(store, hub.stats, service_tokens=tokens)), hub.stats,
                                  (lambda: pki_report(ca)) if ca else None)
            warn_plain_http(args.http_host, args.http_port, "control room", args.https_cert is not None)
            server = uvicorn.Server(uvicorn.Config(app, host=args.http_host, port=args.http_port, log_level="warning",
                                                   lifespan="off", timeout_graceful_shutdown=2,
                                                   **uvicorn_tls(args.https_cert, args.https_key)))
            tasks.create_task(server.serve(sockets=[listener] if listener is not None else None),
                              name="web").add_done_callback(lambda _: stop.set())
            await until_listening(server)
        http = f", HTTP on port {args.http_port}" if args.http_port else ""
        sdnotify.notify(f"READY=1\nSTATUS=hub {hub.hub_id} ingesting{http}")
        if (period := sdnotify.watchdog_period_s()) is not None:  # after READY: its pings follow the start
            background.append(tasks.create_task(watchdog(hub.progress, period), name="watchdog"))
        await stop.wait()
        log.info("hub.stopping", hub=hub.hub_id)
        sdnotify.notify("STOPPING=1")
        if server is not None:
            server.should_exit = True
        for task in background:
            task.cancel()


# (option, smallest, largest) of `edge-hub run`'s numbers; a float must also be finite
NUMBER_OPTIONS: tuple[tuple[str, float, float], ...] = (
    ("broker_port", 1, 65535), ("http_port", 0, 65535), ("keepalive", 5, 3600), ("batch_max", 1, 1_000_000),
    ("gap_period", 0.01, 86400.0), ("stall_after", 1.0, 86400.0), ("max_record_bytes", 1024, 2**31),
    ("max_image_bytes", 1024, 2**40), ("max_image_chunks", 1, 2**31), ("upload_age", 1.0, 10 * 365 * 86400.0),
    ("max_uploads_per_station", 1, 1_000_000), ("risk_expiry", 60.0, 365 * 86400.0))


def _number_problem(args: argparse.Namespace) -> str | None:
    """A number of `edge-hub run` out of its range (one sentence naming the option and the value), or None: a port of
    70000 or -1 ended in a traceback (exit 1, restarted for ever), a --max-record-bytes 0 or --max-uploads-per-station 0
    started a hub that refused every record or image, a --stall-after nan one whose watchdog never saw a stall, a
    --keepalive 1 said only `Input should be greater than or equal to 5`."""
    for name, low, high in NUMBER_OPTIONS:
        value = getattr(args, name)
        if value is None:
            continue
        if not (math.isfinite(value) and low <= value <= high):
            return f"--{name.replace('_', '-')} {value} is out of range: give a number from {low} to {high}"
    if not args.broker_host.strip():
        return "--broker-host is empty: give the broker's host name or address"
    if not args.http_host.strip():   # HUB_HTTP_HOST= in hub.env: '' listens on every interface
        return "--http-host is empty (as from an empty variable in hub.env): give the address to listen on"
    if args.username is not None and not args.username.strip():
        return "--username is empty (as from an empty variable in hub.env): give this hub's broker name"
    return None


FILE_OPTIONS = ("password_file", "tls_ca", "tls_cert", "tls_key", "signing_key", "risk_key", "api_tokens", "https_cert",
                "https_key")


def _https_problem(args: argparse.Namespace) -> str | None:
    """A refused file or HTTP setting of `edge-hub run` (one sentence), or None: a file an option names that
    cannot be read, or a certificate and key that do not load, failed with a traceback (exit 1, restarted for ever)."""
    if (args.https_cert is None) != (args.https_key is None):
        return "--https-cert and --https-key go together: give both or neither"
    for name in FILE_OPTIONS:
        path = getattr(args, name, None)
        if path is EMPTY_FILE:
            return f"--{name.replace('_', '-')} is empty (as from an empty variable in hub.env): name the file"
        if path is not None:
            try:
                path.read_bytes()
            except OSError as exc:
                return f"--{name.replace('_', '-')} {path} cannot be read: {exc.strerror or exc}"
    if args.https_cert is not None and args.https_key is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.https_cert, args.https_key)
        except (ssl.SSLError, OSError) as exc:
            return f"--https-cert {args.https_cert} and --https-key {args.https_key} do not load together: {exc}"
    if not args.http_port:
        return None
    problem = plain_http_problem(args.http_host, args.https_cert is not None, args.allow_plain_http)
    return f"{problem} (--https-cert and --https-key, or --allow-plain-http)" if problem else None


async def _watch_crl(watch: CrlWatch, period_s: float = 600.0) -> None:
    """Check the broker's CRL every `period_s`: Mosquitto refuses every client once it lapses."""
    while True:
        await asyncio.to_thread(watch.check)
        await asyncio.sleep(period_s)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "api-token":
        try:
            token, line = new_token(args.name)
        except TokenFileError as exc:
            print(f"edge-hub: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"{token}\n{line}")
        return 0
    if args.cmd == "case":
        try:
            return int(args.handler(args))
        except SyncError as exc:
            print(f"edge-hub case: {exc}", file=sys.stderr)
            return 2
    if args.cmd in ("pki", "model"):
        try:
            print((pki_cli if args.cmd == "pki" else model_cli).run(args))
        except SyncError as exc:
            print(f"edge-hub: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "run" and (problem := _number_problem(args) or _https_problem(args)):
        print(f"edge-hub: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    listener = None
    if args.cmd == "run" and args.http_port:
        # taken, refused or no such address: uvicorn said so after the database and the broker links were opened and
        # exited 3, and systemd restarted the hub every 5 s for ever
        try:
            listener = _listen(args.http_host, args.http_port)
        except OSError as exc:
            print(f"edge-hub: the control room cannot listen on --http-host {args.http_host} --http-port "
                  f"{args.http_port}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        db_url = _db_url(args)
        if args.cmd == "migrate":
            open_store(db_url).migrate()
            return 0
        # its lines written by a thread of their own: a journal that stops taking them never stops the hub
        structlog.configure(logger_factory=queued_logger_factory(sys.stdout))
        asyncio.run(_run(args, db_url, listener))
    except (DbUrlError, TokenFileError) as exc:
        print(f"edge-hub: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ValidationError as exc:
        print(f"edge-hub: bad option: {exc.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_CONFIG
    except SyncError as exc:
        print(f"edge-hub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
