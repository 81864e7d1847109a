"""Control-room routes of retention and legal holds (docs/retention-and-holds.md), and the task that keeps
the stations' retention state published and prunes the hub.

An admin sets the policy (`retention_policy`); supervisors and admins place and release holds and release
seizures (`hold`); both read the figures and the holds (`retention_view`). Each change is audited by
central_sync/hub/retention.py and published at once, retained, signed by the hub's command key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from central_sync import retention as r
from central_sync.control_room import auth
from central_sync.control_room.refusals import Refused
from central_sync.hub import retention as hub_retention

if TYPE_CHECKING:
    from central_sync.control_room.service import ControlRoom

T = TypeVar("T")
log = structlog.get_logger("central_sync.control_room.retention")
HOLD_STATUS = {"reason_required": 422, "no_vehicle": 422, "unknown_record": 404, "unknown_hold": 409, "not_a_seizure": 409}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyIn(_Body):
    policy: r.RetentionPolicy
    reason: str = Field("", max_length=2000)


class HoldIn(_Body):
    kind: r.HoldKind
    value: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=2000)


class ReasonIn(_Body):
    reason: str = Field("", max_length=2000)


def publish(room: ControlRoom) -> int | None:
    """Sign and publish the next state, retained for every station; its version, or None without a key or link."""
    if room.key is None or room.link is None:
        log.warning("retention.not_published", why="the hub has no signing key or no broker link")
        return None
    try:
        state, signed = hub_retention.publish(room.store, room.key)
    except r.RetentionError as exc:
        if exc.code != "too_large":
            raise
        refuse(room, str(exc), hub_retention.latest_signed(room.store))
        return None
    room.state_refused = None
    room.link.publish(r.TOPIC, signed, retain=True)
    log.info("retention.published", version=state.version, holds=len(state.holds), released=len(state.released))
    return state.version


def refuse(room: ControlRoom, sentence: str, latest: tuple[int, bytes] | None) -> None:
    """A state over its limits is not published: the stations keep the newest one they have (a hold placed since
    does not reach them). Counted each time; logged when the sentence changes; shown on the Retention view."""
    room.counters["retention_state_refused"] += 1
    kept = latest[0] if latest else None
    if room.state_refused is None or sentence != room.state_refused["detail"]:
        log.error("retention.state_refused", kept_version=kept,
                  detail=f"{sentence}: not published, the stations keep version {kept}")
    room.state_refused = {"detail": sentence, "kept_version": kept}


async def keep(room: ControlRoom) -> None:
    """Publish the newest state again (a broker that lost its retained message), or a new one when a change was
    not published (made without a key or a link, or a release aged out of the list), and prune the hub, each
    period; a failure is logged and tried again next period."""
    while True:
        try:
            fresh = room.key is not None and await asyncio.to_thread(hub_retention.unpublished, room.store)
            # a state refused as too large: the newest published one goes out again, as when nothing changed
            if (not fresh or await asyncio.to_thread(publish, room) is None) and room.link and \
                    (latest := await asyncio.to_thread(hub_retention.latest_signed, room.store)):
                room.link.publish(r.TOPIC, latest[1], retain=True)
            while (await asyncio.to_thread(hub_retention.prune, room.store))["records"] == hub_retention.PAGE:
                pass  # a full page: there is more to delete
        except Exception:  # the retention task's top-level supervisor: log and try again next period
            log.exception("retention.round_failed", retry_in_s=room.cfg.retention_period_s)
        await asyncio.sleep(room.cfg.retention_period_s)


def stations(room: ControlRoom) -> list[dict[str, Any]]:
    """Each station's disk figures and the retention state version it prunes by (from its last status)."""
    out = []
    for station, state, _, status, status_at, _ in room.store.stations():
        body = json.loads(status)
        out.append({"station": station, "state": state, "status_at": status_at,
                    "retention_version": body.get("retention_version"), "storage": body.get("storage")})
    return out


def build_retention_router(room: ControlRoom, need: Callable[[str], Callable[..., auth.User]]) -> APIRouter:
    rt = APIRouter(prefix="/cr/api")

    def attempt(user: auth.User, change: Callable[[], T]) -> T:
        """Run an audited change; a HoldError becomes the HTTP refusal, in the user's language."""
        try:
            return change()
        except hub_retention.HoldError as exc:  # its code translated on the page (refusals.py), its sentence kept
            raise Refused(HOLD_STATUS.get(exc.code, 409), f"hold.{exc.code}", str(exc), **exc.vals) from exc

    @rt.get("/retention")
    def overview(user: auth.User = Depends(need("retention_view"))) -> dict:
        latest = hub_retention.latest_signed(room.store)
        return {"hub": hub_retention.figures(room.store), "stations": stations(room),
                "published_version": latest[0] if latest else None, "signing": room.key is not None,
                "state_refused": room.state_refused}

    @rt.put("/retention/policy")
    def set_policy(body: PolicyIn, user: auth.User = Depends(need("retention_policy"))) -> dict:
        version = attempt(user, lambda: hub_retention.set_policy(room.store, body.policy, user.username, body.reason))
        return {"policy_version": version, "published_version": publish(room)}

    @rt.get("/holds")
    def holds(all: bool = False, user: auth.User = Depends(need("retention_view"))) -> list[dict]:
        return hub_retention.holds(room.store, standing_only=not all)

    @rt.post("/holds")
    def place(body: HoldIn, user: auth.User = Depends(need("hold"))) -> dict:
        hold = attempt(user, lambda: hub_retention.place_hold(room.store, body.kind, body.value, user.username,
                                                              body.reason))
        return {**hold, "published_version": publish(room)}

    @rt.post("/holds/{hold_id}/release")
    def release(hold_id: str, body: ReasonIn, user: auth.User = Depends(need("hold"))) -> dict:
        hold = attempt(user, lambda: hub_retention.release_hold(room.store, hold_id, user.username, body.reason))
        return {**hold, "published_version": publish(room)}

    @rt.post("/seizures/{record_id}/release")
    def release_seizure(record_id: str, body: ReasonIn, user: auth.User = Depends(need("hold"))) -> dict:
        attempt(user, lambda: hub_retention.release_seizure(room.store, record_id, user.username, body.reason))
        return {"record_id": record_id, "published_version": publish(room)}

    return rt
