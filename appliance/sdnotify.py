"""sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET per state change."""

from __future__ import annotations

import os
import socket


def notify(state: str, *, socket_path: str | None = None) -> bool:
    """Send `state` (e.g. "READY=1", "WATCHDOG=1"); False when not run under systemd notify or it is gone."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(address)
            sock.send(state.encode())
    except OSError:  # systemd gone, or its queue full (never block the caller's loop): the service goes on
        return False
    return True


def watchdog_period_s() -> float | None:
    """Half of systemd's WatchdogSec for this process, or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6
