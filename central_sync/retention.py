"""Retention by age and verdict, and legal holds: the hub's signed retention state and the one rule both sides prune by.

The hub holds the policy (an admin sets it) and the legal holds (a supervisor places and releases them),
and publishes both as one signed, versioned document, retained on one topic for every station:

    cpe/v1/retention    hub -> stations, QoS 1, retained: {"payload": "<RetentionState JSON>", "sig": "<base64>"}

signed by the hub's command key (the key stations pin in `[commands] hub_public_key`). A station keeps the
newest version it verified (a replayed older one can never lift a hold) and runs without a policy (keeps
everything) until the first arrives. Both sides decide with `keep_reason`: a record goes only when it is
older than its class's days, is no seizure still unreleased, is under no hold, and its own side says it may
(the station: the hub holds it; the hub: an alert was acknowledged or reviewed; each side's SQL checks that).

Classes, strictest first: `seizure` (a search report with a seizure, or a review whose search seized
something), `suspect` (verdict suspect, or an officer confirmed a threat), `manual`, `clear`. A seizure is kept
until a supervisor releases it; a released seizure is then kept as a suspect record.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.errors import SyncError
from central_sync.hub.search import normalise
from central_sync.protocol import ROOT

TOPIC = f"{ROOT}/retention"
MAX_STATE_BYTES = 4 * 1024 * 1024  # what a station accepts
MAX_PUBLISH_BYTES = 2 * 1024 * 1024 - 64 * 1024
"""The largest signed state the hub publishes: the shipped broker's `max_packet_size` (2 MiB,
deploy/mosquitto/mosquitto.conf) less room for the MQTT header and topic. A larger one was refused by the broker
after the hub had stored it as the newest version (stations kept the one before without anyone being told)."""
MAX_ITEMS = 100_000  # holds, and released seizures, a state lists at most
DAY_S = 86400.0
Class = Literal["seizure", "suspect", "manual", "clear"]
CLASSES: tuple[Class, ...] = ("seizure", "suspect", "manual", "clear")
HoldKind = Literal["record", "plate", "container"]
VEHICLE_KINDS = ("plate", "container")
# The classes a record of each verdict can reach (a review or a search makes it stricter, never milder).
REACHABLE: dict[str, tuple[Class, ...]] = {"clear": ("clear", "suspect", "seizure"), "suspect": ("suspect", "seizure"),
                                           "manual": ("manual", "suspect", "seizure")}


class RetentionError(SyncError):
    """A retention state that cannot be accepted; `code` is the stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Days = float | None


class RetentionPolicy(_Wire):
    """Days each class is kept after its decision; None keeps that class until a person deletes it (never, here)."""

    clear_days: Days = Field(30.0, gt=0, le=36500)
    suspect_days: Days = Field(365.0, gt=0, le=36500)
    manual_days: Days = Field(365.0, gt=0, le=36500)

    def days(self, cls: Class) -> Days:
        """A seizure (still unreleased: `keep_reason` checks that first) is kept as a suspect record."""
        return {"seizure": self.suspect_days, "suspect": self.suspect_days, "manual": self.manual_days,
                "clear": self.clear_days}[cls]


class Hold(_Wire):
    """A legal hold: a record (its id) or a vehicle (a plate or a container number, compared normalised)."""

    kind: HoldKind
    value: str = Field(min_length=1, max_length=200)


class RetentionState(_Wire):
    """What every station prunes by; `version` grows with every change the hub makes."""

    v: Literal[1] = 1
    version: int = Field(ge=1)
    issued_at: float
    policy: RetentionPolicy | None = None  # None: keep everything
    holds: list[Hold] = Field(default_factory=list, max_length=MAX_ITEMS)
    released: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)  # seizure records a supervisor released


class SignedState(_Wire):
    payload: str = Field(max_length=MAX_STATE_BYTES)
    sig: str = Field(max_length=128)


@dataclass(frozen=True)
class Holds:
    """The holds of a state indexed for lookups: record ids and normalised vehicle identities."""

    records: frozenset[str]
    vehicles: frozenset[str]

    @classmethod
    def of(cls, holds: list[Hold]) -> "Holds":
        return cls(frozenset(h.value for h in holds if h.kind == "record"),
                   frozenset(normalise(h.value) for h in holds if h.kind in VEHICLE_KINDS))

    def match(self, body: Mapping[str, Any]) -> str | None:
        """What holds the record (`record` or the vehicle's identity kind), or None."""
        if body.get("id") in self.records:
            return "record"
        for ident in body.get("identities") or ():
            if ident.get("kind") in VEHICLE_KINDS and ident.get("value") and normalise(ident["value"]) in self.vehicles:
                return str(ident["kind"])
        return None


def record_class(body: Mapping[str, Any]) -> Class:
    """The record's retention class, strictest that applies (see the module's note)."""
    review = body.get("review") or {}
    if any(r.get("outcome") == "seizure" for r in body.get("search_reports") or ()) or \
            (review.get("search") or {}).get("outcome") == "seized":
        return "seizure"
    if body.get("verdict") == "suspect" or review.get("outcome") == "threat_confirmed":
        return "suspect"
    return "manual" if body.get("verdict") == "manual" else "clear"


def keep_reason(body: Mapping[str, Any], state: RetentionState | None, now: float, *,
                holds: Holds | None = None) -> str | None:
    """Why the record must stay (`no_policy`, `held`, `not_released`, `kept_class`, `young`), or None: the policy
    lets it go. Each side's own condition (station: the hub holds it; hub: acknowledged) is its SQL's."""
    if state is None or state.policy is None:
        return "no_policy"
    if (holds or Holds.of(state.holds)).match(body) is not None:
        return "held"
    cls = record_class(body)
    if cls == "seizure" and body.get("id") not in state.released:
        return "not_released"
    days = state.policy.days(cls)
    if days is None:
        return "kept_class"
    if _ts(body.get("decided_at")) > now - days * DAY_S:
        return "young"
    return None


def verdict_cutoffs(policy: RetentionPolicy, now: float) -> dict[str, float]:
    """Per verdict, the decision time before which a record may be old enough (a superset for SQL to narrow the
    candidates; `keep_reason` decides); a verdict missing here has a class that is never pruned by age."""
    out = {}
    for verdict, classes in REACHABLE.items():
        days = [d for c in classes if (d := policy.days(c)) is not None]
        if days:
            out[verdict] = now - min(days) * DAY_S
    return out


def _ts(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


# ---- signing ----------------------------------------------------------------------------------
def sign(key: Ed25519PrivateKey, state: RetentionState) -> bytes:
    """The retained message's bytes."""
    payload = state.model_dump_json()
    return SignedState(payload=payload, sig=base64.b64encode(key.sign(payload.encode())).decode()).model_dump_json().encode()


def verify(key: Ed25519PublicKey, data: bytes) -> RetentionState:
    """The state inside `data` if its signature verifies against the pinned hub key; RetentionError otherwise."""
    try:
        signed = SignedState.model_validate_json(data)
        sig = base64.b64decode(signed.sig, validate=True)
    except (ValidationError, ValueError) as exc:
        raise RetentionError("bad_format", f"retention state of {len(data)} bytes is not a signed envelope") from exc
    try:
        key.verify(sig, signed.payload.encode())
    except InvalidSignature as exc:
        raise RetentionError("bad_signature", f"retention state of {len(data)} bytes does not verify against the"
                                              " pinned hub key") from exc
    try:
        return RetentionState.model_validate_json(signed.payload)
    except ValidationError as exc:
        raise RetentionError("bad_format", f"signed retention state is invalid: {exc.errors()[0]['msg']}") from exc


def new_state(version: int, policy: RetentionPolicy | None, holds: list[Hold], released: list[str],
              now: float | None = None) -> RetentionState:
    """A state stations will accept; RetentionError `too_large` (its sentence names the counts and limits) when
    it lists more holds or released seizures than MAX_ITEMS, or its payload passes MAX_STATE_BYTES."""
    if len(holds) > MAX_ITEMS or len(released) > MAX_ITEMS:
        raise RetentionError("too_large", f"retention state {version} lists {len(holds)} holds and {len(released)}"
                                          f" released seizures, over the limit of {MAX_ITEMS} each")
    state = RetentionState(version=version, issued_at=time.time() if now is None else now, policy=policy,
                           holds=holds, released=released)
    if (size := len(state.model_dump_json().encode())) > MAX_STATE_BYTES:
        raise RetentionError("too_large", f"retention state {version} is {size} bytes ({len(holds)} holds,"
                                          f" {len(released)} released seizures), over the limit of {MAX_STATE_BYTES}")
    return state
