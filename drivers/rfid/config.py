"""RFID reader configuration."""

from __future__ import annotations

from typing import Literal

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
