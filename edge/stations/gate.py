"""The conveyor's divert gate: the tracker's gate commands, carried out on the PLC.

Only the newest command matters (the tracker says where the gate must be now), so a command not
yet written when a newer one arrives is superseded, and each command is written at once: it never
waits behind the read-back of an earlier one. Read-back runs beside it; a newer command ends the
confirmation of the one before. Each write's round trip goes to the tracker (its decision point
allows for it); a command the PLC refuses, or does not confirm, is reported (the flow marks the
PLC degraded and the tracker treats the gate as at manual).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from drivers.errors import DriverError
from drivers.plc.state import Plc
from edge.tracking import GateCommand

log = structlog.get_logger()


@dataclass
class Gate:
    """Drives the divert gate: newest command first, written at once, confirmed alongside."""

    plc: Plc
    on_written: Callable[[float], None]  # the round trip of one write, in seconds
    on_unconfirmed: Callable[[GateCommand, str], None]  # the command and why, in one sentence
    superseded: int = 0  # commands replaced by a newer one before they were written
    _wanted: GateCommand | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _confirming: asyncio.Task[None] | None = None

    def command(self, command: GateCommand) -> None:
        """Ask for the gate as `command` says; a command still waiting to be written is superseded."""
        if self._wanted is not None:
            self.superseded += 1
            log.info("conveyor.gate_command_superseded", to_manual=self._wanted.to_manual,
                     by_to_manual=command.to_manual)
        self._wanted = command
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tasks:
            while True:
                await self._wake.wait()
                self._wake.clear()
                command, self._wanted = self._wanted, None
                if command is None:
                    continue
                if self._confirming is not None:
                    self._confirming.cancel()  # the gate is wanted elsewhere now
                started = loop.time()
                try:
                    confirmation = await self.plc.send_divert(command.to_manual)
                except DriverError as exc:
                    self._unconfirmed(command, str(exc))
                    continue
                self.on_written(loop.time() - started)
                self._confirming = tasks.create_task(self._confirm(command, confirmation), name="gate-confirm")

    async def _confirm(self, command: GateCommand, confirmation: Awaitable[None]) -> None:
        try:
            await confirmation
        except DriverError as exc:
            self._unconfirmed(command, str(exc))

    def _unconfirmed(self, command: GateCommand, error: str) -> None:
        log.error("conveyor.gate_unconfirmed", to_manual=command.to_manual, items=command.item_ids, error=error)
        self.on_unconfirmed(command, error)
