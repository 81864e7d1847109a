"""Domain values of the PLC interface: state snapshot, events and the `Plc` protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Literal, Protocol

Light = Literal["off", "red", "amber", "green"]


@dataclass(frozen=True)
class PlcState:
    """One poll of the PLC. When `link_ok` is false the safety fields read False (unknown is not OK)."""

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


@dataclass(frozen=True)
class EyeEdge:
    """A photo-eye (or vehicle loop) changed: `blocked` true when the beam is interrupted."""

    eye_index: int
    eye: str
    blocked: bool
    t: float
    encoder_m: float


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

    async def request_xray_permit(self, on: bool) -> None: ...

    async def send_divert(self, to_manual: bool) -> Awaitable[None]: ...
