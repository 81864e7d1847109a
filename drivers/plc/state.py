"""Domain values of the PLC interface: state snapshot, events and the `Plc` protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # config imports this module's Light; the Protocol only names SafeRequest
    from drivers.plc.config import SafeRequest

Light = Literal["off", "red", "amber", "green"]
# Why the link is down, for advice: no answer (power, cable, address), refused (exception response:
# register map or PLC program), protocol (malformed answers), stale_heartbeat (PLC program stopped),
# driver_failed (the poll task itself failed). Empty while the link is up.
LinkFault = Literal["", "no_answer", "refused", "protocol", "stale_heartbeat", "driver_failed"]


@dataclass(frozen=True)
class SafetyStatus:
    """The PLC's `safety_status` word decoded (bit 0 first; docs/plc-register-map.md). Read-only."""

    estop_ok: bool = False  # bit 0: e-stop chain closed and reset
    interlocks_ok: bool = False  # bit 1: every door/curtain interlock closed
    host_watchdog_ok: bool = False  # bit 2: the PLC sees the host heartbeat change in time
    reset_required: bool = False  # bit 3: e-stop released but the latch waits for the reset button

    @classmethod
    def from_word(cls, word: int) -> SafetyStatus:
        """Decode the raw register; bits 4-15 are reserved."""
        return cls(*(bool(word >> bit & 1) for bit in range(4)))


@dataclass(frozen=True)
class PlcState:
    """One poll of the PLC. When `link_ok` is false the safety fields read False (unknown is not OK).

    `safety_status` is the raw word (0 while the link is down) and `safety` its meaning; `cycle_s`
    is the measured duration of the last complete poll (heartbeat write and every read);
    `link_fault` says which kind of fault `link_reason` describes."""

    link_ok: bool
    link_reason: str
    estop_ok: bool
    interlocks_ok: bool
    belt_running: bool
    encoder_m: float
    photo_eyes: tuple[bool, ...]
    divert_to_manual: bool
    barrier_open: bool
    light: Light
    xray_permit: bool
    plc_heartbeat: int
    heartbeat_age_s: float
    items_to_manual: bool
    t: float
    seq: int
    safety_status: int = 0
    safety: SafetyStatus = SafetyStatus()
    cycle_s: float = 0.0
    link_fault: LinkFault = ""
    search_bay_open: bool = False  # gantry: the search-bay gate at its open end position
    entry_light: Light = "red"  # gantry: the entry light before the scan zone


@dataclass(frozen=True)
class EyeEdge:
    """A photo-eye (or vehicle loop) changed: `blocked` true when the beam is interrupted. `first`: the change is
    from nothing read to the driver's first reading of the PLC (the link's first coming up after it opened), so
    the beam may have been blocked long before (a bag or vehicle that stood in it while the software was down)."""

    eye_index: int
    eye: str
    blocked: bool
    t: float
    encoder_m: float
    first: bool = False


@dataclass(frozen=True)
class BeltMoved:
    """The encoder moved since the last poll."""

    encoder_m: float
    t: float


@dataclass(frozen=True)
class LinkChanged:
    """The link to the PLC went down (with the reason) or came back."""

    ok: bool
    reason: str
    t: float


PlcEvent = EyeEdge | BeltMoved | LinkChanged


class Plc(Protocol):
    """What the daemon may ask of a station PLC; every request is confirmed by reading back."""

    async def read_state(self) -> PlcState: ...

    def events(self) -> AsyncIterator[PlcEvent]: ...

    async def request_belt(self, run: bool) -> None: ...

    async def request_divert(self, to_manual: bool) -> None: ...

    async def request_barrier(self, open: bool) -> None: ...

    async def request_light(self, color: Light) -> None: ...

    async def request_search_bay(self, open: bool) -> None: ...

    async def request_entry_light(self, color: Light) -> None: ...

    async def request_xray_permit(self, on: bool) -> None: ...

    @property
    def safe_state(self) -> tuple[SafeRequest, ...]: ...

    async def request_safe(self, req: SafeRequest) -> None: ...

    async def send_divert(self, to_manual: bool) -> Awaitable[None]: ...
