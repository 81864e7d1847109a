"""A simulated lane: one description per vehicle (or bag), played alike by every simulator of the lane.

Without it each simulator plays its own script (the PLC's random vehicles, the LLRP reader's timed
tags, the camera's n-th render) and a demo vehicle's plate, tag and seal belong to three different
vehicles. With it the PLC simulator is the one that moves things: each vehicle (or bag) it puts on
the lane gets a `Described` item from `describe` (its length, plates, container code, windscreen or
bag tag, e-seal and that seal's state), and while the item covers the entry eye the PLC simulator
has it `inside` the lane. The other simulators follow the lane by its name, within the process that
runs them (`edge run` with simulated devices, or `edge twin`):

    camera (drivers/camera/sim.py)   renders the item last come in: its plates or its container code
    LLRP reader (rfid/llrp/sim.py)   holds the item's tag (TID, EPC) in its entry antenna's field
    seal reader (seal/sim.py)        holds the item's e-seal in range, in its state; a seal that is
                                     tampered in the lane records that event while it is inside

A described item is the truth a test compares a record with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SealState = Literal["intact", "opened", "tampered"]
Obscured = Literal["", "dirt", "glare"]
FOLLOW_S = 0.05
"""How often a follower looks at what is inside its lane."""


class LaneSim(BaseModel):
    """The described items of a simulated lane: its name (followers name it too), seed and shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, description="followers' `lane`; unique within the process")
    items: Literal["vehicles", "bags"] = "vehicles"
    seed: int = 0
    cross_boundary: float = Field(default=0.5, ge=0, le=1, description="share with a Guangdong plate too")
    container_share: float = Field(default=1.0, ge=0, le=1, description="share of vehicles carrying a container")
    sealed_share: float = Field(default=0.95, ge=0, le=1, description="share of containers with an e-seal")
    opened_share: float = Field(default=0.05, ge=0, le=1, description="share of seals arriving opened")
    tampered_share: float = Field(default=0.05, ge=0, le=1, description="share of seals tampered in the lane")
    obscured_share: float = Field(default=0.1, ge=0, le=1, description="share of plates under dirt or glare")


@dataclass(frozen=True)
class Described:
    """What item `number` of a lane is and carries; "" where it carries none."""

    number: int
    length_m: float
    hk_plate: str = ""
    gd_plate: str = ""  # a cross-boundary vehicle's Guangdong plate, e.g. 粤ZA123港
    container: str = ""  # ISO 6346, check digit included
    size_type: str = ""
    tid: str = ""  # the windscreen (or bag) tag's TID, as hex
    epc: str = ""
    seal_id: str = ""
    seal_state: SealState = "intact"  # as the seal arrives
    seal_tampered_in_lane: bool = False
    obscured: Obscured = ""  # dirt or glare over the Hong Kong plate: the camera cannot read it

    @property
    def plates(self) -> tuple[str, ...]:
        return tuple(p for p in (self.hk_plate, self.gd_plate) if p)

    @property
    def seal_intact(self) -> bool:
        """The seal as the station should find it: present, arrived intact and not tampered in the lane."""
        return bool(self.seal_id) and self.seal_state == "intact" and not self.seal_tampered_in_lane


def describe(cfg: LaneSim, number: int) -> Described:
    """Item `number` of the lane: the same on every call, in every simulator."""
    if cfg.items == "bags":
        return _bag(cfg, number)
    from drivers.camera.sim import vehicle

    rng = np.random.default_rng([cfg.seed, number, 17])
    plates = vehicle(cfg.seed, number, "tuning", cfg.cross_boundary)
    carries = rng.random() < cfg.container_share
    sealed = carries and rng.random() < cfg.sealed_share
    draw = rng.random()
    state: SealState = "opened" if draw < cfg.opened_share else "intact"
    tampered = cfg.opened_share <= draw < cfg.opened_share + cfg.tampered_share
    obscured: Obscured = str(rng.choice(["dirt", "glare"])) if rng.random() < cfg.obscured_share else ""  # type: ignore[assignment]
    length = float(rng.uniform(12.0, 16.5) if carries else rng.uniform(5.0, 9.0))
    return Described(number, round(length, 2), plates.hk_plate, plates.gd_plate,
                     plates.container if carries else "", plates.size_type if carries else "",
                     tid=f"E2801160200073F1{cfg.seed & 0xFF:02X}{number:06X}", epc=f"300833B2DDD90140{number:08X}",
                     seal_id=f"HKEL{number:07d}" if sealed else "", seal_state=state if sealed else "intact",
                     seal_tampered_in_lane=sealed and tampered, obscured=obscured)


def _bag(cfg: LaneSim, number: int) -> Described:
    """A bag with its baggage tag (UHF, EPC as airlines and parcel carriers write it)."""
    rng = np.random.default_rng([cfg.seed, number, 18])
    return Described(number, round(float(rng.uniform(0.3, 0.5)), 2), tid=f"E2003412013A{cfg.seed & 0xFF:02X}{number:010X}",
                     epc=f"3500{cfg.seed & 0xFFFF:04X}BA6{number:013X}")


class Lane:
    """What is inside one simulated lane now (by number), and what came in last."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inside: dict[int, Described] = {}
        self.latest: Described | None = None
        self.entered_count = 0

    def entered(self, item: Described) -> None:
        self.inside[item.number] = item
        self.latest = item
        self.entered_count += 1

    def left(self, number: int) -> None:
        self.inside.pop(number, None)


_LANES: dict[str, Lane] = {}


def lane(name: str) -> Lane:
    """The process's lane of this name (made on first use: the PLC simulator and its followers share it)."""
    return _LANES.setdefault(name, Lane(name))


async def follow(name: str, entered: Callable[[Described], None], left: Callable[[Described], None]) -> None:
    """Call `entered` for each item that comes inside the lane and `left` when it goes, until cancelled."""
    known: dict[int, Described] = {}
    watched = lane(name)
    try:
        while True:
            now = dict(watched.inside)
            for number in known.keys() - now.keys():
                left(known[number])
            for number in sorted(now.keys() - known.keys()):
                entered(now[number])
            known = now
            await asyncio.sleep(FOLLOW_S)
    finally:
        for item in known.values():
            left(item)
