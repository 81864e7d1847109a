"""Configuration of the control room (served by `edge-hub run`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ControlRoomConfig(BaseModel):
    """Sessions, live-feed polling, stations' staleness and command signing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_key: Path | None = Field(None, description="Ed25519 private key (PEM); without it no command is sent")
    command_ttl_s: float = Field(300.0, gt=0, le=86400)
    session_idle_s: float = Field(900.0, gt=0)
    session_max_s: float = Field(12 * 3600.0, gt=0)
    stale_s: float = Field(30.0, gt=0, description="a station silent this long shows offline")
    poll_s: float = Field(0.1, gt=0, le=5, description="how often the live feed looks for new commits")
    default_lang: str = "en"
    client_id: str = Field("control-room", description="MQTT client id of the command link; unique per hub process")
    secure_cookie: bool = Field(True, description="send the session cookie over HTTPS only; False only for "
                                                  "plain-HTTP labs and tests")
    pki_dir: Path | None = Field(None, description="the hub's CA (edge-hub pki): the board warns of a CRL about to "
                                                  "lapse and of certificates expiring within 30 days")
    signin_window_s: float = Field(300.0, gt=0, description="how long a failed sign-in counts")
    signin_client_max: int = Field(20, ge=1, description="failed sign-ins per client (any account) in the window "
                                                         "before that client is refused with 429")
    signin_pair_max: int = Field(5, ge=1, description="failed sign-ins of one account from one client before "
                                                      "that account is locked for that client only")
    signin_lockout_s: float = Field(300.0, gt=0, description="how long such a lock lasts")
    risk_key: Path | None = Field(None, description="Ed25519 private key (PEM) that signs risk bundles; without it "
                                                    "nothing is published")
    models_dir: Path | None = Field(None, description="the hub's model package folder (edge-hub model); without it "
                                                     "the control room shows stations' models but stages no roll-out")
    risk_key_id: str | None = Field(None, description="the id stations pin the risk key under (default: from the key)")
    risk_expiry_s: float = Field(24 * 3600.0, gt=0, description="how long a published risk bundle is valid")
    risk_republish_s: float = Field(6 * 3600.0, gt=0, description="publish the approved state again this long "
                                                                 "before the newest bundle expires")
    retention_period_s: float = Field(300.0, gt=0, description="how often the hub prunes by the retention policy "
                                                               "and publishes the stations' retention state again")
    signin_account_max: int = Field(50, ge=1, description="failed sign-ins of one account from all clients in the "
                                                          "window before only clients it signed in from may try it")
