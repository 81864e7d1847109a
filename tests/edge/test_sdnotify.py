"""sd_notify (appliance.sdnotify, shared by station and hub) over a real datagram socket, as systemd receives it."""

import socket

import pytest

from appliance import sdnotify
from appliance.watchdog import Progress
from polling import until


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_ready_reaches_the_socket(notify_socket):
    path, sock = notify_socket
    assert sdnotify.notify("READY=1\nSTATUS=devices connected", socket_path=path)
    assert sock.recv(1024) == b"READY=1\nSTATUS=devices connected"


def test_abstract_namespace_socket():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0cpe-test-notify")
    sock.settimeout(2)
    with sock:
        assert sdnotify.notify("WATCHDOG=1", socket_path="@cpe-test-notify")
        assert sock.recv(64) == b"WATCHDOG=1"


def test_without_systemd_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_watchdog_period_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_period_s() == 5.0


async def test_watchdog_stays_silent_while_a_task_is_stalled(notify_socket):
    import asyncio
    from appliance.watchdog import watchdog
    path, sock = notify_socket
    sock.setblocking(False)
    progress = Progress(stall_after_s=0.3)
    progress.register("plc")
    task = asyncio.create_task(watchdog(progress, 0.02, socket_path=path))

    def beating() -> int:
        progress.beat("plc")  # plc makes progress
        return _drain(sock)

    await until(beating, "a WATCHDOG=1 while plc makes progress", timeout=10)
    await until(progress.stalled, "plc stalled (no beat for 0.3 s)", timeout=10)
    _drain(sock)  # what was sent before the stall (the watchdog looks and sends with no await between)
    await asyncio.sleep(0.2)
    silent = _drain(sock)
    progress.beat("plc")
    await until(lambda: _drain(sock), "a WATCHDOG=1 once plc beat again", timeout=10)
    task.cancel()
    assert silent == 0


def _drain(sock):
    n = 0
    while True:
        try:
            sock.recv(64)
            n += 1
        except BlockingIOError:
            return n


def test_a_full_notify_queue_never_blocks_the_service(notify_socket):
    """systemd reading slowly must not stall the event loop that sends: sends beyond the queue fail fast."""
    path, _ = notify_socket  # nobody reads it
    results = [sdnotify.notify("WATCHDOG=1", socket_path=path) for _ in range(200)]
    assert results[0] and not all(results)


def test_a_vanished_socket_is_reported_not_raised(tmp_path):
    assert sdnotify.notify("READY=1", socket_path=str(tmp_path / "gone")) is False
