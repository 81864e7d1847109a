"""The real-hardware example configs (examples/real-*.toml) are valid and name no simulator.

A vendor or integrator starts from these files, so they must pass `edge check-config` and use the
real kinds, stable serial paths and a secured broker link.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = {"gantry": ROOT / "examples" / "real-gantry.toml", "conveyor": ROOT / "examples" / "real-conveyor.toml",
        "xray": ROOT / "examples" / "real-xray.toml"}


def _kinds(tree: dict, path: str = "") -> dict[str, str]:
    """Every `kind` in a config tree by its key path."""
    found = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= _kinds(value, f"{path}{key}.")
        elif key == "kind":
            found[path.rstrip(".")] = value
    return found


def test_edge_check_config_accepts_every_real_example():
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", "--skip-files",  # /etc lives on the station
                             *map(str, REAL.values())], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{path}: ok" for path in REAL.values()]


@pytest.mark.parametrize("station_kind", REAL)
def test_real_example_uses_real_devices_stable_ports_and_a_secured_broker(station_kind):
    config = tomllib.loads(REAL[station_kind].read_text())
    assert config["station"]["kind"] == station_kind
    kinds = _kinds(config["devices"])
    assert kinds and not any(kind.startswith("sim") for kind in kinds.values()), kinds
    ports = [dev[key] for dev in _devices(config["devices"]) for key in ("port", "serial_port")
             if isinstance(dev.get(key), str)]  # a Modbus TCP `port` is a number
    assert all(p.startswith(("/dev/serial/by-id/", "/dev/cpe/")) for p in ports), ports
    assert Path(config["station"]["data_dir"]) == Path("/var/lib/checkpoint-edge") / config["station"]["id"]
    sync = config["sync"]
    assert sync["port"] == 8883 and "ca_file" in sync["tls"] and sync["username"] == config["station"]["id"]
    assert "password_file" in sync and "password" not in sync


def _devices(devices: dict) -> list[dict]:
    """The device sections (readers, cameras and seal readers are one level deeper)."""
    nested = ("readers", "cameras", "seals")
    flat = [dev for name, dev in devices.items() if name not in nested]
    return flat + [dev for group in nested for dev in devices.get(group, {}).values()]
