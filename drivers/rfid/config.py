"""RFID reader configuration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Presentation(BaseModel):
    """A tag held to the simulated reader: at `at_s` after start, for `seconds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at_s: float = Field(ge=0)
    tag_hex: str = Field(pattern=r"^[0-9A-Fa-f]{10}$")
    seconds: float = Field(gt=0)


class RfidSim(BaseModel):
    """Simulated EM4100 reader: repeat period while a tag is present, CR LF style, schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    repeat_ms: int = Field(default=100, ge=5)
    crlf: bool = False
    schedule: tuple[Presentation, ...] = ()


class RfidConfig(BaseModel):
    """One 125 kHz reader; `port` should be a stable /dev/serial/by-id/... path."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["em4100-serial", "sim"]
    port: str = ""
    baudrate: int = 9600
    removal_after_ms: int = Field(default=500, ge=50)
    reconnect_delay_ms: int = Field(default=500, ge=10)
    confirm_frames: int = Field(default=2, ge=1, le=16,
                                description="identical frames needed within confirm_window_ms before a tag counts")
    confirm_window_ms: int = Field(default=1000, ge=10)
    sim: RfidSim = RfidSim()

    @model_validator(mode="after")
    def _port_for_real_reader(self) -> RfidConfig:
        """A real reader needs its port."""
        if self.kind == "em4100-serial" and not self.port:
            raise ValueError("kind em4100-serial needs port (prefer /dev/serial/by-id/...)")
        return self


class LlrpSimTag(BaseModel):
    """A UHF tag in the simulated reader's field: from `at_s` after start, for `seconds`, at one antenna."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at_s: float = Field(ge=0)
    seconds: float = Field(gt=0)
    antenna: int = Field(default=1, ge=1)
    epc: str = Field(pattern=r"^([0-9A-Fa-f]{4}){1,16}$", description="EPC as hex, whole 16-bit words")
    tid: str = Field(pattern=r"^([0-9A-Fa-f]{4}){2,16}$", description="TID memory bank as hex")
    user: str = Field(default="", pattern=r"^([0-9A-Fa-f]{4}){0,64}$", description="user memory bank as hex")
    rssi_dbm: int = Field(default=-55, ge=-128, le=127)


class LlrpSim(BaseModel):
    """Simulated LLRP reader on localhost: antennas, how often a tag in the field is read, schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    antennas: int = Field(default=4, ge=1, le=64)
    read_ms: int = Field(default=100, ge=5)
    schedule: tuple[LlrpSimTag, ...] = ()
    repeat_s: float | None = Field(default=None, gt=0, description="the schedule starts again every repeat_s")
    lane: str | None = Field(default=None, description="also hold the tag of each item inside this simulated lane "
                             "(drivers/simlane.py) in the field of `lane_antenna`")
    lane_antenna: int = Field(default=1, ge=1)
    lane_delay_s: float = Field(default=0.3, ge=0, description="from the item covering the entry eye to its tag "
                                "being in the antenna's field")

    @model_validator(mode="after")
    def _repeat_covers_schedule(self) -> LlrpSim:
        """A repeated schedule ends before it starts again; every tag is at an antenna the reader has."""
        end = max((t.at_s + t.seconds for t in self.schedule), default=0.0)
        if self.repeat_s is not None and self.repeat_s < end:
            raise ValueError(f"sim repeat_s {self.repeat_s} is shorter than the schedule, which ends at {end} s")
        beyond = sorted({t.antenna for t in self.schedule if t.antenna > self.antennas}
                        | ({self.lane_antenna} if self.lane and self.lane_antenna > self.antennas else set()))
        if beyond:
            raise ValueError(f"sim schedule uses antennas {beyond} and the simulated reader has {self.antennas}")
        return self


class LlrpConfig(BaseModel):
    """A UHF reader speaking LLRP 1.0.1 over TCP; with `sim`, a simulated reader is started on localhost."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["llrp"]
    host: str = ""
    port: int = Field(default=5084, ge=1, le=65535)
    antennas: tuple[int, ...] = Field(default=(1,), min_length=1)
    exit_antennas: tuple[int, ...] = Field(default=(), description="those of `antennas` facing the lane's exit: "
                                           "their reads are of vehicles leaving and join no item being scanned")
    keepalive_s: float = Field(default=2.0, gt=0, description="the reader's KEEPALIVE period; 3 missed = link lost")
    connect_timeout_ms: int = Field(default=3000, ge=10)
    response_timeout_ms: int = Field(default=3000, ge=10, description="for each response during set-up")
    reconnect_min_ms: int = Field(default=500, ge=10)
    reconnect_max_ms: int = Field(default=10000, ge=10)
    removal_after_ms: int = Field(default=1000, ge=50)
    read_tid: bool = Field(default=True, description="add an AccessSpec reading the TID of every tag")
    read_user_words: int = Field(default=0, ge=0, le=64,
                                 description="also read this many words of user memory (bank 3), e.g. an e-seal's")
    sim: LlrpSim | None = None

    @model_validator(mode="after")
    def _host_for_real_reader(self) -> LlrpConfig:
        """A real reader needs its address; antenna ids start at 1; an exit antenna is one of the reader's."""
        if self.sim is None and not self.host:
            raise ValueError("kind llrp needs host (or a [sim] table for a simulated reader)")
        if any(a < 1 for a in self.antennas):
            raise ValueError(f"LLRP antenna ids start at 1, got {list(self.antennas)}")
        stray = sorted(set(self.exit_antennas) - set(self.antennas))
        if stray:
            raise ValueError(f"exit_antennas {stray} are not among the reader's antennas {list(self.antennas)}")
        return self


ReaderConfig = Annotated[RfidConfig | LlrpConfig, Field(discriminator="kind")]
"""A tag reader's configuration, chosen by `kind`."""
