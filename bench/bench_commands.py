"""Commands from the control room (issue 21 item 7): how long from the supervisor's "Sign and send" to the
station's applied result stored at the hub, with the settings that show the change, and how long a remote
diagnostic run (quick plan, the simulated conveyor's devices) takes from the request to its report at the hub.
Real Mosquitto, the hub's ControlRoom and a station receiver with the daemon's handlers (a real detector).
Prints the figures and writes bench/results/commands.json. Never asserts.

Run:  .venv/bin/python bench/bench_commands.py [--commands 50] [--diag 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from central_sync import commands as c  # noqa: E402
from central_sync.config import BrokerConfig  # noqa: E402
from central_sync.control_room import ControlRoom, ControlRoomConfig, commanding  # noqa: E402
from central_sync.devtools import Mosquitto  # noqa: E402
from central_sync.hub.service import Hub  # noqa: E402
from central_sync.hub.store import open_store  # noqa: E402
from models.testgraphs import write_package  # noqa: E402
from command_station import command_station  # noqa: E402


async def wait_for(probe: Callable[[], object], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not await asyncio.to_thread(probe):
        if time.monotonic() > end:
            raise TimeoutError("no answer from the station")
        await asyncio.sleep(0.005)


async def run(n_commands: int, n_diag: int, work: Path) -> dict:
    c.generate_keypair(work / "hub.key", work / "hub.pub")
    store = open_store(str(work / "hub.sqlite3"))
    with Mosquitto(work / "broker") as broker:
        broker_cfg = BrokerConfig(port=broker.port)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(Hub(broker_cfg, store, "hub-bench"))
            room = await stack.enter_async_context(ControlRoom(store, broker_cfg, ControlRoomConfig(
                signing_key=work / "hub.key", client_id="cr-bench")))
            rig = await command_station(stack, work, broker.port, write_package(work / "model", "cpe-fcos-v1", 128),
                                        status_period_s=1.0)
            station = rig.config.station.id
            await wait_for(lambda: commanding.settings_of(store, station))
            applied = []
            for i in range(n_commands):
                value = round(0.2 + (i % 50) / 100, 2)
                t0 = time.perf_counter()
                cmd = room.send(station, "set_thresholds", {"thresholds": {"metal": value}}, "bench")
                await wait_for(lambda: ((commanding.settings_of(store, station) or {}).get("last_command")
                                        or {}).get("id") == cmd.id)
                applied.append((time.perf_counter() - t0) * 1000)
            diag = []
            for _ in range(n_diag):
                t0 = time.perf_counter()
                cmd = room.send(station, "request_diag", {"plan": "quick"}, "bench")
                await wait_for(lambda: store.query("SELECT 1 FROM cr_command_reports WHERE id=?", (cmd.id,)), 120)
                diag.append(time.perf_counter() - t0)
    q = statistics.quantiles(applied, n=20) if len(applied) >= 2 else applied * 19
    return {"host": platform.node(), "python": platform.python_version(), "commands": n_commands,
            "send_to_settings_at_hub_ms": {"median": round(statistics.median(applied), 1), "p95": round(q[18], 1),
                                           "max": round(max(applied), 1)},
            "diag_runs": n_diag, "diag_quick_request_to_report_s": [round(d, 2) for d in diag]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=50)
    ap.add_argument("--diag", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as tmp:
        out = asyncio.run(run(args.commands, args.diag, Path(tmp)))
    print(f"set_thresholds, sign to applied settings at the hub over {out['commands']} commands:"
          f" median {out['send_to_settings_at_hub_ms']['median']} ms, p95 {out['send_to_settings_at_hub_ms']['p95']} ms,"
          f" max {out['send_to_settings_at_hub_ms']['max']} ms")
    print(f"request_diag quick, request to report at the hub: {out['diag_quick_request_to_report_s']} s")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "commands.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
