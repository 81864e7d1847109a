"""What a phase gets: the station, the technician, measuring, prompting and bounded device I/O.

Its errors (DiagError and IoTimeout) are drawn with the station's tree in edge/errors.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from drivers.errors import DeviceRefused, DriverError, LinkLost, ProtocolError
from edge.diag.core import Attachment, Measurement, Outcome, PhaseResult, Spec
from edge.diag.hand import Action, Technician
from edge.diag.messages import Catalogue
from edge.diag.specs import SPECS
from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.diag.station import DiagStation

T = TypeVar("T")

# A device that answers with a refusal or with garbage is reachable: its guidance is not the
# spec's (which assumes no answer or no effect, i.e. power and cabling) but the error kind's.
ERROR_ADVICE: tuple[tuple[type[DriverError], str], ...] = ((DeviceRefused, "device.refused"),
                                                          (ProtocolError, "device.garbled"))
MODBUS_CODES = frozenset({1, 2, 3, 4, 6})


def advice_key(error: DriverError) -> str | None:
    """The catalogue key of the guidance for an error kind, or None when the spec's guidance applies."""
    return next((key for kind, key in ERROR_ADVICE if isinstance(error, kind)), None)


def refusal_hint(error: DriverError, catalogue: Catalogue) -> str:
    """What a Modbus exception code means for the technician (empty when there is none)."""
    code = getattr(error, "code", None)
    if code is None:
        found = re.search(r"exception (?:code )?(\d+)", str(error))
        code = int(found.group(1)) if found else None
    if code is None:
        return ""
    return catalogue.text(f"modbus.code_{code}" if code in MODBUS_CODES else "modbus.code_other", code=code)


class DiagError(EdgeError):
    """Root of the diagnostics' errors."""


class PromptTimedOut(DiagError):
    """A prompt was not acted on within its timeout."""

    def __init__(self, key: str, text: str, timeout_s: float) -> None:
        super().__init__(f"nobody acted on the prompt {text!r} within {timeout_s:g} s")
        self.key, self.text, self.timeout_s = key, text, timeout_s


class PhaseSkipped(DiagError):
    """The phase does not apply; `key` names the reason in the catalogue."""

    def __init__(self, key: str, **fields: object) -> None:
        super().__init__(key)
        self.key, self.fields = key, fields


class IoTimeout(LinkLost):
    """A driver call did not complete within the diagnostics' I/O timeout."""


class Measurements:
    """Measuring into one phase's result: judge values against SPECS, with the catalogue's guidance."""

    def __init__(self, result: PhaseResult, catalogue: Catalogue) -> None:
        self.result = result
        self.catalogue = catalogue

    # ---- measuring -------------------------------------------------------------------------

    def measure(self, name: str, value: float | bool | None, *, target: str = "", spec: Spec | None = None,
                detail: str = "", interval: tuple[float, float] | None = None) -> Measurement:
        """Judge a value against its spec; a marginal or failing one carries its guidance.

        With `interval` (the true value lies within it) pass its worst end as `value`."""
        spec = spec or SPECS[name]
        outcome = spec.judge(value)
        m = Measurement(name, target, spec.unit, value, outcome, spec.low, spec.high, spec.marginal_low,
                        spec.marginal_high, spec.expect, spec.message if outcome != Outcome.PASS else "",
                        detail=detail, interval=interval)
        if outcome != Outcome.PASS and value is None:
            m.diagnosis = self.catalogue.text("measure.not_measured", what=spec.description, target=target,
                                              detail=detail or "-")
        elif outcome != Outcome.PASS:
            m.diagnosis = self.catalogue.text(spec.message, target=target, value=value, unit=spec.unit,
                                              limit=spec.limit_for(value), low=spec.low, high=spec.high,
                                              detail=detail or "-")
        self.result.measurements.append(m)
        return m

    def failed(self, name: str, error: DriverError, *, target: str = "", value: float | bool | None = None,
               spec: Spec | None = None) -> Measurement:
        """A measurement a driver error prevented; its guidance follows the kind of error."""
        spec = spec or SPECS[name]
        if value is None and spec.expect is not None:
            value = not spec.expect  # a yes/no check the error answered
        m = self.measure(name, value, target=target, spec=spec, detail=str(error))
        key = advice_key(error)
        if key is not None and m.outcome != Outcome.PASS:
            m.message = key
            m.diagnosis = self.error_text(error, spec.description, target)
        return m

    def error_text(self, error: DriverError, what: str, target: str) -> str:
        """Guidance for a driver error by its kind (the generic phase error text for a lost link)."""
        key = advice_key(error) or "measure.not_measured"
        return self.catalogue.text(key, what=what, target=target, detail=str(error),
                                   hint=refusal_hint(error, self.catalogue))

    def unmeasurable(self, name: str, *, target: str = "", why: str, spec: Spec | None = None) -> Measurement:
        """A value this station gives no means to measure: SKIPPED with the reason, no number, never PASS."""
        spec = spec or SPECS[name]
        m = Measurement(name, target, spec.unit, None, Outcome.SKIPPED, spec.low, spec.high, spec.marginal_low,
                        spec.marginal_high, spec.expect, "measure.not_measurable", detail=why)
        m.diagnosis = self.catalogue.text("measure.not_measurable", what=spec.description, target=target, detail=why)
        self.result.measurements.append(m)
        return m

    def note(self, text: str) -> None:
        """A line of context kept with the phase (what was measured how)."""
        self.result.notes.append(text)

    def attach(self, name: str, data: bytes, mime: str) -> None:
        self.result.attachments.append(Attachment(name, mime, data))



class PhaseContext(Measurements):
    """One phase's view: measure against SPECS, prompt the technician, call drivers with timeouts."""

    def __init__(self, station: DiagStation, hand: Technician, result: PhaseResult, catalogue: Catalogue,
                 prompt_timeout_s: float) -> None:
        super().__init__(result, catalogue)
        self.station = station
        self.hand = hand
        self.prompt_timeout_s = prompt_timeout_s

    def skip(self, key: str, **fields: object) -> NoReturn:
        raise PhaseSkipped(key, **fields)

    # ---- the technician --------------------------------------------------------------------

    async def prompt(self, key: str, action: Action, *, until: Callable[[], Awaitable[T]] | None = None,
                     confirm: bool = False, timeout_s: float | None = None) -> tuple[float | None, T | None]:
        """Ask the technician to act; wait for the observed effect (`until`) or for the confirmation.

        Returns (loop time of the act when the twin performed it, else None; what `until` returned).
        A prompt that times out raises PromptTimedOut: the phase is ABORTED, never failed."""
        text = self.catalogue.text(key, target=action.target)
        limit = timeout_s if timeout_s is not None else self.prompt_timeout_s
        t0 = time.monotonic()
        entry: dict[str, Any] = {"key": key, "text": text, "timeout_s": limit}
        self.result.prompts.append(entry)
        try:
            async with asyncio.timeout(limit):
                acted = await self.hand.perform(text, action, confirm=confirm)
                seen = await until() if until is not None else None
        except TimeoutError:
            entry["answered"] = False
            raise PromptTimedOut(key, text, limit) from None
        entry.update(answered=True, after_s=round(time.monotonic() - t0, 3), by=self.hand.kind)
        return acted, seen

    async def confirm_clear(self) -> None:
        """Before the phase's first step that moves the machine or switches the X-ray permit on: the technician
        confirms that nobody is on the belt, in the tunnel, the lane or the barrier's path (a line on the terminal;
        the twin's hand answers at once). Unanswered within the prompt timeout: the phase is ABORTED, nothing moved."""
        await self.prompt("prompt.energise", Action("confirm_clear", self.result.name), confirm=True)

    # ---- devices ---------------------------------------------------------------------------

    async def io(self, what: str, call: Awaitable[T], timeout_s: float = 2.0) -> T:
        """One driver call under its own I/O timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                return await call
        except TimeoutError:
            raise IoTimeout(f"{what} did not complete within {timeout_s * 1000:.0f} ms") from None

    def now(self) -> float:
        return asyncio.get_running_loop().time()
