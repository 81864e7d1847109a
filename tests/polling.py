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
INTERVAL_S = 0.01
BLOCKING_INTERVAL_S = 0.1  # a blocking probe usually asks a database or a server


async def until(probe: Callable[[], Any], what: str = "", *, check: Callable[[Any], Any] = bool,
                timeout: float = TIMEOUT_S, interval: float | None = None, in_thread: bool = False) -> Any:
    """Poll `probe()` (plain or async; run in a thread when it blocks) until `check` passes its value."""
    if interval is None:
        interval = BLOCKING_INTERVAL_S if in_thread else INTERVAL_S
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await asyncio.to_thread(probe) if in_thread else probe()
        if inspect.isawaitable(value):
            value = await value
        if check(value):
            return value
        if loop.time() >= end:
            raise AssertionError(_not_reached(what, probe, check, timeout, value))
        await asyncio.sleep(interval)


def wait_until(probe: Callable[[], Any], what: str = "", *, check: Callable[[Any], Any] = bool,
               timeout: float = TIMEOUT_S, interval: float = BLOCKING_INTERVAL_S) -> Any:
    """Blocking variant of `until` for tests without an event loop."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value):
            return value
        if time.monotonic() >= end:
            raise AssertionError(_not_reached(what, probe, check, timeout, value))
        time.sleep(interval)


def _not_reached(what: str, probe: Callable[[], Any], check: Callable[[Any], Any], timeout: float,
                 value: Any) -> str:
    what = what or _describe(probe if check is bool else check)
    return f"{what} not reached within {timeout:g} s (last value {value!r})"


def _describe(fn: Callable[..., Any]) -> str:
    """A lambda's source line (it reads as the condition), else the function's name."""
    if getattr(fn, "__name__", "") != "<lambda>":
        return getattr(fn, "__qualname__", repr(fn))
    try:
        return inspect.getsource(fn).strip()
    except OSError:
        return "a condition"
