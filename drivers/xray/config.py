"""Configuration of the X-ray scanner controller (`[devices.xray]` in the station config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SimFaultsConfig(BaseModel):
    """Random faults the emulator applies to each outgoing frame (probabilities 0..1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corrupt: float = Field(0.0, ge=0, le=1)
    drop: float = Field(0.0, ge=0, le=1)
    duplicate: float = Field(0.0, ge=0, le=1)
    seed: int | None = None


class SimScannerConfig(BaseModel):
    """The in-process firmware emulator used by kind "sim"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan_dir: Path
    line_rate: float = Field(200.0, gt=0, description="lines per second streamed by the emulator")
    fifo_lines: int = Field(512, gt=0)
    boot_ms: int = Field(300, ge=0)
    interlocks_closed: bool = True
    throttle: bool = Field(False, description="pace the emulator's output to baudrate like a real UART")
    watch: bool = Field(False, description="stream scans added to scan_dir while running too (a pool filled"
                        " in the background, e.g. by `edge demo`), each in turn")
    faults: SimFaultsConfig = SimFaultsConfig()


class ScannerConfig(BaseModel):
    """The X-ray line scanner behind its controller firmware."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["firmware-serial", "sim"]
    port: str = Field("", description="serial device, preferably /dev/serial/by-id/...")
    baudrate: int = Field(115200, gt=0)
    dtr: bool | None = Field(None, description="DTR level set before opening; False avoids resetting boards on open")
    rts: bool | None = None
    ack_timeout_ms: int = Field(200, gt=0)
    attempts: int = Field(4, ge=1, le=16)
    window: int = Field(16, ge=1, le=256)
    heartbeat_ms: int = Field(200, gt=0)
    stale_ms: int = Field(1000, gt=0)
    reconnect_ms: int = Field(250, gt=0)
    ready_timeout_ms: int = Field(3000, gt=0, description="how long a command waits for the link to be up")
    scan_idle_timeout_ms: int = Field(2000, gt=0, description="a scan with no line for this long ends incomplete")
    max_lines: int = Field(20000, gt=0)
    line_rate: float | None = Field(None, gt=0, description="nominal lines per second, recorded in scan meta")
    pixel_mm: float | None = Field(None, gt=0)
    kvp: float | None = Field(None, gt=0)
    sim: SimScannerConfig | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> ScannerConfig:
        if self.kind == "sim" and self.sim is None:
            raise ValueError("kind 'sim' needs a [sim] section with scan_dir")
        if self.kind == "firmware-serial" and not self.port:
            raise ValueError("kind 'firmware-serial' needs port")
        if self.stale_ms <= self.heartbeat_ms:
            raise ValueError(f"stale_ms ({self.stale_ms}) must exceed heartbeat_ms ({self.heartbeat_ms})")
        return self
