"""Settings of the station screen; the station config composes `WebConfig` under `[web]`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge.web.i18n import LANGS


class TipConfig(BaseModel):
    """Threat Image Projection: how often a library threat is projected into a clear scan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    rate: float = Field(0.03, ge=0.0, le=1.0)  # chance per clear scan shown to a signed-in officer
    # None: <station data_dir>/tip-library, filled from the training simulator on first start if empty
    library_dir: Path | None = None
    min_scale: float = Field(0.8, gt=0.0)  # threat size relative to its library cut-out
    max_scale: float = Field(1.2, gt=0.0)
    seed: int | None = None  # fixed seed for tests and demos; None draws from the OS
    # how long a projected image must be watched (live view, page visible) before moving on is a miss
    min_dwell_s: float = Field(3.0, ge=0.0)


class WebConfig(BaseModel):
    """The officer web app: language, sessions, sign-in lockout, TIP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_lang: str = Field("en", pattern="^(" + "|".join(LANGS) + ")$")
    session_max_h: float = Field(12.0, gt=0.0)
    session_idle_min: float = Field(15.0, gt=0.0)
    max_failed_signins: int = Field(5, ge=1)  # wrong PINs for one badge from one client, then that pair locks
    lockout_s: float = Field(300.0, ge=0.0)
    signin_window_s: float = Field(300.0, gt=0.0)  # how long a wrong PIN counts
    signin_client_max: int = Field(20, ge=1)  # wrong PINs from one client (any badge) in the window, then 429
    signin_account_max: int = Field(50, ge=1)  # wrong PINs for one badge from all clients, then only its known clients
    secure_cookie: bool = False  # True when the screen is served over TLS
    history_page_size: int = Field(50, ge=1, le=500)
    # Clients allowed to receive the badge reader's reads (to pre-fill sign-in): the station's own
    # kiosk browser. Badge ids are cloneable, so they are not broadcast to the whole network.
    badge_feed_clients: tuple[str, ...] = ("127.0.0.1", "::1")
    tip: TipConfig = TipConfig()
