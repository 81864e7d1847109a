"""Signals and readiness of an asyncio service that serves HTTP through uvicorn.

uvicorn (0.29 and later) takes SIGTERM/SIGINT while it serves, shuts the server down, restores the
previous handlers and raises the signal again: with `stop_on_signals()` installed first, that
second delivery sets the program's stop event instead of killing the process before it can
close its stores and tell systemd STOPPING=1.
"""

from __future__ import annotations

import asyncio
import signal

import uvicorn


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def until_listening(server: uvicorn.Server, timeout_s: float = 30) -> None:
    """Return once the server accepts connections (TimeoutError after timeout_s)."""
    async with asyncio.timeout(timeout_s):
        while not server.started:
            await asyncio.sleep(0.02)
