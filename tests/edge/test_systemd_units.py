"""The shipped systemd units are valid and hardened as the design asks."""

import configparser
import json
import re
import shutil
import subprocess
import sys
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


def test_station_unit_is_notify_watchdog_and_no_restart_on_config_error_or_corrupt_database():
    service = _unit("checkpoint-edge@.service")["Service"]
    assert service["Type"] == "notify"
    assert "WatchdogSec" in service
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"].split() == ["78", "65"]  # CONFIG_ERROR_EXIT, STORE_CORRUPT_EXIT


def test_station_unit_is_hardened_with_serial_devices_only():
    text = (ROOT / "systemd" / "checkpoint-edge@.service").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert "ProtectSystem=strict" in lines and "NoNewPrivileges=yes" in lines
    assert "DevicePolicy=closed" in lines and "SupplementaryGroups=dialout" in lines
    assert "DeviceAllow=char-ttyUSB rw" in lines
    assert not any(line.startswith("PrivateDevices") for line in lines)


def _env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a systemd EnvironmentFile (comments and blanks skipped)."""
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


STATION_ENV_EXAMPLES = sorted(p for p in (ROOT / "systemd").glob("*.env.example") if p.name != "hub.env.example")


@pytest.mark.parametrize("example", STATION_ENV_EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_station_env_example_loads_with_an_example_config(example, monkeypatch):
    from edge.config import load_config

    env = _env_file(example)
    assert env and all(key.startswith("EDGE_") for key in env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(ROOT / "examples" / "gantry.toml")  # raises ConfigError naming any unknown key
    if "EDGE_HTTP__PORT" in env:
        assert config.http.port == int(env["EDGE_HTTP__PORT"])
        assert config.station.id == "gantry-01"  # the file's other keys survive the override


def _exec_lines(unit: str, env: dict[str, str]) -> list[str]:
    """Every Exec*= line of a shipped unit with ${VAR} expanded from its example environment."""
    lines = [line.split("=", 1)[1] for line in (ROOT / "systemd" / unit).read_text().splitlines()
             if line.startswith("Exec")]
    for key, value in env.items():
        lines = [line.replace("${" + key + "}", value).replace("$" + key, value) for line in lines]
    return lines


def test_no_unit_puts_a_database_url_or_password_on_the_command_line():
    env = _env_file(ROOT / "systemd" / "hub.env.example") | {"HUB_DB": "postgresql://hub:s3cret@db/checkpoint"}
    for unit in UNITS.values():
        for line in _exec_lines(unit, env):
            assert not re.search(r"\w+://[^\s/@]*:[^\s/@]*@", line), f"{unit}: a password in {line}"
            assert not re.search(r"\w+://", line), f"{unit}: a URL on the command line (seen in ps): {line}"
            assert "--db " not in line and "--password " not in line, f"{unit}: {line}"


def test_hub_unit_takes_its_database_url_from_a_credential_and_its_cli_accepts_it():
    from central_sync.hub.cli import _parser

    credentials = dict(line.split("=", 1)[1].split(":", 1) for line in _lines("checkpoint-hub.service")
                       if line.startswith("LoadCredential="))
    assert credentials["hub-db"].startswith("/etc/") and credentials["mqtt-password"].startswith("/etc/")
    env = _env_file(ROOT / "systemd" / "hub.env.example")
    (line,) = _exec_lines("checkpoint-hub.service", env)
    assert "${" not in line  # every variable the unit uses is in the example environment
    argv = line.replace("%d", "/run/credentials/checkpoint-hub.service").split()
    assert argv[0].endswith("/edge-hub")
    args = _parser().parse_args(argv[1:])  # every option the unit passes exists
    assert args.db_file == Path("/run/credentials/checkpoint-hub.service/hub-db")
    assert args.password_file == Path("/run/credentials/checkpoint-hub.service/mqtt-password")
    assert args.broker_port == int(env["HUB_BROKER_PORT"])


def _lines(unit: str) -> list[str]:
    return [line.strip() for line in (ROOT / "systemd" / unit).read_text().splitlines()]


HARDENING = ("NoNewPrivileges=yes", "CapabilityBoundingSet=", "AmbientCapabilities=", "ProtectSystem=strict",
             "ProtectHome=yes", "PrivateTmp=yes", "UMask=0077", "ProtectKernelTunables=yes",
             "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes",
             "ProtectHostname=yes", "ProtectProc=invisible", "RestrictSUIDSGID=yes", "LockPersonality=yes",
             "RestrictRealtime=yes", "RestrictNamespaces=yes", "MemoryDenyWriteExecute=yes",
             "SystemCallArchitectures=native", "SystemCallFilter=@system-service",
             "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "DevicePolicy=closed")


@pytest.mark.parametrize("unit", UNITS.values())
def test_both_units_carry_the_hardening(unit):
    lines = _lines(unit)
    assert [line for line in HARDENING if line not in lines] == []
    assert any(line.startswith("ReadWritePaths=/var/lib/") for line in lines)


def test_hub_unit_sees_no_devices_and_only_its_own_proc():
    lines = _lines("checkpoint-hub.service")
    assert "PrivateDevices=yes" in lines and "ProcSubset=pid" in lines and "PrivateUsers=yes" in lines


def test_station_unit_allows_every_serial_port_family():
    allowed = {line.split("=", 1)[1] for line in _lines("checkpoint-edge@.service") if line.startswith("DeviceAllow=")}
    for family in ("ttyS", "ttyUSB", "ttyACM", "ttyAMA", "ttyXR", "ttySC"):
        assert f"char-{family} rw" in allowed


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("installed", UNITS)
def test_systemd_analyze_security_rates_both_units_ok(installed, tmp_path):
    (tmp_path / installed).write_text((ROOT / "systemd" / UNITS[installed]).read_text())
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=25",
                             str(tmp_path / installed)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]  # exposure 2.5 or less: "OK"


MDWE_RUN = """
import ctypes, runpy, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(3)
sys.argv = ["edge", *sys.argv[1:]]
runpy.run_module("edge.cli", run_name="__main__", alter_sys=True)
"""


def test_the_detector_runs_under_memory_deny_write_execute():
    """MemoryDenyWriteExecute=yes in the station unit: onnxruntime (CPU) must not need W+X pages."""
    scan = ROOT / "examples" / "scans" / "bag_firearm_01.npz"
    result = subprocess.run([sys.executable, "-c", MDWE_RUN, "detect", str(scan)], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    if result.returncode == 3:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 and later)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert any(d["label"] == "firearm" for d in json.loads(result.stdout))


def _udev_rules() -> list[dict[str, str]]:
    """Each rule of the shipped udev file as {key: value}, keys with their operator (`ATTRS{serial}==`)."""
    text = (ROOT / "systemd" / "99-checkpoint-edge.rules").read_text().replace("\\\n", " ")
    rules = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pairs = re.findall(r'([A-Z_]+(?:\{[^}]+\})?)\s*([=!+:]?=)\s*"([^"]*)"', line)
            rules.append({key + op: value for key, op, value in pairs})
    return rules


GLOB = re.compile(r"[*?\[]")


def test_udev_rules_match_one_adapter_each_never_a_vendor_alone():
    rules = _udev_rules()
    assert rules
    for rule in rules:
        assert rule.get("SUBSYSTEM==") == "tty", rule
        assert not GLOB.search(rule["ATTRS{idVendor}=="]) and not GLOB.search(rule["ATTRS{idProduct}=="]), rule
        identity = rule.get("ATTRS{serial}==") or rule.get("ENV{ID_PATH}==")  # adapters without a serial: the port
        assert identity and not GLOB.search(identity), f"matches every adapter of its type: {rule}"
        assert rule["SYMLINK+="].startswith("cpe/") and "$" not in rule["SYMLINK+="], rule
        assert rule.get("ENV{ID_MM_DEVICE_IGNORE}=") == "1", rule  # ModemManager must not probe a PLC or controller


def test_udev_template_covers_ftdi_cp210x_ch340_pl2303_and_cdc_acm():
    ids = {(r["ATTRS{idVendor}=="], r["ATTRS{idProduct}=="]) for r in _udev_rules()}
    for vendor_product in (("0403", "6001"), ("10c4", "ea60"), ("1a86", "7523"), ("067b", "2303")):
        assert vendor_product in ids
    assert any(r.get("KERNEL==", "").startswith("ttyACM") for r in _udev_rules())
