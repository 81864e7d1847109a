"""Clock: wall clock against the monotonic clock (the hub exposes no time service to compare with)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from edge.diag.context import PhaseContext

WINDOW_S = 1.0


async def run(ctx: PhaseContext) -> None:
    ctx.note("method: monotonic-vs-wall drift over 1 s, no NTP query; the hub offers no time service")
    w0, m0 = time.time(), time.monotonic()
    await asyncio.sleep(WINDOW_S)
    w1, m1 = time.time(), time.monotonic()
    ctx.measure("clock.drift_ppm", ((w1 - w0) - (m1 - m0)) / (m1 - m0) * 1e6, target="wall-vs-monotonic")
    now = datetime.now(UTC)
    ctx.measure("clock.wall_sane", 2024 <= now.year <= 2100, target="wall", detail=now.isoformat())
