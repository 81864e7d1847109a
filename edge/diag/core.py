"""Phases, measurements and outcomes (after OpenHTF): pure data and judgement, no device code.

A `Spec` declares one measurement: unit, limits and marginal band, and the catalogue key of the
guidance shown when it is marginal or fails. Judgement of a value:

    low <= marginal_low <= value <= marginal_high <= high   PASS
    low <= value < marginal_low  or  marginal_high < value <= high   MARGINAL
    value < low  or  value > high  or  value is None (not measured)  FAIL

Boolean specs compare with `expect`. Specs without limits are informative and always PASS.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict, Unpack


class Outcome(StrEnum):
    """Outcome of a measurement, a phase or a whole run."""

    PASS = "PASS"
    MARGINAL = "MARGINAL"
    FAIL = "FAIL"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    SKIPPED = "SKIPPED"


# Worst first: a run's outcome is the worst of its phases' outcomes.
SEVERITY = (Outcome.FAIL, Outcome.ERROR, Outcome.ABORTED, Outcome.MARGINAL, Outcome.PASS, Outcome.SKIPPED)


def worst(outcomes: list[Outcome]) -> Outcome:
    """The most severe outcome of a list (PASS for an empty list)."""
    return min(outcomes, key=SEVERITY.index, default=Outcome.PASS)


def run_outcome(phases: list[PhaseResult]) -> Outcome:
    """A run's outcome: the worst of its phases', a failure a fault drill must cause counting as PASS."""
    return worst([Outcome.PASS if p.expected else p.outcome for p in phases])


class Limits(TypedDict, total=False):
    """The limits of a Spec that a station's config may set (Spec.limited)."""

    low: float | None
    high: float | None
    marginal_low: float | None
    marginal_high: float | None


@dataclass(frozen=True)
class Spec:
    """One declared measurement: unit, limits, marginal band and the guidance key."""

    name: str
    unit: str
    description: str
    low: float | None = None
    high: float | None = None
    marginal_low: float | None = None
    marginal_high: float | None = None
    expect: bool | None = None
    message: str = ""

    def judge(self, value: float | bool | None) -> Outcome:
        """PASS, MARGINAL or FAIL for a measured value (None = could not be measured = FAIL)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return Outcome.FAIL
        if self.expect is not None:
            return Outcome.PASS if bool(value) == self.expect else Outcome.FAIL
        v = float(value)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            return Outcome.FAIL
        if (self.marginal_low is not None and v < self.marginal_low) or \
                (self.marginal_high is not None and v > self.marginal_high):
            return Outcome.MARGINAL
        return Outcome.PASS

    def limited(self, **limits: Unpack[Limits]) -> Spec:
        """The same spec with some limits replaced (limits that depend on the station's config)."""
        return dataclasses.replace(self, **limits)

    def limit_for(self, value: float | bool | None) -> float | bool | None:
        """The limit a marginal or failing value is compared with, for guidance text."""
        if self.expect is not None:
            return self.expect
        if value is None:
            return self.high if self.high is not None else self.low
        v = float(value)
        if self.high is not None and (v > (self.marginal_high if self.marginal_high is not None else self.high)):
            return self.high
        return self.low if self.low is not None else self.high


@dataclass
class Measurement:
    """One measured value with its judgement and, when not PASS, its guidance."""

    name: str
    target: str
    unit: str
    value: float | bool | None
    outcome: Outcome
    low: float | None = None
    high: float | None = None
    marginal_low: float | None = None
    marginal_high: float | None = None
    expect: bool | None = None
    message: str = ""
    diagnosis: str = ""
    detail: str = ""
    interval: tuple[float, float] | None = None  # the true value lies within; `value` is its worst end

    @property
    def key(self) -> str:
        """Stable identity across runs: name[target]."""
        return f"{self.name}[{self.target}]" if self.target else self.name

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["outcome"] = str(self.outcome)
        d["key"] = self.key
        if isinstance(self.value, float):
            d["value"] = round(self.value, 6)
        if self.interval is not None:
            d["interval"] = [round(x, 6) for x in self.interval]
        d["marginal_band"] = self.marginal_band()
        return d

    def marginal_band(self) -> list[list[float | None]]:
        """The ranges of values judged MARGINAL: within the limits but near them ([low, high] each)."""
        bands: list[list[float | None]] = []
        if self.marginal_low is not None:
            bands.append([self.low, self.marginal_low])
        if self.marginal_high is not None:
            bands.append([self.marginal_high, self.high])
        return bands


@dataclass
class Attachment:
    """A file kept with the record (Modbus trace, test image); the record holds its sha256."""

    name: str
    mime: str
    data: bytes = field(repr=False)


@dataclass
class PhaseResult:
    """What one phase did: outcome, measurements, prompts, attachments and any error."""

    name: str
    title: str
    outcome: Outcome = Outcome.PASS
    started: str = ""
    duration_s: float = 0.0
    measurements: list[Measurement] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    expected: str = ""  # why this failure is what a fault drill must cause (it does not fail the run)

    def judge(self) -> Outcome:
        """Worst of the measurements' outcomes."""
        return worst([m.outcome for m in self.measurements])

    def diagnoses(self) -> list[str]:
        """Guidance for every marginal or failing measurement, plus the phase's own reason."""
        out = [m.diagnosis for m in self.measurements if m.outcome != Outcome.PASS and m.diagnosis]
        return out + ([self.reason] if self.reason and self.outcome in (Outcome.ERROR, Outcome.ABORTED, Outcome.FAIL) else [])
