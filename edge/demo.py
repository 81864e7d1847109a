"""`edge demo`: a simulated checkpoint on one machine.

A Mosquitto broker on a free port, the hub, and the three example stations (gantry, conveyor,
retrofit X-ray) in one station process sharing one inference pool, all against simulated
hardware. The configs actually run are written under the demo's data directory, so that what
runs can be read and copied.

The conveyor's scanner and the retrofit X-ray's simulated machine stream a pool of the example bags,
mostly clean as at a real checkpoint (SUSPECT_SHARE of them with a threat; `bag_pool`). The gantry's
scanner streams a pool of generated vehicle and container scans (GANTRY_POOL of them, SUSPECT_SHARE
suspects) rendered into its data dir at the first start: the first few before the
stations start, the rest in the background while it runs (the simulated scanner picks each up).
Nobody sits at the gantry's screen, so the demo officer (edge.demo_officer) decides the vehicles
waiting at its barrier, under its own name; `--no-demo-officer` leaves them to you.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import signal
import socket
import sys
import threading
import tomllib
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from models.scan import Scan

log = structlog.get_logger()

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STATIONS = ("gantry", "conveyor", "xray")
CONTROL_ROOM_USERS = (("operator", "operator"), ("supervisor", "supervisor"), ("admin", "admin"))
CONTROL_ROOM_PASSWORD = "demo-password"
DEMO_USERS = (("1A2B3C4D5E", "Officer Chan", "officer", "1234"),
              ("0F0E0D0C0B", "Supervisor Wong", "supervisor", "4321"),
              ("5A5B5C5D5E", "Technician Lee", "technician", "5678"))
GANTRY_POOL = 30  # generated scans the gantry's scanner streams in turn
GANTRY_POOL_FIRST = 3  # rendered before the stations start; the rest in the background
SUSPECT_SHARE = 0.1
RISK_KEY_ID = "demo-risk"  # the hub's risk bundle key, pinned by every station under this id
POOL_SEED = 160_000


def base_port_problem(base_port: int) -> str | None:
    """`--base-port` out of range (one sentence naming the option and the value), or None: the control room listens on
    the base port and the stations on the next ones, and 70000 was found as the generated config's http.port."""
    high = 65535 - len(STATIONS)
    if 1 <= base_port <= high:
        return None
    return (f"--base-port {base_port} is out of range: the demo listens on ports {base_port} to "
            f"{base_port + len(STATIONS)}, so give a number from 1 to {high}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        raise SystemExit("mosquitto is not installed: run scripts/bootstrap (it installs it with apt-get)")
    return found


def write_broker_config(root: Path, port: int) -> Path:
    (root / "mosquitto").mkdir(parents=True, exist_ok=True)
    conf = root / "mosquitto" / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {root / 'mosquitto'}/\nmax_queued_messages 100000\n"
        f"user {getpass.getuser()}\n"
        f"max_inflight_messages 64\nmessage_size_limit 1048576\nlog_dest stderr\nlog_type error\n")
    return conf


BAG_POOL = 40  # places in the bag pool the conveyor and the retrofit X-ray stream in turn
POOL_THREATS = ("bag_firearm_01", "bag_drugs_01", "bag_knife_01", "bag_cigarettes_01")


def bag_pool(folder: Path, count: int = BAG_POOL) -> Path:
    """A folder of links to the example bags, in the order they are streamed: the clean bags in turn,
    and in every 1/SUSPECT_SHARE places one bag with a threat (the threats in turn), so that about
    SUSPECT_SHARE of the bags hold one, as at a real checkpoint (the examples alone hold two in three)."""
    scans = EXAMPLES / "scans"
    clean = sorted(scans.glob("bag_clean_*.npz"))
    threats = [scans / f"{name}.npz" for name in POOL_THREATS if (scans / f"{name}.npz").exists()] or \
        sorted(p for p in scans.glob("bag_*.npz") if p not in clean)
    if not clean or not threats:
        raise SystemExit(f"the example bags are missing from {scans}: the demo needs clean bags and bags with threats")
    folder.mkdir(parents=True, exist_ok=True)
    n_clean = n_threat = 0
    for index in range(count):
        if is_suspect_slot(index):
            source, n_threat = threats[n_threat % len(threats)], n_threat + 1
        else:
            source, n_clean = clean[n_clean % len(clean)], n_clean + 1
        link = folder / f"bag_{index:03d}_{source.stem.removeprefix('bag_')}.npz"
        if not link.exists():
            link.symlink_to(source.resolve())
    return folder


def write_station_configs(root: Path, base_port: int, broker_port: int,
                          vehicle_scans: Path | None = None, bag_scans: Path | None = None) -> list[Path]:
    """Copy the examples with the demo's data dirs and ports; returns the written paths. With
    `vehicle_scans` (a folder) the gantry's scanner streams the scans in it, and those added later; with
    `bag_scans` the conveyor's scanner and the retrofit X-ray stream those bags instead of the examples."""
    import tomli_w

    paths = []
    for i, name in enumerate(STATIONS, start=1):
        data = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
        station_id = data["station"]["id"]
        data["station"]["data_dir"] = str(root / station_id)
        source = data.get("devices", {}).get("source")
        if source and "folder" in source:
            source["folder"] = str(root / station_id / "drop")
        if name == "gantry" and vehicle_scans is not None:
            data["devices"]["scanner"]["sim"].update(scan_dir=str(vehicle_scans), watch=True)
        for device in ("scanner", "source"):  # the bag stations' simulated machines
            sim = data.get("devices", {}).get(device, {}).get("sim")
            if name != "gantry" and bag_scans is not None and sim and "scan_dir" in sim:
                sim["scan_dir"] = str(bag_scans)
        data.setdefault("http", {})["port"] = base_port + i
        data.setdefault("sync", {})["port"] = broker_port
        data["log_format"] = "console"
        data["commands"] = {"hub_public_key": str(root / "hub.pub")}
        data["risk"] = {"keys": {RISK_KEY_ID: str(root / "risk.pub")}}  # bundles the hub publishes (docs/risk-authoring.md)
        data.setdefault("web", {}).setdefault("tip", {}).update(library_dir=str(root / "tip-library"), rate=0.1)
        path = root / "configs" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(data))
        paths.append(path)
    return paths


def _tip_library(folder: Path) -> None:
    """Threat cut-outs for Threat Image Projection, from the labelled example scans."""
    from edge.tip import build_library

    if not folder.exists():
        build_library(folder, sorted(p for p in (EXAMPLES / "scans").glob("bag_*.npz") if "clean" not in p.name))


def _control_room(root: Path) -> None:
    """The hub's command signing key (stations pin its public half) and the control-room users."""
    from central_sync.commands import generate_keypair
    from central_sync.control_room import auth, db
    from central_sync.hub.api_auth import new_token
    from central_sync.hub.store import open_store
    from central_sync.riskhub import demo as risk_demo
    from central_sync.riskhub import tables as risk_tables
    from central_sync.riskhub.publish import RiskKey

    if not (root / "hub.key").exists():
        generate_keypair(root / "hub.key", root / "hub.pub")
    if not (root / "risk.key").exists():
        generate_keypair(root / "risk.key", root / "risk.pub")
    if not (root / "hub-api.token").exists():  # a service token for scripts reading the hub's /api
        token, line = new_token("demo")
        (root / "hub-api.tokens").write_text(line + "\n")
        (root / "hub-api.token").write_text(token + "\n")
    store = open_store(str(root / "hub.sqlite3"))
    store.migrate()
    db.migrate(store)
    try:
        for name, role in CONTROL_ROOM_USERS:
            auth.add_user(store, name, role, CONTROL_ROOM_PASSWORD)
        risk_tables.migrate(store)
        risk_demo.seed(store, RiskKey.load(root / "risk.key", RISK_KEY_ID), demo_tids())
    finally:
        store.close()


def add_demo_users(configs: list[Path]) -> None:
    """The demo's people on every station, and the demo officer on the gantry."""
    from edge import demo_officer
    from edge.config import load_config
    from edge.store import Store
    from edge.auth import add_user

    for path in configs:
        config = load_config(path)
        with Store(config.station.data_dir, station=config.station.id) as store:
            for badge, name, role, pin in DEMO_USERS:
                add_user(store, badge, name, role, pin)
            if config.station.kind == "gantry":
                add_user(store, demo_officer.BADGE, demo_officer.NAME, demo_officer.ROLE, demo_officer.PIN)


DEMO_VEHICLES = 60  # about ten minutes of the demo gantry's traffic (6 vehicles a minute)


def demo_tids(count: int = DEMO_VEHICLES) -> list[str]:
    """The windscreen tag TIDs of the demo gantry's first vehicles, as its simulated lane describes them
    ([devices.plc.sim.gantry.lane] in examples/gantry.toml; drivers/simlane.py)."""
    from drivers.simlane import LaneSim, describe

    cfg = LaneSim(**tomllib.loads((EXAMPLES / "gantry.toml").read_text())["devices"]["plc"]["sim"]["gantry"]["lane"])
    return [t for t in (describe(cfg, n).tid for n in range(1, count + 1)) if t]


def gantry_pixel_mm() -> float:
    """The demo gantry's detector pitch: examples/gantry.toml [devices.scanner] pixel_mm (its scans are made so)."""
    return float(tomllib.loads((EXAMPLES / "gantry.toml").read_text())["devices"]["scanner"]["pixel_mm"])


def portal_scan(seed: int, suspect: bool, pixel_mm: float) -> Scan:
    """One vehicle or container scan from the training generator (generator A), with contraband or without."""
    from models.training.portal import PortalSpec, portal_scan as render

    return render(seed, PortalSpec(suspect_share=SUSPECT_SHARE, suspect=suspect, pixel_mm=pixel_mm))


def is_suspect_slot(index: int) -> bool:
    """Pool places holding a suspect: one in every 1/SUSPECT_SHARE, in the middle of its stretch (5, 15, 25...)."""
    period = round(1 / SUSPECT_SHARE)
    return index % period == period // 2


def render_vehicle_pool(folder: Path, count: int, stop: threading.Event | None = None) -> None:
    """Fill the folder up to `count` scans, SUSPECT_SHARE of them suspects, each written elsewhere and
    renamed, so that the watching scanner never reads half a file; the scanner streams them in name order.
    `stop` ends it between two scans (a thread cannot be cancelled, and the demo's exit waits for it)."""
    from models.scan import save_scan

    folder.mkdir(parents=True, exist_ok=True)
    pixel_mm = gantry_pixel_mm()
    for index in range(len(list(folder.glob("portal_*.npz"))), count):
        if stop is not None and stop.is_set():
            return
        suspect = is_suspect_slot(index)
        path = folder / f"portal_{index:03d}_{'suspect' if suspect else 'clean'}.npz"
        save_scan(portal_scan(POOL_SEED + index, suspect, pixel_mm), path.with_suffix(".part"))
        path.with_suffix(".part").replace(path)


async def run_demo(base_port: int, data_dir: Path, demo_officer: bool = True) -> None:
    root = data_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    broker_port = free_port()
    pool = root / "vehicles"  # not in the gantry's data_dir: its store takes scans there that no record names for orphans
    await asyncio.to_thread(render_vehicle_pool, pool, GANTRY_POOL_FIRST)
    configs = write_station_configs(root, base_port, broker_port, pool, bag_pool(root / "bags"))
    _tip_library(root / "tip-library")
    _control_room(root)
    add_demo_users(configs)
    bin_dir = Path(sys.executable).parent
    async with AsyncExitStack() as stack:
        broker = await _spawn(stack, "broker", mosquitto_binary(), "-c", str(write_broker_config(root, broker_port)))
        await _wait_port(broker_port)
        hub = await _spawn(stack, "hub", str(bin_dir / "edge-hub"), "run", "--db", str(root / "hub.sqlite3"),
                           "--broker-port", str(broker_port), "--http-port", str(base_port),
                           "--signing-key", str(root / "hub.key"), "--api-tokens", str(root / "hub-api.tokens"),
                           "--risk-key", str(root / "risk.key"), "--risk-key-id", RISK_KEY_ID,
                           "--plain-http-cookies")  # the demo serves plain HTTP
        stations = await _spawn(stack, "stations", str(bin_dir / "edge"), "run",
                                *[arg for path in configs for arg in ("--config", str(path))])
        await _wait_port(base_port + len(STATIONS), timeout_s=120)
        _print_urls(base_port, broker_port, root, demo_officer)
        rendering = threading.Event()
        stack.callback(rendering.set)  # whatever ends the demo stops the renderer after its current scan
        background = [asyncio.create_task(asyncio.to_thread(render_vehicle_pool, pool, GANTRY_POOL, rendering),
                                          name="pool")]
        if demo_officer:
            from edge.demo_officer import DemoOfficer

            gantry_port = base_port + 1 + STATIONS.index("gantry")
            background.append(asyncio.create_task(DemoOfficer(f"http://127.0.0.1:{gantry_port}").run(),
                                                  name="demo-officer"))
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        waits = [asyncio.create_task(p.wait(), name=n) for n, p in (("broker", broker), ("hub", hub),
                                                                     ("stations", stations))]
        waits.append(asyncio.create_task(stop.wait(), name="stop"))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        rendering.set()
        for task in [*pending, *background]:
            task.cancel()
        for task in done:
            if task.get_name() != "stop":
                print(f"demo: {task.get_name()} exited with status {task.result()}; stopping the demo",
                      file=sys.stderr)


def _print_urls(base_port: int, broker_port: int, root: Path, demo_officer: bool) -> None:
    lines = [f"  control room    http://127.0.0.1:{base_port}/   (operator, supervisor or admin;"
             f" password {CONTROL_ROOM_PASSWORD})"]
    lines += [f"  {name:<15} http://127.0.0.1:{base_port + i}/" for i, name in enumerate(STATIONS, start=1)]
    users = "\n".join(f"  {role:<11} badge {badge}  PIN {pin}" for badge, _, role, pin in DEMO_USERS)
    robot = ("The DEMO OFFICER (automatic, badge DE30DE30) decides the gantry's waiting vehicles after 20-30 s"
             " (--no-demo-officer: you do).\n" if demo_officer else "")
    print(f"\nCheckpoint Edge demo is running (broker 127.0.0.1:{broker_port}, data in {root}).\n"
          + "\n".join(lines) + f"\nSign in on a station screen with:\n{users}\n{robot}Ctrl-C stops everything.\n",
          flush=True)


async def _spawn(stack: AsyncExitStack, name: str, *argv: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(*argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack.push_async_callback(_stop, name, proc)
    return proc


async def _stop(name: str, proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            log.warning("demo.kill", process=name)
            proc.kill()
            await proc.wait()


async def _wait_port(port: int, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            writer.close()
            return
