"""`edge-hub run` under systemd: READY once it serves, WATCHDOG only while its threads turn, /metrics.

The hub runs as a child process with NOTIFY_SOCKET pointing at a real datagram socket, as systemd
runs it; a station publishes through a real Mosquitto.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import httpx
import psycopg
import pytest

from central_sync.config import SyncConfig
from central_sync.devtools import fill, open_station_db, outbox_rows
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher

from polling import until


@pytest.fixture
def notify(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield path, sock
    sock.close()


def drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(1024))
        except BlockingIOError:
            return got


async def next_datagram(sock: socket.socket, timeout: float) -> bytes:
    return (await until(lambda: drain(sock), "a datagram", timeout=timeout, interval=0.05))[0]


async def watchdog_pings(sock: socket.socket, n: int) -> None:
    """Wait for n more WATCHDOG=1 (a hub starved of the processor by a loaded machine sends them late)."""
    got = 0

    def enough() -> bool:
        nonlocal got
        got += drain(sock).count(b"WATCHDOG=1")
        return got >= n
    await until(enough, f"{n} WATCHDOG=1", timeout=10, interval=0.05)


def metric(text: str, name: str) -> float:
    """Value of one sample line of a Prometheus text page (name with labels as written)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


async def test_hub_is_ready_once_it_serves_feeds_the_watchdog_and_says_it_stops(tmp_path, broker, hubs, notify):
    path, sock = notify
    hub = hubs(str(tmp_path / "hub.sqlite3"), broker.port, "hub-n", http=True,
               env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    ready = await next_datagram(sock, 30)
    assert ready.startswith(b"READY=1\nSTATUS=hub hub-n ingesting")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http_port}") as http:
        assert (await http.get("/healthz")).json() == {"ok": True}  # READY means the API answers
    await watchdog_pings(sock, 3)  # every 0.2 s (half of WATCHDOG_USEC)
    hub.signal(signal.SIGTERM)
    await until(lambda: b"STOPPING=1" in drain(sock), "STOPPING=1", timeout=15, in_thread=True)
    assert hub.proc.wait(15) == 0


async def test_a_hung_database_commit_starves_the_watchdog_and_shows_in_metrics(tmp_path, broker, hubs, notify, pg_url):
    path, sock = notify
    hub = hubs(pg_url, broker.port, "hub-w", http=True, extra=("--stall-after", "1.5"),
               env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    assert (await next_datagram(sock, 30)).startswith(b"READY=1")
    db = tmp_path / "station.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 5)
    conn.close()
    store = open_store(pg_url)
    # an open transaction holding the records table: the hub's commit waits (reads go on)
    with psycopg.connect(pg_url) as lock:
        lock.execute("SET lock_timeout = '10s'")
        lock.execute("LOCK TABLE records IN EXCLUSIVE MODE")
        await observe_the_hang(hub, sock, broker.port, db, tmp_path, lock)
    assert store.query("SELECT count(*) FROM records") == [(5,)]


async def observe_the_hang(hub, sock: socket.socket, broker_port: int, db, scans, lock: psycopg.Connection) -> None:
    """While the lock holds: stalled and silent; after it: delivered, fed again, figures right."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http_port}") as http, \
            Publisher(SyncConfig(port=broker_port), "gate-1", db, scans):

        async def stalled_threads() -> float:
            return metric((await http.get("/metrics")).text, "hub_stalled_threads")

        async def none_stalled() -> bool:
            return await stalled_threads() == 0

        await until(stalled_threads, "the ingest thread counted as stalled", timeout=30, interval=0.2)
        drain(sock)
        await asyncio.sleep(1.0)
        assert b"WATCHDOG=1" not in drain(sock)  # systemd would restart this hub
        lock.rollback()  # the database answers again
        await until(lambda: outbox_rows(db) == 0, "records delivered after the lock", timeout=30, in_thread=True)
        await until(none_stalled, "no stalled thread after the lock", timeout=10, interval=0.2)
        drain(sock)
        await watchdog_pings(sock, 3)
        text = (await http.get("/metrics")).text
        assert metric(text, "hub_connected") == 1.0
        assert metric(text, 'hub_ingest_total{kind="records"}') == 5.0
        assert metric(text, 'hub_queued_messages{lane="bulk"}') == 0.0
