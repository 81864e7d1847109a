"""The README's first command: the simulated checkpoint brings records from every station to the hub."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_base_port() -> int:
    """A base port with the next three ports free too (the demo uses base .. base+3)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 3 < 65535 and all(_free(base + i) for i in range(4)):
            return base
    raise RuntimeError("no four consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _healthz(port: int, until: float) -> dict:
    """The station screen's health, asked again until `until` when a read times out (the demo's processes share two
    cores with the suite's other worker)."""
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        except httpx.HTTPError:
            if time.monotonic() > until:
                raise
            time.sleep(1)


@pytest.mark.slow
def test_demo_brings_records_from_every_station_to_the_hub(tmp_path):
    base = _free_base_port()
    # its output goes to a file: a pipe nobody reads until the end fills (64 KiB) and stops every process writing to it
    log_path = tmp_path / "demo-output.txt"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "demo", "--base-port", str(base), "--data-dir",
                                 str(tmp_path / "demo")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    stations: set[str] = set()
    gantry: list[dict] = []
    conveyor: list[dict] = []
    try:
        deadline = time.monotonic() + 150
        judged = {"clear", "detection", "model_cannot_clear", "seal_not_intact"}
        # until every station has sent and the model has judged a vehicle: under load (the suite's other
        # worker) the first vehicles may lose lines (scan_incomplete, manual), which is right, not the end
        while time.monotonic() < deadline and (len(stations) < 3 or not {g["reason"] for g in gantry} & judged):
            time.sleep(2)
            try:
                token = (tmp_path / "demo" / "hub-api.token").read_text().strip()
                rows = httpx.get(f"http://127.0.0.1:{base}/api/inspections?limit=200", timeout=5,
                                 headers={"Authorization": f"Bearer {token}"}).json()
            except (httpx.HTTPError, OSError):
                continue
            items = rows["items"] if isinstance(rows, dict) else rows
            stations |= {r["record"]["station"] for r in items}
            gantry = [r["record"] for r in items if r["record"]["station"] == "gantry-01"]
            conveyor = [r["record"] for r in items if r["record"]["station"] == "conveyor-01"]
        try:
            screen = _healthz(base + 2, until=time.monotonic() + 60)
        except httpx.HTTPError as exc:
            screen = {"unanswered": repr(exc)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        output = log_path.read_text(errors="replace")
    errors = "\n".join([line for line in output.splitlines() if "[error" in line or "Traceback" in line][-40:])
    assert "unanswered" not in screen, f"the conveyor screen's /healthz: {screen}\n{errors}\n{output[-4000:]}"
    assert stations == {"gantry-01", "conveyor-01", "xray-01"}, output[-3000:]
    assert screen["model"]["state"] == "ok"
    # the gantry shows vehicles from the portal generator, judged by the model made for them
    assert {(g["kind"], (g["model"] or {}).get("name")) for g in gantry} == {("vehicle", "cpe-gantry")}, gantry
    # every vehicle and bag carries its identities (tests/edge/test_demo_identities.py: that they are its own)
    assert all({"rfid_tid", "rfid_epc", "seal"} <= {i["kind"] for i in g["identities"]} for g in gantry), gantry
    assert all(any(i["kind"] == "rfid_epc" for i in r["identities"]) for r in conveyor), conveyor
    # a loaded machine may lose lines or miss the budget (manual, fail-safe): the model must judge some and
    # refuse none as not made for them
    reasons = {g["reason"] for g in gantry}
    assert reasons & judged, gantry
    # the scanner streams the demo's vehicles: their pool is no station's scan store, whose start moves the scans no
    # record names to orphans/ (it took the pool, and the gantry's scanner had nothing to stream)
    assert "device_fault" not in reasons, gantry
    assert "store.orphan_moved" not in output
    assert "model_not_applicable" not in reasons, gantry
    assert "Checkpoint Edge demo is running" in output


@pytest.mark.parametrize(("base", "ports"), [(70000, "70000 to 70003"), (65533, "65533 to 65536"), (0, "0 to 3")])
def test_a_base_port_putting_a_port_past_65535_names_the_option_and_makes_nothing(tmp_path, capsys, base, ports):
    """`edge demo --base-port 70000` wrote its configs and keys and then said `configs/gantry.toml: http.port: Input
    should be less than or equal to 65535 (got 70001)`, a key the user never typed."""
    from edge.cli import main

    assert main(["demo", "--base-port", str(base), "--data-dir", str(tmp_path / "demo")]) == 78
    assert capsys.readouterr().err.splitlines() == [
        f"edge demo: --base-port {base} is out of range: the demo listens on ports {ports}, so give a number from 1"
        " to 65532"]
    assert not (tmp_path / "demo").exists()
