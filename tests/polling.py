"""Waiting in tests: poll until a condition holds; on time out, say what was awaited and the last value.

    await until(lambda: plc.state.link_ok, "the PLC link is up")
    state = await until(plc.read_state, "the belt runs", check=lambda s: s.belt_running)  # async probe
    row = await until(lambda: hub_row(rid), "the record at the hub", in_thread=True)     # blocking probe
    wait_until(lambda: outbox_rows(db) == 0, "the outbox drained", timeout=60)          # no event loop

A probe's value is returned once `check(value)` holds (truthy by default). The timeout is a bound,
never a speed requirement: it is generous because the machine running the tests may be loaded, and
a wait returns as soon as its condition holds. The probe is always asked once more at the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

TIMEOUT_S = 30.0
INTERVAL_S = 0.02


async def until(probe: Callable[[], Any], what: str = "", *, check: Callable[[Any], Any] = bool,
                timeout: float = TIMEOUT_S, interval: float = INTERVAL_S, in_thread: bool = False) -> Any:
    """Poll `probe()` (plain or async; run in a thread when it blocks) until `check` passes its value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await asyncio.to_thread(probe) if in_thread else probe()
        if inspect.isawaitable(value):
            value = await value
        if check(value):
            return value
        if loop.time() >= end:
            raise AssertionError(_not_reached(what, probe, timeout, value))
        await asyncio.sleep(interval)


def wait_until(probe: Callable[[], Any], what: str = "", *, check: Callable[[Any], Any] = bool,
               timeout: float = TIMEOUT_S, interval: float = INTERVAL_S) -> Any:
    """Blocking variant of `until` for tests without an event loop."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value):
            return value
        if time.monotonic() >= end:
            raise AssertionError(_not_reached(what, probe, timeout, value))
        time.sleep(interval)


def _not_reached(what: str, probe: Callable[[], Any], timeout: float, value: Any) -> str:
    return f"{what or _describe(probe)} not reached within {timeout:g} s (last value {value!r})"


def _describe(probe: Callable[[], Any]) -> str:
    """The probe's source line (a lambda reads as its condition), else its name."""
    try:
        return inspect.getsource(probe).strip()
    except (OSError, TypeError):
        return getattr(probe, "__qualname__", repr(probe))
