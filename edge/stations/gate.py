"""The conveyor's divert gate: the tracker's gate commands, carried out on the PLC.

Only the newest command matters (the tracker says where the gate must be now), so a command not
yet written when a newer one arrives is superseded, and each command is written at once: it never
waits behind the read-back of an earlier one, but for a command to pass after one to manual whose
read-back is still running: that one is read back first, since a gate that did not turn to manual
let the items meant for it pass and must be reported (the flow stops the belt), and it is then not
asked for pass. Read-back runs beside it; a newer command ends the confirmation of the one before
otherwise. Each write's round trip (with any such wait) goes to the tracker (its decision point
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
    _confirming: asyncio.Task[bool] | None = None
    _confirming_manual: bool = False  # the read-back running is that of a command to manual

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
                started = loop.time()
                if not await self._manual_read_back(command):
                    continue
                try:
                    confirmation = await self.plc.send_divert(command.to_manual)
                except DriverError as exc:
                    self._unconfirmed(command, str(exc))
                    continue
                self.on_written(loop.time() - started)
                self._confirming = tasks.create_task(self._confirm(command, confirmation), name="gate-confirm")
                self._confirming_manual = command.to_manual

    async def _manual_read_back(self, command: GateCommand) -> bool:
        """Whether `command` may be written now: the read-back of the command before is ended, unless this one is
        to pass and that one to manual: it is waited for, and a manual not confirmed holds the pass back (as does
        a newer command that arrived meanwhile, which is carried out instead)."""
        confirming = self._confirming
        if confirming is None or confirming.done():
            return True
        if command.to_manual or not self._confirming_manual:
            confirming.cancel()  # the gate is wanted elsewhere now
            return True
        await asyncio.wait({confirming})
        if not confirming.cancelled() and not confirming.result():
            log.error("conveyor.gate_pass_withheld", items=command.item_ids,
                      detail="the divert did not confirm manual before: it is not asked for pass")
            return False
        return self._wanted is None

    async def _confirm(self, command: GateCommand, confirmation: Awaitable[None]) -> bool:
        try:
            await confirmation
        except DriverError as exc:
            self._unconfirmed(command, str(exc))
            return False
        return True

    def _unconfirmed(self, command: GateCommand, error: str) -> None:
        log.error("conveyor.gate_unconfirmed", to_manual=command.to_manual, items=command.item_ids, error=error)
        self.on_unconfirmed(command, error)
