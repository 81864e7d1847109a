"""Configuration of the station's sync publisher (composed by the station config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TlsConfig(BaseModel):
    """TLS towards the broker: CA to trust, and a client certificate when the broker wants one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> "TlsConfig":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class BrokerConfig(BaseModel):
    """How to reach and log in to the MQTT broker (shared by the station and the hub)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls: TlsConfig | None = None
    username: str | None = None  # each connection logs in as `{username}.{link}` (central_sync.mqtt.login)
    password_file: Path | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _backoff_ordered(self) -> "BrokerConfig":
        """The shortest wait between tries is not above the longest (60 and 1 made every wait 60 s, while the
        session and stall checks went by the 1)."""
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(f"reconnect_min_s {self.reconnect_min_s} is above reconnect_max_s {self.reconnect_max_s}")
        return self

    def password(self) -> str | None:
        """The password read from `password_file` (first line), or None."""
        if self.password_file is None:
            return None
        lines = self.password_file.read_text().splitlines()
        if not lines:
            raise ValueError(f"password file {self.password_file} is empty")
        return lines[0].strip()


class SyncConfig(BrokerConfig):
    """The station publisher: broker access plus flow-control and timing limits."""

    max_inflight: int = Field(64, ge=1, le=65535, description="upper bound; the broker's Receive Maximum lowers it")
    max_unacked: int = Field(1000, ge=1, description="records/images published and awaiting the hub's ack")
    max_payload_bytes: int = Field(512 * 1024, ge=1024, description="client-side limit, keep below the broker's")
    chunk_bytes: int = Field(128 * 1024, ge=512)
    max_uploads: int = Field(32, ge=1, description="images under way at once; keep below the hub's limit of "
                             "incomplete uploads per station (--max-uploads-per-station, 64)")
    batch_max_rows: int = Field(100, ge=1, description="record-lane rows per publish (1: no batches); alerts go alone")
    status_period_s: float = Field(5.0, gt=0)
    ack_timeout_s: float = Field(20.0, gt=0, description="resend a row the hub has not acknowledged by then "
                                 "(then twice as long each time, up to 32 times this)")
    progress_timeout_s: float = Field(15.0, gt=0, description="rebuild a client whose PUBACKs stopped")
    poll_s: float = Field(0.02, gt=0, description="how often an idle publisher looks for new outbox rows")

    @model_validator(mode="after")
    def _chunk_fits(self) -> "SyncConfig":
        if self.chunk_bytes + 1024 > self.max_payload_bytes:
            raise ValueError(
                f"chunk_bytes {self.chunk_bytes} plus 1024 bytes of header exceeds max_payload_bytes {self.max_payload_bytes}"
            )
        return self
