"""`edge-hub`: run the central hub (ingest + HTTP API) or create its tables.

    edge-hub run [--db URL] [--broker-host H] [--broker-port P] [--http-port P] ...
    edge-hub migrate --db URL
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import structlog
import uvicorn
from pydantic import ValidationError

from appliance import sdnotify
from appliance.serving import stop_on_signals, until_listening
from appliance.watchdog import watchdog
from central_sync.config import BrokerConfig, TlsConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig
from central_sync.errors import SyncError
from central_sync.hub.api import create_app
from central_sync.hub.metrics import install_metrics
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store

EXIT_CONFIG = 78  # EX_CONFIG: systemd should not restart on a bad configuration
log = structlog.get_logger("central_sync.hub")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edge-hub", description="Checkpoint Edge central hub")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="ingest from the broker and serve the control-room API")
    for sp in (run, sub.add_parser("migrate", help="create the hub's tables")):
        sp.add_argument("--db", default="hub.sqlite3", help="sqlite path (default hub.sqlite3) or postgresql://...")
    run.add_argument("--broker-host", default="127.0.0.1")
    run.add_argument("--broker-port", type=int, default=1883)
    run.add_argument("--username")
    run.add_argument("--password-file", type=Path)
    run.add_argument("--tls-ca", type=Path)
    run.add_argument("--tls-cert", type=Path)
    run.add_argument("--tls-key", type=Path)
    run.add_argument("--keepalive", type=int, default=30)
    run.add_argument("--hub-id", help="MQTT client id (default hub-<host>-<pid>); unique per hub process")
    run.add_argument("--http-host", default="127.0.0.1")
    run.add_argument("--http-port", type=int, default=8080, help="0 disables the HTTP API")
    run.add_argument("--batch-max", type=int, default=500, help="messages per database transaction")
    run.add_argument("--gap-period", type=float, default=5.0, help="seconds between seq gap checks")
    run.add_argument("--stall-after", type=float, help="seconds a link or ingest thread may stay silent before "
                     "the systemd watchdog is no longer fed (default: 60 or 3 x the broker back-off limit)")
    run.add_argument("--signing-key", type=Path, help="Ed25519 private key (PEM) that signs commands to stations")
    return ap


def _broker(args: argparse.Namespace) -> BrokerConfig:
    tls = TlsConfig(ca_file=args.tls_ca, cert_file=args.tls_cert, key_file=args.tls_key) if args.tls_ca else None
    return BrokerConfig(host=args.broker_host, port=args.broker_port, tls=tls, username=args.username,
                        password_file=args.password_file, keepalive_s=args.keepalive)


async def _run(args: argparse.Namespace) -> None:
    store = open_store(args.db)
    stop = stop_on_signals()
    async with Hub(_broker(args), store, args.hub_id, batch_max=args.batch_max, gap_period_s=args.gap_period,
                   stall_after_s=args.stall_after) as hub, \
            ControlRoom(store, _broker(args), ControlRoomConfig(signing_key=args.signing_key,
                                                                client_id=f"{hub.hub_id}-cr")) as room, \
            asyncio.TaskGroup() as tasks:
        log.info("hub.started", hub=hub.hub_id, db=store.url, http_port=args.http_port)
        background = []
        if (period := sdnotify.watchdog_period_s()) is not None:
            background.append(tasks.create_task(watchdog(hub.progress, period), name="watchdog"))
        server = None
        if args.http_port:
            # a bounded graceful shutdown: open live feeds must not hold SIGTERM up
            app = install_metrics(room.install(create_app(store, hub.stats)), hub.stats)
            server = uvicorn.Server(uvicorn.Config(app, host=args.http_host, port=args.http_port, log_level="warning",
                                                   lifespan="off", timeout_graceful_shutdown=2))
            tasks.create_task(server.serve(), name="web").add_done_callback(lambda _: stop.set())
            await until_listening(server)
        http = f", HTTP on port {args.http_port}" if args.http_port else ""
        sdnotify.notify(f"READY=1\nSTATUS=hub {hub.hub_id} ingesting{http}")
        await stop.wait()
        log.info("hub.stopping", hub=hub.hub_id)
        sdnotify.notify("STOPPING=1")
        if server is not None:
            server.should_exit = True
        for task in background:
            task.cancel()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "migrate":
            open_store(args.db).migrate()
            return 0
        asyncio.run(_run(args))
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
