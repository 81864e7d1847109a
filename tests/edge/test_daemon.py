"""The real daemon process: READY over sd_notify, health and metrics, and kill -9 loses nothing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from central_sync.devtools import free_port
from edge.store import Store
from models.testgraphs import write_package
from polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _write_config(tmp: Path, port: int, model_dir: Path, station: str = "xray-test") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "station.toml"
    config.write_text(f"""
[station]
id = "{station}"
kind = "xray"
item_kind = "parcel"
budget_ms = 5000
data_dir = "{tmp / 'data'}"

[model]
dir = "{model_dir}"

[http]
port = {port}

[web.tip]
enabled = false

[devices.source]
kind = "sim-filedrop"
folder = "{tmp / 'drop'}"
settle_ms = 50
poll_ms = 20

[devices.source.sim]
scan_dir = "{ROOT / 'examples' / 'scans'}"
interval_ms = 30
file_format = "npz"
""")
    return config


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, as systemd stops the daemon; one that has not exited 60 s later is hung: killed, so that it never
    outlives its test (a hung daemon once ran on through the rest of a CI run), and the test fails saying so."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"the daemon (pid {proc.pid}) did not stop within 60 s of SIGTERM: killed")


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM inspections").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    yield path, sock
    sock.close()


def test_daemon_ready_health_metrics_and_kill_9(tmp_path, notify_socket):
    path, sock = notify_socket
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, port, model)
    env = {**os.environ, "NOTIFY_SOCKET": path, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)  # a pipe unread would fill
    try:
        message = sock.recv(4096).decode()
        assert message.startswith("READY=1"), message
        assert "model loaded" in message
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
        assert health["devices"]["source"]["state"] == "ok"
        db = tmp_path / "data" / "station.db"
        wait_until(lambda: _count(db), "15 records committed", check=lambda n: n >= 15, timeout=90, interval=0.2)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'edge_verdicts_total{reason="clear",verdict="clear"}' in metrics
        assert "edge_stage_seconds_bucket" in metrics
        committed_before_kill = _count(db)
        assert committed_before_kill >= 15
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with Store(tmp_path / "data") as store:  # integrity check runs on open
        seqs = [r[0] for r in store.conn.execute("SELECT seq FROM inspections ORDER BY seq")]
        outbox = store.conn.execute("SELECT count(DISTINCT record_id) FROM outbox").fetchone()[0]
    assert len(seqs) >= committed_before_kill
    assert seqs == list(range(1, len(seqs) + 1))
    assert outbox == len(seqs)  # every record still waits for the hub: none lost, none half-written


def test_a_scan_file_left_by_a_crash_before_its_record_leaves_the_scan_cap_at_start(tmp_path):
    """kill -9 between writing a scan and committing its record leaves a file no record names; the daemon moves
    it to data_dir/orphans/ when it starts (it counted against the scan cap for ever)."""
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, port, model)
    with Store(tmp_path / "data") as store:
        assert store.put_scan("0f" * 32, b"left by a crash")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _count(tmp_path / "data" / "station.db"), "the station inspects",
                   check=lambda n: n >= 1 or proc.poll(), timeout=90, interval=0.2)
        assert proc.poll() is None
    finally:
        _stop(proc)
    assert not (tmp_path / "data" / "scans" / "0f" / f"{'0f' * 32}.npz").exists()
    assert (tmp_path / "data" / "orphans" / "scans" / f"{'0f' * 32}.npz").read_bytes() == b"left by a crash"


def test_config_error_exits_78_with_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[station]\nid = "x"\nkind = "xray"\nitem_kind = "parcel"\nbudget_ms = 100\n'
                   'data_dir = "d"\nbogus = 1\n')
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(bad)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 78
    assert f"{bad}: station.bogus: unknown key" in result.stderr


def test_check_config_accepts_examples_and_names_the_broken_key(tmp_path):
    simulated = sorted(str(p) for p in (ROOT / "examples").glob("*.toml") if not p.name.startswith("real-"))
    ok = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", *simulated], capture_output=True, text=True,
                        cwd=ROOT, timeout=60)
    assert ok.returncode == 0, ok.stderr
    real = sorted(str(p) for p in (ROOT / "examples").glob("real-*.toml"))  # their /etc files live on the station
    ok = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", "--skip-files", *real], capture_output=True,
                        text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text((ROOT / "examples" / "conveyor.toml").read_text().replace("budget_ms = 2000", "budget_ms = -5"))
    bad = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(broken)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 78  # the config error's exit status, as `edge run` says it
    assert bad.stderr.strip().splitlines() == [
        f"{broken}: station.budget_ms: Input should be greater than or equal to 100 (got -5)"]


def test_binary_config_exits_78_with_the_file(tmp_path):
    binary = tmp_path / "station.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(range(256)))
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(binary)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 78, result.stderr
    assert result.stderr.strip().splitlines() == [f"{binary}: <file>: is not UTF-8 text (byte 0): not a TOML config"]


def test_corrupt_database_exits_65_names_it_and_leaves_it(tmp_path):
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, free_port(), model)
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "station.db"
    garbage = b"SQLite format 3\x00" + os.urandom(8192)
    db.write_bytes(garbage)
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 65, result.stderr[-2000:]
    assert '"event": "station.store_corrupt"' in result.stdout
    assert str(db) in result.stderr
    assert db.read_bytes() == garbage  # never overwritten: the evidence stays for a technician


def test_a_taken_port_or_an_unwritable_data_dir_exits_78_in_one_sentence(tmp_path):
    """Both were retried every 5 s with a traceback, the store, model and devices opened again each time, READY
    never sent: systemd killed and restarted the daemon for ever. Restarting cannot mend them."""
    import socket

    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    port = free_port()
    config = _write_config(tmp_path, port, model)
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                                text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 78, result.stderr[-2000:]
    assert f"http.port {port}" in result.stderr and "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "data" / "station.db").exists()  # nothing was opened before the port was had
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data").chmod(0o500)
    try:
        if os.access(tmp_path / "data", os.W_OK):  # root writes anywhere: make the data_dir a file instead
            (tmp_path / "data").chmod(0o700)
            (tmp_path / "data").rmdir()
            (tmp_path / "data").write_text("not a folder")
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                                text=True, cwd=ROOT, timeout=60)
    finally:
        if (tmp_path / "data").is_dir():
            (tmp_path / "data").chmod(0o700)
    assert result.returncode == 78, result.stderr[-2000:]
    assert f"data_dir {tmp_path / 'data'} cannot be written" in result.stderr and "Traceback" not in result.stderr


def test_a_second_daemon_on_the_same_data_dir_exits_78_naming_the_first(tmp_path):
    """Nothing stopped it: a second daemon (another port) reached READY and wrote into the same database."""
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    first_port, second_port = free_port(), free_port()
    config = _write_config(tmp_path, first_port, model)
    first = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _healthy(first_port), "the first daemon serves", timeout=60)
        second = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                                text=True, cwd=ROOT, timeout=60, env={**os.environ, "EDGE_HTTP__PORT": str(second_port)})
        assert second.returncode == 78, second.stderr[-2000:]
        assert f"in use by another process (pid {first.pid}" in second.stderr
        assert first.poll() is None and _healthy(first_port)
    finally:
        first.terminate()
        first.wait(30)


def _events(log: Path, event: str, station: str) -> int:
    text = log.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if f'"event": "{event}"' in line and f'"station": "{station}"' in line)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_one_failed_station_restarts_on_its_port_and_the_other_runs_on(tmp_path):
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    ports = {"xray-a": free_port(), "xray-b": free_port()}
    configs = [_write_config(tmp_path / s, p, model, s) for s, p in ports.items()]
    out = tmp_path / "daemon.log"
    args = [a for c in configs for a in ("--config", str(c))]
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", *args], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    db = {s: tmp_path / s / "data" / "station.db" for s in ports}
    drop = tmp_path / "xray-a" / "drop"
    try:
        wait_until(lambda: all(_count(d) >= 3 for d in db.values()), "both stations commit", timeout=90, interval=0.2)
        gone = drop.with_name("drop.gone")
        drop.rename(gone)                  # at once (removed file by file, the tree raced the simulator and the
        drop.write_text("not a folder")    # source still writing into it): the drop folder is gone, station a's
        shutil.rmtree(gone, ignore_errors=True)   # flow fails
        wait_until(lambda: _events(out, "station.failed", "xray-a"), "station a failed", timeout=60, interval=0.2)
        a_at_failure, b_at_failure = _count(db["xray-a"]), _count(db["xray-b"])
        drop.unlink()
        wait_until(lambda: _events(out, "station.ready", "xray-a"), "station a ready again",
                   check=lambda n: n >= 2 or proc.poll() is not None, timeout=90, interval=0.2)
        assert proc.poll() is None, out.read_text()[-3000:]
        wait_until(lambda: _count(db["xray-a"]), "station a commits again", check=lambda n: n > a_at_failure,
                   timeout=90, interval=0.2)
        assert _healthy(ports["xray-a"]) and _healthy(ports["xray-b"])
        assert _count(db["xray-b"]) > b_at_failure
    finally:
        _stop(proc)


def _notified(sock: socket.socket, timeout: float, until: str | None = None) -> list[str]:
    """The datagrams the daemon sent to the notify socket within `timeout` seconds (up to one starting `until`)."""
    got: list[str] = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if until is not None and got[-1].startswith(until):
            break
    return got


def test_a_process_of_two_stations_is_ready_once_each_came_to_its_first_outcome(tmp_path, notify_socket):
    """READY=1 went out with the first station's ready, whatever the other was doing. Now it waits for each station's
    first outcome: ready, or failed (restarted by its supervisor: a station failing at every start must not hold
    READY back, or systemd would stop the healthy one with it), and STATUS names each."""
    path, sock = notify_socket
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    ports = {"xray-a": free_port(), "xray-b": free_port()}
    configs = [_write_config(tmp_path / s, p, model, s) for s, p in ports.items()]
    drop = tmp_path / "xray-b" / "drop"
    drop.parent.mkdir(parents=True, exist_ok=True)
    drop.write_text("not a folder")  # station b fails at every start until it is mended
    out = tmp_path / "daemon.log"
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", *[a for c in configs for a in ("--config", str(c))]],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFY_SOCKET": path})
    try:
        told = _notified(sock, 90.0, until="READY=1")
        ready = [m for m in told if m.startswith("READY=1")]
        assert len(ready) == 1, told
        assert "xray-a: " in ready[0] and "xray-b: station xray-b failed, restarting in 5 s: " in ready[0], ready
        # the log is written by its own thread (appliance/logs.py): the line may follow READY by a moment
        wait_until(lambda: _events(out, "station.failed", "xray-b"), "station b's failure logged", timeout=10,
                   interval=0.1)
        drop.unlink()
        later = _notified(sock, 90.0, until="STATUS=xray-a: ")
        wait_until(lambda: _events(out, "station.ready", "xray-b"), "station b ready", timeout=90, interval=0.2)
        assert not any(m.startswith("READY=1") for m in later), later  # READY once
        assert proc.poll() is None
    finally:
        _stop(proc)


def test_the_process_watchdog_sees_a_stalled_task_of_any_station():
    """Each station sent WATCHDOG=1 for its own tasks: one station's kept the process alive while another hung."""
    from appliance.watchdog import Progress
    from edge.daemon import Stations

    stations = Stations(["a", "b"])
    for station in ("a", "b"):
        stations.progress[station] = Progress(stall_after_s=10)
        stations.progress[station].register("flow")
    assert stations.stalled() == []
    stations.progress["b"]._last["flow"] -= 60
    assert stations.stalled() == ["b:flow"]


SYNC_WITH_MISSING_FILES = """
[sync]
host = "127.0.0.1"
port = {port}
tls = {{ ca_file = "{tmp}/ca.crt" }}
username = "xray-test"
password_file = "{tmp}/mqtt.pw"

[commands]
hub_public_key = "{tmp}/hub.pub"
"""


def test_check_config_names_every_missing_file(tmp_path):
    config = _write_config(tmp_path, free_port(), tmp_path / "model")
    config.write_text(config.read_text() + SYNC_WITH_MISSING_FILES.format(port=free_port(), tmp=tmp_path))
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 78, result.stdout
    assert result.stderr.strip().splitlines() == [
        f"{config}: model.dir: {tmp_path / 'model'} is not a directory",
        f"{config}: sync.tls.ca_file: {tmp_path / 'ca.crt'} cannot be read: No such file or directory",
        f"{config}: sync.password_file: {tmp_path / 'mqtt.pw'} cannot be read: No such file or directory",
        f"{config}: commands.hub_public_key: {tmp_path / 'hub.pub'} cannot be read: No such file or directory",
    ]


def test_missing_sync_files_never_stop_inspection(tmp_path):
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, port, model)
    config.write_text(config.read_text() + SYNC_WITH_MISSING_FILES.format(port=free_port(), tmp=tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        db = tmp_path / "data" / "station.db"
        wait_until(lambda: _count(db), "records committed without sync", check=lambda n: n >= 5 or proc.poll(),
                   timeout=90, interval=0.2)
        health = wait_until(lambda: _health(port), "the alarms on /healthz",
                            check=lambda h: h and len(h.get("alarms", [])) >= 2, timeout=60, interval=0.2)
        codes = {code: message for code, message in health["alarms"]}
        assert codes["commands_unavailable"] == (f"signed commands from the hub are off: key file"
                                                 f" {tmp_path / 'hub.pub'}"
                                                 " cannot be read: [Errno 2] No such file or directory:"
                                                 f" '{tmp_path / 'hub.pub'}'")
        assert codes["config_files"].startswith(f"sync.tls.ca_file: {tmp_path / 'ca.crt'} cannot be read")
        assert proc.poll() is None
    finally:
        _stop(proc)


def _health(port: int) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
    except httpx.HTTPError:
        return None


def _manual_records(db: Path) -> list[tuple[str, str]]:
    """Manual records for an incomplete scan (a loaded machine may also miss a budget: not these)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT id, reason FROM inspections WHERE verdict = 'manual'"
                                " AND reason = 'scan_incomplete'").fetchall()
    except sqlite3.OperationalError:
        return []


def test_a_rejected_scan_file_becomes_a_manual_record_and_an_alarm(tmp_path):
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, port, model)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        db = tmp_path / "data" / "station.db"
        wait_until(lambda: _count(db), "the station inspects", check=lambda n: n >= 3 or proc.poll(), timeout=90,
                   interval=0.2)
        assert _manual_records(db) == []  # the simulator's scans are whole
        whole = (ROOT / "examples" / "scans").glob("*.npz").__next__().read_bytes()
        part = tmp_path / "drop" / "truncated.npz.part"
        part.write_bytes(whole[: len(whole) // 2])  # the vendor's writer stopped half-way
        part.rename(tmp_path / "drop" / "truncated.npz")
        manual = wait_until(lambda: _manual_records(db), "a manual record for the rejected file", timeout=60,
                            interval=0.2)
        assert [reason for _, reason in manual] == ["scan_incomplete"]
        health = wait_until(lambda: _health(port), "the alarm on /healthz",
                            check=lambda h: h and any(code == "scan_rejected" for code, _ in h.get("alarms", [])),
                            timeout=60, interval=0.2)
        message = dict(health["alarms"])["scan_rejected"]
        assert message.startswith(f"scan file truncated.npz from xray-test/source was rejected,"
                                  f" record {manual[0][0]} is manual:")
        assert (tmp_path / "drop" / "rejected" / "truncated.npz").exists()
    finally:
        _stop(proc)


def test_a_full_disk_keeps_the_station_deciding_alarms_and_recovers(tmp_path, small_disk):
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, port, model)
    config.write_text(config.read_text().replace(f'data_dir = "{tmp_path / "data"}"', f'data_dir = "{small_disk}"')
                      + "\n[store]\nreserve_mb = 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = small_disk / "station.db"
    try:
        wait_until(lambda: _count(db), "the station inspects", check=lambda n: n >= 3 or proc.poll(), timeout=90,
                   interval=0.2)
        filler = small_disk.fill()
        health = wait_until(lambda: _health(port), "disk_full on /healthz",
                            check=lambda h: (h and "disk_full" in dict(h.get("alarms", []))) or proc.poll(),
                            timeout=90, interval=0.2)
        assert proc.poll() is None
        assert health["store"]["full"].startswith(f"station database {db} is full")
        manual = 'edge_verdicts_total{reason="store_full",verdict="manual"}'
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, "items decided manual",
                   check=lambda text: manual in text, timeout=60, interval=0.2)
        at_full = _count(db)
        filler.unlink()  # room again
        wait_until(lambda: _health(port), "the alarm gone",
                   check=lambda h: h and "disk_full" not in dict(h.get("alarms", [])), timeout=90, interval=0.2)
        wait_until(lambda: _count(db), "records written again", check=lambda n: n > at_full, timeout=60, interval=0.2)
        assert proc.poll() is None
    finally:
        _stop(proc)


def test_an_empty_password_file_is_named_by_check_config_and_never_stops_inspection(tmp_path):
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = _write_config(tmp_path, port, model)
    (tmp_path / "mqtt.pw").write_bytes(b"")
    config.write_text(config.read_text() + f'\n[sync]\nport = {free_port()}\nusername = "xray-test"\n'
                                           f'password_file = "{tmp_path / "mqtt.pw"}"\n')
    check = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(config)], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
    assert check.stderr.strip().splitlines() == [f"{config}: sync.password_file: {tmp_path / 'mqtt.pw'} is empty"]
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = wait_until(lambda: _health(port), "the alarm on /healthz",
                            check=lambda h: (h and "commands_unavailable" in dict(h.get("alarms", []))) or proc.poll(),
                            timeout=90, interval=0.2)
        assert dict(health["alarms"]) == {
            "config_files": f"sync.password_file: {tmp_path / 'mqtt.pw'} is empty",
            "commands_unavailable": f"signed commands from the hub are off: password file {tmp_path / 'mqtt.pw'}"
                                    " is empty"}
        wait_until(lambda: _count(tmp_path / "data" / "station.db"), "records committed", check=lambda n: n >= 3,
                   timeout=60, interval=0.2)
        assert proc.poll() is None
    finally:
        _stop(proc)


def test_an_environment_override_that_sets_nothing_is_a_config_error(tmp_path, monkeypatch):
    """docs/deployment.md says an unknown name is a config error: EDGE_HTTP_PORT (one underscore) and a section
    that does not exist were silently ignored, and the station ran on the file's values."""
    from edge.config import load_config
    from edge.errors import ConfigError

    config = _write_config(tmp_path, 18180, tmp_path / "model")
    monkeypatch.setenv("EDGE_HUB_DB", "hub.sqlite3")  # another program's name: left alone
    monkeypatch.setenv("EDGE_LOG_FORMAT", "console")  # a top-level key
    assert load_config(config).log_format == "console"
    for name, says in (("EDGE_HTTP_PORT", "sets nothing: a key of [http] is EDGE_HTTP__PORT"),
                       ("EDGE_SCREEN__PORT", "names no section of the config")):
        monkeypatch.setenv(name, "9999")
        with pytest.raises(ConfigError) as err:
            load_config(config)
        assert f"{config}: ${name}: {says}" in str(err.value)
        monkeypatch.delenv(name)


def test_the_admin_commands_say_what_is_wrong_with_the_config_in_one_line(tmp_path, capsys):
    from edge.cli import main

    missing = tmp_path / "nowhere.toml"
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\n")
    for argv in (["audit", "verify", "--config", str(missing)],
                 ["user", "add", "--config", str(broken), "--badge", "B-1", "--name", "Ann", "--role", "officer"]):
        assert main(argv) == 78, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_threshold_override_must_be_a_number(tmp_path):
    """`knife = true` under [model] thresholds was read as 1.0 (the class never reported): now a config error."""
    from edge.config import load_config
    from edge.errors import ConfigError

    config = _write_config(tmp_path, 18181, tmp_path / "model")
    text = config.read_text()
    config.write_text(text.replace("[model]\n", "[model]\nthresholds = { knife = true, gun = 1 }\n", 1))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert "model.thresholds.knife" in str(err.value) and "gun" not in str(err.value)
    config.write_text(text.replace("[model]\n", "[model]\nthresholds = { knife = 0.3, gun = 1 }\n", 1))
    assert load_config(config).model.thresholds == {"knife": 0.3, "gun": 1.0}


def test_a_threshold_override_out_of_range_is_a_config_error_naming_it(tmp_path):
    """`knife = 5.0` (or -0.5, or nan) passed `edge check-config` and `edge run` started: the model then refused it
    at load, the station ran without its model and every item went to manual. Now the config names the key."""
    from edge.cli import main

    config = _write_config(tmp_path, 18182, tmp_path / "model")
    text = config.read_text()
    for value in ("5.0", "-0.5", "0", "nan", "inf"):
        config.write_text(text.replace("[model]\n", f"[model]\nthresholds = {{ knife = {value} }}\n", 1))
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 78, (value, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{config}: model.thresholds.knife: "), (value, lines)
        assert f"(got {value})" in lines[0], lines
    config.write_text(text.replace("[model]\n", "[model]\nthresholds = { knife = 1.0 }\n", 1))
    assert main(["check-config", "--skip-files", str(config)]) == 0


def _user_add(config: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "user", "add", "--config", str(config), *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, input=stdin)


def _web_users(data_dir: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data_dir / "station.db") as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'web_users'").fetchone() is None:
            return []
        return conn.execute("SELECT badge, name, role FROM web_users ORDER BY badge").fetchall()


def test_user_add_never_takes_the_pin_on_the_command_line(tmp_path):
    """`edge user add --pin 1234` put the PIN where every user of the machine reads it (ps, /proc/PID/cmdline) and
    in the shell's history; now refused in one sentence, nothing added. The PIN comes on stdin (without echo on a
    terminal), asked for only once the config loaded."""
    config = _write_config(tmp_path, 18183, tmp_path / "model")
    refused = _user_add(config, "--badge", "1A2B3C", "--name", "Ann", "--role", "officer", "--pin", "4711")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "edge user add: a PIN on the command line is seen by every user of this machine (ps, /proc) and kept in the"
        " shell's history; leave --pin out and type it when asked, or give it on stdin"]
    assert "4711" not in refused.stdout + refused.stderr
    assert not (tmp_path / "data" / "station.db").exists()
    added = _user_add(config, "--badge", "1a2b3c", "--name", "Ann", "--role", "officer", stdin="4711\n")
    assert added.returncode == 0, added.stderr
    assert "user Ann (officer) added for badge 1A2B3C" in added.stdout and "4711" not in added.stdout + added.stderr
    assert _web_users(tmp_path / "data") == [("1A2B3C", "Ann", "officer")]


def test_user_add_refuses_a_name_with_control_characters_or_too_long(tmp_path):
    """A name with a newline and an escape sequence (`Eve\\n\\x1b[31mX`), or one of a megabyte, was stored and shown
    on every screen and console log line naming the user; now refused in one sentence naming it, nothing added."""
    config = _write_config(tmp_path, 18184, tmp_path / "model")
    for name, shown in (("Eve\n\x1b[31mX", repr("Eve\n\x1b[31mX")), ("A" * 100_000, repr("A" * 101) + "...")):
        refused = _user_add(config, "--badge", "1A2B3C", "--name", name, "--role", "officer", stdin="4711\n")
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().splitlines() == [
            "edge user add: a user's name is at most 100 printable characters (no newlines, tabs or control"
            f" characters), got {shown}"]
    assert _web_users(tmp_path / "data") == []
    added = _user_add(config, "--badge", "1A2B3C", "--name", "陳大文 Chan Tai-man", "--role", "officer", stdin="4711\n")
    assert added.returncode == 0, added.stderr
    assert _web_users(tmp_path / "data") == [("1A2B3C", "陳大文 Chan Tai-man", "officer")]


def test_inf_in_any_float_of_the_config_is_a_config_error_naming_the_key(tmp_path):
    """Keys bounded only from below took inf and the station ran: `web.session_max_h = inf` sessions that never end,
    `model.dense_alert_mm2 = inf` the dense object rule off unsaid, `sync.ack_timeout_s = inf` records never resent;
    from the file or from an EDGE_ override, each is now one line naming the key, exit 78."""
    config = _write_config(tmp_path, 18185, tmp_path / "model")
    text = config.read_text()
    for section, key, value in (("web", "session_max_h", "inf"), ("model", "dense_alert_mm2", "inf"),
                                ("web.tip", "max_scale", "inf")):
        config.write_text(text.replace("[web.tip]\n", f"[web]\n\n[web.tip]\n", 1).replace(
            f"[{section}]\n", f"[{section}]\n{key} = {value}\n", 1))
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 78, (key, result.stderr[-2000:])
        assert result.stderr.strip().splitlines() == [
            f"{config}: {section}.{key}: Input should be a finite number (got {value})"], key
    config.write_text(text)
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60, env={**os.environ, "EDGE_WEB__SESSION_IDLE_MIN": "inf"})
    assert result.returncode == 78, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"{config}: web.session_idle_min: Input should be a finite number"
                                                  " (got inf)"]


def test_a_huge_refused_value_is_shown_by_its_head_in_the_one_line(tmp_path):
    """A station id of 100000 characters made a config error line of 100 kB: now its head and its length."""
    config = _write_config(tmp_path, 18186, tmp_path / "model")
    config.write_text(config.read_text().replace('id = "xray-test"', f'id = "{"x" * 100_000}"', 1))
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 78, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"{config}: station.id: String should match pattern '^[a-z0-9][a-z0-9-]{{0,62}}$' (got '{'x' * 79}...,"
        " 100000 characters)"]


def test_the_lane_is_a_short_printable_name(tmp_path):
    """`station.lane` took any string: empty, a newline (a forged line on the printed search report and the
    screens), 100 kB written into every record; now 1 to 32 characters without control characters."""
    config = _write_config(tmp_path, 18187, tmp_path / "model")
    text = config.read_text().replace('kind = "xray"\n', 'kind = "xray"\nlane = "A-2"\n', 1)
    config.write_text(text)
    assert main_check(config) == 0
    for lane, says in (('""', "String should have at least 1 character (got '')"),
                       ('"1\\n2"', "String should match pattern '^[^\\x00-\\x1f\\x7f]+$' (got '1\\n2')"),
                       (f'"{"L" * 33}"', f"String should have at most 32 characters (got '{'L' * 33}')")):
        config.write_text(text.replace('lane = "A-2"', f"lane = {lane}"))
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 78, (lane, result.stderr[-2000:])
        assert result.stderr.strip().splitlines() == [f"{config}: station.lane: {says}"], lane


def main_check(config: Path) -> int:
    from edge.cli import main

    return main(["check-config", "--skip-files", str(config)])


@pytest.mark.parametrize("spelled", ["one", "link"])
def test_two_stations_of_one_process_sharing_a_data_dir_are_refused_at_start(tmp_path, spelled):
    """Also when the second spells it through a link (or relative and absolute): that passed the start check, the
    second station met the first's lock as if another process held it (naming this process's own pid) and the
    process ran on."""
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    one = _write_config(tmp_path / "one", free_port(), model, station="one")
    two = _write_config(tmp_path / "two", free_port(), model, station="two")
    (tmp_path / "link").symlink_to(tmp_path / "one")
    two.write_text(two.read_text().replace(str(tmp_path / "two" / "data"), str(tmp_path / spelled / "data")))
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(one), "--config", str(two)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 78, result.stderr[-2000:]
    assert result.stderr.strip() == (f"{two}: station.data_dir: {(tmp_path / 'one' / 'data').resolve()} is also {one}'s;"
                                     " two stations cannot share it")


def test_a_budget_no_inference_fits_in_is_a_config_error(tmp_path):
    """`budget_ms = 5` (or 0.001) started a station whose every item went to manual, `budget missed`: one tile of the
    smallest model takes about 30 ms. Now at least 100 ms, else one line naming station.budget_ms, exit 78."""
    config = _write_config(tmp_path, 18188, tmp_path / "model")
    text = config.read_text()
    assert "budget_ms = 5000\n" in text
    for value in ("5", "0.001", "0"):
        config.write_text(text.replace("budget_ms = 5000\n", f"budget_ms = {value}\n"))
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 78, (value, result.stderr[-2000:])
        assert result.stderr.strip().splitlines() == [
            f"{config}: station.budget_ms: Input should be greater than or equal to 100 (got {value})"], value
    config.write_text(text.replace("budget_ms = 5000\n", "budget_ms = 100\n"))
    assert main_check(config) == 0


def test_an_environment_override_that_is_not_json_where_json_is_taken_is_a_config_error(tmp_path, monkeypatch):
    """EDGE_HTTP=8081 (a whole section) or EDGE_MODEL__THRESHOLDS=knife ended in pydantic-settings' SettingsError
    traceback, exit 1: systemd restarted the station for ever. Now one line naming the variable, exit 78."""
    config = _write_config(tmp_path, 18189, tmp_path / "model")
    for name, value, says in (
            ("EDGE_HTTP", "8081", "is not a JSON object (got '8081'): it replaces the whole [http] section; one key"
                                  " is EDGE_HTTP__<KEY>"),
            ("EDGE_MODEL__THRESHOLDS", "knife", "is not the JSON its key takes (Expecting value: line 1 column 1"
                                                " (char 0)), e.g. EDGE_MODEL__THRESHOLDS='{\"knife\": 0.4}'")):
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], capture_output=True,
                                text=True, cwd=ROOT, timeout=60, env={**os.environ, name: value})
        assert result.returncode == 78, (name, result.stderr[-2000:])
        assert result.stderr.strip().splitlines() == [f"{config}: ${name}: {says}"], name
    from edge.config import load_config

    monkeypatch.setenv("EDGE_SYNC", "null")  # an optional section left out
    assert load_config(config).sync is None


def test_audit_verify_where_there_is_no_database_says_so_and_makes_none(tmp_path):
    """`edge audit verify` on a config whose data_dir holds no database (relative to another folder than the
    daemon's, a typo) made an empty one and answered `audit chain intact`, exit 0: now exit 1 naming the path."""
    config = _write_config(tmp_path, 18190, tmp_path / "model")
    result = subprocess.run([sys.executable, "-m", "edge.cli", "audit", "verify", "--config", str(config)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"edge: station xray-test has no database at {tmp_path / 'data' / 'station.db'} (station.data_dir"
        f" {tmp_path / 'data'} of {config}); nothing was read or made"]
    assert "intact" not in result.stdout and not (tmp_path / "data").exists()


def test_user_add_replaces_a_badges_user_only_when_told(tmp_path):
    """`edge user add` with a badge that a supervisor has replaced that account (name, role, PIN) with the new
    officer's and said `added`: now refused in one sentence naming the holder, unless --replace."""
    config = _write_config(tmp_path, 18191, tmp_path / "model")
    assert _user_add(config, "--badge", "1A2B3C", "--name", "Lee", "--role", "supervisor", stdin="4711\n").returncode == 0
    refused = _user_add(config, "--badge", "1a2b3c", "--name", "Ann", "--role", "officer", stdin="1234\n")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "edge user add: badge 1A2B3C is Lee's (supervisor); give --replace to replace that user's name, role and PIN"]
    assert _web_users(tmp_path / "data") == [("1A2B3C", "Lee", "supervisor")]
    replaced = _user_add(config, "--badge", "1a2b3c", "--name", "Ann", "--role", "officer", "--replace", stdin="1234\n")
    assert replaced.returncode == 0, replaced.stderr
    assert _web_users(tmp_path / "data") == [("1A2B3C", "Ann", "officer")]


def test_an_execution_provider_onnxruntime_does_not_know_is_a_config_error(tmp_path):
    """`providers = ["CUDAExecutonProvider"]` (misspelt) loaded the model on the CPU without a word; `[]` too. A name
    onnxruntime knows but this host lacks still falls back to the CPU at load (models/runtime.py)."""
    config = _write_config(tmp_path, 18192, tmp_path / "model")
    text = config.read_text()
    for providers, says in (('["CUDAExecutonProvider"]', "'CUDAExecutonProvider' is no onnxruntime execution provider"),
                            ("[]", "name at least one onnxruntime execution provider")):
        config.write_text(text.replace("[model]\n", f"[model]\nproviders = {providers}\n", 1))
        result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 78, (providers, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{config}: model.providers: Value error, {says}"), lines
    config.write_text(text.replace("[model]\n", '[model]\nproviders = ["CUDAExecutionProvider", "CPUExecutionProvider"]\n',
                                   1))
    assert main_check(config) == 0


def test_a_sync_backoff_whose_shortest_wait_is_above_its_longest_is_a_config_error(tmp_path):
    """reconnect_min_s = 60 with reconnect_max_s = 1 was taken: every wait 60 s, while the checks of a session kept
    long enough went by the 1."""
    from edge.config import load_config
    from edge.errors import ConfigError

    config = _write_config(tmp_path, 18193, tmp_path / "model")
    text = config.read_text() + '\n[sync]\nhost = "127.0.0.1"\n'
    config.write_text(text + "reconnect_min_s = 60\nreconnect_max_s = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.problems == [("sync", "Value error, reconnect_min_s 60.0 is above reconnect_max_s 1.0")]
    config.write_text(text + "reconnect_min_s = 1\nreconnect_max_s = 1\n")
    assert load_config(config).sync is not None


def test_an_empty_data_dir_is_a_config_error(tmp_path):
    """`data_dir = ""` was the current folder: the station's database, scans and lock landed where the command ran."""
    from edge.config import load_config
    from edge.errors import ConfigError

    config = _write_config(tmp_path, 18194, tmp_path / "model")
    config.write_text(config.read_text().replace(f'data_dir = "{tmp_path / "data"}"', 'data_dir = " "', 1))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.problems == [("station.data_dir", "Value error, data_dir is empty: name the station's own folder,"
                                   " e.g. /var/lib/checkpoint-edge/gantry-01 (got ' ')")]


def test_the_seal_hold_is_a_config_key_in_its_range(tmp_path, capsys):
    """A seal that left the range stayed its item's for a constant 5 minutes: now `[seals] hold_s`, 30 s to an hour
    (shorter, a silence at the barrier hands the seal to the vehicle behind), refused outside in one line naming it."""
    from edge.config import load_config
    from edge.devices import Devices
    from edge.events import EventBus
    from edge.stations import FlowParts

    config = _write_config(tmp_path, 18189, tmp_path / "model")
    text = config.read_text()
    for value, says in (("5", "greater than or equal to 30"), ("7200", "less than or equal to 3600"),
                        ("nan", "a finite number"), ("inf", "a finite number")):
        config.write_text(text + f"\n[seals]\nhold_s = {value}\n")
        assert main_check(config) == 78, value
        assert capsys.readouterr().err.strip().splitlines() == [
            f"{config}: seals.hold_s: Input should be {says} (got {value})"], value
    config.write_text(text + "\n[seals]\nhold_s = 120\n")
    assert main_check(config) == 0
    parts = FlowParts(load_config(config), Devices(), None, EventBus(), None)  # type: ignore[arg-type]
    assert parts.tags().seal_hold_s == 120.0


def test_a_shadow_model_that_does_not_load_never_stops_inspection(tmp_path):
    """`[model] shadow_dir` names a model that only compares, never decides; one that did not load (here its hash
    no longer matches) failed the whole station at every start, 5 s apart: no screen, no records. Now the station
    inspects with its own model and an alarm says the shadow model is not loaded, in one sentence."""
    port = free_port()
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    shadow = write_package(tmp_path / "shadow", "cpe-fcos-v1", 128, version="2.0.0")
    (shadow / "model.onnx").write_bytes((shadow / "model.onnx").read_bytes() + b"\x00")
    config = _write_config(tmp_path, port, model)
    config.write_text(config.read_text().replace("[http]", f'shadow_dir = "{shadow}"\n\n[http]'))
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        db = tmp_path / "data" / "station.db"
        wait_until(lambda: _count(db), "records committed beside a broken shadow model",
                   check=lambda n: n >= 5 or proc.poll() is not None, timeout=90, interval=0.2)
        health = wait_until(lambda: _health(port), "the alarm on /healthz",
                            check=lambda h: h and h.get("alarms"), timeout=60, interval=0.2)
        [(code, message)] = health["alarms"]
        assert code == "shadow_unavailable" and message.startswith(f"the shadow model in {shadow} is not loaded, so"
                                                                    " it compares nothing (verdicts are the station's"
                                                                    f" model's): model file {shadow / 'model.onnx'}")
        assert proc.poll() is None
    finally:
        _stop(proc)
