"""E-seal reader configuration: one table per vendor family, chosen by `kind`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.rfid.config import LlrpConfig

SealStateName = Literal["intact", "opened", "tampered"]


class SimSealPlan(BaseModel):
    """A seal in the simulated reader's range from `at_s` for `seconds`; it may record an event meanwhile."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at_s: float = Field(ge=0)
    seconds: float = Field(gt=0)
    seal_id: str = Field(pattern=r"^[A-Z0-9]{4,18}$")
    state: SealStateName = "intact"
    battery_pct: int = Field(default=90, ge=0, le=100)
    event_at_s: float | None = Field(default=None, ge=0, description="seconds after it came into range")
    event_state: SealStateName = "tampered"
    tid: str | None = Field(default=None, pattern=r"^([0-9A-Fa-f]{4}){2,16}$",
                            description="the seal tag's TID (LLRP family); default: made from the seal number")
    epc: str | None = Field(default=None, pattern=r"^([0-9A-Fa-f]{4}){1,16}$")


class SealSim(BaseModel):
    """A simulated seal reader: how often it reports a seal in range, and its schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    repeat_ms: int = Field(default=200, ge=5)
    schedule: tuple[SimSealPlan, ...] = ()
    repeat_s: float | None = Field(default=None, gt=0, description="the schedule starts again every repeat_s")
    lane: str | None = Field(default=None, description="also hold the e-seal of each item inside this simulated "
                             "lane (drivers/simlane.py) in range, in its state")
    lane_tamper_after_s: float = Field(default=0.3, ge=0, description="when a seal tampered in the lane records it, "
                                       "after the item came onto the entry eye (early: a short scan closes its window)")

    @model_validator(mode="after")
    def _repeat_covers_schedule(self) -> SealSim:
        end = max((p.at_s + p.seconds for p in self.schedule), default=0.0)
        if self.repeat_s is not None and self.repeat_s < end:
            raise ValueError(f"sim repeat_s {self.repeat_s} is shorter than the schedule, which ends at {end} s")
        return self


class SerialSealConfig(BaseModel):
    """A fixed e-seal reader on a serial line speaking ES1 (drivers/seal/codec.py); `seal-serial-sim` runs its
    simulator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["seal-serial", "seal-serial-sim"]
    port: str = ""
    baudrate: int = 9600
    removal_after_ms: int = Field(default=1500, ge=50)
    reconnect_delay_ms: int = Field(default=500, ge=10)
    sim: SealSim = SealSim()

    @model_validator(mode="after")
    def _port_for_real_reader(self) -> SerialSealConfig:
        if self.kind == "seal-serial" and not self.port:
            raise ValueError("kind seal-serial needs port (prefer /dev/serial/by-id/...)")
        return self


SEAL_WORDS = 16
"""User-memory words a reader of seal tags must read (drivers/seal/memory.py)."""


class LlrpSealConfig(BaseModel):
    """Seals that are UHF tags with their state in user memory (drivers/seal/memory.py), read over LLRP.

    `reader` is either the LLRP reader's own table, or the name of one of the station's tag readers
    (`[devices.readers.NAME]`): a UHF reader takes one client, so the lane's reader usually reads
    vehicle tags and seal tags alike. Either must read 16 words of user memory. With the reader's
    `[sim]` table, the simulated reader also carries the seals of `sim.schedule`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["seal-llrp"]
    reader: LlrpConfig | str
    removal_after_ms: int = Field(default=1500, ge=50)
    sim: SealSim = SealSim()

    @model_validator(mode="after")
    def _reads_user_memory(self) -> LlrpSealConfig:
        if isinstance(self.reader, LlrpConfig):
            check_reads_seals(self.reader, "reader")
        return self


def check_reads_seals(reader: LlrpConfig, where: str) -> None:
    """ValueError unless the LLRP reader reads a seal's user memory."""
    if reader.read_user_words < SEAL_WORDS:
        raise ValueError(f"{where} reads seal tags and needs read_user_words >= {SEAL_WORDS}, "
                         f"got {reader.read_user_words}")


SealReaderConfig = Annotated[SerialSealConfig | LlrpSealConfig, Field(discriminator="kind")]
"""An e-seal reader's configuration, chosen by `kind`."""
