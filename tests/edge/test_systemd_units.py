"""The shipped systemd units are valid and hardened as the design asks."""

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"checkpoint-edge@demo.service": "checkpoint-edge@.service", "checkpoint-hub.service": "checkpoint-hub.service"}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "systemd" / name)
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify(tmp_path):
    paths = []
    for installed, source in UNITS.items():
        text = (ROOT / "systemd" / source).read_text().replace("/opt/checkpoint-edge", str(ROOT))
        (tmp_path / installed).write_text(text)
        paths.append(str(tmp_path / installed))
    result = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_station_unit_is_notify_watchdog_and_no_restart_on_config_error():
    service = _unit("checkpoint-edge@.service")["Service"]
    assert service["Type"] == "notify"
    assert "WatchdogSec" in service
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "78"


def test_station_unit_is_hardened_with_serial_devices_only():
    text = (ROOT / "systemd" / "checkpoint-edge@.service").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert "ProtectSystem=strict" in lines and "NoNewPrivileges=yes" in lines
    assert "DevicePolicy=closed" in lines and "SupplementaryGroups=dialout" in lines
    assert "DeviceAllow=char-ttyUSB rw" in lines
    assert not any(line.startswith("PrivateDevices") for line in lines)
