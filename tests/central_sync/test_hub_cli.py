"""`edge-hub` takes its database URL from a file or the environment, never needing it on the command line.

A URL with a password on the command line is readable by every local user in `ps` and lands in
the journal; systemd hands the hub the URL as a credential file (LoadCredential=) instead.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from central_sync.hub.store import open_store

REPO = Path(__file__).resolve().parents[2]


def hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "EDGE_HUB_DB"} | (env or {})
    return subprocess.run([sys.executable, "-m", "central_sync.hub.cli", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=120)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_database_url_comes_from_a_credential_file(tmp_path):
    db = tmp_path / "hub.sqlite3"
    credential = tmp_path / "hub-db"
    credential.write_text(f"sqlite:///{db}\n")
    result = hub("migrate", "--db-file", str(credential))
    assert result.returncode == 0, result.stderr
    assert "records" in tables(db)


def test_the_database_url_comes_from_the_environment(tmp_path):
    db = tmp_path / "env.sqlite3"
    result = hub("migrate", env={"EDGE_HUB_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert "records" in tables(db)


def test_a_missing_credential_file_is_a_config_error_naming_it(tmp_path):
    missing = tmp_path / "absent"
    result = hub("migrate", "--db-file", str(missing))
    assert result.returncode == 78
    assert result.stderr.strip() == f"edge-hub: the database URL file {missing} cannot be read: No such file or directory"


def test_the_password_in_the_url_never_reaches_the_error_message(tmp_path):
    credential = tmp_path / "hub-db"
    credential.write_text("postgresql://hub:s3cret-pw@127.0.0.1:1/checkpoint?connect_timeout=5\n")
    result = hub("migrate", "--db-file", str(credential))
    assert result.returncode == 1
    assert "127.0.0.1" in result.stderr and "hub:***@" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_a_password_in_the_query_string_is_hidden_too():
    store = open_store("postgresql://db.internal/checkpoint?sslmode=require&password=s3cret-pw&user=hub")
    assert store.url == "postgresql://db.internal/checkpoint?sslmode=require&password=***&user=hub"


def test_a_number_out_of_range_is_a_config_error_naming_the_option(tmp_path):
    """--http-port 70000 ended in an OverflowError traceback (exit 1, restarted for ever), --max-record-bytes 0 started
    a hub that refused every record, --stall-after nan one whose watchdog never saw a stall, --keepalive 1 said only
    `Input should be greater than or equal to 5`: each is now one sentence naming the option and its value, exit 78,
    before the database is touched."""
    db = tmp_path / "hub.sqlite3"
    for option, value, says in (("--http-port", "70000", "from 0 to 65535"), ("--http-port", "-1", "from 0 to 65535"),
                                ("--broker-port", "0", "from 1 to 65535"), ("--keepalive", "1", "from 5 to 3600"),
                                ("--max-record-bytes", "0", "from 1024 to 2147483648"),
                                ("--max-uploads-per-station", "0", "from 1 to 1000000"),
                                ("--stall-after", "nan", "from 1.0 to 86400.0"),
                                ("--gap-period", "-1", "from 0.01 to 86400.0"),
                                ("--risk-expiry", "inf", "from 60.0 to 31536000.0")):
        result = hub("run", "--db", str(db), "--broker-port", "1", "--http-port", "0", option, value)
        assert result.returncode == 78, (option, value, result.stderr[-2000:])
        shown = str(float(value)) if "." in says.split()[1] else value
        assert result.stderr.strip().splitlines() == [
            f"edge-hub: {option} {shown} is out of range: give a number {says}"], (option, value)
        assert not db.exists()
    result = hub("run", "--db", str(db), "--broker-host", " ")
    assert result.returncode == 78
    assert result.stderr.strip() == "edge-hub: --broker-host is empty: give the broker's host name or address"


def test_an_empty_file_option_is_refused_by_name(tmp_path):
    """HUB_TLS_CA= in hub.env made the unit's `--tls-ca ${HUB_TLS_CA}` an empty argument, read as the current folder:
    `--tls-ca . cannot be read: Is a directory`. Refused as --broker-host '' is, exit 78, nothing opened."""
    db = tmp_path / "hub.sqlite3"
    for option in ("--tls-ca", "--password-file", "--signing-key"):
        result = hub("run", "--db", str(db), "--broker-port", "1", "--http-port", "0", option, "")
        assert (result.returncode, result.stderr.strip()) == (
            78, f"edge-hub: {option} is empty (as from an empty variable in hub.env): name the file")
    assert not db.exists()


def test_an_option_that_does_not_parse_is_a_config_error_so_the_unit_is_not_restarted(tmp_path):
    """HUB_BROKER_PORT= in hub.env made the unit's `--broker-port ${HUB_BROKER_PORT}` an empty argument: argparse
    exited 2, which the unit restarts every 5 s for ever. Exit 78 (RestartPreventExitStatus), nothing opened."""
    db = tmp_path / "hub.sqlite3"
    for option in ("--broker-port", "--http-port"):
        result = hub("run", "--db", str(db), option, "")
        assert result.returncode == 78, result.stderr[-2000:]
        assert f"argument {option}: invalid int value: ''" in result.stderr
    assert hub("run", "--no-such-option").returncode == 78
    for option, what in (("--http-host", "give the address to listen on"),  # '' listened on every interface
                         ("--username", "give this hub's broker name")):
        result = hub("run", "--db", str(db), "--broker-port", "1", option, "")
        assert (result.returncode, result.stderr.strip()) == (
            78, f"edge-hub: {option} is empty (as from an empty variable in hub.env): {what}")
    assert not db.exists()


def test_a_taken_http_port_is_a_config_error_before_the_database_is_opened(tmp_path):
    """uvicorn said `address already in use` after the database and the broker links were opened and the hub exited 3:
    systemd restarted it every 5 s for ever. Now one sentence naming the options, exit 78, nothing opened."""
    import socket

    from central_sync.devtools import free_port

    db = tmp_path / "hub.sqlite3"
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = hub("run", "--db", str(db), "--broker-port", "1", "--http-port", str(port))
    assert result.returncode == 78, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"edge-hub: the control room cannot listen on --http-host 127.0.0.1 --http-port {port}: Address already in use")
    assert not db.exists()


def test_a_password_given_with_db_on_the_command_line_is_warned_of_never_repeated():
    """`--db postgresql://hub:PW@...` put the password in ps and the shell's history without a word (the unit and the
    docs use --db-file): it still works (tests, labs), with one warning line that names --db-file."""
    result = hub("migrate", "--db", "postgresql://hub:s3cret-pw@127.0.0.1:1/checkpoint?connect_timeout=5")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == ("edge-hub: warning: the password in --db is seen by every user of this machine (ps, /proc) and"
                        " kept in the shell's history; put the URL in a file and give --db-file (or $EDGE_HUB_DB)")
    assert "s3cret-pw" not in result.stderr + result.stdout
    quiet = hub("migrate", "--db", "postgresql://hub@127.0.0.1:1/checkpoint?connect_timeout=5")
    assert "warning" not in quiet.stderr
