"""Read planning: which Modbus read requests fetch a set of mapped points.

Only mapped addresses are read (a vendor PLC may answer exception 02 for the gaps), in runs of
contiguous addresses split at the per-request limits (125 registers, 2000 bits by default) and
never inside a two-word point.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.plc.config import BIT_TABLES, PlcConfig, Point


@dataclass(frozen=True)
class Run:
    """One read request: `count` addresses of `table` from `start`, holding `points` (name, point)."""

    table: str
    start: int
    count: int
    points: tuple[tuple[str, Point], ...]

    def describe(self) -> str:
        return f"{self.table} {self.start}..{self.start + self.count - 1}"


def plan_runs(points: dict[str, Point], table: str, limit: int) -> tuple[Run, ...]:
    """The reads of one table's mapped points, in address order."""
    mine = sorted(((n, p) for n, p in points.items() if p.table == table), key=lambda np: np[1].address)
    runs: list[Run] = []
    for name, pt in mine:
        last = runs[-1] if runs else None
        if last and pt.address == last.start + last.count and last.count + pt.words <= limit:
            runs[-1] = Run(table, last.start, last.count + pt.words, (*last.points, (name, pt)))
        else:
            runs.append(Run(table, pt.address, pt.words, ((name, pt),)))
    return tuple(runs)


def table_limit(cfg: PlcConfig, table: str) -> int:
    """Most addresses of `table` one read request may ask for."""
    return cfg.max_bits_per_read if table in BIT_TABLES else cfg.max_registers_per_read
